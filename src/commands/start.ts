// `aigate start`: load and validate the config, start the listeners, and run until SIGTERM/SIGINT
// (drain, flush the audit log, exit 0). SIGHUP reopens the audit log (logrotate) and reloads the
// configuration and every file it names, keeping the running one if the new one is invalid.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { ConfigError, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { announceWorker, answerReloads, isWorker, leaveCluster, runPrimary, shareAuditRecords, workerConfig } from '../server/cluster.js';
import { formatAddress } from '../server/listen.js';
import { startProxy, type RunningProxy } from '../server/proxy.js';
import { PidFileError, writePidFile } from '../server/pid-file.js';
import { runCertsInit } from './certs.js';

export interface StartCommandOptions {
  config: string;
  /** Create the development CA and gateway certificate when missing (what `npm start` does). */
  initCerts: boolean;
  logger: Logger;
  stderr: Writable;
  /** More than 1: node:cluster workers each run the proxy; this process supervises (server/cluster.ts). */
  workers?: number;
  /** Written with this process's pid once it serves (the primary's with --workers); removed on exit. */
  pidFile?: string | undefined;
}

export async function runStart(opts: StartCommandOptions): Promise<number> {
  // Signal handlers go in before anything else: without a listener, a SIGTERM that arrives while
  // starting would kill the process outright instead of draining it.
  let stopSignal: string | undefined;
  let onStop: ((signal: string) => void) | undefined;
  const requestStop = (signal: string) => {
    stopSignal ??= signal;
    onStop?.(signal);
  };
  const onTerm = () => requestStop('SIGTERM');
  const onInt = () => requestStop('SIGINT');
  let onHup = () => {};
  const hup = () => onHup();
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  process.on('SIGHUP', hup);
  let removePidFile = () => {};
  try {
    // Before anything starts, so a pid file that cannot be written stops the start cleanly. A
    // SIGHUP before the audit log is open has nothing to reopen and is ignored.
    if (opts.pidFile !== undefined && !isWorker()) removePidFile = writePidFile(opts.pidFile);
    return await run(opts, (stop) => {
      onStop = stop;
      if (stopSignal) stop(stopSignal);
    }, (reopen) => (onHup = reopen));
  } catch (err) {
    if (!(err instanceof PidFileError)) throw err;
    opts.stderr.write(`aigate: ${err.message}\n`);
    return 1;
  } finally {
    removePidFile();
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
    process.off('SIGHUP', hup);
    leaveCluster();
  }
}

async function run(
  opts: StartCommandOptions,
  whenStopRequested: (stop: (signal: string) => void) => void,
  onReopen: (reopen: () => void) => void,
): Promise<number> {
  let config: Config;
  let proxy: RunningProxy;
  try {
    config = loadConfig(opts.config);
    if (opts.initCerts) ensureDevCerts(config, opts.stderr);
    if ((opts.workers ?? 1) > 1 && !isWorker()) {
      return await runPrimary({ config, configFile: opts.config, workers: opts.workers!, logger: opts.logger, whenStopRequested, onReopen });
    }
    if (isWorker()) config = workerConfig(config);
    proxy = await startProxy(config, { configFile: opts.config, logger: opts.logger, ...(isWorker() ? { adjustConfig: workerConfig } : {}) });
  } catch (err) {
    opts.stderr.write(`aigate: ${err instanceof ConfigError ? err.message : `${opts.config}: ${(err as Error).message}`}\n`);
    return 1;
  }
  const { addresses } = proxy;
  opts.logger.info(
    {
      gateway: addresses.gateway && `https://${formatAddress(addresses.gateway)}`,
      forward: addresses.forward && `http://${formatAddress(addresses.forward)}`,
      admin: addresses.admin && `http://${formatAddress(addresses.admin)}`,
      routes: config.routes.map((r) => `${r.prefix} -> ${r.upstream}`),
      rateLimitStore: config.rateLimit.enabled ? config.rateLimit.store : 'off',
      audit: [config.audit.file && resolve(config.audit.file), config.audit.stdout && 'stdout'].filter(Boolean),
    },
    isWorker() ? 'aigate worker started' : 'aigate started',
  );
  // SIGHUP (or, in a worker, the primary's request): the audit log is reopened first, so a
  // logrotate postrotate never depends on the new configuration being valid.
  const reload = () => {
    proxy.reopenAudit();
    opts.logger.info('audit log reopened');
    return proxy.reload();
  };
  if (isWorker()) {
    shareAuditRecords(proxy.audit);
    answerReloads(reload);
    announceWorker(proxy.metrics.registry, addresses);
  }
  onReopen(() => void reload());

  return new Promise<number>((done) => {
    let stopping = false;
    whenStopRequested((signal) => {
      if (stopping) return;
      stopping = true;
      opts.logger.info({ signal, graceMs: config.timeouts.drain }, 'draining: no new connections, waiting for open requests and streams');
      void proxy.drain().then(({ forced }) => {
        if (forced > 0) opts.logger.warn({ forced }, 'drain grace period over; closed the remaining connections');
        opts.logger.info('aigate stopped');
        // Every connection is closed and every line written: the process is due to exit now. A
        // handle something still holds (a timer, a socket of a library) must not keep it running
        // until an orchestrator's SIGKILL; the backstop is unref'd, so it fires only in that case.
        const backstop = setTimeout(() => {
          opts.logger.warn({ resources: process.getActiveResourcesInfo() }, 'still running 500 ms after the drain; exiting');
          process.exit(0);
        }, 500);
        backstop.unref();
        done(0);
      });
    });
  });
}


/**
 * Dev convenience (`npm start`): a fresh clone has no certificates, so make them with
 * `certs init` — which also prints where they are and how to trust the CA.
 */
function ensureDevCerts(config: Config, stderr: Writable): void {
  const { tls } = config;
  const needed = [tls.cert, tls.key, tls.ca.cert, tls.ca.key];
  if (needed.every((f) => existsSync(f))) return;
  const dir = dirname(resolve(tls.cert));
  const expected = ['proxy.crt', 'proxy.key', 'ca.crt', 'ca.key'].map((f) => join(dir, f));
  if (needed.some((f, i) => resolve(f) !== expected[i])) {
    throw new Error(`--init-certs creates ${dir}/{proxy,ca}.{crt,key}; tls.* names other files: create them with \`aigate certs init\` or your own CA`);
  }
  if (runCertsInit({ dir, stdout: stderr, stderr }) !== 0) throw new Error(`could not create development certificates in ${dir}`);
}

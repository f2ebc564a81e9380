// `aigate start`: load and validate the config, start the listeners, and run until SIGTERM/SIGINT
// (drain, flush the audit log, exit 0). SIGHUP reopens the audit log for logrotate.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { ConfigError, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { startProxy, type RunningProxy } from '../server/proxy.js';
import { initCerts } from '../tls/ca.js';

export interface StartCommandOptions {
  config: string;
  /** Create the development CA and gateway certificate when missing (what `npm start` does). */
  initCerts: boolean;
  logger: Logger;
  stderr: Writable;
}

export async function runStart(opts: StartCommandOptions): Promise<number> {
  let config: Config;
  let proxy: RunningProxy;
  try {
    config = loadConfig(opts.config);
    if (opts.initCerts) ensureDevCerts(config, opts.stderr);
    proxy = await startProxy(config, { configFile: opts.config, logger: opts.logger });
  } catch (err) {
    opts.stderr.write(`aigate: ${err instanceof ConfigError ? err.message : `${opts.config}: ${(err as Error).message}`}\n`);
    return 1;
  }
  const { addresses } = proxy;
  opts.logger.info(
    {
      gateway: addresses.gateway && `https://${fmt(addresses.gateway)}`,
      forward: addresses.forward && `http://${fmt(addresses.forward)}`,
      admin: addresses.admin && `http://${fmt(addresses.admin)}`,
      routes: config.routes.map((r) => `${r.prefix} -> ${r.upstream}`),
      rateLimitStore: config.rateLimit.enabled ? config.rateLimit.store : 'off',
      audit: [config.audit.file && resolve(config.audit.file), config.audit.stdout && 'stdout'].filter(Boolean),
    },
    'aigate started',
  );

  return new Promise<number>((done) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      opts.logger.info({ signal, graceMs: config.timeouts.drain }, 'draining: no new connections, waiting for open requests and streams');
      const { forced } = await proxy.drain();
      if (forced > 0) opts.logger.warn({ forced }, 'drain grace period over; closed the remaining connections');
      opts.logger.info('aigate stopped');
      done(0);
    };
    process.once('SIGTERM', () => void stop('SIGTERM'));
    process.once('SIGINT', () => void stop('SIGINT'));
    process.on('SIGHUP', () => {
      proxy.reopenAudit();
      opts.logger.info('audit log reopened (SIGHUP)');
    });
  });
}

function fmt(a: { address: string; port: number }): string {
  return a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

/** Dev convenience: a fresh clone has no certificates, so make them and say how to trust them. */
function ensureDevCerts(config: Config, stderr: Writable): void {
  const needed = [config.tls.cert, config.tls.key, config.tls.ca.cert, config.tls.ca.key];
  if (needed.every((f) => existsSync(f))) return;
  const dir = resolve(config.tls.cert, '..');
  const result = initCerts({ dir });
  const ca = resolve(dir, 'ca.crt');
  stderr.write(
    [
      `aigate: created development certificates in ${dir}: ${result.created.join(', ')}`,
      `  Trust the development CA in your clients:`,
      `    Node-based tools (Claude Code, Copilot CLI): export NODE_EXTRA_CA_CERTS=${ca}`,
      `    curl: curl --cacert ${ca} https://localhost:${config.listen.gateway?.port ?? 8443}/...`,
      `    VS Code / Cursor: add the CA to the OS trust store (or, for a quick local trial only, "http.proxyStrictSSL": false)`,
      '',
    ].join('\n'),
  );
}

// Multi-process mode (`aigate start --workers N`) for multi-core hosts. One Node process runs one
// event loop on one core; node:cluster forks N workers that each run the whole proxy on the same
// listening sockets (the primary hands accepted connections out round-robin). The primary runs no
// traffic: it owns the admin listener (/healthz, /readyz once every worker is up, /metrics summed
// over the workers), forwards SIGTERM/SIGINT (each worker drains) and SIGHUP / POST /reload (each
// reopens its audit log and reloads the configuration; the answer waits for all of them), and
// replaces a worker that dies. Audit lines from all workers go to the one file:
// each line is one append-mode write, so lines never interleave.
// Per-process state stays per process: with `rateLimit.store: memory` every worker has its own
// buckets (a client gets up to N × burst), so use `store: redis` with more than one worker.
import cluster, { type Worker } from 'node:cluster';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AggregatorRegistry, type PrometheusContentType, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { AuditRecord } from '../audit/log.js';
import { createDashboard } from '../dashboard/routes.js';
import { createAdminServer } from './admin.js';
import { liveAdminAuth, loadAdminAuth, retireAdminAuth, type AdminAuth } from './admin-auth.js';
import { formatAddress, listen } from './listen.js';
import { DRAINING, loadForReload, oneAtATime, refusedBy, type ReloadOutcome } from './reload.js';

const READY = 'aigate:worker-ready';
const AUDIT = 'aigate:worker-audit';
const RECORDS = 'aigate:worker-records';
const RELOAD = 'aigate:reload';
const RELOADED = 'aigate:reloaded';
/** A worker that has not answered a reload in this long is reported as not reloaded. */
const RELOAD_ANSWER_MS = 60_000;
/** A worker sends the audit records it wrote to the primary's dashboard this often, or at this many. */
const RECORDS_EVERY_MS = 100;
const RECORDS_BATCH = 500;
/** More unexpected worker exits than this within RESTART_WINDOW_MS: stop instead of looping. */
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 60_000;

type Addresses = { gateway?: AddressInfo; forward?: AddressInfo; admin?: AddressInfo };

export function isWorker(): boolean {
  return cluster.isWorker;
}

/** A worker's config: the admin listener belongs to the primary. */
export function workerConfig(config: Config): Config {
  const { admin: _admin, ...listen } = config.listen;
  return { ...config, listen };
}

/**
 * In a worker whose proxy has drained (or failed to start): close the IPC channel, which is what
 * keeps a worker alive (its listeners are the primary's), so the process exits with its status.
 */
export function leaveCluster(): void {
  // worker.disconnect(), not process.disconnect(): the latter makes node:cluster exit(0) at once,
  // losing the exit status (and unflushed logs).
  if (cluster.isWorker && process.connected) cluster.worker?.disconnect();
}

/**
 * In a worker, once its listeners are up: answer the primary's metric requests from this
 * worker's registry and report the addresses.
 */
export function announceWorker(registry: Registry, addresses: Addresses): void {
  // Constructing one in a worker is what makes prom-client answer the primary's requests.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([registry]);
  process.send?.({ type: READY, addresses });
}

/**
 * In a worker, when the primary serves the dashboard: every audit record this worker writes goes
 * to the primary (batched: one IPC message per RECORDS_EVERY_MS, not one per request), which feeds
 * them to the one dashboard, so it shows the traffic of every worker.
 */
export function shareAuditRecords(audit: { onRecord(listener: (r: AuditRecord) => void): () => void }): void {
  if (!cluster.isWorker || process.env['AIGATE_SHARE_RECORDS'] !== '1') return;
  let batch: AuditRecord[] = [];
  let timer: NodeJS.Timeout | undefined;
  const send = () => {
    clearTimeout(timer);
    timer = undefined;
    const records = batch;
    batch = [];
    // A primary that is gone (or a full channel) loses dashboard rows, never traffic.
    if (records.length > 0 && process.connected) process.send?.({ type: RECORDS, records }, undefined, undefined, () => {});
  };
  audit.onRecord((r) => {
    batch.push(r);
    if (batch.length >= RECORDS_BATCH) send();
    else if (timer === undefined) {
      timer = setTimeout(send, RECORDS_EVERY_MS);
      timer.unref();
    }
  });
  process.once('disconnect', () => clearTimeout(timer));
}

/** In a worker: reloads when the primary asks (SIGHUP or POST /reload on the primary) and answers with the outcome. */
export function answerReloads(reload: () => Promise<ReloadOutcome>): void {
  if (!cluster.isWorker) return;
  process.on('message', (msg: { type?: string; id?: number }) => {
    if (msg?.type !== RELOAD) return;
    void reload().then((outcome) => {
      if (process.connected) process.send?.({ type: RELOADED, id: msg.id, outcome }, undefined, undefined, () => {});
    });
  });
}

/** In a worker: tells the primary whether it refuses traffic for a failing audit log (the primary's /readyz). */
export function reportAuditState(refusing: boolean): void {
  if (cluster.isWorker) process.send?.({ type: AUDIT, refusing });
}

export interface PrimaryOptions {
  config: Config;
  /** For messages about files the config names. */
  configFile: string;
  workers: number;
  logger: Logger;
  /** start.ts's signal plumbing: called with the function that stops the cluster. */
  whenStopRequested: (stop: (signal: string) => void) => void;
  onReopen: (reopen: () => void) => void;
}

/** Runs the primary until a stop signal has drained every worker; resolves the exit status. */
export async function runPrimary(opts: PrimaryOptions): Promise<number> {
  const { config, logger } = opts;
  const n = opts.workers;
  if (config.rateLimit.enabled && config.rateLimit.store === 'memory') {
    logger.warn(
      { workers: n },
      'rateLimit.store is memory: each worker keeps its own buckets, so a client may get up to workers × burst; use store: redis to share them',
    );
  }
  const aggregator = new AggregatorRegistry<PrometheusContentType>();
  const ready = new Set<Worker>();
  /** Workers refusing traffic because their audit log fails (audit.onWriteError: deny). */
  const refusing = new Set<Worker>();
  cluster.on('message', (worker, msg: { type?: string; refusing?: boolean }) => {
    if (msg?.type !== AUDIT) return;
    if (msg.refusing) refusing.add(worker);
    else refusing.delete(worker);
  });
  const restarts: number[] = [];
  /** The configuration the workers run (a reload replaces it once every worker applied it). */
  let running = config;
  let reloadId = 0;
  const reload = oneAtATime(reloadAndLog);
  let addresses: Addresses = {};
  let started = false;
  let stopping = false;
  let admin: Server | undefined;
  let adminAuth: AdminAuth | undefined = config.listen.admin?.auth ? loadAdminAuth(config.listen.admin.auth, opts.configFile) : undefined;
  let finished!: (code: number) => void;
  const stopped = new Promise<number>((resolve) => (finished = resolve));
  const liveWorkers = () => Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);

  const stop = (reason: string, code = 0) => {
    if (stopping) return;
    stopping = true;
    startupStopped?.();
    const live = liveWorkers();
    logger.info({ signal: reason, workers: live.length }, 'draining: stopping every worker');
    // Each worker drains within timeouts.drain; one still there well after that is killed.
    const killer = setTimeout(() => {
      for (const w of live) if (!w.isDead()) w.process.kill('SIGKILL');
    }, config.timeouts.drain + 10_000);
    killer.unref();
    let left = live.length;
    const exited = () => {
      if (--left > 0) return;
      clearTimeout(killer);
      dashboard?.close(); // open event streams end, or the admin server would wait on them
      admin?.close();
      void adminAuth?.close();
      if (started) logger.info('aigate stopped');
      finished(code);
    };
    if (left === 0) return exited();
    for (const w of live) {
      if (w.isDead()) exited();
      else {
        w.once('exit', exited);
        w.process.kill('SIGTERM');
      }
    }
  };

  let startupFailed: ((err: Error) => void) | undefined;
  let startupStopped: (() => void) | undefined;
  const allUp = new Promise<void>((resolve, reject) => {
    startupFailed = reject;
    startupStopped = resolve;
    cluster.on('message', (worker, msg: { type?: string; addresses?: Addresses }) => {
      if (msg?.type !== READY) return;
      ready.add(worker);
      addresses = msg.addresses ?? addresses;
      if (ready.size === n) resolve();
    });
  });

  // The dashboard lives here, fed with every worker's audit records.
  const workerRecords = new Set<(r: AuditRecord) => void>();
  const dashboard = config.listen.admin ? createDashboard({ audit: { onRecord: (l) => (workerRecords.add(l), () => workerRecords.delete(l)) }, config }) : undefined;
  cluster.on('message', (_worker, msg: { type?: string; records?: AuditRecord[] }) => {
    if (msg?.type !== RECORDS || !Array.isArray(msg.records)) return;
    for (const r of msg.records) for (const l of workerRecords) l(r);
  });

  const fork = () => {
    const worker = cluster.fork({ AIGATE_WORKER: '1', AIGATE_SHARE_RECORDS: dashboard ? '1' : '' });
    // IPC to a worker that just died (EPIPE): its exit is handled below; nothing else to do.
    worker.on('error', (err: NodeJS.ErrnoException) => {
      if (!stopping) logger.debug({ pid: worker.process.pid, code: err.code }, 'IPC to a worker failed');
    });
    return worker;
  };
  cluster.on('exit', (worker, code, signal) => {
    ready.delete(worker);
    refusing.delete(worker);
    if (stopping) return;
    if (!started) {
      // A worker that cannot start (its own message is on stderr) would not start on a retry.
      startupFailed?.(new Error(`a worker exited during start-up (${signal ?? `exit ${code}`})`));
      return;
    }
    const now = Date.now();
    restarts.push(now);
    while (restarts.length > 0 && restarts[0]! < now - RESTART_WINDOW_MS) restarts.shift();
    if (restarts.length > MAX_RESTARTS) {
      logger.error({ restarts: restarts.length, windowMs: RESTART_WINDOW_MS }, 'workers keep dying; stopping aigate');
      stop('worker-crash-loop', 1);
      return;
    }
    logger.error({ pid: worker.process.pid, code, signal }, 'worker exited unexpectedly; starting a new one');
    setTimeout(() => !stopping && fork(), 1000).unref();
  });
  opts.whenStopRequested((signal) => stop(signal));

  for (let i = 0; i < n; i++) fork();
  try {
    await allUp;
    if (config.listen.admin) {
      admin = createAdminServer(
        { contentType: aggregator.contentType, metrics: () => aggregator.clusterMetrics() },
        { ready: () => ready.size === n && !stopping && refusing.size === 0 },
        dashboard?.routes ?? [],
        undefined,
        adminAuth && liveAdminAuth(() => adminAuth!),
        { reload: () => reload() },
      );
      await listen(admin, config.listen.admin.host, config.listen.admin.port).catch((err: Error) => {
        throw new Error(`listen.admin: ${err.message}`); // start prefixes the config file
      });
      addresses = { ...addresses, admin: admin.address() as AddressInfo };
    }
  } catch (err) {
    stop('start-up failed', 1);
    await stopped;
    throw err;
  }
  if (stopping) return stopped; // a stop signal arrived while starting
  started = true;
  logger.info(
    {
      gateway: addresses.gateway && `https://${formatAddress(addresses.gateway)}`,
      forward: addresses.forward && `http://${formatAddress(addresses.forward)}`,
      admin: addresses.admin && `http://${formatAddress(addresses.admin)}`,
      workers: n,
      routes: config.routes.map((r) => `${r.prefix} -> ${r.upstream}`),
      rateLimitStore: config.rateLimit.enabled ? config.rateLimit.store : 'off',
    },
    'aigate started',
  );
  opts.onReopen(() => void reload());
  return stopped;

  /** Checks the file here, then has every worker reload; applied only when all of them applied it. */
  async function reloadCluster(): Promise<ReloadOutcome> {
    if (stopping) return DRAINING;
    let nextAdminAuth: AdminAuth | undefined;
    let next: Config;
    try {
      next = loadForReload(opts.configFile, running);
      nextAdminAuth = next.listen.admin?.auth ? loadAdminAuth(next.listen.admin.auth, opts.configFile) : undefined;
    } catch (err) {
      return refusedBy(opts.configFile, err);
    }
    const outcomes = await askWorkers(++reloadId);
    const refused = outcomes.find((o) => !o.applied);
    if (refused) {
      void nextAdminAuth?.close();
      return refused;
    }
    running = next;
    if (adminAuth && nextAdminAuth) {
      retireAdminAuth(adminAuth);
      adminAuth = nextAdminAuth;
    }
    return outcomes[0] ?? { applied: true, changed: [] };
  }

  async function reloadAndLog(): Promise<ReloadOutcome> {
    const result = await reloadCluster();
    if (result.applied) logger.info({ config: opts.configFile, changed: result.changed, workers: liveWorkers().length }, 'configuration reloaded in every worker');
    else logger.warn({ config: opts.configFile, reason: result.reason }, 'configuration reload refused; the running configuration is kept');
    return result;
  }

  /** Sends a reload to every live worker; resolves each one's outcome (a silent or dead one as refused). */
  function askWorkers(id: number): Promise<ReloadOutcome[]> {
    return Promise.all(
      liveWorkers().map(
        (w) =>
          new Promise<ReloadOutcome>((resolve) => {
            const pid = w.process.pid;
            const done = (outcome: ReloadOutcome) => {
              clearTimeout(timer);
              w.off('message', onMessage);
              w.off('exit', onExit);
              resolve(outcome);
            };
            const onMessage = (msg: { type?: string; id?: number; outcome?: ReloadOutcome }) => {
              if (msg?.type === RELOADED && msg.id === id && msg.outcome) done(msg.outcome);
            };
            const onExit = () => done({ applied: false, reason: `worker ${pid} exited before it reloaded` });
            const timer = setTimeout(() => done({ applied: false, reason: `worker ${pid} did not answer the reload within ${RELOAD_ANSWER_MS / 1000} s` }), RELOAD_ANSWER_MS);
            timer.unref();
            w.on('message', onMessage);
            w.once('exit', onExit);
            w.send({ type: RELOAD, id }, undefined, () => {});
          }),
      ),
    );
  }
}

// Out of file descriptors, a listener fails silently: libuv keeps one descriptor in reserve, and on
// EMFILE at accept() it closes the reserve, accepts and at once closes every pending connection,
// then takes the reserve back — no callback, no 'error', no 'drop' (measured on Node 20 under
// `ulimit -n 64`: 100 connections, 44 accepted, 56 closed by libuv, not one event). Clients and
// /healthz just see connections reset. So the process checks for itself: once a second it opens
// one descriptor, which fails with EMFILE/ENFILE exactly while new connections are being dropped.
// Only when the reserve cannot be taken back does Node report the failure ('error' on the server,
// syscall accept), which would crash a server without an 'error' listener: watchAcceptErrors.
import { closeSync, openSync, readFileSync } from 'node:fs';
import type { Server } from 'node:net';
import type { Logger } from 'pino';
import { throttledReport } from '../log-throttle.js';
import type { Metrics } from '../metrics.js';

const CHECK_EVERY_MS = 1000;
/** While the shortage lasts, it is logged again this often (with what was counted meanwhile). */
const LOG_EVERY_MS = 60_000;

export interface FdWatch {
  stop(): void;
}

export function watchFileDescriptors(deps: { metrics: Metrics; logger: Logger; openConnections: () => number }): FdWatch {
  let since: number | undefined;
  let lastLogged = 0;
  let checks = 0;
  const timer = setInterval(() => {
    let code: string | undefined;
    try {
      closeSync(openSync('/dev/null', 'r'));
    } catch (err) {
      code = (err as NodeJS.ErrnoException).code;
    }
    const now = Date.now();
    if (code === 'EMFILE' || code === 'ENFILE') {
      deps.metrics.fdExhausted.inc();
      checks++;
      since ??= now;
      if (now - lastLogged >= LOG_EVERY_MS) {
        lastLogged = now;
        deps.logger.error(
          { code, limit: FILE_LIMIT, openConnections: deps.openConnections(), secondsAtLimit: checks },
          'file-descriptor limit reached: new connections (admin and /healthz included) are dropped until some close; raise the limit (ulimit -n, the container\'s nofile) or lower limits.connectionsPerClient',
        );
      }
    } else if (since !== undefined) {
      deps.logger.warn({ secondsAtLimit: checks, forMs: now - since }, 'file descriptors available again');
      since = undefined;
      lastLogged = 0;
      checks = 0;
    }
  }, CHECK_EVERY_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/**
 * Keeps a failed accept() from crashing the process (a net.Server without an 'error' listener
 * throws it) and makes it visible: counted per listener and code, logged at most once a minute
 * per listener.
 */
export function watchAcceptErrors(server: Server, listener: string, deps: { metrics: Metrics; logger: Logger }): void {
  const log = throttledReport(LOG_EVERY_MS, (count, code: string, syscall: string | undefined) =>
    deps.logger.error({ listener, code, syscall, count }, 'listener could not accept a connection'),
  );
  server.on('error', (err: NodeJS.ErrnoException) => {
    const code = err.code ?? 'unknown';
    deps.metrics.acceptErrors.inc({ listener, code });
    log(code, err.syscall);
  });
}

/**
 * The soft RLIMIT_NOFILE (Linux; null elsewhere), for the log line. Read once up front: once the
 * descriptors are gone, reading /proc would fail too.
 */
const FILE_LIMIT: number | null = (() => {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m && m[1] !== 'unlimited' ? Number(m[1]) : null;
  } catch {
    return null;
  }
})();

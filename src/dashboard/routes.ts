// The dashboard's admin routes: `GET /` (the page), `GET /api/dashboard` (a JSON snapshot) and
// `GET /api/dashboard/events` (Server-Sent Events: a snapshot every second, and at once when a
// request is blocked, denied, rate limited or fails). Streams are bounded in number, skip a beat
// rather than buffer for a slow viewer, and are ended by `close()` so a drain never waits on them.
import type { ServerResponse } from 'node:http';
import type { AuditRecord } from '../audit/log.js';
import type { Config } from '../config/schema.js';
import { PAGE_CSP, PAGE_HTML, SECURITY_HEADERS } from './page.js';
import { DashboardStats, type DashboardSnapshot, type DashboardStatsOptions, type RateLimitHealth } from './stats.js';

/** The admin server's extra-route shape (server/admin.ts), restated so nothing here imports server/. */
export type AdminRoute = (res: ServerResponse, url: URL) => boolean | Promise<boolean>;

export interface DashboardOptions {
  audit: { onRecord(listener: (r: AuditRecord) => void): () => void };
  limiter?: { status(): RateLimitHealth } | undefined;
  /** Gateway routes are listed under health from the start when the gateway listens. */
  config?: Pick<Config, 'routes' | 'listen'>;
  /** Snapshot period of a stream. */
  intervalMs?: number;
  /** Least time between two pushes to one stream, so a flood of blocks is not a flood of snapshots. */
  minPushGapMs?: number;
  maxStreams?: number;
  stats?: Omit<DashboardStatsOptions, 'rateLimit' | 'upstreams'>;
}

export interface Dashboard {
  readonly stats: DashboardStats;
  /** For `createAdminServer(…, extra)`. */
  readonly routes: AdminRoute[];
  readonly openStreams: number;
  /** Ends every open event stream and stops listening to the audit log. */
  close(): void;
}

const PAGE = Buffer.from(PAGE_HTML, 'utf8');

export function createDashboard(opts: DashboardOptions): Dashboard {
  const intervalMs = opts.intervalMs ?? 1000;
  const minPushGapMs = opts.minPushGapMs ?? 200;
  const maxStreams = opts.maxStreams ?? 32;
  const gatewayRoutes = opts.config?.listen.gateway ? opts.config.routes : [];
  const stats = new DashboardStats({
    ...opts.stats,
    rateLimit: opts.limiter ? () => opts.limiter?.status() : undefined,
    upstreams: gatewayRoutes.map((r) => ({ name: r.name, mode: 'gateway' as const, target: r.upstream })),
  });
  const unsubscribe = opts.audit.onRecord((r) => stats.record(r));
  const streams = new Set<() => void>();
  let closed = false;

  // One serialisation per snapshot, however many viewers.
  let lastSnapshot: DashboardSnapshot | undefined;
  let lastJson = '';
  const snapshotJson = () => {
    const s = stats.snapshot();
    if (s !== lastSnapshot) {
      lastSnapshot = s;
      lastJson = JSON.stringify(s);
    }
    return lastJson;
  };

  const isHead = (res: ServerResponse) => res.req?.method === 'HEAD';

  function openStream(res: ServerResponse): void {
    if (closed || streams.size >= maxStreams) {
      res
        .writeHead(503, { 'content-type': 'text/plain', 'retry-after': '5', ...SECURITY_HEADERS })
        .end(closed ? 'shutting down\n' : `too many dashboard streams (limit ${maxStreams}); use /api/dashboard\n`);
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      connection: 'keep-alive',
      // Tells nginx-style proxies in front of the admin port not to buffer the stream.
      'x-accel-buffering': 'no',
      ...SECURITY_HEADERS,
    });
    if (isHead(res)) {
      res.end();
      return;
    }
    let congested = false;
    let lastPush = 0;
    let pending: NodeJS.Timeout | undefined;
    const push = () => {
      // A viewer that does not read is skipped rather than buffered for: the next snapshot
      // supersedes this one anyway.
      if (congested || res.writableEnded || res.destroyed) return;
      lastPush = Date.now();
      if (!res.write(`data: ${snapshotJson()}\n\n`)) congested = true;
    };
    const onDrain = () => {
      congested = false;
    };
    const timer = setInterval(push, intervalMs);
    timer.unref();
    // Audit listeners run inside the request that is being refused: the push is scheduled,
    // never done on that request's path.
    const stopAttempts = stats.onAttempt(() => {
      if (pending) return;
      pending = setTimeout(
        () => {
          pending = undefined;
          push();
        },
        Math.max(0, lastPush + minPushGapMs - Date.now()),
      );
      pending.unref();
    });
    const cleanup = () => {
      if (!streams.delete(end)) return;
      clearInterval(timer);
      if (pending) clearTimeout(pending);
      stopAttempts();
      res.off('drain', onDrain);
    };
    const end = () => {
      cleanup();
      if (!res.writableEnded) res.end();
    };
    streams.add(end);
    res.on('drain', onDrain);
    res.once('close', cleanup);
    res.write('retry: 2000\n\n');
    push();
  }

  const route: AdminRoute = (res, url) => {
    switch (url.pathname) {
      case '/':
        res.writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'content-length': String(PAGE.length),
          'content-security-policy': PAGE_CSP,
          ...SECURITY_HEADERS,
        });
        res.end(isHead(res) ? undefined : PAGE);
        return true;
      case '/api/dashboard': {
        const body = Buffer.from(snapshotJson(), 'utf8');
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length), ...SECURITY_HEADERS });
        res.end(isHead(res) ? undefined : body);
        return true;
      }
      case '/api/dashboard/events':
        openStream(res);
        return true;
      default:
        return false;
    }
  };

  return {
    stats,
    routes: [route],
    get openStreams() {
      return streams.size;
    },
    close() {
      closed = true;
      unsubscribe();
      for (const end of [...streams]) end();
    },
  };
}

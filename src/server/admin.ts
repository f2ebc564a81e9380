// The admin listener (SPEC §9): plain HTTP, meant for 127.0.0.1 or a cluster-internal port.
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AdminAuth } from './admin-auth.js';
import type { ReloadOutcome } from './reload.js';
/** Where /metrics comes from: one process's registry, or the cluster primary's aggregate. */
export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

export interface AdminState {
  /** True once every listener is up and until draining starts. */
  ready(): boolean;
}

/** What the admin listener may be asked to do (POST), behind its authentication when configured. */
export interface AdminActions {
  /** POST /reload: what SIGHUP does (`aigate reload`). */
  reload?: () => Promise<ReloadOutcome>;
}

export interface AdminRoute {
  (res: ServerResponse, url: URL): boolean | Promise<boolean>;
}

export function createAdminServer(
  metrics: MetricsSource,
  state: AdminState,
  extra: AdminRoute[] = [],
  notFound = 'not found: try /healthz, /readyz, /metrics\n',
  /** listen.admin.auth: every path but the probes (and /metrics when configured open) needs credentials. */
  auth?: AdminAuth,
  actions: AdminActions = {},
): Server {
  return createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const action = req.method === 'POST' && url.pathname === '/reload' ? actions.reload : undefined;
    const actionPath = actions.reload !== undefined && url.pathname === '/reload';
    if ((req.method !== 'GET' && req.method !== 'HEAD' && !action) || (actionPath && !action)) {
      const allow = actionPath ? 'POST' : 'GET, HEAD';
      res.writeHead(405, { allow, 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (auth && !auth.isOpen(url.pathname) && !(await auth.check(req).catch(() => false))) {
      res.writeHead(401, { 'www-authenticate': auth.challenge, 'content-type': 'text/plain', 'cache-control': 'no-store' }).end('authentication required (listen.admin.auth)\n');
      return;
    }
    try {
      if (action) {
        req.resume(); // a body, if any, means nothing
        const outcome = await action();
        // 422: the request was fine, the configuration it asked to load was not (kept the running one).
        res.writeHead(outcome.applied ? 200 : 422, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(`${JSON.stringify(outcome)}\n`);
        return;
      }
      switch (url.pathname) {
        case '/healthz':
          res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
          return;
        case '/readyz': {
          const ok = state.ready();
          res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ready\n' : 'not ready\n');
          return;
        }
        case '/metrics': {
          const body = await metrics.metrics();
          res.writeHead(200, { 'content-type': metrics.contentType }).end(body);
          return;
        }
      }
      for (const route of extra) if (await route(res, url)) return;
      res.writeHead(404, { 'content-type': 'text/plain' }).end(notFound);
    } catch (err) {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`error: ${(err as Error).message}\n`);
    }
  });
}

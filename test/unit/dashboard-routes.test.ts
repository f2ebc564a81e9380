// The dashboard routes on a real admin server: headers of the page and the JSON, the SSE stream
// (a snapshot at once, every interval, and promptly on a block), listener and timer clean-up when
// a viewer leaves, the stream cap, and close() ending open streams so a drain never waits on them.
import type { AddressInfo } from 'node:net';
import { request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/audit/log.js';
import { createDashboard, type Dashboard } from '../../src/dashboard/routes.js';
import type { DashboardSnapshot } from '../../src/dashboard/stats.js';
import { Metrics } from '../../src/metrics.js';
import { createAdminServer } from '../../src/server/admin.js';

class FakeAudit {
  readonly listeners = new Set<(r: AuditRecord) => void>();
  onRecord(l: (r: AuditRecord) => void) {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  write(r: AuditRecord) {
    for (const l of this.listeners) l(r);
  }
}

const blocked = (): AuditRecord => ({
  time: new Date().toISOString(),
  event: 'request',
  id: 'x',
  mode: 'gateway',
  client: { ip: '10.0.0.1', user: null },
  route: 'copilot',
  method: 'POST',
  host: 'localhost',
  path: '/copilot/x',
  status: 403,
  decision: 'block',
  reason: 'sensitive_content',
  bytesIn: 1,
  bytesOut: 1,
  durationMs: 1,
  findings: [{ rule: 'generic-password', line: 1, action: 'block', fingerprint: 'fp-NOT-SHOWN' }],
});

let server: Server | undefined;
let dashboard: Dashboard | undefined;
afterEach(async () => {
  dashboard?.close();
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r) ?? r(undefined));
  server = undefined;
  dashboard = undefined;
});

async function start(opts: { intervalMs?: number; maxStreams?: number } = {}) {
  const audit = new FakeAudit();
  dashboard = createDashboard({
    audit,
    limiter: { status: () => ({ store: 'redis', healthy: false }) },
    config: { listen: { gateway: { host: '127.0.0.1', port: 0 } }, routes: [{ name: 'copilot', prefix: '/copilot/', upstream: 'https://api.githubcopilot.com' }] } as never,
    ...opts,
  });
  server = createAdminServer(new Metrics({ processMetrics: false }).registry, { ready: () => true }, dashboard.routes);
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return { audit, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

function get(url: string, method = 'GET'): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => httpRequest(url, { method }, resolve).on('error', reject).end());
}
const text = (res: IncomingMessage) =>
  new Promise<string>((resolve) => {
    let s = '';
    res.setEncoding('utf8').on('data', (c: string) => (s += c)).on('end', () => resolve(s));
  });

/** Reads SSE `data:` events from a response as they arrive. */
function events(res: IncomingMessage) {
  const queue: DashboardSnapshot[] = [];
  const waiting: Array<() => void> = [];
  let buf = '';
  let ended = false;
  res.setEncoding('utf8');
  res.on('data', (c: string) => {
    buf += c;
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = block.split('\n').find((l) => l.startsWith('data: '));
      if (data) queue.push(JSON.parse(data.slice(6)) as DashboardSnapshot);
      waiting.splice(0).forEach((w) => w());
    }
  });
  res.on('end', () => {
    ended = true;
    waiting.splice(0).forEach((w) => w());
  });
  return {
    get ended() {
      return ended;
    },
    async next(timeoutMs = 3000): Promise<DashboardSnapshot> {
      const deadline = Date.now() + timeoutMs;
      while (queue.length === 0) {
        if (ended) throw new Error('stream ended');
        if (Date.now() > deadline) throw new Error('no event in time');
        await new Promise<void>((r) => {
          waiting.push(r);
          setTimeout(r, 50);
        });
      }
      return queue.shift()!;
    },
    async end(timeoutMs = 2000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (!ended && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      if (!ended) throw new Error('stream did not end');
    },
  };
}

describe('dashboard routes', () => {
  it('serves the page with CSP, nosniff and no caching; HEAD without a body', async () => {
    const { base } = await start();
    const res = await get(`${base}/`);
    const html = await text(res);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-security-policy']).toMatch(/^default-src 'none'; script-src 'sha256-/);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(html).toContain('<title>aigate · dashboard</title>');
    expect(Number(res.headers['content-length'])).toBe(Buffer.byteLength(html));
    const head = await get(`${base}/`, 'HEAD');
    expect(head.statusCode).toBe(200);
    expect(await text(head)).toBe('');
    // The admin server's own routes are untouched.
    expect((await get(`${base}/healthz`)).statusCode).toBe(200);
    expect((await get(`${base}/nothing`)).statusCode).toBe(404);
  });

  it('answers a JSON snapshot with health and no fingerprints', async () => {
    const { base, audit } = await start();
    audit.write(blocked());
    const res = await get(`${base}/api/dashboard`);
    const body = await text(res);
    expect(res.headers['content-type']).toBe('application/json');
    const s = JSON.parse(body) as DashboardSnapshot;
    expect(s.recent[0]).toMatchObject({ decision: 'block', rules: ['generic-password'] });
    expect(s.health.rateLimit).toEqual({ store: 'redis', healthy: false });
    expect(s.health.upstreams).toEqual([expect.objectContaining({ name: 'copilot', target: 'https://api.githubcopilot.com', state: 'unknown' })]);
    expect(body).not.toContain('fp-NOT-SHOWN');
  });

  it('streams a snapshot at once, every interval, and promptly on a block', async () => {
    const { base, audit } = await start({ intervalMs: 60_000 });
    const res = await get(`${base}/api/dashboard/events`);
    expect(res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    const ev = events(res);
    expect((await ev.next()).recent).toEqual([]);
    expect(dashboard!.openStreams).toBe(1);
    // With a one-minute interval, only the block itself can cause the next event.
    audit.write(blocked());
    const s = await ev.next(1000);
    expect(s.recent).toHaveLength(1);
    res.destroy();
  });

  it('pushes on the interval', async () => {
    const { base } = await start({ intervalMs: 100 });
    const res = await get(`${base}/api/dashboard/events`);
    const ev = events(res);
    await ev.next();
    await ev.next(1000);
    await ev.next(1000);
    res.destroy();
  });

  it('cleans up listeners and timers when a viewer leaves', async () => {
    const { base, audit } = await start({ intervalMs: 50 });
    const res = await get(`${base}/api/dashboard/events`);
    await events(res).next();
    const stats = dashboard!.stats as unknown as { attemptListeners: Set<unknown> };
    expect(stats.attemptListeners.size).toBe(1);
    res.destroy();
    const deadline = Date.now() + 2000;
    while (dashboard!.openStreams > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(dashboard!.openStreams).toBe(0);
    expect(stats.attemptListeners.size).toBe(0);
    audit.write(blocked()); // nothing left to push to, nothing throws
  });

  it('refuses streams beyond the cap with 503', async () => {
    const { base } = await start({ maxStreams: 1 });
    const first = await get(`${base}/api/dashboard/events`);
    await events(first).next();
    const second = await get(`${base}/api/dashboard/events`);
    expect(second.statusCode).toBe(503);
    expect(await text(second)).toMatch(/too many dashboard streams/);
    first.destroy();
  });

  it('close() ends open streams cleanly, stops listening and refuses new ones', async () => {
    const { base, audit } = await start();
    const a = events(await get(`${base}/api/dashboard/events`));
    const b = events(await get(`${base}/api/dashboard/events`));
    await a.next();
    await b.next();
    dashboard!.close();
    await a.end();
    await b.end();
    expect(dashboard!.openStreams).toBe(0);
    expect(audit.listeners.size).toBe(0);
    // With no stream left open, the admin server closes without forcing anything.
    const closed = new Promise((r) => server!.close(r));
    server!.closeIdleConnections();
    await closed;
    server = undefined;
  });
});

// Rate limiting through the gateway: 429 bodies and headers, audit, two real aigate processes
// sharing one Redis bucket, and Redis dying under load.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli } from '../support/cli.js';
import { baseRawConfig, startTestProxy, startVendors, testPki, type TestProxy } from '../support/proxy.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import type { FakeVendors } from '../support/vendors.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';

let vendors: FakeVendors;
let redis: RedisServer;

beforeAll(async () => {
  vendors = await startVendors();
  redis = await startRedis();
});
afterAll(async () => {
  await vendors?.close();
  await redis?.stop();
});

async function hit(gw: { gatewayUrl: string; client: Agent }, path = '/copilot/echo') {
  const res = await request(`${gw.gatewayUrl}${path}`, { dispatcher: gw.client });
  const body = await res.body.text();
  return { status: res.statusCode, headers: res.headers, body };
}

describe('memory store through the gateway', () => {
  let gw: TestProxy;
  beforeAll(async () => {
    // rate 0.001/s: refill during the test is negligible, so counts are exact.
    gw = await startTestProxy(vendors, (raw) => {
      raw['rateLimit'] = { store: 'memory', rate: 0.001, burst: 5 };
      (raw['routes'] as Array<Record<string, unknown>>)[1]!['rateLimit'] = { rate: 0.001, burst: 2 };
    });
  });
  afterAll(() => gw?.stop());

  it('passes exactly burst simultaneous requests, then 429 with Retry-After and the SPEC body', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, () => hit(gw)));
    const passed = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status === 429);
    expect(passed).toHaveLength(5);
    expect(refused).toHaveLength(3);
    for (const r of passed) {
      expect(r.headers['ratelimit-limit']).toBe('5');
      expect(Number(r.headers['ratelimit-remaining'])).toBeLessThan(5);
    }
    const r = refused[0]!;
    expect(r.headers['ratelimit-remaining']).toBe('0');
    expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number.isInteger(Number(r.headers['retry-after']))).toBe(true);
    expect(Number(r.headers['ratelimit-reset'])).toBeGreaterThanOrEqual(1);
    expect(r.headers['content-type']).toBe('application/json');
    expect(JSON.parse(r.body)).toMatchObject({ type: 'error', error: { type: 'rate_limited', code: 'rate_limited' } });
    const record = await gw.auditWhere((a) => a.id === r.headers['x-aigate-request-id']);
    expect(record).toMatchObject({ status: 429, decision: 'rate_limited', reason: 'rate_limited', route: 'copilot' });
  });

  it('a route with its own rate/burst has its own bucket', async () => {
    const results = await Promise.all(Array.from({ length: 4 }, () => hit(gw, '/cursor/echo')));
    expect(results.filter((r) => r.status === 200)).toHaveLength(2);
    expect(results[0]!.headers['ratelimit-limit']).toBe('2');
  });
});

describe('redis store shared by two aigate processes', () => {
  it('30 simultaneous requests split across both processes: exactly 20 pass', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aigate-rl-'));
    const prefix = `shared-${Date.now()}:`;
    const starts = [0, 1].map((i) => {
      const raw = baseRawConfig(vendors, dir);
      raw['rateLimit'] = { store: 'redis', redis: { url: redis.url, prefix }, rate: 0.001, burst: 20 };
      raw['audit'] = { file: join(dir, `audit-${i}.log`) };
      const file = join(dir, `aigate-${i}.yaml`);
      writeFileSync(file, JSON.stringify(raw));
      return spawnCli(['start', '--config', file]);
    });
    try {
      const started = await Promise.all(starts.map((s) => s.logLine('aigate started')));
      const client = new Agent({ connect: { ca: testPki().proxyCa.certPem } });
      const urls = started.map((l) => (l['gateway'] as string).replace('127.0.0.1', 'localhost'));
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) => hit({ gatewayUrl: urls[i % 2]!, client })),
      );
      expect(results.filter((r) => r.status === 200)).toHaveLength(20);
      expect(results.filter((r) => r.status === 429)).toHaveLength(10);
      // both processes refused some: the bucket really is shared, not per process
      await client.close();
    } finally {
      for (const s of starts) s.child.kill('SIGTERM');
      await Promise.all(starts.map((s) => s.exited));
    }
  });
});

describe('redis failures', () => {
  it('redis killed: requests keep getting onStoreError answers quickly; restarted: limiting resumes', async () => {
    const own = await startRedis();
    const gw = await startTestProxy(vendors, (raw) => {
      raw['rateLimit'] = { store: 'redis', redis: { url: own.url, prefix: 'kill:' }, rate: 0.001, burst: 3, onStoreError: 'allow' };
    });
    try {
      expect(await gw.proxy.limiter!.whenReady(5000)).toBe(true);
      const before = await Promise.all(Array.from({ length: 4 }, () => hit(gw)));
      expect(before.filter((r) => r.status === 429)).toHaveLength(1);

      await own.stop();
      const during = [];
      for (let i = 0; i < 20; i++) {
        const t0 = performance.now();
        const r = await hit(gw);
        during.push({ status: r.status, ms: performance.now() - t0 });
      }
      // onStoreError: allow — everything passes while the store is gone, and nobody waits on it
      expect(during.every((r) => r.status === 200)).toBe(true);
      expect(Math.max(...during.map((r) => r.ms))).toBeLessThan(1000);
      const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text();
      expect(metrics).toMatch(/aigate_ratelimit_store_errors_total \d+/);
      expect(Number(/aigate_ratelimit_store_errors_total (\d+)/.exec(metrics)![1])).toBeGreaterThanOrEqual(20);

      await own.restart(); // empty Redis on the same port: a full bucket again
      expect(await gw.proxy.limiter!.whenReady(10_000)).toBe(true);
      const after = await Promise.all(Array.from({ length: 4 }, () => hit(gw)));
      expect(after.filter((r) => r.status === 429)).toHaveLength(1);
    } finally {
      await gw.stop();
      await own.stop();
    }
  });
});

// The configuration shapes documented for operators, against real processes: Sentinel (master
// found through a sentinel; `url` only supplies credentials/db) and a three-master Cluster.
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { type RateLimiter, createRateLimiter } from '../../src/ratelimit/index.js';
import { startCluster, startRedis, startSentinel } from '../support/redis.js';
import { redisConfig, silentLogger } from './ratelimit-helpers.js';
import type { RedisSection } from './ratelimit-helpers.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function limiter(redis: Partial<RedisSection> & { url: string }): Promise<RateLimiter> {
  const rl = createRateLimiter(redisConfig({ prefix: 'aigate:topo:', ...redis }), { logger: silentLogger });
  cleanup.push(() => rl.close());
  expect(await rl.whenReady(10_000)).toBe(true);
  return rl;
}

describe('Redis topologies', () => {
  it('Sentinel: finds the master through a sentinel and limits there', async () => {
    const master = await startRedis();
    cleanup.push(() => master.stop());
    const sentinel = await startSentinel(master.port);
    cleanup.push(() => sentinel.stop());

    const rl = await limiter({
      url: 'redis://this-host-is-ignored/2',
      sentinels: [{ host: '127.0.0.1', port: sentinel.port }],
      name: sentinel.masterName,
    });
    const rule = { rate: 0.001, burst: 3 };
    const allowed = [];
    for (let i = 0; i < 4; i++) allowed.push((await rl.take('s', rule)).allowed);
    expect(allowed).toEqual([true, true, true, false]);

    const raw = new Redis({ port: master.port, db: 2 });
    cleanup.push(() => raw.disconnect());
    // On the master, in the URL's db: drained (plus a sliver of refill at 0.001 tokens/s).
    expect(Number(await raw.hget('aigate:topo:s', 'tk'))).toBeLessThan(0.01);
  });

  it('Cluster: buckets spread over the masters, shared and exact; a dead master fails only its keys, fast', async () => {
    const cluster = await startCluster(3);
    cleanup.push(() => cluster.stop());
    const nodes = cluster.nodes.slice(0, 2); // the third is discovered
    const [a, b] = [await limiter({ url: 'redis://ignored', cluster: nodes }), await limiter({ url: 'redis://ignored', cluster: nodes })];

    const rule = { rate: 0.001, burst: 20 };
    const decisions = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).take('shared', rule)));
    expect(decisions.filter((d) => d.storeError)).toHaveLength(0);
    expect(decisions.filter((d) => d.allowed)).toHaveLength(20);

    const keys = Array.from({ length: 30 }, (_, i) => `client-${i}`);
    for (const k of keys) {
      expect((await a.take(k, { rate: 0.001, burst: 1 })).allowed).toBe(true);
      expect((await b.take(k, { rate: 0.001, burst: 1 })).allowed).toBe(false);
    }
    const sizes = await Promise.all(
      cluster.nodes.map(async (n) => {
        const c = new Redis({ port: n.port });
        try {
          return await c.dbsize();
        } finally {
          c.disconnect();
        }
      }),
    );
    expect(sizes.filter((s) => s > 0).length).toBeGreaterThan(1);

    await cluster.stopNode(2);
    let failed = 0;
    let served = 0;
    for (const k of keys) {
      const t = performance.now();
      const d = await a.take(k, { rate: 0.001, burst: 1 });
      // commandTimeout is 50 ms; a second allows for a busy machine yet catches waiting on failover.
      expect(performance.now() - t).toBeLessThan(1000);
      if (d.storeError) failed++;
      else served++;
    }
    expect(failed).toBeGreaterThan(0);
    expect(served).toBeGreaterThan(0);
  });
});

// The Redis store against a real redis-server on a free port (or REDIS_URL): exact burst and
// refill on Redis's clock, parity with the memory store under a driven clock, two limiters
// (= two proxy processes) sharing one bucket, key layout, expiry and EVALSHA.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BucketRule, MemoryBucketStore, type RateDecision, type RateLimiter, RedisBucketStore, createRateLimiter } from '../../src/ratelimit/index.js';
import { createRedisConnection } from '../../src/ratelimit/connection.js';
import { StoreDeadlineError } from '../../src/ratelimit/redis.js';
import { Rng } from '../corpus/secrets.js';
import { type RedisServer, startRedis, until } from '../support/redis.js';
import { redisConfig, silentLogger } from './ratelimit-helpers.js';

let server: RedisServer;
let url: string;
let raw: Redis;
const prefix = `aigate:test:${process.pid}:${randomBytes(4).toString('hex')}:`;
const cleanup: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  server = await startRedis();
  url = process.env.REDIS_URL ?? server.url;
  raw = new Redis(url);
});

afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
  raw?.disconnect();
  await server?.stop();
});

async function limiter(target = url): Promise<RateLimiter> {
  const rl = createRateLimiter(redisConfig({ url: target, prefix }), { logger: silentLogger });
  cleanup.push(() => rl.close());
  expect(await rl.whenReady(5000)).toBe(true);
  return rl;
}

let n = 0;
const freshKey = (name: string) => `${name}-${++n}`;

describe('Redis store', () => {
  it('lets exactly `burst` requests through and refuses the next (Redis clock)', async () => {
    const rl = await limiter();
    const key = freshKey('burst');
    // 0.001 tokens/s: refill while the test runs (well under 1 s) is < 0.001 token, so the values
    // below are exact, not approximate.
    const rule = { rate: 0.001, burst: 20 };
    for (let i = 0; i < 20; i++) {
      expect(await rl.take(key, rule)).toEqual({
        allowed: true,
        limit: 20,
        remaining: 19 - i,
        resetSeconds: (i + 1) * 1000,
        retryAfterSeconds: 0,
        storeError: false,
      });
    }
    expect(await rl.take(key, rule)).toEqual({
      allowed: false,
      limit: 20,
      remaining: 0,
      resetSeconds: 20_000,
      retryAfterSeconds: 1000,
      storeError: false,
    });
  });

  it('refills on the Redis clock: a drained bucket admits again after 1/rate, not before', async () => {
    const rl = await limiter();
    const key = freshKey('refill');
    const rule = { rate: 4, burst: 1 }; // one token per 250 ms
    const t0 = performance.now();
    expect((await rl.take(key, rule)).allowed).toBe(true);
    expect(await rl.take(key, rule)).toMatchObject({ allowed: false, retryAfterSeconds: 1, storeError: false });
    let refused = 0;
    await until(async () => {
      const d = await rl.take(key, rule);
      expect(d.storeError).toBe(false);
      if (!d.allowed) refused++;
      return d.allowed;
    }, 'the bucket to refill', 3000);
    const elapsed = performance.now() - t0;
    // The token cannot exist before 250 ms of Redis time after the first take, which was sent
    // after t0 (1 ms slack for clock granularity).
    expect(elapsed).toBeGreaterThanOrEqual(249);
    expect(elapsed).toBeLessThan(2000);
    expect(refused).toBeGreaterThan(0);
    expect((await rl.take(key, rule)).allowed).toBe(false);
  });

  /** A Redis store and a memory store on one driven clock (ms), for answer-by-answer comparison. */
  async function drivenPair(name: string) {
    const clock = { nowMs: 1_700_000_000_000 };
    const conn = createRedisConnection(redisConfig({ url, prefix }).redis);
    const redisStore = new RedisBucketStore(conn.client, {
      prefix: `${prefix}${name}:`,
      timeoutMs: 1000,
      clockUs: () => clock.nowMs * 1000,
    });
    cleanup.push(() => redisStore.close());
    const memStore = new MemoryBucketStore({ now: () => clock.nowMs });
    expect(await redisStore.whenReady(5000)).toBe(true);
    return { clock, redisStore, memStore };
  }

  // Slow rates keep every key's Redis TTL (>= 2 s of real time) far beyond these tests' runtime,
  // so Redis expiry cannot interfere with the driven clock.
  const parityRules: BucketRule[] = [
    { rate: 0.5, burst: 3 },
    { rate: 0.25, burst: 5 },
    { rate: 0.3, burst: 2 },
  ];

  it('computes exactly what the memory store computes for the same times and takes', async () => {
    const { clock, redisStore, memStore } = await drivenPair('parity');
    const rnd = new Rng(42).below;
    let allowed = 0;
    let refusedCount = 0;
    for (let i = 0; i < 400; i++) {
      clock.nowMs += rnd(8) === 0 ? rnd(6000) : rnd(150);
      const key = `k${rnd(3)}`;
      const rule = parityRules[Number(key.slice(1))]!;
      const fromRedis = await redisStore.take(key, rule);
      const fromMemory = memStore.takeSync(key, rule);
      expect(fromRedis, `step ${i}, key ${key}`).toEqual(fromMemory);
      if (fromRedis.allowed) allowed++;
      else refusedCount++;
    }
    expect(allowed).toBeGreaterThan(50);
    expect(refusedCount).toBeGreaterThan(50);
  });

  it('computes what the memory store computes when takes share a call: same key, rule and time grouped, the rest kept apart', async () => {
    const { clock, redisStore, memStore } = await drivenPair('parity-batch');
    const rnd = new Rng(7).below;
    let allowed = 0;
    let refusedCount = 0;
    for (let call = 0; call < 60; call++) {
      // One turn's takes: mostly bursts on one key at one instant (one entry), sometimes the clock
      // moves or another rule or key cuts in (new entries on the same key).
      const takes: Promise<unknown>[] = [];
      const expected: unknown[] = [];
      for (let j = 1 + rnd(12); j > 0; j--) {
        if (rnd(4) === 0) clock.nowMs += rnd(3) === 0 ? rnd(6000) : rnd(400);
        const key = `k${rnd(2)}`;
        const rule = parityRules[rnd(5) === 0 ? 1 : 0]!;
        takes.push(redisStore.take(key, rule));
        expected.push(memStore.takeSync(key, rule));
      }
      const got = await Promise.all(takes);
      expect(got, `call ${call}`).toEqual(expected);
      for (const r of got as { allowed: boolean }[]) {
        if (r.allowed) allowed++;
        else refusedCount++;
      }
    }
    expect(allowed).toBeGreaterThan(50);
    expect(refusedCount).toBeGreaterThan(50);
  });

  it('shares one bucket between two limiters (two proxy processes): 30 concurrent takes, exactly 20 pass', async () => {
    const [a, b] = [await limiter(), await limiter()];
    const key = freshKey('shared');
    const rule = { rate: 0.001, burst: 20 };
    const decisions = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? a : b).take(key, rule)));
    expect(decisions.every((d) => !d.storeError)).toBe(true);
    const passed = decisions.filter((d) => d.allowed);
    expect(passed).toHaveLength(20);
    // Atomic takes: each admitted request saw a different count.
    expect(passed.map((d) => d.remaining).sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    // Both processes had requests admitted and refused: the bucket really is shared.
    expect(decisions.filter((d, i) => i % 2 === 0 && d.allowed).length).toBeGreaterThan(0);
    expect(decisions.filter((d, i) => i % 2 === 1 && d.allowed).length).toBeGreaterThan(0);
    expect((await a.take(key, rule)).allowed).toBe(false);
    expect((await b.take(key, rule)).allowed).toBe(false);
  });

  it('keeps different keys independent', async () => {
    const rl = await limiter();
    const rule = { rate: 0.001, burst: 2 };
    const [k1, k2] = [freshKey('ind'), freshKey('ind')];
    const seq = async (k: string) => [await rl.take(k, rule), await rl.take(k, rule), await rl.take(k, rule)].map((d) => d.allowed);
    expect(await seq(k1)).toEqual([true, true, false]);
    expect(await seq(k2)).toEqual([true, true, false]);
  });

  it('stores tokens and Redis time under prefix + key, expiring when the bucket would be full', async () => {
    const rl = await limiter();
    const key = freshKey('layout');
    await rl.take(key, { rate: 1, burst: 10 });
    const [hash, pttl, [sec, usec], bare] = await Promise.all([
      raw.hgetall(prefix + key),
      raw.pttl(prefix + key),
      raw.time(),
      raw.exists(key),
    ]);
    expect(hash.tk).toBe('9');
    expect(hash.ts).toMatch(/^\d{16}$/); // µs since the epoch, on Redis's clock
    expect(Math.abs(Number(hash.ts) - (Number(sec) * 1e6 + Number(usec)))).toBeLessThan(5e6);
    // One token short of full at 1 token/s: full again in 1 s.
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(1000);
    expect(bare).toBe(0);
  });

  it('lets idle keys leave Redis, and an expired key is a full bucket', async () => {
    const rl = await limiter();
    const key = freshKey('expiry');
    const rule = { rate: 1000, burst: 1 }; // full again 1 ms after a take
    expect((await rl.take(key, rule)).allowed).toBe(true);
    await until(async () => (await raw.exists(prefix + key)) === 0, 'the bucket key to expire', 2000);
    expect(await rl.take(key, rule)).toMatchObject({ allowed: true, remaining: 0, storeError: false });
  });

  it('does not extend a drained bucket\'s life with refused takes', async () => {
    const rl = await limiter();
    const key = freshKey('refused');
    const rule = { rate: 0.001, burst: 1 };
    await rl.take(key, rule);
    const before = await raw.hget(prefix + key, 'ts');
    for (let i = 0; i < 5; i++) expect((await rl.take(key, rule)).allowed).toBe(false);
    expect(await raw.hget(prefix + key, 'ts')).toBe(before);
  });
});

describe('Redis store timeout', () => {
  type StoreClient = ConstructorParameters<typeof RedisBucketStore>[0];
  const rule = { rate: 1, burst: 1 };

  it('bounds a take the client never answers (a Cluster client looping over redirections)', async () => {
    const stuck = {
      status: 'ready',
      defineCommand(name: string) {
        (this as unknown as Record<string, unknown>)[name] = () => new Promise(() => undefined);
      },
    };
    const store = new RedisBucketStore(stuck as unknown as StoreClient, { prefix: 'p:', timeoutMs: 30 });
    const t = performance.now();
    await expect(store.take('k', rule)).rejects.toBeInstanceOf(StoreDeadlineError);
    const ms = performance.now() - t;
    expect(ms).toBeGreaterThanOrEqual(29);
    expect(ms).toBeLessThan(1000); // a stuck command never resolves: anything finite proves the deadline

  });

  it('does not call a reply late that arrived while the event loop was busy past the timeout', async () => {
    const rl = createRateLimiter(redisConfig({ url, prefix, commandTimeout: 20 }), { logger: silentLogger });
    cleanup.push(() => rl.close());
    expect(await rl.whenReady(5000)).toBe(true);
    const key = freshKey('stall');
    const drained = { rate: 0.001, burst: 1 };
    await rl.take(key, drained);
    // Redis answers within microseconds while this process spins for 150 ms — over seven times
    // the timeout — as a burst of TLS handshakes would. The take is sent in the check phase of
    // the turn it was made in; the spin runs right after it, in a later setImmediate callback of
    // that phase, so the timers phase runs next, before the socket is read. With ioredis's
    // commandTimeout this refusal came back as a store error, i.e. `allow` under onStoreError.
    const decision = await new Promise<RateDecision>((resolve, reject) => {
      rl.take(key, drained).then(resolve, reject);
      setImmediate(() => {
        const t = performance.now();
        while (performance.now() - t < 150); // a busy event loop
      });
    });
    expect(decision).toMatchObject({ allowed: false, storeError: false });
  });

  it('fails the takes queued behind a call that hit its deadline at once, without sending them', async () => {
    let calls = 0;
    const silent = {
      status: 'ready',
      defineCommand(name: string) {
        (this as unknown as Record<string, unknown>)[name] = () => {
          calls++;
          return new Promise(() => undefined);
        };
      },
    };
    const store = new RedisBucketStore(silent as unknown as StoreClient, { prefix: 'p:', timeoutMs: 30 });
    const first = store.take('k', rule);
    await new Promise((r) => setImmediate(r)); // the first call is out
    const queued = [store.take('k', rule), store.take('other', rule)];
    const failedBeforeFirst: boolean[] = [];
    let firstFailed = false;
    for (const p of queued) p.catch(() => failedBeforeFirst.push(!firstFailed));
    await expect(first.catch((err: unknown) => {
      firstFailed = true;
      throw err;
    })).rejects.toBeInstanceOf(StoreDeadlineError);
    for (const p of queued) await expect(p).rejects.toBeInstanceOf(StoreDeadlineError);
    // Failed with the first call — not a second deadline later — and never sent.
    expect(failedBeforeFirst).toEqual([true, true]);
    expect(calls).toBe(1);
  });
});

describe('Redis script loading', () => {
  /** Command counts; those a script runs (HMGET, HSET) are counted too. */
  async function stats(client: Redis): Promise<{ eval: number; evalsha: number; hmget: number; hset: number }> {
    const info = await client.info('commandstats');
    const calls = (cmd: string) => Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
    return { eval: calls('eval'), evalsha: calls('evalsha'), hmget: calls('hmget'), hset: calls('hset') };
  }

  it('runs the script by SHA (EVAL once per connection) and reloads it after SCRIPT FLUSH', async () => {
    // Always the tests' own server: command counters on a shared REDIS_URL would be noisy.
    const own = new Redis(server.url);
    cleanup.push(() => own.disconnect());
    const rl = await limiter(server.url);
    const rule = { rate: 1000, burst: 1000 };
    await rl.take('warm', rule);
    const s0 = await stats(own);
    for (let i = 0; i < 50; i++) await rl.take(`sha-${i}`, rule);
    const s1 = await stats(own);
    expect(s1.evalsha - s0.evalsha).toBe(50);
    expect(s1.eval - s0.eval).toBe(0);

    await own.script('FLUSH');
    expect(await rl.take('after-flush', rule)).toMatchObject({ allowed: true, storeError: false });
    const s2 = await stats(own);
    expect(s2.eval - s1.eval).toBe(1);
  });

  it('sends the takes of one event-loop turn as one script call, exact per key and in order, one read and write per key', async () => {
    const own = new Redis(server.url);
    cleanup.push(() => own.disconnect());
    const rl = await limiter(server.url);
    const rule = { rate: 0.001, burst: 20 };
    await rl.take('batch-warm', rule);
    const s0 = await stats(own);
    // 30 takes on one key interleaved with 10 on another, all made in the same turn, as the
    // requests read from many sockets in one poll phase are.
    const a = freshKey('batch-a');
    const b = freshKey('batch-b');
    const takes = [];
    for (let i = 0; i < 40; i++) takes.push(rl.take(i % 4 === 3 ? b : a, rule));
    const decisions = await Promise.all(takes);
    const s1 = await stats(own);
    expect(s1.evalsha - s0.evalsha).toBe(1);
    expect(s1.hmget - s0.hmget).toBe(2);
    expect(s1.hset - s0.hset).toBe(2);
    const onA = decisions.filter((_, i) => i % 4 !== 3);
    const onB = decisions.filter((_, i) => i % 4 === 3);
    // In order: the first 20 takes on `a` pass with 19, 18, … 0 left, the other 10 are refused.
    expect(onA.map((d) => d.allowed)).toEqual([...Array(20).fill(true), ...Array(10).fill(false)]);
    expect(onA.slice(0, 20).map((d) => d.remaining)).toEqual(Array.from({ length: 20 }, (_, i) => 19 - i));
    expect(onB.every((d) => d.allowed)).toBe(true);
    expect(onB.at(-1)?.remaining).toBe(10);
    expect(decisions.every((d) => !d.storeError)).toBe(true);
  });

  it('sends the takes made while a call is out together in the next call, in order', async () => {
    const own = new Redis(server.url);
    cleanup.push(() => own.disconnect());
    // A long deadline: Redis is held still by the test, not failing.
    const rl = createRateLimiter(redisConfig({ url: server.url, prefix, commandTimeout: 10_000 }), { logger: silentLogger });
    cleanup.push(() => rl.close());
    expect(await rl.whenReady(5000)).toBe(true);
    const rule = { rate: 0.001, burst: 5 };
    await rl.take('gate-warm', rule);
    const s0 = await stats(own);
    const key = freshKey('gate');
    const takes: Promise<RateDecision>[] = [];
    server.pause(); // the first call is written and stays unanswered while later turns queue takes
    try {
      takes.push(rl.take(key, rule));
      for (let turn = 0; turn < 4; turn++) {
        await new Promise((r) => setImmediate(r));
        takes.push(rl.take(key, rule), rl.take(key, rule));
      }
    } finally {
      server.resume();
    }
    const decisions = await Promise.all(takes);
    const s1 = await stats(own);
    expect(s1.evalsha - s0.evalsha).toBe(2);
    expect(decisions.map((d) => d.allowed)).toEqual([...Array(5).fill(true), ...Array(4).fill(false)]);
    expect(decisions.slice(0, 5).map((d) => d.remaining)).toEqual([4, 3, 2, 1, 0]);
    expect(decisions.every((d) => !d.storeError)).toBe(true);
  });
});

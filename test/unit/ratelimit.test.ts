// Token-bucket semantics (SPEC §6) on the memory store with a controlled clock, the onStoreError
// policy, the failure-log throttle and the header values.
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/metrics.js';
import { decide, refill, storeErrorDecision, takeOne } from '../../src/ratelimit/bucket.js';
import {
  type BucketRule,
  type BucketStore,
  MemoryBucketStore,
  StoreRateLimiter,
  bucketRule,
  createRateLimiter,
  rateLimitHeaders,
} from '../../src/ratelimit/index.js';
import { StoreFailureReporter } from '../../src/ratelimit/reporter.js';
import {
  captureLogger,
  clock,
  rateLimitConfig as memoryConfig,
  silentLogger as logger,
  storeErrorCount as counter,
} from './ratelimit-helpers.js';

describe('token bucket, memory store', () => {
  it('lets exactly `burst` requests through in one instant and refuses the next', async () => {
    const c = clock();
    const rl = createRateLimiter(memoryConfig(), { logger, now: c.now });
    const rule = { rate: 10, burst: 20 };
    for (let i = 0; i < 20; i++) {
      const d = await rl.take('client', rule);
      expect(d).toEqual({
        allowed: true,
        limit: 20,
        remaining: 19 - i,
        resetSeconds: Math.ceil((i + 1) / 10),
        retryAfterSeconds: 0,
        storeError: false,
      });
    }
    const refused = await rl.take('client', rule);
    expect(refused).toEqual({
      allowed: false,
      limit: 20,
      remaining: 0,
      resetSeconds: 2,
      retryAfterSeconds: 1,
      storeError: false,
    });
  });

  it('refills continuously at `rate` and never beyond `burst`', async () => {
    const c = clock();
    const store = new MemoryBucketStore({ now: c.now });
    const rule = { rate: 10, burst: 20 };
    for (let i = 0; i < 20; i++) expect(store.takeSync('k', rule).allowed).toBe(true);
    expect(store.takeSync('k', rule).allowed).toBe(false);

    c.advance(99); // 0.99 token
    expect(store.takeSync('k', rule).allowed).toBe(false);
    c.advance(1); // exactly 1 token after 100 ms
    expect(store.takeSync('k', rule)).toEqual({ allowed: true, tokens: 0 });
    expect(store.takeSync('k', rule).allowed).toBe(false);

    c.advance(1000); // 10 tokens
    let passed = 0;
    while (store.takeSync('k', rule).allowed) passed++;
    expect(passed).toBe(10);

    c.advance(3_600_000); // an hour idle still holds only `burst`
    passed = 0;
    while (store.takeSync('k', rule).allowed) passed++;
    expect(passed).toBe(20);
  });

  it('admits at the refill rate under sustained pressure', () => {
    const c = clock();
    const store = new MemoryBucketStore({ now: c.now });
    const rule = { rate: 10, burst: 20 };
    let passed = 0;
    // 100 attempts per second for 10 s (t = 0, 10, …, 9990 ms): the burst plus one token per
    // 100 ms after the first instant.
    for (let t = 0; t < 10_000; t += 10) {
      if (store.takeSync('k', rule).allowed) passed++;
      c.advance(10);
    }
    expect(passed).toBe(20 + 99);
  });

  it('keeps fractional tokens exactly across many small steps', () => {
    const c = clock();
    const store = new MemoryBucketStore({ now: c.now });
    const rule = { rate: 0.3, burst: 1 };
    expect(store.takeSync('k', rule).allowed).toBe(true);
    // 0.3 tokens/s: 1 token takes 3333.3 ms; 3333 steps of 1 ms are not enough, one more is.
    for (let i = 0; i < 3333; i++) {
      c.advance(1);
      expect(store.takeSync('k', rule).allowed).toBe(false);
    }
    c.advance(1);
    expect(store.takeSync('k', rule).allowed).toBe(true);
  });

  it('rounds Retry-After and Reset up to whole seconds', async () => {
    const c = clock();
    const rl = createRateLimiter(memoryConfig(), { logger, now: c.now });
    const rule = { rate: 0.5, burst: 1 }; // one token per 2 s
    expect(await rl.take('k', rule)).toMatchObject({ allowed: true, remaining: 0, resetSeconds: 2, retryAfterSeconds: 0 });
    expect(await rl.take('k', rule)).toMatchObject({ allowed: false, remaining: 0, resetSeconds: 2, retryAfterSeconds: 2 });
    c.advance(1500);
    expect(await rl.take('k', rule)).toMatchObject({ allowed: false, resetSeconds: 1, retryAfterSeconds: 1 });
    c.advance(499);
    expect(await rl.take('k', rule)).toMatchObject({ allowed: false, resetSeconds: 1, retryAfterSeconds: 1 });
    c.advance(1);
    expect(await rl.take('k', rule)).toMatchObject({ allowed: true, remaining: 0, retryAfterSeconds: 0 });
  });

  it('keeps keys independent', () => {
    const c = clock();
    const store = new MemoryBucketStore({ now: c.now });
    const rule = { rate: 1, burst: 2 };
    expect([store.takeSync('a', rule), store.takeSync('a', rule), store.takeSync('a', rule)].map((r) => r.allowed)).toEqual([
      true,
      true,
      false,
    ]);
    expect([store.takeSync('b', rule), store.takeSync('b', rule), store.takeSync('b', rule)].map((r) => r.allowed)).toEqual([
      true,
      true,
      false,
    ]);
  });

  it('forgets buckets once they are full again, and only then', () => {
    const c = clock();
    const store = new MemoryBucketStore({ now: c.now, sweepIntervalMs: 10_000 });
    const fast = { rate: 10, burst: 5 }; // full again 100 ms after one take
    for (let i = 0; i < 1000; i++) store.takeSync(`ip-${i}`, fast);
    const slow = { rate: 0.01, burst: 2 }; // full again only after 200 s
    store.takeSync('drained', slow);
    store.takeSync('drained', slow);
    expect(store.size).toBe(1001);

    c.advance(10_000);
    store.takeSync('trigger', fast); // the sweep runs from the hot path
    expect(store.size).toBe(2); // 'drained' and 'trigger'
    // Forgetting 'drained' early would have handed out free tokens.
    expect(store.takeSync('drained', slow).allowed).toBe(false);

    c.advance(200_000);
    store.takeSync('x', fast);
    expect(store.size).toBe(1);
  });

  it('treats a smaller burst for an existing key as the new cap', () => {
    const c = clock();
    const store = new MemoryBucketStore({ now: c.now });
    store.takeSync('k', { rate: 1, burst: 100 }); // 99 left
    expect(store.takeSync('k', { rate: 1, burst: 3 })).toEqual({ allowed: true, tokens: 2 });
  });
});

describe('bucket arithmetic', () => {
  it('ignores a clock that stepped back', () => {
    expect(refill(0.5, -5_000_000, { rate: 1, burst: 10 })).toBe(0.5);
  });

  it('admits a token lost only to float rounding', () => {
    // 0.1 + 0.2 + 0.7 === 0.9999999999999999 in binary floating point.
    expect(takeOne(0.1 + 0.2 + 0.7).allowed).toBe(true);
    expect(takeOne(0.999).allowed).toBe(false);
  });

  it('reports header values in whole tokens and whole seconds', () => {
    const rule = { rate: 4, burst: 10 };
    expect(decide({ allowed: true, tokens: 7.9 }, rule)).toEqual({
      allowed: true,
      limit: 10,
      remaining: 7,
      resetSeconds: 1, // 2.1 tokens at 4/s = 0.525 s
      retryAfterSeconds: 0,
      storeError: false,
    });
    expect(decide({ allowed: false, tokens: 0.2 }, rule)).toMatchObject({ remaining: 0, resetSeconds: 3, retryAfterSeconds: 1 });
  });

  it('maps decisions to the SPEC §6 headers', () => {
    const rule = { rate: 10, burst: 20 };
    expect(rateLimitHeaders(decide({ allowed: true, tokens: 19 }, rule))).toEqual({
      'ratelimit-limit': '20',
      'ratelimit-remaining': '19',
      'ratelimit-reset': '1',
    });
    expect(rateLimitHeaders(decide({ allowed: false, tokens: 0.5 }, rule))).toEqual({
      'ratelimit-limit': '20',
      'ratelimit-remaining': '0',
      'ratelimit-reset': '2',
      'retry-after': '1',
    });
  });

  it('picks the route override, else the global bucket', () => {
    const cfg = memoryConfig({ rate: 10, burst: 20 });
    expect(bucketRule(cfg)).toEqual({ rate: 10, burst: 20 });
    expect(bucketRule(cfg, { rate: 1, burst: 5 })).toEqual({ rate: 1, burst: 5 });
  });
});

class BrokenStore implements BucketStore {
  readonly kind = 'redis' as const;
  takes = 0;
  take(): Promise<never> {
    this.takes++;
    return Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:1'));
  }
  healthy(): boolean {
    return false;
  }
  whenReady(): Promise<boolean> {
    return Promise.resolve(false);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

describe('onStoreError', () => {
  const rule: BucketRule = { rate: 10, burst: 20 };

  it.each(['allow', 'deny'] as const)('%s: answers by policy, flags storeError and counts it', async (policy) => {
    const metrics = new Metrics({ processMetrics: false });
    const c = clock();
    const reporter = new StoreFailureReporter({ logger, metrics, now: c.now, target: 't', onStoreError: policy, secrets: [] });
    const rl = new StoreRateLimiter(new BrokenStore(), policy, reporter);
    const d = await rl.take('k', rule);
    expect(d).toEqual(storeErrorDecision(policy, rule));
    expect(d.storeError).toBe(true);
    expect(d.allowed).toBe(policy === 'allow');
    expect(d.retryAfterSeconds).toBe(policy === 'allow' ? 0 : 1);
    await rl.take('k', rule);
    expect(await counter(metrics)).toBe(2);
    expect(rl.status()).toEqual({ store: 'redis', healthy: false });
  });

  it('logs at most one line per 10 s, with the failures since the previous line', async () => {
    const cap = captureLogger();
    const c = clock();
    const reporter = new StoreFailureReporter({
      logger: cap.logger,
      now: c.now,
      target: 'redis://127.0.0.1:1/0',
      onStoreError: 'allow',
      secrets: ['hunter2-secret'],
    });
    const rl = new StoreRateLimiter(new BrokenStore(), 'allow', reporter);
    for (let i = 0; i < 100; i++) {
      await rl.take('k', rule);
      c.advance(50); // 100 failures over 5 s
    }
    expect(cap.lines.filter((l) => l.level === 40)).toHaveLength(1);
    expect(cap.lines[0]).toMatchObject({ failedChecks: 1, rateLimitStore: 'redis://127.0.0.1:1/0', onStoreError: 'allow' });

    c.advance(5_000);
    reporter.connectionError(new Error('AUTH failed for hunter2-secret'));
    await rl.take('k', rule);
    const warns = cap.lines.filter((l) => l.level === 40);
    expect(warns).toHaveLength(2);
    expect(warns[1]).toMatchObject({ failedChecks: 99, connectionErrors: 1 });
    expect(cap.raw.join('')).not.toContain('hunter2-secret');

    await rl.take('k', rule); // within the window: counted, not logged
    reporter.connected();
    expect(cap.lines.at(-1)).toMatchObject({ level: 30, failedChecks: 2, msg: expect.stringContaining('reachable again') });
    reporter.connected(); // no second "reachable again" without a warning in between
    expect(cap.lines.filter((l) => String(l.msg).includes('reachable again'))).toHaveLength(1);
  });
});

describe('createRateLimiter', () => {
  it('builds a healthy memory limiter', async () => {
    const rl = createRateLimiter(memoryConfig(), { logger });
    expect(rl.status()).toEqual({ store: 'memory', healthy: true });
    expect(await rl.whenReady(10)).toBe(true);
    await rl.close();
  });

  it('rejects a malformed Redis URL without echoing it', () => {
    const cfg = memoryConfig({
      store: 'redis',
      redis: { url: 'http://user:pa55word@host', prefix: 'p:', commandTimeout: 50 },
    });
    expect(() => createRateLimiter(cfg, { logger })).toThrow(/^rateLimit\.redis\.url: scheme must be redis/);
    try {
      createRateLimiter(cfg, { logger });
    } catch (e) {
      expect(String(e)).not.toContain('pa55word');
    }
  });

  it('names the missing key for Sentinel', () => {
    const cfg = memoryConfig({
      store: 'redis',
      redis: { url: 'redis://h', prefix: 'p:', commandTimeout: 50, sentinels: [{ host: 'h', port: 26379 }] },
    });
    expect(() => createRateLimiter(cfg, { logger })).toThrow(/^rateLimit\.redis\.name:/);
  });
});

describe('ioredis: loaded for the Redis store only, and leaving string methods fast', () => {
  // ioredis 6 declares `class VerbatimString extends String`; once that runs, V8 stops inlining
  // String.prototype methods in the whole process (charCodeAt loops 4–5× slower). Neither store may
  // do that (ioredis is held at 5.x for it), and the memory store does not load ioredis at all.
  // Run in a fresh process: this one has loaded ioredis already.
  function probe(store: 'memory' | 'redis'): { stringPrototypeFast: boolean; ioredisLoaded: boolean } {
    const dist = (f: string) => JSON.stringify(pathToFileURL(resolve('dist', f)).href);
    const script = `
      import { createRequire } from 'node:module';
      const fast0 = %HasFastProperties(String.prototype);
      const { createRateLimiter } = await import(${dist('ratelimit/index.js')});
      await import(${dist('server/proxy.js')});
      const { configSchema } = await import(${dist('config/schema.js')});
      const pino = createRequire(process.cwd() + '/')('pino');
      const cfg = { ...configSchema.parse({}).rateLimit, store: ${JSON.stringify(store)} };
      cfg.redis = { ...cfg.redis, url: 'redis://127.0.0.1:1' };
      createRateLimiter(cfg, { logger: pino({ level: 'silent' }) });
      const loaded = Object.keys(createRequire(process.cwd() + '/').cache).some((k) => k.includes('/node_modules/ioredis/'));
      console.log(JSON.stringify({ stringPrototypeFast: fast0 && %HasFastProperties(String.prototype), ioredisLoaded: loaded }));
      process.exit(0);`;
    const out = execFileSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', script], { encoding: 'utf8' });
    return JSON.parse(out.trim().split('\n').at(-1)!) as { stringPrototypeFast: boolean; ioredisLoaded: boolean };
  }

  it('leaves String.prototype alone with either store; only the Redis store loads ioredis', () => {
    expect(probe('memory')).toEqual({ stringPrototypeFast: true, ioredisLoaded: false });
    expect(probe('redis')).toEqual({ stringPrototypeFast: true, ioredisLoaded: true });
  });

  it('would notice a dependency that subclasses String', () => {
    const out = execFileSync(process.execPath, ['--allow-natives-syntax', '-e', 'class V extends String {}; console.log(%HasFastProperties(String.prototype))'], {
      encoding: 'utf8',
    });
    expect(out.trim()).toBe('false');
  });
});

describe('takeNow (the limit stage decides without a promise where the store can)', () => {
  const rule: BucketRule = { rate: 10, burst: 3 };

  it('memory: the same decisions as take, from the same buckets', async () => {
    const c = clock();
    const a = createRateLimiter(memoryConfig(), { logger, now: c.now });
    const b = createRateLimiter(memoryConfig(), { logger, now: c.now });
    for (let i = 0; i < 5; i++) {
      expect(a.takeNow('k', rule)).toEqual(await b.take('k', rule));
      c.advance(20);
    }
    // Both ways take from one bucket: 3 burst, then refused.
    const mixed = createRateLimiter(memoryConfig(), { logger, now: c.now });
    const allowed = [mixed.takeNow('m', rule)!.allowed, (await mixed.take('m', rule)).allowed, mixed.takeNow('m', rule)!.allowed, (await mixed.take('m', rule)).allowed];
    expect(allowed).toEqual([true, true, true, false]);
  });

  it('a store that needs a round trip: undefined, so the stage calls take', () => {
    const store = new BrokenStore();
    expect(new StoreRateLimiter(store, 'deny').takeNow('k', rule)).toBeUndefined();
    expect(store.takes).toBe(0);
  });

  it('a synchronous store that throws: the onStoreError decision, counted as a failure', async () => {
    const metrics = new Metrics({ processMetrics: false });
    const reporter = new StoreFailureReporter({ logger, metrics, now: clock().now, target: 't', onStoreError: 'deny', secrets: [] });
    const store = Object.assign(new BrokenStore(), {
      takeSync(): never {
        throw new Error('broken');
      },
    });
    expect(new StoreRateLimiter(store, 'deny', reporter).takeNow('k', rule)).toEqual(storeErrorDecision('deny', rule));
    expect(await counter(metrics)).toBe(1);
  });
});

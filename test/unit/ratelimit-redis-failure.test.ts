// Redis misbehaving (SPEC §6): down at start-up, killed under load, restarted on the same port,
// frozen; wrong password. Checks never wait on Redis, onStoreError decides, the failure is counted
// and logged sparingly, the password never reaches the log, and shared limiting resumes by itself.
import { afterEach, describe, expect, it } from 'vitest';
import { Metrics } from '../../src/metrics.js';
import { type BucketRule, type RateDecision, type RateLimiter, createRateLimiter } from '../../src/ratelimit/index.js';
import { freePort, startRedis, until } from '../support/redis.js';
import { captureLogger, redisConfig, storeErrorCount } from './ratelimit-helpers.js';

/**
 * Generous for a check that must not wait on Redis — wide enough for event-loop stalls when the
 * whole suite runs on two busy cores — yet far below the commandTimeout `make` sets, a reconnect
 * or a queue.
 */
const FAST_MS = 1000;

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/**
 * A limiter on `url`. Unless a test is about timeouts, commandTimeout is set far above FAST_MS, so
 * a fast answer proves the check failed at once (nothing queued, no retry) rather than timed out.
 */
function make(url: string, onStoreError: 'allow' | 'deny', commandTimeout = 5000) {
  const log = captureLogger();
  const metrics = new Metrics({ processMetrics: false });
  // A frozen clock for the log throttle: one warning for the whole test, however long it runs.
  const rl = createRateLimiter(redisConfig({ url, prefix: 'aigate:failtest:', commandTimeout }, { onStoreError }), {
    logger: log.logger,
    metrics,
    now: () => 0,
  });
  cleanup.push(() => rl.close());
  return { rl, log, metrics };
}

async function timedTake(rl: RateLimiter, key: string, rule: BucketRule): Promise<{ d: RateDecision; ms: number }> {
  const t = performance.now();
  const d = await rl.take(key, rule);
  return { d, ms: performance.now() - t };
}

const warnings = (lines: Record<string, unknown>[]) => lines.filter((l) => l.level === 40);
const big: BucketRule = { rate: 1e6, burst: 1e6 };

describe('Redis unavailable', () => {
  it.each(['allow', 'deny'] as const)('down at start-up (%s): no crash, no hang, fast onStoreError answers', async (policy) => {
    const port = await freePort(); // nothing listens there
    const t0 = performance.now();
    const { rl, log, metrics } = make(`redis://:s3cret-pw@127.0.0.1:${port}`, policy);
    expect(performance.now() - t0).toBeLessThan(FAST_MS); // returns without waiting to connect
    expect(rl.status()).toEqual({ store: 'redis', healthy: false });

    for (let i = 0; i < 20; i++) {
      const { d, ms } = await timedTake(rl, 'k', { rate: 10, burst: 20 });
      expect(ms).toBeLessThan(FAST_MS);
      expect(d.storeError).toBe(true);
      expect(d.allowed).toBe(policy === 'allow');
      expect(d.retryAfterSeconds).toBe(policy === 'allow' ? 0 : 1);
      await new Promise((r) => setImmediate(r));
    }
    expect(await storeErrorCount(metrics)).toBe(20);
    expect(await rl.whenReady(100)).toBe(false);

    const tClose = performance.now();
    await rl.close();
    expect(performance.now() - tClose).toBeLessThan(FAST_MS);

    expect(warnings(log.lines)).toHaveLength(1);
    expect(warnings(log.lines)[0]).toMatchObject({ rateLimitStore: `redis://127.0.0.1:${port}/0`, onStoreError: policy });
    expect(log.raw.join('')).not.toContain('s3cret-pw');
  });

  it('killed under load: fast onStoreError answers; restarted on the same port: shared limiting resumes', async () => {
    const server = await startRedis();
    cleanup.push(() => server.stop());
    const allow = make(server.url, 'allow');
    const deny = make(server.url, 'deny');
    expect(await allow.rl.whenReady(5000)).toBe(true);
    expect(await deny.rl.whenReady(5000)).toBe(true);

    // Continuous load from both "processes" while Redis dies and comes back.
    let running = true;
    let slowest = 0;
    const seen = { ok: 0, allowErr: 0, denyErr: 0, wrong: 0 };
    const worker = async (who: typeof allow, policy: 'allow' | 'deny') => {
      while (running) {
        const { d, ms } = await timedTake(who.rl, 'load', big);
        slowest = Math.max(slowest, ms);
        if (!d.storeError) seen.ok++;
        else if (d.allowed !== (policy === 'allow') || (policy === 'deny' && d.retryAfterSeconds !== 1)) seen.wrong++;
        else if (policy === 'allow') seen.allowErr++;
        else seen.denyErr++;
        await new Promise((r) => setImmediate(r)); // let socket events in between takes
      }
    };
    const workers = [0, 1, 2, 3].flatMap(() => [worker(allow, 'allow'), worker(deny, 'deny')]);
    try {
      await until(async () => seen.ok > 200, 'load against a live Redis');

      await server.stop();
      await until(async () => seen.allowErr > 200 && seen.denyErr > 200, 'onStoreError answers', 5000);
      expect(allow.rl.status().healthy).toBe(false);
      expect(slowest).toBeLessThan(FAST_MS);

      await server.restart();
      const tBack = performance.now();
      const okBefore = seen.ok;
      await until(async () => allow.rl.status().healthy && deny.rl.status().healthy && seen.ok > okBefore + 100, 'shared limiting to resume', 5000);
      // Reconnect backoff is capped at ~1 s: a returning Redis is used again promptly.
      expect(performance.now() - tBack).toBeLessThan(5000);
    } finally {
      running = false;
      await Promise.all(workers);
    }
    expect(seen.wrong).toBe(0);
    expect(slowest).toBeLessThan(FAST_MS);

    // The restarted (empty) Redis is shared again: 30 concurrent takes, exactly 20 pass.
    const rule = { rate: 0.001, burst: 20 };
    const decisions = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? allow : deny).rl.take('after-restart', rule)));
    expect(decisions.filter((d) => d.storeError)).toHaveLength(0);
    expect(decisions.filter((d) => d.allowed)).toHaveLength(20);

    for (const who of [allow, deny]) {
      expect(await storeErrorCount(who.metrics)).toBeGreaterThan(200);
      // Hundreds of failures, one warning (the throttle's clock is frozen), then one recovery line.
      expect(warnings(who.log.lines)).toHaveLength(1);
      expect(who.log.lines.filter((l) => String(l.msg).includes('reachable again'))).toHaveLength(1);
    }
  });

  it('checks in flight when Redis dies are answered at once and never replayed', async () => {
    const server = await startRedis();
    cleanup.push(() => server.stop());
    const { rl } = make(server.url, 'allow');
    expect(await rl.whenReady(5000)).toBe(true);

    server.pause(); // the next checks are written to the socket and wait for an answer…
    const rule = { rate: 0.001, burst: 5 };
    const inFlight = Array.from({ length: 5 }, () => rl.take('in-flight', rule));
    await new Promise((r) => setTimeout(r, 20));
    const tKill = performance.now();
    await server.stop(); // …that never comes
    const decisions = await Promise.all(inFlight);
    expect(performance.now() - tKill).toBeLessThan(FAST_MS);
    expect(decisions.every((d) => d.storeError && d.allowed)).toBe(true);

    await server.restart();
    await until(async () => rl.status().healthy, 'reconnect', 5000);
    // Already answered by onStoreError: replaying them on the new connection would charge the
    // (empty) restarted Redis five times.
    expect(await rl.take('in-flight', rule)).toMatchObject({ allowed: true, remaining: 4, storeError: false });
  });

  it('frozen (SIGSTOP): each check gives up after commandTimeout, and recovers on SIGCONT', async () => {
    const server = await startRedis();
    cleanup.push(() => {
      server.resume();
      return server.stop();
    });
    const { rl, metrics } = make(server.url, 'deny', 50);
    expect(await rl.whenReady(5000)).toBe(true);
    expect((await rl.take('frozen', big)).storeError).toBe(false);

    server.pause();
    cleanup.push(() => server.resume());
    // Spans the 1 s socket timeout: first checks time out on the live connection, later ones
    // fail at once while the redial hangs in its handshake.
    const tEnd = performance.now() + 1500;
    let checks = 0;
    while (performance.now() < tEnd) {
      const { d, ms } = await timedTake(rl, 'frozen', big);
      expect(ms).toBeLessThan(FAST_MS);
      expect(d).toMatchObject({ storeError: true, allowed: false, retryAfterSeconds: 1 });
      checks++;
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(await storeErrorCount(metrics)).toBe(checks);

    server.resume();
    await until(async () => !(await rl.take('frozen', big)).storeError, 'Redis to answer again', 5000);
  });

  it('uses the password from the URL, and never logs it, right or wrong', async () => {
    const server = await startRedis({ args: ['--requirepass', 'right-pw-7281'] });
    cleanup.push(() => server.stop());
    const good = make(`redis://:right-pw-7281@127.0.0.1:${server.port}`, 'deny');
    const bad = make(`redis://:wrong-pw-4410@127.0.0.1:${server.port}`, 'deny');
    expect(await good.rl.whenReady(5000)).toBe(true);
    expect(await good.rl.take('auth', big)).toMatchObject({ allowed: true, storeError: false });

    expect(await bad.rl.whenReady(300)).toBe(false);
    expect(await bad.rl.take('auth', big)).toMatchObject({ allowed: false, storeError: true });
    expect(warnings(bad.log.lines).length).toBeGreaterThan(0);

    await server.stop();
    expect((await good.rl.take('auth', big)).storeError).toBe(true);
    expect(warnings(good.log.lines).length).toBeGreaterThan(0);

    for (const text of [good.log.raw.join(''), bad.log.raw.join('')]) {
      expect(text).not.toContain('right-pw-7281');
      expect(text).not.toContain('wrong-pw-4410');
      expect(text).toContain(`127.0.0.1:${server.port}`);
    }
  });
});

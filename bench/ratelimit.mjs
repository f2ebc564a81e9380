// Cost of one rate-limit check, per store: latency of a single take (p50/p99, sequential) and
// throughput with many checks in flight, against a no-limiter baseline. Starts its own
// redis-server on a free port (or uses REDIS_URL).
//
//   npx tsc -p tsconfig.build.json && node bench/ratelimit.mjs [--n 20000] [--concurrency 64] [--json]
import { parseArgs } from 'node:util';
import pino from 'pino';
import { createRateLimiter } from '../dist/ratelimit/index.js';
import { startRedis } from './lib/redis.mjs';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '64' },
    keys: { type: 'string', default: '10000' },
    json: { type: 'boolean', default: false },
  },
});
const N = Number(args.n);
const CONCURRENCY = Number(args.concurrency);
const KEYS = Array.from({ length: Number(args.keys) }, (_, i) => `10.0.${(i >> 8) & 255}.${i & 255}`);
// Every take admitted, so every take writes: the expensive path.
const RULE = { rate: 1e6, burst: 1e6 };

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/** Sequential takes, one at a time: what a single request pays. */
async function latency(take) {
  for (let i = 0; i < Math.min(N, 2000); i++) await take(KEYS[i % KEYS.length]); // warm-up
  const us = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    const t = process.hrtime.bigint();
    await take(KEYS[i % KEYS.length]);
    us[i] = Number(process.hrtime.bigint() - t) / 1000;
  }
  us.sort();
  return { p50: pct(us, 50), p99: pct(us, 99), mean: us.reduce((a, b) => a + b, 0) / N };
}

/** CONCURRENCY checks in flight at all times: what the limiter sustains under load. */
async function throughput(take) {
  let next = 0;
  const total = N * 2;
  const t = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < total) await take(KEYS[next++ % KEYS.length]);
    }),
  );
  return total / (Number(process.hrtime.bigint() - t) / 1e9);
}

const logger = pino({ level: 'warn' });
const baseConfig = {
  enabled: true,
  key: 'ip',
  rate: 10,
  burst: 20,
  onStoreError: 'allow',
  redis: { url: '', prefix: 'aigate:bench:', commandTimeout: 50 },
};

const redisServer = process.env.REDIS_URL ? { url: process.env.REDIS_URL, stop() {} } : await startRedis();
const results = [];
try {
  const none = async () => ({ allowed: true });
  const memory = createRateLimiter({ ...baseConfig, store: 'memory' }, { logger });
  const redis = createRateLimiter(
    { ...baseConfig, store: 'redis', redis: { ...baseConfig.redis, url: redisServer.url } },
    { logger },
  );
  if (!(await redis.whenReady(5000))) throw new Error('Redis not ready');

  for (const [name, take] of [
    ['none', none],
    ['memory', (k) => memory.take(k, RULE)],
    ['redis', async (k) => {
      const d = await redis.take(k, RULE);
      if (d.storeError) throw new Error('store error during the benchmark');
      return d;
    }],
  ]) {
    const lat = await latency(take);
    const tps = await throughput(take);
    results.push({ store: name, ...lat, takesPerSec: tps });
  }
  await memory.close();
  await redis.close();
} finally {
  await redisServer.stop();
}

const base = results[0];
if (args.json) {
  console.log(JSON.stringify({ n: N, concurrency: CONCURRENCY, keys: KEYS.length, node: process.version, results }));
} else {
  console.log(`rate-limit check cost — ${N} sequential takes, then ${N * 2} with ${CONCURRENCY} in flight, ${KEYS.length} keys, node ${process.version}`);
  console.log('store    p50 µs   p99 µs   mean µs   added p50 µs   takes/s (concurrent)');
  for (const r of results) {
    console.log(
      `${r.store.padEnd(8)} ${r.p50.toFixed(1).padStart(7)} ${r.p99.toFixed(1).padStart(8)} ${r.mean.toFixed(1).padStart(9)} ` +
        `${(r.p50 - base.p50).toFixed(1).padStart(14)} ${Math.round(r.takesPerSec).toLocaleString('en-US').padStart(21)}`,
    );
  }
}

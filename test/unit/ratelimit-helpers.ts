// Shared by the rate-limit test files.
import { Writable } from 'node:stream';
import pino from 'pino';
import { configSchema, type RateLimitConfig } from '../../src/config/schema.js';
import type { Metrics } from '../../src/metrics.js';

export type RedisSection = RateLimitConfig['redis'];

/** The schema's own defaults for `rateLimit`, with overrides. */
export function rateLimitConfig(over: Partial<RateLimitConfig> = {}): RateLimitConfig {
  return { ...configSchema.parse({}).rateLimit, ...over };
}

export function redisConfig(redis: Partial<RedisSection> & { url: string }, over: Partial<RateLimitConfig> = {}): RateLimitConfig {
  return rateLimitConfig({
    store: 'redis',
    redis: { ...rateLimitConfig().redis, ...redis },
    ...over,
  });
}

/** A pino logger writing parsed JSON lines into an array. */
export function captureLogger() {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      raw.push(chunk.toString());
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines, raw };
}

export async function storeErrorCount(metrics: Metrics): Promise<number> {
  return (await metrics.rateLimitStoreErrors.get()).values[0]?.value ?? 0;
}

export function clock(startMs = 1_000) {
  let t = startMs;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

export const silentLogger = pino({ level: 'silent' });

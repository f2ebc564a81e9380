// Rate limiting (SPEC §6): a token bucket per key, in memory or in Redis, and what happens when
// Redis cannot be asked. The pipeline's limit stage owns keys, the 429 and the audit line; this
// room owns the bucket arithmetic, the stores and their failure policy.
import type { Logger } from 'pino';
import type { BucketConfig, RateLimitConfig } from '../config/schema.js';
import type { Metrics } from '../metrics.js';
import { type BucketRule, type RateDecision, decide, storeErrorDecision } from './bucket.js';
import { createRedisConnection } from './connection.js';
import { MemoryBucketStore } from './memory.js';
import { RedisBucketStore } from './redis.js';
import { StoreFailureReporter } from './reporter.js';
import type { BucketStore } from './store.js';

export type { BucketRule, RateDecision } from './bucket.js';
export { MemoryBucketStore } from './memory.js';
export { RedisBucketStore } from './redis.js';
export type { BucketStore } from './store.js';

export interface RateLimiter {
  /** Takes one token from `key`'s bucket. Never rejects: a store failure is `storeError: true`. */
  take(key: string, rule: BucketRule): Promise<RateDecision>;
  /**
   * The same take decided at once when the store answers without a round trip (memory); undefined
   * when it cannot (Redis): then call take. Saves every request on the memory store a promise.
   */
  takeNow(key: string, rule: BucketRule): RateDecision | undefined;
  /** Resolves true once the store can be asked, false after `timeoutMs`; never rejects. */
  whenReady(timeoutMs: number): Promise<boolean>;
  status(): { store: 'memory' | 'redis'; healthy: boolean };
  close(): Promise<void>;
}

export interface RateLimiterDeps {
  logger: Logger;
  metrics?: Metrics;
  /** Monotonic clock in ms: the memory store's buckets and the failure-log throttle. */
  now?: () => number;
}

/** A store plus the `onStoreError` policy: the only place a store failure becomes a decision. */
export class StoreRateLimiter implements RateLimiter {
  constructor(
    private readonly store: BucketStore,
    private readonly onStoreError: 'allow' | 'deny',
    private readonly reporter?: StoreFailureReporter,
  ) {}

  async take(key: string, rule: BucketRule): Promise<RateDecision> {
    try {
      return decide(await this.store.take(key, rule), rule);
    } catch (err) {
      this.reporter?.checkFailed(err);
      return storeErrorDecision(this.onStoreError, rule);
    }
  }

  takeNow(key: string, rule: BucketRule): RateDecision | undefined {
    if (this.store.takeSync === undefined) return undefined;
    try {
      return decide(this.store.takeSync(key, rule), rule);
    } catch (err) {
      this.reporter?.checkFailed(err);
      return storeErrorDecision(this.onStoreError, rule);
    }
  }

  whenReady(timeoutMs: number): Promise<boolean> {
    return this.store.whenReady(timeoutMs);
  }

  status(): { store: 'memory' | 'redis'; healthy: boolean } {
    return { store: this.store.kind, healthy: this.store.healthy() };
  }

  close(): Promise<void> {
    return this.store.close();
  }
}

/**
 * Builds the limiter `rateLimit.store` names. With Redis it returns at once and connects in the
 * background: a Redis that is down at start-up makes checks answer `onStoreError`, never a crash
 * or a hang (await `whenReady` for a bounded wait if the first requests should see Redis).
 * Throws only for a malformed `rateLimit.redis` (message names the key, never the password).
 */
export function createRateLimiter(cfg: RateLimitConfig, deps: RateLimiterDeps): RateLimiter {
  const now = deps.now ?? (() => performance.now());
  if (cfg.store === 'memory') {
    return new StoreRateLimiter(new MemoryBucketStore({ now }), cfg.onStoreError);
  }

  const conn = createRedisConnection(cfg.redis);
  const reporter = new StoreFailureReporter({
    logger: deps.logger,
    metrics: deps.metrics,
    now,
    target: conn.target,
    onStoreError: cfg.onStoreError,
    secrets: conn.secrets,
  });
  // Without an 'error' listener ioredis prints every failed reconnect to the console.
  conn.client.on('error', (err: unknown) => reporter.connectionError(err));
  if (conn.isCluster) conn.client.on('node error', (err: unknown) => reporter.connectionError(err));
  conn.client.on('ready', () => reporter.connected());

  const store = new RedisBucketStore(conn.client, {
    prefix: cfg.redis.prefix,
    timeoutMs: cfg.redis.commandTimeout,
  });
  return new StoreRateLimiter(store, cfg.onStoreError, reporter);
}

/** The bucket a request is charged to: the route's override, else the global rate and burst. */
export function bucketRule(cfg: RateLimitConfig, routeOverride?: BucketConfig): BucketRule {
  return routeOverride ?? { rate: cfg.rate, burst: cfg.burst };
}

/**
 * SPEC §6 response headers for a decision, named in lower case as Node's header maps are:
 * ratelimit-limit/remaining/reset on every limited response, retry-after (whole seconds, rounded
 * up) on a refusal. Written into `into`, which is returned.
 */
export function rateLimitHeaders(d: RateDecision, into: Record<string, string> = {}): Record<string, string> {
  into['ratelimit-limit'] = String(d.limit);
  into['ratelimit-remaining'] = String(d.remaining);
  into['ratelimit-reset'] = String(d.resetSeconds);
  if (!d.allowed) into['retry-after'] = String(d.retryAfterSeconds);
  return into;
}

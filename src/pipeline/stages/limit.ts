// Rate-limit stage (SPEC §6): one token per request from the client's bucket. Passed and refused
// responses both carry RateLimit-*; a refusal is 429 with Retry-After.
import type { RateLimitConfig } from '../../config/schema.js';
import { clientKey } from '../../route/address.js';
import { rateLimitHeaders, type BucketRule, type RateDecision, type RateLimiter } from '../../ratelimit/index.js';
import { ProxyError } from '../errors.js';
import type { Exchange, Stage } from '../exchange.js';
import type { Client } from '../flow.js';

export function limitStage(cfg: RateLimitConfig, limiter: RateLimiter): Stage {
  const globalBucket = { rate: cfg.rate, burst: cfg.burst };
  return (ex) => {
    const { flow, target } = ex;
    const who = bucketOwner(cfg.key, flow.client);
    // A route with its own rate/burst has its own bucket: one capacity cannot be shared by two
    // different policies. Routes without an override share the developer's global bucket.
    const key = target?.bucketIsOverride ? `route:${target.route}|${who}` : who;
    const bucket = target?.bucket ?? globalBucket;
    // The memory store decides at once: no promise, no turn of the event loop.
    const now = limiter.takeNow(key, bucket);
    if (now !== undefined) return admit(ex, bucket, now);
    return limiter.take(key, bucket).then((decision) => admit(ex, bucket, decision));
  };
}

/** RateLimit-* on every response to the request; a refusal is 429 with Retry-After. */
function admit(ex: Exchange, bucket: BucketRule, decision: RateDecision): void {
  rateLimitHeaders(decision, ex.responseHeaders);
  if (!decision.allowed) {
    const why = decision.storeError
      ? 'rate-limit store unavailable and rateLimit.onStoreError is deny; try again shortly'
      : `rate limit exceeded: ${bucket.burst} requests burst, ${bucket.rate}/s sustained; retry in ${decision.retryAfterSeconds}s`;
    throw new ProxyError('rate_limited', why, { 'retry-after': String(decision.retryAfterSeconds) });
  }
}

/**
 * Whose bucket a request takes from. `user`: the authenticated user, else the address.
 * `credential`: the vendor key's fingerprint, else the user, else the address — each key its own
 * bucket, however many developers share one address. An address is keyed by `clientKey` (IPv6: its /64).
 */
export function bucketOwner(key: RateLimitConfig['key'], client: Client): string {
  if (key === 'credential' && client.credential !== undefined) return `credential:${client.credential}`;
  if (key !== 'ip' && client.user !== null) return `user:${client.user}`;
  return `ip:${clientKey(client.ip)}`;
}

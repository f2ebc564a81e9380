// Rate-limit stage (SPEC §6): one token per request from the client's bucket. Passed and refused
// responses both carry RateLimit-*; a refusal is 429 with Retry-After.
import type { RateLimitConfig } from '../../config/schema.js';
import { rateLimitHeaders, type RateLimiter } from '../../ratelimit/index.js';
import { ProxyError } from '../errors.js';
import type { Stage } from '../exchange.js';

export function limitStage(cfg: RateLimitConfig, limiter: RateLimiter): Stage {
  return async (ex) => {
    const { flow, target } = ex;
    const who = cfg.key === 'user' && flow.client.user !== null ? `user:${flow.client.user}` : `ip:${flow.client.ip}`;
    // A route with its own rate/burst has its own bucket: one capacity cannot be shared by two
    // different policies. Routes without an override share the developer's global bucket.
    const key = target?.bucketIsOverride ? `route:${target.route}|${who}` : who;
    const bucket = target?.bucket ?? { rate: cfg.rate, burst: cfg.burst };
    const decision = await limiter.take(key, bucket);
    rateLimitHeaders(decision, ex.responseHeaders);
    if (!decision.allowed) {
      const why = decision.storeError
        ? 'rate-limit store unavailable and rateLimit.onStoreError is deny; try again shortly'
        : `rate limit exceeded: ${bucket.burst} requests burst, ${bucket.rate}/s sustained; retry in ${decision.retryAfterSeconds}s`;
      throw new ProxyError('rate_limited', why, { 'retry-after': String(decision.retryAfterSeconds) });
    }
  };
}

// Token-bucket arithmetic shared by both stores (SPEC §6). The Redis Lua script (script.ts)
// mirrors `refill` and `takeOne` operation for operation, so the memory and Redis stores give the
// same answers for the same sequence of (time, take) — test/unit/ratelimit-redis.test.ts checks it.
//
// State is (tokens, updatedUs): a float token count and the microsecond time it was computed at.
// An absent bucket is a full one, which is why a store may forget a bucket once it has refilled.

/** A bucket's policy: `rate` tokens added per second, capacity `burst`, one token per request. */
export interface BucketRule {
  rate: number;
  burst: number;
}

/** What one take answered, in the units of the SPEC §6 response headers. */
export interface RateDecision {
  allowed: boolean;
  /** RateLimit-Limit: the bucket capacity (`burst`). */
  limit: number;
  /** RateLimit-Remaining: whole tokens left after this request. */
  remaining: number;
  /** RateLimit-Reset: whole seconds (rounded up) until the bucket is full again. */
  resetSeconds: number;
  /** Retry-After: whole seconds (rounded up) until one token is available; 0 when allowed. */
  retryAfterSeconds: number;
  /** True when the store could not be asked and `onStoreError` decided. */
  storeError: boolean;
}

/** What a store reports for one take: admission and the tokens left afterwards. */
export interface TakeResult {
  allowed: boolean;
  tokens: number;
}

/**
 * Float slack for the refill arithmetic: rate × elapsed that should be exactly 1 token may come out
 * as 0.9999999999; such a request is admitted rather than refused for a rounding error.
 */
export const EPSILON = 1e-9;

/** Tokens in a bucket that held `tokens` `elapsedUs` microseconds ago. */
export function refill(tokens: number, elapsedUs: number, rule: BucketRule): number {
  // A clock that stepped back (Redis failover to a host with another clock) adds nothing.
  const t = elapsedUs > 0 ? tokens + (elapsedUs * rule.rate) / 1000000 : tokens;
  return t > rule.burst ? rule.burst : t;
}

/** Takes one token if there is one. */
export function takeOne(tokens: number): TakeResult {
  if (tokens >= 1 - EPSILON) {
    const left = tokens - 1;
    return { allowed: true, tokens: left > 0 ? left : 0 };
  }
  return { allowed: false, tokens };
}

/** Milliseconds (rounded up, at least 1) until a bucket holding `tokens` is full: its idle TTL. */
export function msUntilFull(tokens: number, rule: BucketRule): number {
  const ms = Math.ceil(((rule.burst - tokens) * 1000) / rule.rate);
  return ms > 1 ? ms : 1;
}

function ceilSeconds(tokensMissing: number, rule: BucketRule): number {
  const s = Math.ceil(tokensMissing / rule.rate - EPSILON);
  return s > 0 ? s : 0;
}

/** Turns a store's answer into header values. */
export function decide(result: TakeResult, rule: BucketRule): RateDecision {
  const { allowed, tokens } = result;
  return {
    allowed,
    limit: rule.burst,
    remaining: Math.min(rule.burst, Math.max(0, Math.floor(tokens + EPSILON))),
    resetSeconds: ceilSeconds(rule.burst - tokens, rule),
    retryAfterSeconds: allowed ? 0 : Math.max(1, ceilSeconds(1 - tokens, rule)),
    storeError: false,
  };
}

/**
 * The answer while the store is unreachable. `allow` fails open and reports what a fresh bucket
 * would say after one request (the same as a bucket Redis has expired); `deny` refuses with
 * Retry-After 1 so clients come back about when the store may be back.
 */
export function storeErrorDecision(policy: 'allow' | 'deny', rule: BucketRule): RateDecision {
  if (policy === 'allow') {
    return { ...decide({ allowed: true, tokens: rule.burst - 1 }, rule), storeError: true };
  }
  return { allowed: false, limit: rule.burst, remaining: 0, resetSeconds: 1, retryAfterSeconds: 1, storeError: true };
}

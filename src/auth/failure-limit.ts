// Failed proxy logins per client (limits.authFailuresPerMinute; Htpasswd names a client by clientKey:
// its address, an IPv6 one by its /64): a token bucket of that many tokens, refilled evenly over a
// minute. A check takes a token when it is queued (so a flood cannot queue more checks than it may
// fail) and gets it back if the password was right or the check never ran. The bucket is full again
// after a minute without failures, so a real user behind the same NAT (or in the same /64) as an
// attacker is never locked out for longer than the attack lasts plus a minute; and a credential
// already verified is answered from cache without asking the limiter at all.

/** Addresses tracked at most; beyond, the longest-tracked is forgotten (its bucket is full again). */
const MAX_TRACKED = 10_000;
const MINUTE_MS = 60_000;

export class FailureLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly perMs: number;

  /** `perMinute` 0: no limit. */
  constructor(
    readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {
    this.perMs = perMinute / MINUTE_MS;
  }

  /** Takes a token for one more check from `client`; false when its failures used them all. */
  take(client: string): boolean {
    if (this.perMinute === 0) return true;
    const b = this.refilled(client);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    this.buckets.delete(client); // most recently used last: the first entries are the ones to forget
    this.buckets.set(client, b);
    while (this.buckets.size > MAX_TRACKED) this.buckets.delete(this.buckets.keys().next().value as string);
    return true;
  }

  /** Gives back the token of a check that did not fail (right password, dropped, refused). */
  giveBack(client: string): void {
    if (this.perMinute === 0) return;
    const b = this.buckets.get(client);
    if (!b) return;
    this.refill(b);
    b.tokens += 1;
    if (b.tokens >= this.perMinute) this.buckets.delete(client);
  }

  /** Whole seconds until `client` may try again (at least 1). */
  retryAfterSeconds(client: string): number {
    const b = this.buckets.get(client);
    if (!b || this.perMinute === 0) return 1;
    this.refill(b);
    return Math.max(1, Math.ceil((1 - b.tokens) / this.perMs / 1000));
  }

  private refilled(client: string): { tokens: number; at: number } {
    const b = this.buckets.get(client);
    if (!b) return { tokens: this.perMinute, at: this.now() };
    this.refill(b);
    return b;
  }

  private refill(b: { tokens: number; at: number }): void {
    const t = this.now();
    b.tokens = Math.min(this.perMinute, b.tokens + (t - b.at) * this.perMs);
    b.at = t;
  }
}

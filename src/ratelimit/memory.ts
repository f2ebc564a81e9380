// In-process token buckets: the embedded default for one-machine use. Same arithmetic as Redis
// (bucket.ts), a clock that tests can drive, and memory bounded by forgetting full buckets.
import { type BucketRule, type TakeResult, msUntilFull, refill, takeOne } from './bucket.js';
import type { BucketStore } from './store.js';

interface Bucket {
  tokens: number;
  updatedUs: number;
  /** When this bucket is full again; from then on it equals an absent bucket and may go. */
  fullAtUs: number;
}

export interface MemoryStoreOptions {
  /** Monotonic clock in milliseconds; default `performance.now`. */
  now?: () => number;
  /** How often (by that clock) full buckets are swept out; default 10 s. */
  sweepIntervalMs?: number;
}

export class MemoryBucketStore implements BucketStore {
  readonly kind = 'memory' as const;
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;
  private readonly sweepIntervalUs: number;
  private lastSweepUs: number;

  constructor(opts: MemoryStoreOptions = {}) {
    this.now = opts.now ?? (() => performance.now());
    this.sweepIntervalUs = (opts.sweepIntervalMs ?? 10_000) * 1000;
    this.lastSweepUs = this.now() * 1000;
  }

  take(key: string, rule: BucketRule): Promise<TakeResult> {
    return Promise.resolve(this.takeSync(key, rule));
  }

  /** The synchronous core; a take is atomic because nothing else runs while it does. */
  takeSync(key: string, rule: BucketRule): TakeResult {
    const nowUs = this.now() * 1000;
    // Sweeping from the hot path (amortised: one pass per interval) rather than a timer keeps the
    // store free of handles to close and lets a fake clock drive eviction in tests.
    if (nowUs - this.lastSweepUs >= this.sweepIntervalUs) this.sweep(nowUs);

    const bucket = this.buckets.get(key);
    const tokens = bucket ? refill(bucket.tokens, nowUs - bucket.updatedUs, rule) : rule.burst;
    const result = takeOne(tokens);
    // A refusal changes nothing: the stored (tokens, time) still describes the bucket exactly.
    if (result.allowed) {
      const fullAtUs = nowUs + msUntilFull(result.tokens, rule) * 1000;
      if (bucket) {
        bucket.tokens = result.tokens;
        bucket.updatedUs = nowUs;
        bucket.fullAtUs = fullAtUs;
      } else {
        this.buckets.set(key, { tokens: result.tokens, updatedUs: nowUs, fullAtUs });
      }
    }
    return result;
  }

  /** Buckets currently held (full ones are forgotten at the next sweep). */
  get size(): number {
    return this.buckets.size;
  }

  private sweep(nowUs: number): void {
    this.lastSweepUs = nowUs;
    for (const [key, bucket] of this.buckets) {
      if (bucket.fullAtUs <= nowUs) this.buckets.delete(key);
    }
  }

  healthy(): boolean {
    return true;
  }

  whenReady(): Promise<boolean> {
    return Promise.resolve(true);
  }

  async close(): Promise<void> {
    this.buckets.clear();
  }
}

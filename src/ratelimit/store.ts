// The seam between the limiter (policy, failures, reporting) and where buckets live.
import type { BucketRule, TakeResult } from './bucket.js';

export interface BucketStore {
  readonly kind: 'memory' | 'redis';
  /** Takes one token from `key`'s bucket atomically; rejects when the store cannot be asked. */
  take(key: string, rule: BucketRule): Promise<TakeResult>;
  /** The same take answered at once, by a store that needs no round trip (memory); throws as take rejects. */
  takeSync?(key: string, rule: BucketRule): TakeResult;
  /** Whether the store can be asked right now (connected, for Redis). */
  healthy(): boolean;
  /** Resolves true once healthy, false after `timeoutMs`; never rejects. */
  whenReady(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

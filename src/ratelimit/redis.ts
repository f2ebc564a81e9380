// Token buckets in Redis, shared by every proxy process and replica: one EVALSHA per take.
import { Cluster } from 'ioredis';
import type { BucketRule, TakeResult } from './bucket.js';
import type { RedisClient } from './connection.js';
import { TAKE_SCRIPT } from './script.js';
import type { BucketStore } from './store.js';

const COMMAND = 'aigateTakeToken';

type TakeCommand = (key: string, rate: number, burst: number, nowUs: string) => Promise<unknown>;

export interface RedisStoreOptions {
  /** Prepended to every bucket key (`rateLimit.redis.prefix`). */
  prefix: string;
  /**
   * How long a take may wait for Redis (`rateLimit.redis.commandTimeout`) before it counts as a
   * store error; it bounds the whole take, Cluster redirections and retries included.
   */
  timeoutMs: number;
  /** Tests only: drive the script's clock (µs) instead of Redis TIME. */
  clockUs?: () => number;
}

export class StoreDeadlineError extends Error {
  constructor(ms: number) {
    super(`rate-limit store did not answer within ${ms}ms`);
    this.name = 'StoreDeadlineError';
  }
}

export class RedisBucketStore implements BucketStore {
  readonly kind = 'redis' as const;
  private readonly run: TakeCommand;

  constructor(
    readonly client: RedisClient,
    private readonly opts: RedisStoreOptions,
  ) {
    // defineCommand sends EVAL once per connection and EVALSHA after that, and falls back to EVAL
    // on NOSCRIPT (a Redis restarted or flushed under us), so the script text crosses the wire
    // once per connection, not once per request.
    client.defineCommand(COMMAND, { numberOfKeys: 1, lua: TAKE_SCRIPT });
    const fn = (client as unknown as Record<string, TakeCommand | undefined>)[COMMAND];
    if (!fn) throw new Error('ioredis defineCommand did not install the rate-limit script');
    this.run = fn.bind(client);
  }

  async take(key: string, rule: BucketRule): Promise<TakeResult> {
    const now = this.opts.clockUs ? String(this.opts.clockUs()) : '';
    const pending = this.run(this.opts.prefix + key, rule.rate, rule.burst, now);
    return parseReply(await withDeadline(pending, this.opts.timeoutMs));
  }

  healthy(): boolean {
    return this.client.status === 'ready';
  }

  async whenReady(timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    if (!this.healthy() && !(await this.nextReady(timeoutMs))) return false;
    if (!(this.client instanceof Cluster)) return true;
    // A Cluster is "ready" once it knows the slots; connections to the masters are opened lazily
    // and, without an offline queue, checks racing such a connection fail. PING opens them all.
    const masters = this.client.nodes('master');
    const pings = Promise.all(masters.map((node) => node.ping())).then(
      () => true,
      () => false,
    );
    return withDeadline(pings, Math.max(0, deadline - performance.now())).catch(() => false);
  }

  private nextReady(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.client.off('ready', onReady);
        resolve(ok);
      };
      const onReady = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.client.on('ready', onReady);
    });
  }

  async close(): Promise<void> {
    const client = this.client;
    if (client.status === 'end') return;
    if (client.status === 'ready') {
      // QUIT lets in-flight takes finish; a Redis that stopped answering must not hold up shutdown.
      await withDeadline(client.quit(), 500).catch(() => undefined);
    }
    client.disconnect();
  }
}

function parseReply(reply: unknown): TakeResult {
  if (Array.isArray(reply) && reply.length === 2) {
    const tokens = Number(reply[1]);
    if (Number.isFinite(tokens)) return { allowed: Number(reply[0]) === 1, tokens };
  }
  throw new Error('rate-limit script returned an unexpected reply');
}

/**
 * Rejects with StoreDeadlineError if `pending` has not settled `ms` after the call.
 *
 * Why not ioredis's own commandTimeout: after the event loop has been busy (TLS handshakes,
 * a large body, GC) for longer than the timeout, Node runs expired timers before it reads the
 * sockets, so a reply already sitting in the socket would be declared late — and a refusal turned
 * into an onStoreError "allow". Measured: a 100 ms stall made every in-flight check a store error.
 * Here an expired deadline first lets one poll phase run (setImmediate comes after it), so only a
 * reply that really has not arrived counts as a timeout.
 */
function withDeadline<T>(pending: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      setImmediate(() => {
        if (settled) return;
        settled = true;
        reject(new StoreDeadlineError(ms));
      });
    }, ms);
    pending.then(
      (value) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

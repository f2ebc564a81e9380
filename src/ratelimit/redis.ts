// Token buckets in Redis, shared by every proxy process and replica: one EVALSHA at a time, carrying
// every take that arrived while the previous one was out.
import { type BucketRule, type TakeResult, takeOne } from './bucket.js';
import { ioredis, type RedisClient } from './connection.js';
import { TAKE_SCRIPT } from './script.js';
import type { BucketStore } from './store.js';

const COMMAND = 'aigateTakeTokens';

/** Takes per script call: bounds one script run (at most this many entries, keys and writes). */
const MAX_BATCH = 64;

type TakeCommand = (numKeys: number, ...keysThenArgs: (string | number)[]) => Promise<unknown>;

export interface RedisStoreOptions {
  /** Prepended to every bucket key (`rateLimit.redis.prefix`). */
  prefix: string;
  /**
   * How long a take may wait for Redis (`rateLimit.redis.commandTimeout`) before it counts as a
   * store error, from the moment its command is sent; it bounds the whole take, Cluster
   * redirections and retries included.
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

interface PendingTake {
  key: string;
  rate: number;
  burst: number;
  /** '' = Redis TIME. */
  nowUs: string;
  resolve(result: TakeResult): void;
  reject(err: unknown): void;
}

/** Consecutive takes on one key with one rule at one time: one entry of the script's batch. */
interface Entry {
  key: string;
  rate: number;
  burst: number;
  nowUs: string;
  takes: PendingTake[];
}

export class RedisBucketStore implements BucketStore {
  readonly kind = 'redis' as const;
  private readonly run: TakeCommand;
  /** A Cluster refuses a script over keys in different slots, so there each take goes alone. */
  private readonly batchLimit: number;
  private queue: PendingTake[] = [];
  /** Script calls sent and not yet answered (or timed out). */
  private inFlight = 0;

  constructor(
    readonly client: RedisClient,
    private readonly opts: RedisStoreOptions,
  ) {
    // defineCommand sends EVAL once per connection and EVALSHA after that, and falls back to EVAL
    // on NOSCRIPT (a Redis restarted or flushed under us), so the script text crosses the wire
    // once per connection, not once per request. No numberOfKeys: a call passes its key count.
    client.defineCommand(COMMAND, { lua: TAKE_SCRIPT });
    const fn = (client as unknown as Record<string, TakeCommand | undefined>)[COMMAND];
    if (!fn) throw new Error('ioredis defineCommand did not install the rate-limit script');
    this.run = fn.bind(client);
    this.batchLimit = client instanceof ioredis().Cluster ? 1 : MAX_BATCH;
  }

  /**
   * Queues the take. With no call out, the queue goes to Redis in the check phase of this
   * event-loop turn, after every socket that was readable in it has been handled; while a call is
   * out, it waits for that call's answer and then goes with everything queued meanwhile. Under
   * load many requests share one command — one write, one script run, one reply to parse —
   * instead of paying Redis and ioredis per request (the socket round trip is most of the cost:
   * on the bench host ~110 µs of CPU per call, under 1 µs per extra take in it); alone, a take waits
   * for nothing but the end of its turn. Waiting for the previous answer is what makes batches
   * grow with load: measured under S1, 8.5 takes per call when each turn sent its own, 14.5 this
   * way — Redis sharing the cores often answers a turn or more later.
   */
  take(key: string, rule: BucketRule): Promise<TakeResult> {
    return new Promise<TakeResult>((resolve, reject) => {
      const nowUs = this.opts.clockUs ? String(this.opts.clockUs()) : '';
      if (this.queue.length === 0 && !this.waitForAnswer()) setImmediate(this.flush);
      this.queue.push({ key: this.opts.prefix + key, rate: rule.rate, burst: rule.burst, nowUs, resolve, reject });
    });
  }

  /** Batching needs a batch: a Cluster's calls carry one take each, so nothing waits there. */
  private waitForAnswer(): boolean {
    return this.inFlight > 0 && this.batchLimit > 1;
  }

  private readonly flush = (): void => {
    const queue = this.queue;
    this.queue = [];
    for (let i = 0; i < queue.length; i += this.batchLimit) this.send(queue.slice(i, i + this.batchLimit));
  };

  private send(batch: PendingTake[]): void {
    const entries = toEntries(batch);
    const keys: string[] = [];
    const args: (string | number)[] = [];
    for (const e of entries) {
      keys.push(e.key);
      args.push(e.rate, e.burst, e.nowUs, e.takes.length);
    }
    let pending: Promise<unknown>;
    try {
      pending = this.run(keys.length, ...keys, ...args);
    } catch (err) {
      for (const t of batch) t.reject(err);
      return;
    }
    // The deadline starts now that the command is written: time the event loop spent busy before
    // this turn's check phase is not Redis being slow.
    this.inFlight++;
    withDeadline(pending, this.opts.timeoutMs).then(
      (reply) => {
        this.answered(false);
        let results: TakeResult[][];
        try {
          results = parseReply(reply, entries);
        } catch (err) {
          for (const t of batch) t.reject(err);
          return;
        }
        entries.forEach((e, i) => e.takes.forEach((t, j) => t.resolve(results[i]![j]!)));
      },
      (err: unknown) => {
        this.answered(err instanceof StoreDeadlineError);
        for (const t of batch) t.reject(err);
      },
    );
  }

  /**
   * A call is over: the takes that waited for it go out in this turn's check phase. If it is over
   * because Redis did not answer within the deadline, they fail now instead, with the same error —
   * they were queued on the same silent connection, and sending them would make a request wait a
   * second deadline.
   */
  private answered(timedOut: boolean): void {
    this.inFlight--;
    // A Cluster's queued takes never waited for this call (and may be bound for another node).
    if (this.batchLimit === 1 || this.inFlight > 0 || this.queue.length === 0) return;
    if (timedOut) {
      const queue = this.queue;
      this.queue = [];
      const err = new StoreDeadlineError(this.opts.timeoutMs);
      for (const t of queue) t.reject(err);
      return;
    }
    setImmediate(this.flush);
  }

  healthy(): boolean {
    return this.client.status === 'ready';
  }

  async whenReady(timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    if (!this.healthy() && !(await this.nextReady(timeoutMs))) return false;
    if (!(this.client instanceof ioredis().Cluster)) return true;
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
    this.flush(); // takes queued in this turn go out ahead of QUIT, which lets them finish
    const client = this.client;
    if (client.status === 'end') return;
    if (client.status === 'ready') {
      // QUIT lets in-flight takes finish; a Redis that stopped answering must not hold up shutdown.
      await withDeadline(client.quit(), 500).catch(() => undefined);
    }
    client.disconnect();
  }
}

/**
 * Groups a batch into the script's entries. A take joins the entry before it on its key only if
 * that entry is the key's latest and has the same rule and time, so each key's takes stay in
 * order; takes on different keys are independent, so their relative order does not matter.
 */
function toEntries(batch: PendingTake[]): Entry[] {
  const entries: Entry[] = [];
  const latest = new Map<string, Entry>();
  for (const t of batch) {
    const last = latest.get(t.key);
    if (last && last.rate === t.rate && last.burst === t.burst && last.nowUs === t.nowUs) {
      last.takes.push(t);
      continue;
    }
    const entry: Entry = { key: t.key, rate: t.rate, burst: t.burst, nowUs: t.nowUs, takes: [t] };
    entries.push(entry);
    latest.set(t.key, entry);
  }
  return entries;
}

/**
 * Each take's answer, replayed from what the script reports per entry (the tokens before the
 * entry, and how many of its takes it admitted) with the same `takeOne` the memory store uses.
 * The replay must admit exactly as many: anything else is a reply this code does not understand.
 */
function parseReply(reply: unknown, entries: Entry[]): TakeResult[][] {
  const unexpected = () => new Error('rate-limit script returned an unexpected reply');
  if (!Array.isArray(reply) || reply.length !== 2 * entries.length) throw unexpected();
  return entries.map((e, i) => {
    let tokens = Number(reply[2 * i + 1]);
    if (!Number.isFinite(tokens)) throw unexpected();
    let admitted = 0;
    const results = e.takes.map(() => {
      const r = takeOne(tokens);
      tokens = r.tokens;
      if (r.allowed) admitted++;
      return r;
    });
    if (Number(reply[2 * i]) !== admitted) throw unexpected();
    return results;
  });
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

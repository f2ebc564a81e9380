// Users file for forward-proxy authentication (`auth.usersFile`): Apache htpasswd format, bcrypt
// hashes only (`htpasswd -B`, `$2y$`, or `$2a$`/`$2b$` from other tools). MD5-crypt ($apr1$), SHA-1
// ({SHA}), crypt and plain text are refused at load: they are fast to brute-force if the file leaks.
//
// A client behind a proxy sends the same Proxy-Authorization on every CONNECT, often dozens at once
// when an IDE starts. Each bcrypt check costs ~2-300 ms of CPU depending on cost, so results are
// cached keyed by an HMAC of (user, password) under a per-process random key (the cache never holds
// the password or anything it could be recovered from), and concurrent identical checks share one
// comparison. Failures are cached briefly too, in their own smaller map (a flood of wrong passwords
// cannot evict the users who signed in), so a misconfigured client retrying in a loop costs one
// bcrypt per failure window.
//
// What is left costs bcrypt, and is bounded (issue #19): checks queued or running at most
// `maxPending` (beyond: `busy`), failed checks per client address limited (`throttled`), the queue
// shared fairly among addresses (fair-queue.ts), and a check whose clients all left dropped before
// it runs (`gone`).
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { clientKey } from '../route/address.js';
import { BcryptPool, defaultBcryptThreads } from './bcrypt-worker.js';
import { FailureLimiter } from './failure-limit.js';
import { FairQueue } from './fair-queue.js';

export class HtpasswdError extends Error {
  constructor(
    message: string,
    readonly file: string,
    readonly line: number | null,
  ) {
    super(message);
    this.name = 'HtpasswdError';
  }
}

const BCRYPT = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;

function hashKind(hash: string): string {
  if (hash.startsWith('$apr1$')) return 'Apache MD5 ($apr1$)';
  if (hash.startsWith('{SHA}')) return 'SHA-1 ({SHA})';
  if (hash.startsWith('$1$')) return 'MD5-crypt ($1$)';
  if (hash.startsWith('$5$')) return 'SHA-256-crypt ($5$)';
  if (hash.startsWith('$6$')) return 'SHA-512-crypt ($6$)';
  if (hash.startsWith('$2')) return 'a malformed bcrypt hash';
  return 'crypt or plain text';
}

/** user → bcrypt hash. Throws HtpasswdError naming the file and line; never echoes a hash. */
export function parseHtpasswd(text: string, file = 'users file'): Map<string, string> {
  const users = new Map<string, string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) return;
    const where = `${file}:${i + 1}`;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new HtpasswdError(`${where}: expected user:hash`, file, i + 1);
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    const m = BCRYPT.exec(hash);
    if (!m) {
      throw new HtpasswdError(
        `${where}: user "${user}" has ${hashKind(hash)}; only bcrypt hashes are accepted — recreate it with: htpasswd -B ${file} ${user}`,
        file,
        i + 1,
      );
    }
    const cost = Number(m[1]);
    if (cost < 4 || cost > 31) throw new HtpasswdError(`${where}: user "${user}" has an invalid bcrypt cost ${cost}`, file, i + 1);
    if (users.has(user)) throw new HtpasswdError(`${where}: user "${user}" is listed twice`, file, i + 1);
    users.set(user, hash);
  });
  return users;
}

export interface HtpasswdOptions {
  /** How long a successful check is remembered after its last use. Default 10 minutes. */
  successTtlMs?: number;
  /** How long a failed check is remembered. Default 30 seconds. */
  failureTtlMs?: number;
  /** Cached successes kept at most (failures: a tenth as many). Default 10 000. */
  maxEntries?: number;
  /** limits.authPending: checks queued or running at most. Default 64. */
  maxPending?: number;
  /** limits.authFailuresPerMinute: failed checks per client address; 0 = no limit. Default 30. */
  failuresPerMinute?: number;
  /** bcrypt threads. Default two (one on a single core). */
  threads?: number;
  /** Told what happens, for metrics. */
  events?: CheckEvents;
  now?: () => number;
}
/** @deprecated the old name */
export type VerifyCacheOptions = HtpasswdOptions;

export interface CheckEvents {
  /** A bcrypt comparison ran to its end. */
  checked?(ok: boolean): void;
  /** A queued check whose clients all left was dropped without running. */
  dropped?(): void;
  /** A client was refused without a check: the queue was full, or its address failed too often. */
  refused?(reason: 'busy' | 'throttled'): void;
}

/** Who asks: the address its failures count against (an IPv6 one by its /64), and a signal that fires when it leaves. */
export interface CheckContext {
  client?: string;
  signal?: AbortSignal;
}

export type CheckResult =
  | { kind: 'valid' }
  | { kind: 'invalid' }
  /** Too many checks queued (maxPending). */
  | { kind: 'busy'; retryAfterSeconds: number }
  /** This client's address failed too often (failuresPerMinute). */
  | { kind: 'throttled'; retryAfterSeconds: number }
  /** The client left before its check ran. */
  | { kind: 'gone' };

interface Waiter {
  resolve(result: CheckResult): void;
  reject(err: Error): void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

interface Job {
  key: string;
  /** The client whose limiter token the job holds. */
  owner: string;
  password: string;
  /** Compared against; the decoy for an unknown user. */
  hash: string | null;
  known: boolean;
  started: boolean;
  waiters: Set<Waiter>;
}

const VALID: CheckResult = { kind: 'valid' };
const INVALID: CheckResult = { kind: 'invalid' };
const GONE: CheckResult = { kind: 'gone' };

export class Htpasswd {
  private readonly cacheKey = randomBytes(32);
  private readonly successes = new Map<string, number>();
  private readonly failures = new Map<string, number>();
  private readonly jobs = new Map<string, Job>();
  private readonly queue = new FairQueue<Job>();
  private readonly pool: BcryptPool;
  private readonly limiter: FailureLimiter;
  private readonly successTtl: number;
  private readonly failureTtl: number;
  private readonly maxEntries: number;
  private readonly maxPending: number;
  private readonly events: CheckEvents;
  private readonly now: () => number;
  /** Compared against for unknown users, so a miss costs as long as a wrong password. */
  private readonly decoy: string | null;
  private running = 0;
  /** Mean milliseconds of a comparison lately (for Retry-After when busy). */
  private meanMs = 100;
  /** bcrypt comparisons actually run (tests and metrics). */
  comparisons = 0;

  constructor(
    private readonly users: ReadonlyMap<string, string>,
    opts: HtpasswdOptions = {},
  ) {
    this.successTtl = opts.successTtlMs ?? 600_000;
    this.failureTtl = opts.failureTtlMs ?? 30_000;
    this.maxEntries = opts.maxEntries ?? 10_000;
    this.maxPending = opts.maxPending ?? 64;
    this.events = opts.events ?? {};
    this.now = opts.now ?? Date.now;
    this.pool = new BcryptPool(opts.threads ?? defaultBcryptThreads());
    this.limiter = new FailureLimiter(opts.failuresPerMinute ?? 30, this.now);
    let decoy: string | null = null;
    for (const h of users.values()) if (decoy === null || h.slice(4, 6) > decoy.slice(4, 6)) decoy = h;
    this.decoy = decoy;
  }

  static parse(text: string, file?: string, opts?: HtpasswdOptions): Htpasswd {
    return new Htpasswd(parseHtpasswd(text, file), opts);
  }

  /** Reads and validates the users file; throws HtpasswdError saying what is wrong. */
  static load(path: string, opts?: HtpasswdOptions): Htpasswd {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new HtpasswdError(code === 'ENOENT' ? `${path}: file not found` : `${path}: cannot read: ${(err as Error).message}`, path, null);
    }
    return Htpasswd.parse(text, path, opts);
  }

  get size(): number {
    return this.users.size;
  }

  /** Checks queued or running now. */
  get pending(): number {
    return this.queue.size + this.running;
  }

  has(user: string): boolean {
    return this.users.has(user);
  }

  /** True when the password is right; throws when the check could not be made (busy, throttled, gone). */
  async verify(user: string, password: string, ctx: CheckContext = {}): Promise<boolean> {
    const result = await this.check(user, password, ctx);
    if (result.kind === 'valid' || result.kind === 'invalid') return result.kind === 'valid';
    throw new Error(`password check not made: ${result.kind}`);
  }

  check(user: string, password: string, ctx: CheckContext = {}): Promise<CheckResult> {
    const key = createHmac('sha256', this.cacheKey).update(user).update('\u0000').update(password).digest('base64');
    const t = this.now();
    const success = this.successes.get(key);
    if (success !== undefined && success > t) {
      // Remembered from its last use: a user who keeps working never waits for bcrypt again.
      this.successes.delete(key);
      this.successes.set(key, t + this.successTtl);
      return Promise.resolve(VALID);
    }
    const failure = this.failures.get(key);
    if (failure !== undefined && failure > t) return Promise.resolve(INVALID);
    if (ctx.signal?.aborted) return Promise.resolve(GONE);
    // The same credentials already queued or running: one comparison answers everyone.
    const same = this.jobs.get(key);
    if (same) return this.wait(same, ctx.signal);

    // Failures and queue places count per client as the other limits do (an IPv6 client by its /64).
    const client = clientKey(ctx.client ?? '');
    if (!this.limiter.take(client)) {
      this.events.refused?.('throttled');
      return Promise.resolve({ kind: 'throttled', retryAfterSeconds: this.limiter.retryAfterSeconds(client) });
    }
    if (this.pending >= this.maxPending && !this.makeRoomFor(client)) {
      this.limiter.giveBack(client);
      this.events.refused?.('busy');
      return Promise.resolve({ kind: 'busy', retryAfterSeconds: this.busyRetryAfter() });
    }
    const hash = this.users.get(user);
    const job: Job = { key, owner: client, password, hash: hash ?? this.decoy, known: hash !== undefined, started: false, waiters: new Set() };
    this.jobs.set(key, job);
    this.queue.push(client, job);
    const result = this.wait(job, ctx.signal);
    this.pump();
    return result;
  }

  /** Stops the bcrypt threads (they are restarted by the next check). */
  close(): Promise<void> {
    return this.pool.close();
  }

  private wait(job: Job, signal: AbortSignal | undefined): Promise<CheckResult> {
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, signal, onAbort: undefined };
      if (signal) {
        waiter.onAbort = () => this.leave(job, waiter);
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      job.waiters.add(waiter);
    });
  }

  /** A waiter's client left: it is answered `gone`; a job nobody waits for any more is dropped unless running. */
  private leave(job: Job, waiter: Waiter): void {
    if (!job.waiters.delete(waiter)) return;
    waiter.resolve(GONE);
    if (job.waiters.size > 0 || job.started) return;
    this.queue.remove(job.owner, job);
    this.jobs.delete(job.key);
    this.limiter.giveBack(job.owner);
    this.events.dropped?.();
  }

  /** The queue is full: frees a place for `client` from whoever holds more than a fair share. */
  private makeRoomFor(client: string): boolean {
    const victim = this.queue.victimFor(client);
    if (!victim) return false;
    this.queue.remove(victim.owner, victim.item);
    this.jobs.delete(victim.item.key);
    this.limiter.giveBack(victim.owner);
    const busy: CheckResult = { kind: 'busy', retryAfterSeconds: this.busyRetryAfter() };
    for (const w of victim.item.waiters) {
      this.events.refused?.('busy');
      this.settle(w, busy);
    }
    victim.item.waiters.clear();
    return true;
  }

  private pump(): void {
    while (this.pool.idle > 0) {
      const job = this.queue.shift();
      if (!job) return;
      this.run(job);
    }
  }

  private run(job: Job): void {
    job.started = true;
    this.running++;
    this.comparisons++;
    const started = performance.now();
    const compared = job.hash === null ? Promise.resolve(false) : this.pool.compare(job.password, job.hash);
    compared.then(
      (match) => {
        this.meanMs = this.meanMs * 0.8 + (performance.now() - started) * 0.2;
        const ok = match && job.known;
        this.remember(job.key, ok);
        // A right password is no failure: its token goes back. A wrong one keeps it.
        if (ok) this.limiter.giveBack(job.owner);
        this.events.checked?.(ok);
        this.finish(job, (w) => this.settle(w, ok ? VALID : INVALID));
      },
      (err: Error) => {
        this.limiter.giveBack(job.owner);
        this.finish(job, (w) => {
          this.unlisten(w);
          w.reject(err);
        });
      },
    );
  }

  private finish(job: Job, answer: (w: Waiter) => void): void {
    this.running--;
    this.jobs.delete(job.key);
    for (const w of job.waiters) answer(w);
    job.waiters.clear();
    this.pump();
  }

  private settle(w: Waiter, result: CheckResult): void {
    this.unlisten(w);
    w.resolve(result);
  }

  private unlisten(w: Waiter): void {
    if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
  }

  /** Whole seconds until the queue has room again, about: what is pending over the threads' pace. */
  private busyRetryAfter(): number {
    return Math.max(1, Math.ceil((this.pending * this.meanMs) / this.pool.threads / 1000));
  }

  private remember(key: string, ok: boolean): void {
    const cache = ok ? this.successes : this.failures;
    const max = ok ? this.maxEntries : Math.max(1, Math.floor(this.maxEntries / 10));
    cache.delete(key);
    cache.set(key, this.now() + (ok ? this.successTtl : this.failureTtl));
    while (cache.size > max) cache.delete(cache.keys().next().value as string);
  }
}

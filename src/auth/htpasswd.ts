// Users file for forward-proxy authentication (`auth.usersFile`): Apache htpasswd format, bcrypt
// hashes only (`htpasswd -B`, `$2y$`, or `$2a$`/`$2b$` from other tools). MD5-crypt ($apr1$), SHA-1
// ({SHA}), crypt and plain text are refused at load: they are fast to brute-force if the file leaks.
//
// A client behind a proxy sends the same Proxy-Authorization on every CONNECT, often dozens at once
// when an IDE starts. Each bcrypt check costs ~2-300 ms of CPU depending on cost, so results are
// cached keyed by an HMAC of (user, password) under a per-process random key (the cache never holds
// the password or anything it could be recovered from), and concurrent identical checks share one
// comparison. Failures are cached briefly too, so a misconfigured client retrying in a loop costs one
// bcrypt per failure window.
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BcryptWorker } from './bcrypt-worker.js';

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

export interface VerifyCacheOptions {
  /** How long a successful check is remembered. Default 10 minutes. */
  successTtlMs?: number;
  /** How long a failed check is remembered. Default 30 seconds. */
  failureTtlMs?: number;
  /** Cached results kept at most. Default 10 000. */
  maxEntries?: number;
  now?: () => number;
}

export class Htpasswd {
  private readonly cacheKey = randomBytes(32);
  private readonly cache = new Map<string, { ok: boolean; expires: number }>();
  private readonly inflight = new Map<string, Promise<boolean>>();
  private readonly worker = new BcryptWorker();
  private readonly successTtl: number;
  private readonly failureTtl: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  /** Compared against for unknown users, so a miss costs as long as a wrong password. */
  private readonly decoy: string | null;
  /** bcrypt comparisons actually run (tests and metrics). */
  comparisons = 0;

  constructor(
    private readonly users: ReadonlyMap<string, string>,
    opts: VerifyCacheOptions = {},
  ) {
    this.successTtl = opts.successTtlMs ?? 600_000;
    this.failureTtl = opts.failureTtlMs ?? 30_000;
    this.maxEntries = opts.maxEntries ?? 10_000;
    this.now = opts.now ?? Date.now;
    let decoy: string | null = null;
    for (const h of users.values()) if (decoy === null || h.slice(4, 6) > decoy.slice(4, 6)) decoy = h;
    this.decoy = decoy;
  }

  static parse(text: string, file?: string, opts?: VerifyCacheOptions): Htpasswd {
    return new Htpasswd(parseHtpasswd(text, file), opts);
  }

  /** Reads and validates the users file; throws HtpasswdError saying what is wrong. */
  static load(path: string, opts?: VerifyCacheOptions): Htpasswd {
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

  has(user: string): boolean {
    return this.users.has(user);
  }

  async verify(user: string, password: string): Promise<boolean> {
    const key = createHmac('sha256', this.cacheKey).update(user).update('\u0000').update(password).digest('base64');
    const cached = this.cache.get(key);
    if (cached && cached.expires > this.now()) {
      this.cache.delete(key);
      this.cache.set(key, cached);
      return cached.ok;
    }
    const pending = this.inflight.get(key);
    if (pending) return pending;
    const check = this.compare(user, password)
      .then((ok) => {
        this.remember(key, ok);
        return ok;
      })
      .finally(() => this.inflight.delete(key));
    this.inflight.set(key, check);
    return check;
  }

  /** Stops the bcrypt worker thread (it is restarted on the next verify). */
  close(): Promise<void> {
    return this.worker.close();
  }

  private async compare(user: string, password: string): Promise<boolean> {
    const hash = this.users.get(user);
    this.comparisons++;
    if (hash === undefined) {
      if (this.decoy !== null) await this.worker.compare(password, this.decoy);
      return false;
    }
    return this.worker.compare(password, hash);
  }

  private remember(key: string, ok: boolean): void {
    this.cache.delete(key);
    this.cache.set(key, { ok, expires: this.now() + (ok ? this.successTtl : this.failureTtl) });
    while (this.cache.size > this.maxEntries) this.cache.delete(this.cache.keys().next().value as string);
  }
}

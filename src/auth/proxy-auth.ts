// Forward-mode proxy authentication (`auth` in SPEC §2): `Proxy-Authorization: Basic` checked against
// the users file. The outcome names the user (audit `client.user`, rate-limit key `user`) or says why
// the client must get 407; building the 407 response is the caller's job.
import { Htpasswd, type CheckContext, type HtpasswdOptions } from './htpasswd.js';

export interface Credentials {
  user: string;
  password: string;
}

const BASIC = /^basic[ \t]+([A-Za-z0-9+/]+={0,2})[ \t]*$/i;

/** Parses `Basic base64(user:password)` (RFC 7617, UTF-8). Null for anything else. */
export function parseProxyAuthorization(header: string | readonly string[] | undefined): Credentials | null {
  if (header === undefined) return null;
  if (typeof header !== 'string') return header.length === 1 ? parseProxyAuthorization(header[0]) : null;
  const m = BASIC.exec(header.trim());
  if (!m) return null;
  const token = m[1]!;
  if (token.length % 4 !== 0) return null;
  const decoded = Buffer.from(token, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return null;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** The `Proxy-Authenticate` value for a 407. */
export function proxyAuthenticateHeader(realm: string): string {
  return `Basic realm="${realm.replace(/["\\]/g, '')}", charset="UTF-8"`;
}

export type AuthOutcome =
  | { ok: true; user: string | null }
  | { ok: false; reason: 'missing' | 'malformed' | 'invalid'; user: string | null; message: string; challenge: string }
  /** Not checked: too many checks queued (`busy`), or this address failed too often (`throttled`). */
  | { ok: false; reason: 'busy' | 'throttled'; user: string; message: string; retryAfterSeconds: number }
  /** Not checked: the client left while its check waited. */
  | { ok: false; reason: 'gone'; user: string };

export interface ProxyAuthConfig {
  usersFile?: string;
  required: boolean;
  realm: string;
}

export class ProxyAuthenticator {
  readonly required: boolean;
  readonly realm: string;
  readonly challenge: string;

  /** `users` null: no users file, so credentials are neither needed nor checked. */
  constructor(
    cfg: ProxyAuthConfig,
    private readonly users: Htpasswd | null,
  ) {
    this.required = cfg.required;
    this.realm = cfg.realm;
    this.challenge = proxyAuthenticateHeader(cfg.realm);
    if (cfg.required && !users) throw new Error('auth.required is true but no users file is loaded');
  }

  /** Loads `auth.usersFile` when set. Throws HtpasswdError on an unreadable or unsafe file. */
  static fromConfig(cfg: ProxyAuthConfig, opts?: HtpasswdOptions): ProxyAuthenticator {
    return new ProxyAuthenticator(cfg, cfg.usersFile ? Htpasswd.load(cfg.usersFile, opts) : null);
  }

  /** Password checks queued or running now. */
  get pending(): number {
    return this.users?.pending ?? 0;
  }

  /** True when `user` is in the users file (an attempted name is audited only then: an unknown one may be a mistyped password). */
  knows(user: string): boolean {
    return this.users?.has(user) ?? false;
  }

  /**
   * No header: anonymous unless `required`. A header with wrong or malformed credentials is refused
   * even when not required — silently treating it as anonymous would hide the misconfiguration and let
   * a client pick whose rate-limit bucket it lands in.
   */
  async authenticate(header: string | readonly string[] | undefined, ctx: CheckContext = {}): Promise<AuthOutcome> {
    const deny = (reason: 'missing' | 'malformed' | 'invalid', user: string | null, message: string): AuthOutcome => ({
      ok: false,
      reason,
      user,
      message,
      challenge: this.challenge,
    });
    if (!this.users) return { ok: true, user: null };
    if (header === undefined || header === '') {
      return this.required ? deny('missing', null, 'proxy authentication required') : { ok: true, user: null };
    }
    const creds = parseProxyAuthorization(header);
    if (!creds) return deny('malformed', null, 'Proxy-Authorization must be Basic credentials (user:password)');
    const result = await this.users.check(creds.user, creds.password, ctx);
    switch (result.kind) {
      case 'valid':
        return { ok: true, user: creds.user };
      case 'invalid':
        return deny('invalid', creds.user, 'invalid proxy credentials');
      case 'gone':
        return { ok: false, reason: 'gone', user: creds.user };
      case 'busy':
        return {
          ok: false,
          reason: 'busy',
          user: creds.user,
          message: `too many proxy logins being checked (limits.authPending); retry in ${result.retryAfterSeconds}s`,
          retryAfterSeconds: result.retryAfterSeconds,
        };
      case 'throttled':
        return {
          ok: false,
          reason: 'throttled',
          user: creds.user,
          message: `too many failed proxy logins from this address (limits.authFailuresPerMinute); retry in ${result.retryAfterSeconds}s`,
          retryAfterSeconds: result.retryAfterSeconds,
        };
    }
  }

  close(): Promise<void> {
    return this.users?.close() ?? Promise.resolve();
  }
}

// Authentication on the admin listener (`listen.admin.auth`): the dashboard shows clients, users,
// hosts and paths, and /metrics the traffic's shape, so neither is for anyone who can reach the
// port. A bearer token (any line of tokenFile) or Basic credentials checked against an htpasswd
// file (bcrypt, the same checker as proxy auth, with its cache and per-address failure limit).
// /healthz and /readyz stay open: load balancers and kubelets probe them without credentials.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ConfigError, readConfiguredFile } from '../config/load.js';
import { Htpasswd } from '../auth/htpasswd.js';
import { parseProxyAuthorization } from '../auth/proxy-auth.js';

export interface AdminAuthConfig {
  tokenFile?: string | undefined;
  usersFile?: string | undefined;
  /** /metrics needs credentials too (default true); false leaves it open for a Prometheus without them. */
  metrics?: boolean | undefined;
}

/** Paths always open (probes). */
const OPEN = new Set(['/healthz', '/readyz']);

export interface AdminAuth {
  /** True when this path needs no credentials. */
  isOpen(pathname: string): boolean;
  /** True when the request carries valid credentials. */
  check(req: IncomingMessage): Promise<boolean>;
  /** The WWW-Authenticate value of a 401. */
  readonly challenge: string;
  close(): Promise<void>;
}

const digest = (s: string) => createHash('sha256').update(s).digest();
const BEARER = /^bearer[ \t]+(\S+)[ \t]*$/i;

export function loadAdminAuth(auth: AdminAuthConfig, configFile: string): AdminAuth {
  // Tokens are compared as SHA-256 digests in constant time: the comparison says nothing about
  // how much of a guess was right.
  const tokens = auth.tokenFile
    ? readConfiguredFile(configFile, 'listen.admin.auth.tokenFile', auth.tokenFile)
        .toString('utf8')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '' && !l.startsWith('#'))
        .map(digest)
    : [];
  if (auth.tokenFile && tokens.length === 0) {
    throw new ConfigError(configFile, 'listen.admin.auth.tokenFile', `${auth.tokenFile} has no token (one per line)`);
  }
  let users: Htpasswd | undefined;
  try {
    users = auth.usersFile ? Htpasswd.load(auth.usersFile, { failuresPerMinute: 30 }) : undefined;
  } catch (err) {
    throw new ConfigError(configFile, 'listen.admin.auth.usersFile', (err as Error).message);
  }
  const metricsOpen = auth.metrics === false;
  const challenges = [...(tokens.length > 0 ? ['Bearer realm="aigate admin"'] : []), ...(users ? ['Basic realm="aigate admin", charset="UTF-8"'] : [])];
  return {
    isOpen: (pathname) => OPEN.has(pathname) || (metricsOpen && pathname === '/metrics'),
    challenge: challenges.join(', '),
    async check(req) {
      const header = req.headers.authorization;
      if (header === undefined) return false;
      const bearer = BEARER.exec(header);
      if (bearer) {
        const d = digest(bearer[1]!);
        let ok = false;
        for (const t of tokens) ok = timingSafeEqual(d, t) || ok;
        return ok;
      }
      const basic = users ? parseProxyAuthorization(header) : null;
      if (!users || !basic) return false;
      const result = await users.check(basic.user, basic.password, { client: req.socket.remoteAddress ?? '' });
      return result.kind === 'valid';
    },
    close: async () => {
      await users?.close();
    },
  };
}

/** An AdminAuth that asks whichever credentials are in force (a reload replaces them). */
export function liveAdminAuth(current: () => AdminAuth): AdminAuth {
  return {
    isOpen: (pathname) => current().isOpen(pathname),
    check: (req) => current().check(req),
    get challenge() {
      return current().challenge;
    },
    close: () => current().close(),
  };
}

/** How long replaced admin credentials stay open for the checks already running on them. */
const RETIRE_AFTER_MS = 30_000;

/** Closes credentials a reload replaced, once the checks already running on them are over. */
export function retireAdminAuth(auth: AdminAuth): void {
  setTimeout(() => void auth.close(), RETIRE_AFTER_MS).unref();
}

// `aigate reload`: asks a running aigate, through its admin listener (POST /reload), to re-read its
// configuration — what SIGHUP does, for hosts where signalling the process is not an option
// (another container, another user) — and reports the outcome: exit 0 applied, 1 refused or not
// reached. The admin address and bearer token come from the same config file the proxy runs.
import type { Writable } from 'node:stream';
import { readConfiguredFile } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { ReloadOutcome } from '../server/reload.js';

export interface ReloadCommandOptions {
  config: Config;
  configFile: string;
  /** Overrides the admin URL the config implies (http://host:port). */
  admin?: string | undefined;
  /** A file whose first token authenticates (default: listen.admin.auth.tokenFile). */
  tokenFile?: string | undefined;
  env?: NodeJS.ProcessEnv;
  stdout: Writable;
  stderr: Writable;
}

export async function runReload(opts: ReloadCommandOptions): Promise<number> {
  const fail = (message: string) => {
    opts.stderr.write(`aigate reload: ${message}\n`);
    return 1;
  };
  const base = opts.admin ?? adminUrl(opts.config);
  if (!base) return fail(`${opts.configFile} has no listen.admin: send SIGHUP to the process instead (e.g. kill -HUP "$(cat PIDFILE)" with start --pid-file)`);
  let authorization: string | undefined;
  try {
    authorization = credentials(opts);
  } catch (err) {
    return fail((err as Error).message);
  }
  const url = new URL('/reload', base);
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers: authorization ? { authorization } : {}, signal: AbortSignal.timeout(RELOAD_WAIT_MS) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    return fail(`cannot reach the admin listener at ${url.origin} (${cause}): is aigate running with this configuration?`);
  }
  const text = await res.text();
  if (res.status === 401) return fail(`the admin listener at ${url.origin} refused the credentials (listen.admin.auth; --token-file, or AIGATE_ADMIN_USER / AIGATE_ADMIN_PASSWORD)`);
  let outcome: ReloadOutcome;
  try {
    outcome = JSON.parse(text) as ReloadOutcome;
  } catch {
    return fail(`unexpected answer from ${url.origin} (HTTP ${res.status}): ${text.trim().slice(0, 200)}`);
  }
  if (!outcome.applied) return fail(`refused, the running configuration is kept: ${outcome.reason}`);
  const changed = outcome.changed.length > 0 ? `changed: ${outcome.changed.join(', ')}` : 'no key changed; the files it names were re-read';
  opts.stdout.write(`configuration reloaded (${changed})\n`);
  return 0;
}

/** An answer waits for every worker's reload (scan threads and indexes are rebuilt): give it time. */
const RELOAD_WAIT_MS = 120_000;

/** http://host:port of listen.admin, with a wildcard address replaced by loopback. */
function adminUrl(config: Config): string | undefined {
  const admin = config.listen.admin;
  if (!admin) return undefined;
  const host = admin.host === '0.0.0.0' || admin.host === '' ? '127.0.0.1' : admin.host === '::' ? '::1' : admin.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${admin.port}`;
}

/** The Authorization header: a bearer token from --token-file or the configured token file, or Basic from the environment. */
function credentials(opts: ReloadCommandOptions): string | undefined {
  const env = opts.env ?? process.env;
  const tokenFile = opts.tokenFile ?? opts.config.listen.admin?.auth?.tokenFile;
  if (tokenFile) {
    const keyPath = opts.tokenFile ? '--token-file' : 'listen.admin.auth.tokenFile';
    const token = readConfiguredFile(opts.configFile, keyPath, tokenFile)
      .toString('utf8')
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l !== '' && !l.startsWith('#'));
    if (!token) throw new Error(`${tokenFile} has no token (one per line)`);
    return `Bearer ${token}`;
  }
  const user = env['AIGATE_ADMIN_USER'];
  const password = env['AIGATE_ADMIN_PASSWORD'];
  if (user && password !== undefined) return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  return undefined;
}

// What a configuration reload may change in place, and how it is described. Everything the
// proxy builds from the config is rebuilt (server/runtime.ts); what the process itself holds —
// the listening sockets and the audit log with its hash chain — needs a restart to change.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { sameJson } from './runtime.js';

/** The outcome of one reload, for the log, the audit line and `aigate reload`. */
export type ReloadOutcome =
  | { applied: true; /** Top-level config keys whose value changed (files they name are re-read either way). */ changed: string[] }
  | { applied: false; reason: string };

/**
 * Key paths whose change a running process cannot apply (listener addresses and options, the
 * audit sinks and chain), or none. `audit.fingerprintKey` is only used by the inspector: it may change.
 */
export function changesNeedingRestart(running: Config, next: Config): string[] {
  const keys: string[] = [];
  for (const name of ['gateway', 'forward', 'admin'] as const) {
    if (!sameJson(running.listen[name], next.listen[name])) keys.push(`listen.${name}`);
  }
  const audit = new Set([...Object.keys(running.audit), ...Object.keys(next.audit)]);
  audit.delete('fingerprintKey');
  for (const key of audit) {
    if (!sameJson(running.audit[key as keyof Config['audit']], next.audit[key as keyof Config['audit']])) keys.push(`audit.${key}`);
  }
  return keys;
}

/** Top-level keys whose value differs (for the log line of an applied reload). */
export function changedKeys(running: Config, next: Config): string[] {
  const keys = new Set([...Object.keys(running), ...Object.keys(next)]);
  return [...keys].filter((k) => !sameJson(running[k as keyof Config], next[k as keyof Config])).sort();
}

/** SHA-256 of the config file as it is now, or null when it cannot be read (the load says why). */
export function configDigest(file: string): string | null {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex');
  } catch {
    return null;
  }
}

/** The answer to a reload asked for while the process drains. */
export const DRAINING: ReloadOutcome = { applied: false, reason: 'draining: the process is stopping' };

/**
 * The config file as a reload reads it (`adjust`: what the process does to it, e.g. a cluster
 * worker leaving listen.admin to the primary). Throws ConfigError when it is invalid or changes
 * what only a restart can change.
 */
export function loadForReload(configFile: string, running: Config, adjust: (config: Config) => Config = (c) => c): Config {
  const next = adjust(loadConfig(configFile));
  const restart = changesNeedingRestart(running, next);
  if (restart.length > 0) throw new ConfigError(configFile, '', `${restart.join(', ')} changed; that needs a restart (the running configuration is kept)`);
  return next;
}

/** A reload that failed to load or build, refused with the reason (a ConfigError names file and key). */
export function refusedBy(configFile: string, err: unknown): ReloadOutcome {
  return { applied: false, reason: err instanceof ConfigError ? err.message : `${configFile}: ${(err as Error).message}` };
}

/** `run`, one call at a time: a SIGHUP arriving mid-reload waits for the reload before it. */
export function oneAtATime<T>(run: () => Promise<T>): () => Promise<T> {
  let last: Promise<unknown> = Promise.resolve();
  return () => {
    const next = last.then(run);
    last = next.catch(() => undefined);
    return next;
  };
}

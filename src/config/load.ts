// Reads the YAML config, expands ${VAR} / ${VAR:-default} inside string values, validates it and
// reports the first problem as one line: `<file>: <key path>: <what is wrong>`.
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.js';

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly keyPath: string,
    readonly problem: string,
  ) {
    super(keyPath ? `${file}: ${keyPath}: ${problem}` : `${file}: ${problem}`);
    this.name = 'ConfigError';
  }
}

/** `routes[1].upstream` from ['routes', 1, 'upstream']. */
export function formatKeyPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

const VAR = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

function expandString(value: string, env: NodeJS.ProcessEnv, keyPath: string, file: string): string {
  return value.replace(VAR, (_m, name: string, fallback: string | undefined) => {
    // As the shell: `${VAR}` is whatever VAR holds, empty included; `${VAR:-default}` is the
    // default when VAR is unset or empty.
    const v = env[name];
    if (v !== undefined && (v !== '' || fallback === undefined)) return v;
    if (fallback !== undefined) return fallback;
    throw new ConfigError(file, keyPath, `environment variable ${name} is not set (use \${${name}:-default} for a default)`);
  });
}

function expandEnv(node: unknown, env: NodeJS.ProcessEnv, path: PropertyKey[], file: string): unknown {
  if (typeof node === 'string') return expandString(node, env, formatKeyPath(path), file);
  if (Array.isArray(node)) return node.map((v, i) => expandEnv(v, env, [...path, i], file));
  if (node !== null && typeof node === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) out[k] = expandEnv(v, env, [...path, k], file);
    return out;
  }
  return node;
}

function describeIssue(issue: z.core.$ZodIssue): { path: PropertyKey[]; message: string } {
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? '';
    return { path: [...issue.path, key], message: 'unknown key' };
  }
  if (issue.code === 'invalid_type' && issue.message.includes('received undefined')) {
    return { path: issue.path, message: 'is required' };
  }
  return { path: issue.path, message: issue.message.replace(/^Invalid input: /, '') };
}

/** Validates an already-parsed document (tests and `check` use this directly). */
export function parseConfig(raw: unknown, file = '<config>', env: NodeJS.ProcessEnv = process.env): Config {
  const expanded = expandEnv(raw ?? {}, env, [], file);
  const result = configSchema.safeParse(expanded);
  if (!result.success) {
    const first = result.error.issues[0];
    if (!first) throw new ConfigError(file, '', 'invalid configuration');
    const { path, message } = describeIssue(first);
    throw new ConfigError(file, formatKeyPath(path), message);
  }
  checkCrossFieldRules(result.data, file);
  fitBodyBudgets(result.data, expanded, file);
  return result.data;
}

function checkCrossFieldRules(config: Config, file: string): void {
  const names = new Set<string>();
  const prefixes = new Set<string>();
  config.routes.forEach((r, i) => {
    if (names.has(r.name)) throw new ConfigError(file, `routes[${i}].name`, `duplicate route name "${r.name}"`);
    if (prefixes.has(r.prefix)) throw new ConfigError(file, `routes[${i}].prefix`, `duplicate prefix "${r.prefix}"`);
    names.add(r.name);
    prefixes.add(r.prefix);
  });
  if (config.auth.required && !config.auth.usersFile) {
    throw new ConfigError(file, 'auth.usersFile', 'is required when auth.required is true');
  }
  const { listen } = config;
  if (!listen.gateway && !listen.forward) {
    throw new ConfigError(file, 'listen', 'needs at least one of gateway or forward');
  }
}

/**
 * A budget smaller than one body would refuse every body of the largest allowed size: an error when
 * set so, and a default below a larger inspect.maxBodyBytes grows to it (configs written before
 * `limits` existed keep working).
 */
function fitBodyBudgets(config: Config, raw: unknown, file: string): void {
  const given = (raw as { limits?: Record<string, unknown> }).limits ?? {};
  const { limits } = config;
  if (limits.bufferedBodyBytesPerClient < config.inspect.maxBodyBytes) {
    if ('bufferedBodyBytesPerClient' in given) {
      throw new ConfigError(file, 'limits.bufferedBodyBytesPerClient', `must be at least inspect.maxBodyBytes (${config.inspect.maxBodyBytes} bytes)`);
    }
    limits.bufferedBodyBytesPerClient = config.inspect.maxBodyBytes;
  }
  if (limits.bufferedBodyBytes < limits.bufferedBodyBytesPerClient) {
    if ('bufferedBodyBytes' in given) {
      throw new ConfigError(file, 'limits.bufferedBodyBytes', `must be at least limits.bufferedBodyBytesPerClient (${limits.bufferedBodyBytesPerClient} bytes)`);
    }
    limits.bufferedBodyBytes = limits.bufferedBodyBytesPerClient;
  }
}

export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(file, '', code === 'ENOENT' ? 'file not found' : `cannot read: ${(err as Error).message}`);
  }
  const doc = parseDocument(text);
  const yamlError = doc.errors[0];
  if (yamlError) {
    const pos = yamlError.linePos?.[0];
    const where = pos ? `line ${pos.line} col ${pos.col}` : '';
    const message = (yamlError.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
    throw new ConfigError(file, where, `YAML syntax error: ${message}`);
  }
  return parseConfig(doc.toJS(), file, env);
}

/** Reads a file named by a config key, failing with that key's path when it cannot be read. */
export function readConfiguredFile(configFile: string, keyPath: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const problem = code === 'ENOENT' ? `file not found: ${path}` : `cannot read ${path}: ${(err as Error).message}`;
    throw new ConfigError(configFile, keyPath, problem);
  }
}

// `aigate check [--config FILE] [--offline] [--json]` (SPEC §1): validates the configuration the
// way `start` would (every file read, keys matched, rules compiled, presets expanded) and, unless
// --offline, checks every route upstream and allowed host the way the proxy would reach it: DNS
// (and the private-address rule), TCP + TLS with aigate's trust and pins, and for routes an HTTP
// round trip. One line per host; exit 0 when everything is good, 1 otherwise. Meant for CI before
// a rollout and for cron / a Kubernetes CronJob after it.
import { readFileSync } from 'node:fs';
import { connect as netConnect, isIP } from 'node:net';
import pino from 'pino';
import { request } from 'undici';
import { appendProblem } from '../audit/log.js';
import { ProxyAuthenticator } from '../auth/proxy-auth.js';
import { ConfigError, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { createInspector } from '../inspect/index.js';
import { Metrics } from '../metrics.js';
import { compileConnectTo, DestinationError, formatHostPort, isPrivateAddress, resolveDestination, type Destination } from '../route/address.js';
import { compileEgress, type EgressRule } from '../route/egress.js';
import { renderPresets } from '../route/presets/index.js';
import { loadGatewayKeyPair, loadInterceptionCa, loadUpstreamCas } from '../tls/files.js';
import { describeError, handshake } from '../tls/probe.js';
import { spkiPin } from '../tls/spki.js';
import { upstreamCaCertificates } from '../tls/trust.js';
import { createUpstreamAgent } from '../upstream/agent.js';
import { upstreamError } from '../upstream/forward.js';

export interface Output {
  write(chunk: string): unknown;
}

export interface CheckOptions {
  configFile: string;
  offline: boolean;
  json: boolean;
  stdout: Output;
  stderr: Output;
}

export interface HostCheck {
  kind: 'route' | 'egress';
  /** Route name, or the egress rule's source (`egress.allow[2]`, `preset copilot`). */
  name: string;
  host: string;
  port: number;
  ok: boolean;
  address?: string;
  via?: Destination['via'];
  tls?: string;
  pin?: 'match' | 'none';
  http?: number;
  ms: number;
  problem?: string;
  note?: string;
}

const DAY = 86_400_000;

export async function runCheck(opts: CheckOptions): Promise<number> {
  const { stdout, stderr } = opts;
  let config: Config;
  const warnings: string[] = [];
  try {
    config = loadConfig(opts.configFile);
    validateOffline(config, opts.configFile, warnings);
  } catch (err) {
    stderr.write(`aigate check: ${err instanceof ConfigError ? err.message : (err as Error).message}\n`);
    return 1;
  }
  for (const w of warnings) stderr.write(`warning: ${w}\n`);
  if (!opts.json) {
    stdout.write(`config ok: ${opts.configFile}\n`);
    if (config.egress.presets.length > 0) {
      stdout.write(`presets expand to:\n${renderPresets(config.egress.presets).map((l) => `  ${l}`).join('\n')}\n`);
    }
  }
  if (opts.offline) return 0;

  const results = await checkHosts(config, opts.configFile);
  for (const r of results) stdout.write(opts.json ? `${JSON.stringify(r)}\n` : `${formatLine(r)}\n`);
  const failed = results.filter((r) => !r.ok).length;
  if (!opts.json) stdout.write(`${results.length} checked, ${failed} failed\n`);
  return failed === 0 ? 0 : 1;
}

/** Everything `start` would refuse, without binding a port. */
function validateOffline(config: Config, file: string, warnings: string[]): void {
  if (config.listen.gateway) {
    const { notAfter } = loadGatewayKeyPair(config, file);
    const days = Math.floor((notAfter.getTime() - Date.now()) / DAY);
    if (days < 0) throw new ConfigError(file, 'tls.cert', `${config.tls.cert} expired on ${notAfter.toISOString().slice(0, 10)}`);
    if (days < 30) warnings.push(`tls.cert: ${config.tls.cert} expires in ${days} days`);
  }
  if (config.listen.forward) loadInterceptionCa(config, file);
  loadUpstreamCas(config, file);
  compileEgress(config.egress, undefined, file);
  try {
    createInspector(config.inspect, { fingerprintKey: config.audit.fingerprintKey });
  } catch (err) {
    throw new ConfigError(file, '', (err as Error).message);
  }
  try {
    void ProxyAuthenticator.fromConfig(config.auth).close();
  } catch (err) {
    throw new ConfigError(file, 'auth.usersFile', (err as Error).message);
  }
  const auditProblem = config.audit.file ? appendProblem(config.audit.file) : null;
  if (auditProblem) throw new ConfigError(file, 'audit.file', `cannot open ${config.audit.file} for appending (${auditProblem})`);
  if (!config.audit.fingerprintKey) warnings.push('audit.fingerprintKey is empty: fingerprints will differ between restarts and replicas');
  if (!config.audit.chainKey) warnings.push('audit.chainKey is empty: the audit hash chain is plain SHA-256, which shows damage and truncation but not deliberate edits (anyone can recompute it)');
  if (config.audit.syslog?.ca) {
    try {
      readFileSync(config.audit.syslog.ca);
    } catch (err) {
      throw new ConfigError(file, 'audit.syslog.ca', `cannot read ${config.audit.syslog.ca} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
}

interface Target {
  kind: HostCheck['kind'];
  name: string;
  host: string;
  port: number;
  /** TLS is verified (routes and inspected hosts); blind tunnels only need TCP. */
  tls: boolean;
  /** Routes also get an HTTP round trip. */
  http: boolean;
  /** Forward-mode destinations follow denyPrivateAddresses. */
  checkPrivate: boolean;
}

function targets(config: Config, file: string): { list: Target[]; skipped: string[] } {
  const list: Target[] = [];
  const skipped: string[] = [];
  for (const r of config.routes) {
    const u = new URL(r.upstream);
    list.push({ kind: 'route', name: r.name, host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port) || 443, tls: true, http: true, checkPrivate: false });
  }
  const seen = new Set<string>();
  const rules: readonly EgressRule[] = compileEgress(config.egress, undefined, file).rules;
  for (const rule of rules) {
    if (rule.host.startsWith('*.')) {
      skipped.push(`${rule.host} (${rule.source}): a wildcard names no single host to check`);
      continue;
    }
    for (const port of rule.ports) {
      const key = formatHostPort(rule.host, port);
      if (seen.has(key)) continue;
      seen.add(key);
      list.push({ kind: 'egress', name: rule.source, host: rule.host, port, tls: rule.inspect, http: false, checkPrivate: true });
    }
  }
  return { list, skipped };
}

async function checkHosts(config: Config, file: string): Promise<HostCheck[]> {
  const { list, skipped } = targets(config, file);
  const connectTo = compileConnectTo(config.connectTo);
  const extraCa = loadUpstreamCas(config, file);
  // The connector's trust, so a green check means the proxy will verify the same chain.
  const ca = upstreamCaCertificates(extraCa);
  const logger = pino({ level: 'silent' });
  const agent = createUpstreamAgent({
    config,
    extraCa,
    metrics: new Metrics({ processMetrics: false }),
    logger,
    dialTarget: (host, port) => connectTo.get(formatHostPort(host, port)) ?? { host, port },
  });
  try {
    const results = await mapLimited(list, 8, (t) => checkOne(t, config, connectTo, ca, agent));
    for (const s of skipped) results.push({ kind: 'egress', name: 'skipped', host: s, port: 0, ok: true, ms: 0, note: s });
    return results;
  } finally {
    await agent.close();
  }
}

async function checkOne(
  t: Target,
  config: Config,
  connectTo: ReturnType<typeof compileConnectTo>,
  ca: string[],
  agent: ReturnType<typeof createUpstreamAgent>,
): Promise<HostCheck> {
  const started = performance.now();
  const base = { kind: t.kind, name: t.name, host: t.host, port: t.port };
  const fail = (problem: string, extra: Partial<HostCheck> = {}): HostCheck => ({
    ...base,
    ...extra,
    ok: false,
    problem,
    ms: Math.round(performance.now() - started),
  });
  let dest: Destination;
  try {
    dest = await resolveDestination(t.host, t.port, { connectTo, denyPrivateAddresses: t.checkPrivate && config.egress.denyPrivateAddresses });
  } catch (err) {
    return fail(err instanceof DestinationError ? err.message : (err as Error).message);
  }
  const reached = { address: dest.address, via: dest.via };
  const note = !t.checkPrivate && dest.via === 'dns' && dest.addresses.some((a) => isPrivateAddress(a.address)) ? 'resolves to a private address' : undefined;

  if (!t.tls) {
    try {
      await tcpConnect(dest.address, dest.port, config.timeouts.connect);
    } catch (err) {
      return fail(describeError(err as NodeJS.ErrnoException, formatHostPort(dest.address, dest.port), false), reached);
    }
    return { ...base, ...reached, ok: true, ms: Math.round(performance.now() - started), note: 'blind tunnel: TCP only' };
  }

  let tlsInfo: { protocol: string | null; pin: string };
  try {
    const hs = await handshake({
      host: t.host,
      dialHost: dest.address,
      dialPort: dest.port,
      servername: isIP(t.host) === 0 ? t.host : undefined,
      ca,
      insecure: false,
      timeoutMs: config.timeouts.connect,
    });
    tlsInfo = { protocol: hs.protocol, pin: spkiPin(hs.leaf) };
  } catch (err) {
    return fail(describeError(err as NodeJS.ErrnoException, 'TLS', false), reached);
  }
  const pins = config.upstreamTls.pins[t.host];
  if (pins && !pins.includes(tlsInfo.pin)) {
    return fail(`certificate matches none of upstreamTls.pins["${t.host}"] (saw ${tlsInfo.pin})`, { ...reached, tls: tlsInfo.protocol ?? undefined });
  }
  const result: HostCheck = {
    ...base,
    ...reached,
    ok: true,
    tls: tlsInfo.protocol ?? undefined,
    pin: pins ? 'match' : 'none',
    ms: 0,
    ...(note ? { note } : {}),
  };
  if (t.http) {
    try {
      const res = await request(`https://${formatHostPort(t.host, t.port)}/`, {
        method: 'HEAD',
        dispatcher: agent,
        headersTimeout: config.timeouts.connect * 2,
      });
      await res.body.dump();
      result.http = res.statusCode;
    } catch (err) {
      return fail(`HTTP round trip: ${upstreamError(err, t.host).message}`, { ...reached, tls: result.tls });
    }
  }
  result.ms = Math.round(performance.now() - started);
  return result;
}

function tcpConnect(host: string, port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host, port });
    const timer = setTimeout(() => socket.destroy(Object.assign(new Error(`no TCP connection within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })), timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  });
  await Promise.all(workers);
  return out;
}

function formatLine(r: HostCheck): string {
  if (r.name === 'skipped') return `skip  ${r.note}`;
  const what = `${r.kind === 'route' ? `route ${r.name}` : r.name}`.padEnd(22);
  const where = formatHostPort(r.host, r.port).padEnd(36);
  if (!r.ok) return `FAIL  ${what} ${where} ${r.problem}${r.address ? ` [dialled ${r.address}${r.via === 'connectTo' ? ' via connectTo' : ''}]` : ''}`;
  const parts = [`${r.address}${r.via === 'connectTo' ? ' (connectTo)' : ''}`];
  if (r.tls) parts.push(r.tls, 'chain ok', r.pin === 'match' ? 'pin ok' : 'no pin');
  if (r.http !== undefined) parts.push(`HTTP ${r.http}`);
  if (r.note) parts.push(r.note);
  parts.push(`${r.ms} ms`);
  return `ok    ${what} ${where} ${parts.join('  ')}`;
}

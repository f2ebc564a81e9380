// `aigate pin HOST[:PORT] [--config FILE]` (SPEC §1): connect as aigate would and print the leaf's
// SPKI pin for `upstreamTls.pins`. The pin goes alone to stdout (so `$(aigate pin host)` works);
// everything meant for a human goes to stderr.
import { isIP } from 'node:net';
import type { Config } from '../config/schema.js';
import { canonicalHost, compileConnectTo, formatHostPort } from '../route/address.js';
import { describeError, handshake, loadExtraCAs, type Handshake } from '../tls/probe.js';
import { spkiPin } from '../tls/spki.js';
import { upstreamCaCertificates } from '../tls/trust.js';

export interface Output {
  write(chunk: string): unknown;
}

export interface PinOptions {
  /** `host`, `host:port`, `[v6]:port` or a bare IPv6 address; port 443 by default. */
  target: string;
  /** When given: connectTo, upstreamTls.ca, upstreamTls.pins and timeouts.connect apply. */
  config?: Config;
  stdout: Output;
  stderr: Output;
  /** Print the pin even when the certificate does not verify (with a warning). */
  insecure?: boolean;
  timeoutMs?: number;
}

export function parseTarget(target: string): { host: string; port: number } | null {
  let hostPart = target.trim();
  let port = 443;
  const m = /^(\[[^\]]+\]|[^:[\]]+):(\d{1,5})$/.exec(hostPart);
  if (m) {
    hostPart = m[1]!;
    port = Number(m[2]);
  } else if (isIP(hostPart) !== 6 && !/^\[[^\]]+\]$/.test(hostPart) && hostPart.includes(':')) {
    return null;
  }
  const c = canonicalHost(hostPart);
  if (!c || port < 1 || port > 65535) return null;
  return { host: c.host, port };
}

export async function runPin(opts: PinOptions): Promise<number> {
  const { stdout, stderr, config } = opts;
  const target = parseTarget(opts.target);
  if (!target) {
    stderr.write(`aigate pin: "${opts.target}" is not HOST or HOST:PORT\n`);
    return 1;
  }
  const where = formatHostPort(target.host, target.port);
  let ca: string[];
  let trust: string;
  let dial = { host: target.host, port: target.port };
  try {
    const extra = loadExtraCAs(config);
    // Same trust as the upstream connector, with or without --config: a pin printed after a
    // "verified" here must be one the proxy will also verify (and Node's default store would
    // miss the OS store, where perimeter CAs usually live).
    ca = upstreamCaCertificates(extra);
    trust = `(${extra.length > 0 ? 'bundled roots + upstreamTls.ca' : 'bundled roots'}), also trusting the system store${process.env['NODE_EXTRA_CA_CERTS'] ? ' and NODE_EXTRA_CA_CERTS' : ''}`;
    const mapped = compileConnectTo(config?.connectTo).get(where);
    if (mapped) dial = mapped;
  } catch (err) {
    stderr.write(`aigate pin: ${(err as Error).message}\n`);
    return 1;
  }

  const via = dial.host !== target.host || dial.port !== target.port ? ` via ${formatHostPort(dial.host, dial.port)} (connectTo)` : '';
  let hs: Handshake;
  try {
    hs = await handshake({
      host: target.host,
      dialHost: dial.host,
      dialPort: dial.port,
      servername: isIP(target.host) === 0 ? target.host : undefined,
      ca,
      insecure: opts.insecure === true,
      timeoutMs: opts.timeoutMs ?? config?.timeouts.connect ?? 10_000,
    });
  } catch (err) {
    stderr.write(`aigate pin: ${describeError(err as NodeJS.ErrnoException, `${where}${via}`, opts.insecure !== true)}\n`);
    return 1;
  }

  const pin = spkiPin(hs.leaf);
  stdout.write(`${pin}\n`);

  const info = [
    `${where}${via}: ${hs.protocol ?? 'TLS'}`,
    `  subject: ${hs.leaf.subject.replace(/\n/g, ', ')}`,
    `  issuer:  ${hs.leaf.issuer.replace(/\n/g, ', ')}`,
    `  valid:   ${new Date(hs.leaf.validFrom).toISOString()} to ${new Date(hs.leaf.validTo).toISOString()}`,
  ];
  if (hs.leaf.subjectAltName) info.push(`  names:   ${hs.leaf.subjectAltName}`);
  info.push(
    hs.authorized
      ? `  chain:   verified ${trust}`
      : `  chain:   NOT VERIFIED (${hs.authorizationError ?? 'unknown error'}) — do not pin this without checking it out of band`,
  );
  const configured = config ? (config.upstreamTls.pins[target.host] ?? null) : null;
  if (configured) {
    info.push(configured.includes(pin) ? '  pins:    matches upstreamTls.pins' : `  pins:    does NOT match any of the ${configured.length} pin(s) in upstreamTls.pins — aigate would refuse this connection`);
  } else {
    info.push(`  config:  upstreamTls: { pins: { "${target.host}": ["${pin}"] } }`);
  }
  stderr.write(`${info.join('\n')}\n`);
  return 0;
}

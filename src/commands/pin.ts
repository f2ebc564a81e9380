// `aigate pin HOST[:PORT] [--config FILE]` (SPEC §1): connect as aigate would and print the leaf's
// SPKI pin for `upstreamTls.pins`. The pin goes alone to stdout (so `$(aigate pin host)` works);
// everything meant for a human goes to stderr.
import type { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { checkServerIdentity, connect, rootCertificates, type TLSSocket } from 'node:tls';
import type { Config } from '../config/schema.js';
import { canonicalHost, compileConnectTo, formatHostPort } from '../route/address.js';
import { spkiPin } from '../tls/spki.js';

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

const CERT_ERRORS = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REVOKED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function describeError(err: NodeJS.ErrnoException, where: string, insecureHint: boolean): string {
  const code = err.code ?? '';
  if (CERT_ERRORS.has(code)) {
    const hint = insecureHint ? '; trust its CA with upstreamTls.ca (--config), or pass --insecure to print the pin anyway' : '';
    return `${where}: certificate rejected (${code}: ${err.message})${hint}`;
  }
  if (code === 'ECONNREFUSED') return `${where}: connection refused`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `${where}: cannot resolve host (${code})`;
  if (code === 'ETIMEDOUT') return `${where}: ${err.message}`;
  return `${where}: ${code ? `${code}: ` : ''}${err.message}`;
}

function loadExtraCAs(config: Config | undefined): string[] {
  return (config?.upstreamTls.ca ?? []).map((path, i) => {
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw new Error(`cannot read upstreamTls.ca[${i}] (${path}): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  });
}

interface Handshake {
  leaf: X509Certificate;
  authorized: boolean;
  authorizationError: string | null;
  protocol: string | null;
}

function handshake(opts: {
  /** The name (or IP) the certificate must be valid for. */
  host: string;
  dialHost: string;
  dialPort: number;
  servername: string | undefined;
  ca: string[] | undefined;
  insecure: boolean;
  timeoutMs: number;
}): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = connect({
      host: opts.dialHost,
      port: opts.dialPort,
      servername: opts.servername,
      ca: opts.ca,
      rejectUnauthorized: !opts.insecure,
      // Check the certificate against the requested host, not the connectTo address dialled.
      checkServerIdentity: (_name, cert) => checkServerIdentity(opts.host, cert),
      ALPNProtocols: ['http/1.1'],
    });
    const timer = setTimeout(() => {
      const err: NodeJS.ErrnoException = new Error(`no TLS handshake within ${opts.timeoutMs} ms`);
      err.code = 'ETIMEDOUT';
      socket.destroy(err);
    }, opts.timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const leaf = socket.getPeerX509Certificate();
      const result = {
        authorized: socket.authorized,
        authorizationError: socket.authorizationError ? String(socket.authorizationError) : null,
        protocol: socket.getProtocol(),
      };
      socket.end();
      socket.destroy();
      if (!leaf) reject(new Error('the server presented no certificate'));
      else resolve({ leaf, ...result });
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

export async function runPin(opts: PinOptions): Promise<number> {
  const { stdout, stderr, config } = opts;
  const target = parseTarget(opts.target);
  if (!target) {
    stderr.write(`aigate pin: "${opts.target}" is not HOST or HOST:PORT\n`);
    return 1;
  }
  const where = formatHostPort(target.host, target.port);
  let ca: string[] | undefined;
  let dial = { host: target.host, port: target.port };
  try {
    const extra = loadExtraCAs(config);
    // Same trust as the upstream connector: the bundled roots plus upstreamTls.ca.
    if (extra.length > 0) ca = [...rootCertificates, ...extra];
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
      ? `  chain:   verified${ca ? ' (bundled roots + upstreamTls.ca)' : ' (bundled roots)'}`
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

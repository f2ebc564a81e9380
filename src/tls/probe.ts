// One TLS handshake to an upstream exactly as aigate makes it (SNI = the name, verification against
// the trust of tls/trust.ts: bundled roots, OS store, NODE_EXTRA_CA_CERTS and upstreamTls.ca;
// identity checked against the name even when connectTo dials another address). Shared by
// `aigate pin` and `aigate check`.
import type { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { checkServerIdentity, connect, type TLSSocket } from 'node:tls';
import type { Config } from '../config/schema.js';

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

export function describeError(err: NodeJS.ErrnoException, where: string, insecureHint: boolean): string {
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

export function loadExtraCAs(config: Config | undefined): string[] {
  return (config?.upstreamTls.ca ?? []).map((path, i) => {
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw new Error(`cannot read upstreamTls.ca[${i}] (${path}): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  });
}

export interface Handshake {
  leaf: X509Certificate;
  authorized: boolean;
  authorizationError: string | null;
  protocol: string | null;
}

export function handshake(opts: {
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


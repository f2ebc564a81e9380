// Vendor-key identity: developers behind one address (a NAT, a balancer without PROXY protocol)
// who each send their own vendor key are told apart by an HMAC fingerprint of that key — for the
// audit line (client.credential) and, with rateLimit.key: credential, for their own bucket. The
// key itself is never kept, logged or used as a store key.
import { createHmac } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Stage } from '../exchange.js';

/** Headers that carry a vendor key, in the order they are looked at. */
const CREDENTIAL_HEADERS = ['x-api-key', 'api-key', 'x-goog-api-key'] as const;

/** The vendor credential a request carries: a Bearer token, or an API-key header. */
export function requestCredential(headers: IncomingHttpHeaders): string | undefined {
  const auth = headers.authorization;
  const bearer = auth === undefined ? undefined : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(auth)?.[1];
  if (bearer) return bearer;
  for (const name of CREDENTIAL_HEADERS) {
    const v = headers[name];
    const value = (Array.isArray(v) ? v[0] : v)?.trim();
    if (value) return value;
  }
  return undefined;
}

/**
 * 16 hex digits of HMAC-SHA256 under the fingerprint key, labelled so it never equals a finding's
 * fingerprint of the same value. Stable across restarts and replicas only with audit.fingerprintKey set.
 */
export function credentialFingerprint(key: Buffer, credential: string): string {
  return createHmac('sha256', key).update('aigate credential\u0000').update(credential).digest('hex').slice(0, 16);
}

export function credentialStage(fingerprintKey: Buffer): Stage {
  return (ex) => {
    const credential = requestCredential(ex.req.headers);
    if (credential !== undefined) ex.flow.client.credential = credentialFingerprint(fingerprintKey, credential);
  };
}

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

/** Credentials whose fingerprints a stage keeps (CredentialFingerprints). */
export const CREDENTIAL_CACHE_SIZE = 1024;
/**
 * Longer credentials are fingerprinted every time, never kept: vendor keys are well under it
 * (OpenAI's longest ~170 characters), and a client sending 16 KiB headers cannot make the cache
 * hold more than CREDENTIAL_CACHE_SIZE × this.
 */
export const CACHED_CREDENTIAL_LENGTH = 512;

/**
 * credentialFingerprint, remembered for the last CREDENTIAL_CACHE_SIZE credentials first seen: a
 * client sends the same key on every request, and an HMAC per request cost ~22k instructions of
 * the ~380k of a small request (bench/instructions.mjs --bearer). The credentials are held as keys only,
 * in this process's memory like the request that carried them, and never logged; a full cache
 * forgets the one it met first, so a client sending a new key each time costs one HMAC and one
 * entry each, as before, and holds no more than the bound (in count and in length).
 */
export class CredentialFingerprints {
  private readonly known = new Map<string, string>();

  constructor(
    private readonly key: Buffer,
    private readonly max = CREDENTIAL_CACHE_SIZE,
  ) {}

  of(credential: string): string {
    let fingerprint = this.known.get(credential);
    if (fingerprint === undefined) {
      fingerprint = credentialFingerprint(this.key, credential);
      if (credential.length > CACHED_CREDENTIAL_LENGTH) return fingerprint;
      if (this.known.size >= this.max) this.known.delete(this.known.keys().next().value!);
      // Kept as a copy of its own: the credential may be V8's slice of the whole header value
      // (whitespace after it, up to the header size limit), which a kept slice would keep alive.
      this.known.set(ownCopy(credential), fingerprint);
    }
    return fingerprint;
  }

  /** Whether `credential` is remembered (tests). */
  has(credential: string): boolean {
    return this.known.has(credential);
  }

  /** How many credentials are remembered (tests). */
  get size(): number {
    return this.known.size;
  }
}

/** The same characters in a string of their own (UTF-16 code units round-trip exactly). */
function ownCopy(s: string): string {
  return Buffer.from(s, 'utf16le').toString('utf16le');
}

export function credentialStage(fingerprintKey: Buffer): Stage {
  // One cache per stage, that is per configuration: a reload's new fingerprint key starts afresh.
  const fingerprints = new CredentialFingerprints(fingerprintKey);
  return (ex) => {
    const credential = requestCredential(ex.req.headers);
    if (credential !== undefined) ex.flow.client.credential = fingerprints.of(credential);
  };
}

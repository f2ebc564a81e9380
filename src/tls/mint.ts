// Leaf certificates for forward-mode TLS interception (SPEC §4 `inspect: true`), minted on demand
// and signed by `tls.ca`, mitmproxy-style:
//  - ONE key pair for all leaves, generated once off the event loop. A per-host key would cost a key
//    generation per new host for no security gain: whoever holds this process's memory holds the CA
//    key anyway.
//  - The leaf key is EC P-256 by default: the server signs on every handshake, and an ECDSA signature
//    costs a few percent of an RSA-2048 one. Every client we care about accepts ECDSA certificates.
//  - forge builds the TBSCertificate; the signature runs on the libuv thread pool (crypto.sign with a
//    callback), so a mint costs the event loop only the DER assembly (see bench/mint.mjs).
//  - Bounded LRU of secure contexts; concurrent requests for one host share one mint.
//  - At most two mints run at once, each starting in its own macrotask: a burst of CONNECTs to new
//    hosts would otherwise run every mint's synchronous part (TBS assembly, createSecureContext,
//    ~1 ms each) back to back in one turn of the loop and stall streams for tens of milliseconds.
import { generateKeyPair, type KeyObject } from 'node:crypto';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { canonicalHost } from '../route/address.js';
import { CertificateError, loadIssuer, prepareCertificate, signCertificate, subjectKey, type Issuer, type PemPair, type SubjectKey } from './x509.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export interface LeafMinterOptions {
  /** Secure contexts kept (LRU). Default 1000. */
  maxEntries?: number;
  /** Leaf lifetime. Default 30 days; always ends before the CA does. */
  validityDays?: number;
  /** A cached leaf this close to expiry is minted again. Default 1 day. */
  renewBeforeMs?: number;
  /** 'ec' (P-256, default) or 'rsa' (2048). */
  keyType?: 'ec' | 'rsa';
  /** Passed to tls.createSecureContext for every leaf (minVersion, ciphers …). */
  secureContextOptions?: Omit<SecureContextOptions, 'key' | 'cert'>;
  /** Mints in progress at once. Default 2. */
  concurrency?: number;
  /** Clock, for tests. */
  now?: () => number;
}

export interface MintedLeaf {
  host: string;
  certPem: string;
  context: SecureContext;
  notAfter: number;
}

export interface MinterStats {
  size: number;
  hits: number;
  mints: number;
  /** Requests that joined a mint already in progress for the same host. */
  coalesced: number;
}

interface LeafKey {
  keyPem: string;
  subject: SubjectKey;
}

function generateLeafKey(type: 'ec' | 'rsa'): Promise<LeafKey> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, publicKey: KeyObject, privateKey: KeyObject): void => {
      if (err) return reject(err);
      resolve({ keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, subject: subjectKey(publicKey) });
    };
    if (type === 'rsa') generateKeyPair('rsa', { modulusLength: 2048 }, done);
    else generateKeyPair('ec', { namedCurve: 'P-256' }, done);
  });
}

export class LeafMinter {
  private readonly issuer: Issuer;
  private readonly leafKey: Promise<LeafKey>;
  private readonly cache = new Map<string, MintedLeaf>();
  private readonly inflight = new Map<string, Promise<MintedLeaf>>();
  private readonly maxEntries: number;
  private readonly validityMs: number;
  private readonly renewBeforeMs: number;
  private readonly contextOptions: Omit<SecureContextOptions, 'key' | 'cert'>;
  private readonly now: () => number;
  private readonly counters = { hits: 0, mints: 0, coalesced: 0 };
  private readonly concurrency: number;
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  /** Throws CertificateError when the CA certificate and key are unusable (not a CA, key mismatch). */
  constructor(ca: PemPair, opts: LeafMinterOptions = {}) {
    this.issuer = loadIssuer(ca, 'tls.ca');
    this.maxEntries = Math.max(1, opts.maxEntries ?? 1000);
    this.validityMs = (opts.validityDays ?? 30) * DAY;
    this.renewBeforeMs = opts.renewBeforeMs ?? DAY;
    this.contextOptions = opts.secureContextOptions ?? {};
    this.now = opts.now ?? Date.now;
    this.concurrency = Math.max(1, opts.concurrency ?? 2);
    this.leafKey = generateLeafKey(opts.keyType ?? 'ec');
    // A failure surfaces from ready()/contextFor(); never as an unhandled rejection.
    this.leafKey.catch(() => undefined);
  }

  /** Resolves once the leaf key exists. Awaiting it at start-up keeps the first CONNECT fast. */
  async ready(): Promise<void> {
    await this.leafKey;
  }

  get stats(): MinterStats {
    return { size: this.cache.size, ...this.counters };
  }

  /** The CA certificate leaves chain to (PEM). */
  get caCertPem(): string {
    return this.issuer.certPem;
  }

  async contextFor(host: string): Promise<SecureContext> {
    return (await this.leafFor(host)).context;
  }

  /** The leaf for `host` (a DNS name or an IP address, brackets allowed), minted or from the cache. */
  leafFor(host: string): Promise<MintedLeaf> {
    const c = canonicalHost(host);
    if (!c) return Promise.reject(new CertificateError(`cannot mint a certificate for "${host}": not a host name or IP address`));
    const key = c.host;
    const cached = this.cache.get(key);
    if (cached && cached.notAfter - this.now() > this.renewBeforeMs) {
      this.counters.hits++;
      this.cache.delete(key); // re-insert: Map order is the LRU order
      this.cache.set(key, cached);
      return Promise.resolve(cached);
    }
    const pending = this.inflight.get(key);
    if (pending) {
      this.counters.coalesced++;
      return pending;
    }
    const minting = this.mint(key).finally(() => this.inflight.delete(key));
    this.inflight.set(key, minting);
    return minting;
  }

  /** A mint slot; the returned promise resolves in a fresh macrotask, never inside the caller's turn. */
  private acquire(): Promise<void> {
    return new Promise((resolve) => {
      const start = (): void => {
        this.active++;
        setImmediate(resolve);
      };
      if (this.active < this.concurrency) start();
      else this.waiting.push(start);
    });
  }

  private release(): void {
    this.active--;
    this.waiting.shift()?.();
  }

  private async mint(host: string): Promise<MintedLeaf> {
    const leafKey = await this.leafKey;
    await this.acquire();
    try {
      return await this.mintNow(host, leafKey);
    } finally {
      this.release();
    }
  }

  private async mintNow(host: string, leafKey: LeafKey): Promise<MintedLeaf> {
    const now = this.now();
    const notAfter = Math.min(now + this.validityMs, this.issuer.notAfter.getTime() - HOUR);
    if (notAfter <= now) throw new CertificateError(`the interception CA expired on ${this.issuer.notAfter.toISOString()}`);
    const prepared = prepareCertificate(
      {
        // CN is limited to 64 characters; longer names live in the SAN alone.
        commonName: host.length <= 64 ? host : null,
        subjectKey: leafKey.subject,
        notBefore: new Date(now - HOUR), // tolerate client clocks running a little behind
        notAfter: new Date(notAfter),
        hosts: [host],
      },
      this.issuer,
    );
    const certPem = await signCertificate(prepared);
    const context = createSecureContext({ ...this.contextOptions, key: leafKey.keyPem, cert: certPem });
    const leaf: MintedLeaf = { host, certPem, context, notAfter };
    this.counters.mints++;
    this.cache.delete(host);
    this.cache.set(host, leaf);
    while (this.cache.size > this.maxEntries) {
      const oldest = this.cache.keys().next().value as string;
      this.cache.delete(oldest);
    }
    return leaf;
  }
}

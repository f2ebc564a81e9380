// The development/company CA and the gateway's server certificate (SPEC §1 `aigate certs init`).
import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { canonicalHost } from '../route/address.js';
import {
  CertificateError,
  loadIssuer,
  prepareCertificate,
  publicKeyOf,
  signCertificateSync,
  subjectKey,
  type Issuer,
  type PemPair,
} from './x509.js';

export { CertificateError, type PemPair } from './x509.js';

const DAY = 86_400_000;
/** Apple's limit for TLS server certificates from private CAs; browsers refuse longer ones. */
export const MAX_SERVER_CERT_DAYS = 825;
export const CA_VALIDITY_DAYS = 3650;
/** init renews proxy.crt when it has less than this left. */
export const RENEW_BEFORE_DAYS = 30;

function rsaKeyPair(): { keyPem: string; publicKey: ReturnType<typeof publicKeyOf> } {
  // Native key generation: forge's pure-JS RSA keygen takes seconds.
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, publicKey };
}

export interface CreateCAOptions {
  commonName?: string;
  validityDays?: number;
  now?: Date;
}

/** A new root CA: RSA 2048, CA:TRUE with pathlen 0 (it signs leaves only), keyCertSign, 10 years. */
export function createCA(opts: CreateCAOptions = {}): PemPair {
  const now = opts.now ?? new Date();
  const { keyPem, publicKey } = rsaKeyPair();
  const prepared = prepareCertificate(
    {
      commonName: opts.commonName ?? `aigate CA (${hostname()})`,
      organization: 'aigate',
      subjectKey: subjectKey(publicKey),
      notBefore: new Date(now.getTime() - 3_600_000),
      notAfter: new Date(now.getTime() + (opts.validityDays ?? CA_VALIDITY_DAYS) * DAY),
      ca: { pathLength: 0 },
    },
    { self: createPrivateKey(keyPem) },
  );
  return { certPem: signCertificateSync(prepared), keyPem };
}

export interface IssueOptions {
  validityDays?: number;
  now?: Date;
  commonName?: string;
}

/**
 * A TLS server certificate for `hosts` (DNS names, `*.` wildcards or IP addresses; IPs become
 * iPAddress SANs), serverAuth, RSA 2048, valid at most 825 days and never past the CA's own expiry.
 */
export function issueServerCert(ca: PemPair | Issuer, hosts: readonly string[], opts: IssueOptions = {}): PemPair {
  const issuer = 'key' in ca ? ca : loadIssuer(ca);
  const names = normalizeCertHosts(hosts);
  const now = opts.now ?? new Date();
  const days = Math.min(opts.validityDays ?? MAX_SERVER_CERT_DAYS, MAX_SERVER_CERT_DAYS);
  const notAfter = new Date(Math.min(now.getTime() + days * DAY, issuer.notAfter.getTime()));
  const { keyPem, publicKey } = rsaKeyPair();
  const first = names[0]!;
  const cn = opts.commonName ?? (first.length <= 64 ? first : null);
  const prepared = prepareCertificate(
    {
      commonName: cn,
      organization: 'aigate',
      subjectKey: subjectKey(publicKey),
      notBefore: new Date(now.getTime() - 3_600_000),
      notAfter,
      hosts: names,
    },
    issuer,
  );
  return { certPem: signCertificateSync(prepared), keyPem };
}

/** Canonical, de-duplicated SAN list (lower-case names, canonical IPs). Throws on an invalid name. */
export function normalizeCertHosts(hosts: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of hosts) {
    const wildcard = raw.startsWith('*.');
    const c = canonicalHost(wildcard ? raw.slice(2) : raw);
    if (!c || (wildcard && c.ip !== 0)) throw new CertificateError(`"${raw}" is not a DNS name or IP address`);
    const name = wildcard ? `*.${c.host}` : c.host;
    if (!out.includes(name)) out.push(name);
  }
  if (out.length === 0) throw new CertificateError('at least one host name is needed');
  return out;
}

/** SPEC §1 default SANs: localhost, 127.0.0.1, ::1 and this machine's host name. */
export function defaultCertHosts(): string[] {
  const names = ['localhost', '127.0.0.1', '::1'];
  const own = canonicalHost(hostname());
  if (own && !names.includes(own.host)) names.push(own.host);
  return names;
}

/** The DNS names and IPs a certificate is valid for, from its subjectAltName. */
export function certificateHosts(cert: X509Certificate): string[] {
  const san = cert.subjectAltName ?? '';
  const out: string[] = [];
  for (const part of san.split(/,\s*/)) {
    const m = /^(DNS|IP Address):(.+)$/.exec(part.trim());
    if (!m) continue;
    const c = m[1] === 'DNS' ? m[2]!.toLowerCase() : canonicalHost(m[2]!)?.host;
    if (c) out.push(c);
  }
  return out;
}

/** Writes via a 0600 temp file and rename: the key is never readable by others, not even briefly,
 *  and a crash never leaves half a file. */
export function writeFileAtomic(path: string, data: string, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, data);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, mode); // the umask may have narrowed it further, never widened; make it exact
  renameSync(tmp, path);
}

export interface InitCertsOptions {
  dir: string;
  /** SANs for proxy.crt; default defaultCertHosts(). */
  hosts?: readonly string[];
  now?: Date;
}

export interface InitCertsResult {
  /** Absolute paths of files written this run. */
  created: string[];
  /** Absolute paths of files kept as they were. */
  reused: string[];
  /** Why proxy.crt was (re)issued, when it was: 'missing', 'not issued by the current CA', … */
  renewed: string | null;
  /** Problems worth telling the operator about that did not stop init (loose key permissions). */
  warnings: string[];
  caCertPath: string;
  caKeyPath: string;
  certPath: string;
  keyPath: string;
  /** The SANs of proxy.crt as it now is. */
  hosts: string[];
  caNotAfter: Date;
  certNotAfter: Date;
}

/**
 * `aigate certs init`. The CA is created only when neither ca.crt nor ca.key exists and is otherwise
 * reused (after checking that the two belong together) — regenerating it would silently break every
 * client that trusts it. proxy.crt/proxy.key are (re)issued when missing, unreadable, not signed by
 * the current CA, expiring within 30 days, or not covering every requested host; the new certificate
 * keeps the names the old one had, so adding `--host` never drops a name clients use (delete proxy.crt
 * to start from exactly the requested list). Keys are written 0600.
 */
export function initCerts(opts: InitCertsOptions): InitCertsResult {
  const dir = resolve(opts.dir);
  const now = opts.now ?? new Date();
  const caCertPath = join(dir, 'ca.crt');
  const caKeyPath = join(dir, 'ca.key');
  const certPath = join(dir, 'proxy.crt');
  const keyPath = join(dir, 'proxy.key');
  const requested = normalizeCertHosts(opts.hosts && opts.hosts.length > 0 ? opts.hosts : defaultCertHosts());
  const created: string[] = [];
  const reused: string[] = [];

  mkdirSync(dir, { recursive: true, mode: 0o755 });

  let ca: PemPair;
  const haveCert = existsSync(caCertPath);
  const haveKey = existsSync(caKeyPath);
  if (haveCert !== haveKey) {
    const [present, missing] = haveCert ? [caCertPath, caKeyPath] : [caKeyPath, caCertPath];
    throw new CertificateError(
      `${present} exists but ${missing} does not; restore ${missing}, or remove ${present} to create a new CA (clients trusting the old one will then need the new ca.crt)`,
    );
  }
  if (haveCert) {
    ca = { certPem: readFileSync(caCertPath, 'utf8'), keyPem: readFileSync(caKeyPath, 'utf8') };
    reused.push(caCertPath, caKeyPath);
  } else {
    ca = createCA({ now });
    writeFileAtomic(caKeyPath, ca.keyPem, 0o600);
    writeFileAtomic(caCertPath, ca.certPem, 0o644);
    created.push(caCertPath, caKeyPath);
  }
  const issuer = loadIssuer(ca, `CA (${caCertPath})`);
  if (issuer.notAfter.getTime() <= now.getTime()) {
    throw new CertificateError(`the CA in ${caCertPath} expired on ${issuer.notAfter.toISOString()}; remove ca.crt and ca.key to create a new one`);
  }

  let renewed: string | null = null;
  let hosts = requested;
  let existing: X509Certificate | null = null;
  if (!existsSync(certPath) || !existsSync(keyPath)) {
    renewed = 'missing';
  } else {
    try {
      existing = new X509Certificate(readFileSync(certPath));
      const key = createPrivateKey(readFileSync(keyPath, 'utf8'));
      if (!existing.checkPrivateKey(key)) renewed = 'proxy.key does not match proxy.crt';
    } catch {
      renewed = 'unreadable';
    }
  }
  if (existing && renewed === null) {
    const have = certificateHosts(existing);
    const missing = requested.filter((h) => !have.includes(h));
    if (!existing.checkIssued(new X509Certificate(ca.certPem)) || !existing.verify(publicKeyOf(ca.keyPem))) {
      renewed = 'not issued by the current CA';
    } else if (new Date(existing.validTo).getTime() - now.getTime() < RENEW_BEFORE_DAYS * DAY) {
      renewed = `expires ${new Date(existing.validTo).toISOString()}`;
    } else if (missing.length > 0) {
      renewed = `adds ${missing.join(', ')}`;
      hosts = normalizeCertHosts([...have, ...requested]);
    } else {
      hosts = have;
    }
  }

  let certNotAfter: Date;
  if (renewed === null) {
    reused.push(certPath, keyPath);
    certNotAfter = new Date(existing!.validTo);
  } else {
    const server = issueServerCert(issuer, hosts, { now });
    writeFileAtomic(keyPath, server.keyPem, 0o600);
    writeFileAtomic(certPath, server.certPem, 0o644);
    created.push(certPath, keyPath);
    certNotAfter = new Date(new X509Certificate(server.certPem).validTo);
  }
  // Keys we did not write this run may have been copied in with loose permissions: say so rather
  // than silently changing someone else's file.
  const warnings: string[] = [];
  for (const k of [caKeyPath, keyPath]) {
    if (created.includes(k)) continue;
    const mode = statSync(k).mode & 0o777;
    if (mode & 0o077) warnings.push(`${k} is readable by other users (mode ${mode.toString(8).padStart(4, '0')}); run: chmod 600 ${k}`);
  }

  return { created, reused, renewed, warnings, caCertPath, caKeyPath, certPath, keyPath, hosts, caNotAfter: issuer.notAfter, certNotAfter };
}

// Certificate assembly shared by the CA, the gateway certificate and the leaf minter.
//
// node-forge builds the TBSCertificate (names, validity, extensions, DER), but the signature is made
// with node's native crypto: forge's pure-JS RSA signing takes tens of milliseconds of event-loop
// time, native signing well under one and can run on the thread pool. Two parts of forge's TBS are
// replaced with raw DER, which also lets the issuing CA and the subject key be RSA or EC:
//   - the subject public key (forge only encodes RSA keys), taken from node's SPKI export;
//   - the issuer name, copied byte for byte from the CA certificate's subject, so chain building
//     matches exactly whatever string types the (possibly corporate) CA used.
import { createHash, createPrivateKey, createPublicKey, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { canonicalHost, ipToBytes } from '../route/address.js';

const { asn1, pki } = forge;
type Asn1 = forge.asn1.Asn1;

export interface PemPair {
  certPem: string;
  keyPem: string;
}

/** What signing a certificate needs from its issuer, parsed once. */
export interface Issuer {
  certPem: string;
  key: KeyObject;
  /** The issuer's subject Name, DER-decoded (becomes the child's issuer field unchanged). */
  subject: Asn1;
  /** The issuer's subjectKeyIdentifier (binary string), for the child's authorityKeyIdentifier. */
  keyId: string | null;
  notBefore: Date;
  notAfter: Date;
}

export interface SubjectKey {
  /** DER SubjectPublicKeyInfo, decoded. */
  spki: Asn1;
  /** RFC 5280 method 1 key identifier (SHA-1 of the subjectPublicKey bits), binary string. */
  keyId: string;
}

export class CertificateError extends Error {
  override name = 'CertificateError';
}

const OID = {
  sha256WithRSA: '1.2.840.113549.1.1.11',
  ecdsaSha256: '1.2.840.10045.4.3.2',
  ecdsaSha384: '1.2.840.10045.4.3.3',
  ecdsaSha512: '1.2.840.10045.4.3.4',
  ed25519: '1.3.101.112',
  subjectKeyIdentifier: '2.5.29.14',
} as const;

function toBinary(buf: Buffer): string {
  return buf.toString('binary');
}

// The typings only know the old boolean `strict` argument; forge also takes an options object.
// decodeBitStrings: false keeps BIT STRINGs opaque, so re-encoding reproduces the input exactly.
const fromDer = asn1.fromDer as unknown as (bytes: string, options: { decodeBitStrings: boolean }) => Asn1;

function derOf(node: Asn1): Buffer {
  return Buffer.from(asn1.toDer(node).getBytes(), 'binary');
}

export function subjectKey(publicKey: KeyObject): SubjectKey {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const spki = fromDer(toBinary(der), { decodeBitStrings: false });
  const bits = (spki.value as Asn1[])[1]!;
  // BIT STRING content starts with the unused-bits count, which is not part of the key bits.
  const keyBits = Buffer.from((bits.value as string).slice(1), 'binary');
  return { spki, keyId: toBinary(createHash('sha1').update(keyBits).digest()) };
}

/** Subject name, validity and subjectKeyIdentifier of a certificate, read from its DER. */
function readCertificate(der: Buffer): { subject: Asn1; keyId: string | null } {
  const cert = fromDer(toBinary(der), { decodeBitStrings: false });
  const tbs = ((cert.value as Asn1[])[0]!.value as Asn1[]);
  const offset = tbs[0]!.tagClass === asn1.Class.CONTEXT_SPECIFIC && tbs[0]!.type === 0 ? 1 : 0;
  const subject = tbs[offset + 4]!;
  let keyId: string | null = null;
  const extWrapper = tbs.find((n) => n.tagClass === asn1.Class.CONTEXT_SPECIFIC && n.type === 3);
  const exts = extWrapper ? (((extWrapper.value as Asn1[])[0]!.value as Asn1[]) ?? []) : [];
  for (const ext of exts) {
    const parts = ext.value as Asn1[];
    if (asn1.derToOid(parts[0]!.value as string) !== OID.subjectKeyIdentifier) continue;
    const inner = asn1.fromDer(parts[parts.length - 1]!.value as string);
    keyId = inner.value as string;
  }
  return { subject, keyId };
}

/** Parses and cross-checks a CA certificate and its key. Throws CertificateError saying what is wrong. */
export function loadIssuer(ca: PemPair, label = 'CA'): Issuer {
  let x509: X509Certificate;
  let key: KeyObject;
  try {
    x509 = new X509Certificate(ca.certPem);
  } catch (err) {
    throw new CertificateError(`${label} certificate is not a PEM certificate: ${(err as Error).message}`);
  }
  try {
    key = createPrivateKey(ca.keyPem);
  } catch (err) {
    throw new CertificateError(`${label} key is not a readable PEM private key (encrypted keys are not supported): ${(err as Error).message}`);
  }
  if (!x509.ca) throw new CertificateError(`${label} certificate is not a CA (basicConstraints CA:TRUE missing)`);
  if (!x509.checkPrivateKey(key)) throw new CertificateError(`${label} key does not belong to the ${label} certificate`);
  signatureAlgorithm(key); // fail early on unsupported key types
  const { subject, keyId } = readCertificate(x509.raw);
  return { certPem: ca.certPem, key, subject, keyId, notBefore: new Date(x509.validFrom), notAfter: new Date(x509.validTo) };
}

function signatureAlgorithm(key: KeyObject): { oid: string; hash: string | null; params: boolean } {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return { oid: OID.sha256WithRSA, hash: 'sha256', params: true };
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === 'secp384r1') return { oid: OID.ecdsaSha384, hash: 'sha384', params: false };
      if (curve === 'secp521r1') return { oid: OID.ecdsaSha512, hash: 'sha512', params: false };
      return { oid: OID.ecdsaSha256, hash: 'sha256', params: false };
    }
    case 'ed25519':
      return { oid: OID.ed25519, hash: null, params: false };
    default:
      throw new CertificateError(`unsupported CA key type ${key.asymmetricKeyType ?? 'unknown'} (use RSA, EC or Ed25519)`);
  }
}

function algorithmIdentifier(alg: { oid: string; params: boolean }): Asn1 {
  const parts: Asn1[] = [asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(alg.oid).getBytes())];
  if (alg.params) parts.push(asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, ''));
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, parts);
}

/** Positive, minimally encoded 128-bit serial (RFC 5280 allows up to 20 octets). */
function randomSerialHex(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x40;
  return b.toString('hex');
}

/** DNS and IP subjectAltName entries, IPs typed as iPAddress with their raw bytes. */
export function altNames(hosts: readonly string[]): Array<{ type: number; value: string }> {
  return hosts.map((h) => {
    const c = canonicalHost(h.startsWith('*.') ? h.slice(2) : h);
    if (!c || (h.startsWith('*.') && c.ip !== 0)) throw new CertificateError(`"${h}" is not a DNS name or IP address`);
    if (c.ip !== 0) return { type: 7, value: toBinary(ipToBytes(c.host)!) };
    return { type: 2, value: h.startsWith('*.') ? `*.${c.host}` : c.host };
  });
}

// forge needs *a* public key object to build the TBS; the real SPKI replaces it afterwards.
const placeholderKey = pki.rsa.setPublicKey(new forge.jsbn.BigInteger('65537'), new forge.jsbn.BigInteger('65537'));

export interface CertificateTemplate {
  commonName: string | null;
  organization?: string;
  subjectKey: SubjectKey;
  notBefore: Date;
  notAfter: Date;
  /** CA certificate (keyCertSign) with this path length, or an end-entity TLS server certificate. */
  ca?: { pathLength: number };
  /** Server certificate names (DNS or IP); required unless `ca`. */
  hosts?: readonly string[];
}

export interface PreparedCertificate {
  tbs: Buffer;
  /** Call with the signature over `tbs` to get the PEM certificate. */
  assemble(signature: Buffer): string;
  hash: string | null;
  key: KeyObject;
}

/** Builds the TBSCertificate for `tpl` as issued by `issuer` ('self' for a self-signed CA, with its key). */
export function prepareCertificate(tpl: CertificateTemplate, issuer: Issuer | { self: KeyObject }): PreparedCertificate {
  const signingKey = 'self' in issuer ? issuer.self : issuer.key;
  const alg = signatureAlgorithm(signingKey);
  const cert = pki.createCertificate();
  cert.serialNumber = randomSerialHex();
  cert.validity.notBefore = tpl.notBefore;
  cert.validity.notAfter = tpl.notAfter;
  cert.publicKey = placeholderKey;

  const attrs: forge.pki.CertificateField[] = [];
  if (tpl.organization) attrs.push({ name: 'organizationName', value: tpl.organization, valueTagClass: asn1.Type.UTF8 as never });
  if (tpl.commonName) attrs.push({ name: 'commonName', value: tpl.commonName, valueTagClass: asn1.Type.UTF8 as never });
  cert.setSubject(attrs);
  cert.setIssuer(attrs); // replaced below unless self-signed

  const ski = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, tpl.subjectKey.keyId);
  const extensions: object[] = [];
  if (tpl.ca) {
    extensions.push(
      { name: 'basicConstraints', cA: true, pathLenConstraint: tpl.ca.pathLength, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
      { name: 'subjectKeyIdentifier', value: ski },
    );
  } else {
    const hosts = tpl.hosts ?? [];
    if (hosts.length === 0) throw new CertificateError('a server certificate needs at least one host name');
    extensions.push(
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      // Critical when the subject is empty (RFC 5280 §4.2.1.6).
      { name: 'subjectAltName', altNames: altNames(hosts), critical: tpl.commonName === null },
      { name: 'subjectKeyIdentifier', value: ski },
    );
  }
  const authorityKeyId = 'self' in issuer ? null : issuer.keyId;
  if (authorityKeyId !== null) extensions.push({ name: 'authorityKeyIdentifier', keyIdentifier: authorityKeyId });
  cert.setExtensions(extensions);

  cert.siginfo.algorithmOid = OID.sha256WithRSA;
  const tbs = (pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): Asn1 }).getTBSCertificate(cert);
  const fields = tbs.value as Asn1[];
  const algId = algorithmIdentifier(alg);
  fields[2] = algId;
  if (!('self' in issuer)) fields[3] = issuer.subject;
  fields[6] = tpl.subjectKey.spki;
  const tbsDer = derOf(tbs);

  return {
    tbs: tbsDer,
    hash: alg.hash,
    key: signingKey,
    assemble(signature: Buffer): string {
      const certificate = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
        tbs,
        algorithmIdentifier(alg),
        asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, `\u0000${toBinary(signature)}`),
      ]);
      return toPem('CERTIFICATE', derOf(certificate));
    },
  };
}

/** Signs synchronously (CLI and tests). */
export function signCertificateSync(prepared: PreparedCertificate): string {
  return prepared.assemble(sign(prepared.hash, prepared.tbs, prepared.key));
}

/** Signs on the libuv thread pool, so the event loop only pays for building the TBS. */
export function signCertificate(prepared: PreparedCertificate): Promise<string> {
  return new Promise((resolve, reject) => {
    sign(prepared.hash, prepared.tbs, prepared.key, (err, signature) => {
      if (err) reject(err);
      else resolve(prepared.assemble(signature));
    });
  });
}

export function toPem(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

export function publicKeyOf(keyPem: string): KeyObject {
  return createPublicKey(createPrivateKey(keyPem));
}

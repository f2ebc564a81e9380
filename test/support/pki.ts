// Throwaway PKI for tests, cached per process (RSA key generation is the slow part).
//
//   aigateCA()          the proxy's own CA (tls.ca) — mints interception leaves, signs proxy.crt
//   upstreamCA()        a separate CA standing in for the public web PKI: fake vendor upstreams
//                       present certificates from it, and the proxy trusts it via upstreamTls.ca
//   upstreamCert(hosts) a server certificate for fake vendor hosts, signed by upstreamCA()
//   proxyCert(hosts)    the gateway certificate, signed by aigateCA()
//   writePki(dir)       the same material as files, for tests that start the real CLI
//
// Each CA is distinct, so a test can tell "the client saw a minted leaf" from "the client saw the
// upstream's own certificate" by the issuer.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import forge from 'node-forge';
import { join } from 'node:path';
import { createCA, issueServerCert, type PemPair } from '../../src/tls/ca.js';

export type { PemPair };

const cas = new Map<string, PemPair>();
const leaves = new Map<string, PemPair>();

/** A CA by name; the same name returns the same CA for the life of the process. */
export function testCA(name: string): PemPair {
  let ca = cas.get(name);
  if (!ca) cas.set(name, (ca = createCA({ commonName: `aigate test CA: ${name}` })));
  return ca;
}

export const aigateCA = (): PemPair => testCA('aigate');
export const upstreamCA = (): PemPair => testCA('upstream');

/** A server certificate for `hosts` from the named CA, cached by (CA, hosts). */
export function serverCert(caName: string, hosts: readonly string[]): PemPair {
  const key = `${caName}|${hosts.join(',')}`;
  let cert = leaves.get(key);
  if (!cert) leaves.set(key, (cert = issueServerCert(testCA(caName), hosts)));
  return cert;
}

/** Default names cover the vendor hosts tests fake plus loopback. */
export const FAKE_VENDOR_HOSTS = [
  'api.githubcopilot.com',
  'api.individual.githubcopilot.com',
  'copilot-proxy.githubusercontent.com',
  'api.anthropic.com',
  'api2.cursor.sh',
  'api.openai.com',
  'localhost',
  '127.0.0.1',
  '::1',
] as const;

export const upstreamCert = (hosts: readonly string[] = FAKE_VENDOR_HOSTS): PemPair => serverCert('upstream', hosts);
export const proxyCert = (hosts: readonly string[] = ['localhost', '127.0.0.1', '::1']): PemPair => serverCert('aigate', hosts);

export interface PkiFiles {
  dir: string;
  caCert: string;
  caKey: string;
  proxyCert: string;
  proxyKey: string;
  upstreamCaCert: string;
}

/** Writes aigate's CA and proxy certificate (certs init layout) plus the upstream CA certificate. */
export function writePki(dir: string): PkiFiles {
  mkdirSync(dir, { recursive: true });
  const files: PkiFiles = {
    dir,
    caCert: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    proxyCert: join(dir, 'proxy.crt'),
    proxyKey: join(dir, 'proxy.key'),
    upstreamCaCert: join(dir, 'upstream-ca.crt'),
  };
  const ca = aigateCA();
  const proxy = proxyCert();
  writeFileSync(files.caCert, ca.certPem);
  writeFileSync(files.caKey, ca.keyPem, { mode: 0o600 });
  writeFileSync(files.proxyCert, proxy.certPem);
  writeFileSync(files.proxyKey, proxy.keyPem, { mode: 0o600 });
  writeFileSync(files.upstreamCaCert, upstreamCA().certPem);
  return files;
}

/**
 * A TLS client certificate (clientAuth) from the named CA, for gateway mTLS tests: subject CN and
 * emailAddress, and an rfc822Name SAN when `email` is given.
 */
export function clientCert(caName: string, subject: { cn: string; email?: string }): PemPair {
  const ca = testCA(caName);
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  cert.serialNumber = '0' + randomBytes(8).toString('hex');
  cert.validity.notBefore = new Date(Date.now() - 3_600_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  const attrs: forge.pki.CertificateField[] = [{ name: 'commonName', value: subject.cn }];
  if (subject.email) attrs.push({ name: 'emailAddress', value: subject.email });
  cert.setSubject(attrs);
  cert.setIssuer(forge.pki.certificateFromPem(ca.certPem).subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
    { name: 'extKeyUsage', clientAuth: true },
    ...(subject.email ? [{ name: 'subjectAltName', altNames: [{ type: 1, value: subject.email }] }] : []),
  ]);
  cert.sign(forge.pki.privateKeyFromPem(ca.keyPem), forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

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
import { mkdirSync, writeFileSync } from 'node:fs';
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

// The CA certificates aigate trusts for upstream servers (SPEC §2: "system store is always
// trusted"), shared by the connector, `aigate check` and `aigate pin` so that all three agree on
// what verifies.
//
// Why not just `tls.rootCertificates`: that is only Node's bundled Mozilla list. Companies that
// inspect TLS at the perimeter install their CA in the OS store (update-ca-certificates,
// update-ca-trust, the keychain) or hand it to Node via NODE_EXTRA_CA_CERTS; neither shows up in
// rootCertificates, and passing `ca` to createSecureContext replaces Node's default store, so
// without adding them here every upstream connection fails verification on such networks.
import { readFileSync } from 'node:fs';
import * as tls from 'node:tls';

// Where distributions keep the OS store as one PEM bundle, for Node versions that cannot read the
// store themselves: Debian/Ubuntu/Alpine, RHEL/Fedora, SUSE, Alpine/macOS (LibreSSL's cert.pem).
const SYSTEM_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/ca-bundle.pem', '/etc/ssl/cert.pem'];

// OpenSSL also accepts the TRUSTED / X509 variants, so a bundle written that way keeps working.
const PEM_BLOCK = /-----BEGIN ((?:TRUSTED |X509 )?CERTIFICATE)-----[\s\S]*?-----END \1-----/g;

let base: Map<string, string> | undefined;

/**
 * Bundled roots + NODE_EXTRA_CA_CERTS + the OS store + `extraCa` (upstreamTls.ca contents),
 * one PEM per certificate, without duplicates. The OS-side part is read once per process: it is
 * file I/O plus, on newer Node, a keychain / store walk, and the trust of a running proxy should
 * not change under it because someone edited /etc.
 */
export function upstreamCaCertificates(extraCa: readonly string[] = []): string[] {
  base ??= collect([...tls.rootCertificates, readPem(process.env['NODE_EXTRA_CA_CERTS']), ...systemCertificates()]);
  const all = new Map(base);
  for (const pem of extraCa) {
    const blocks = splitPem(pem);
    // Nothing recognisable: hand it to OpenSSL unchanged rather than silently dropping it, so the
    // behaviour for an odd upstreamTls.ca file is what it was before this helper existed.
    if (blocks.length === 0) all.set(pem, pem);
    for (const b of blocks) all.set(b.key, b.pem);
  }
  return [...all.values()];
}

function systemCertificates(): string[] {
  // Node 22.15+/23.10+ reads the real store (keychain, Windows store, OpenSSL's default file and
  // directory honouring SSL_CERT_FILE/SSL_CERT_DIR). Not in Node 20's types, hence the probe.
  const get = (tls as { getCACertificates?: (type: string) => string[] }).getCACertificates;
  if (typeof get === 'function') {
    try {
      const certs = get('system');
      if (certs.length > 0) return certs;
    } catch {
      // fall through to the bundle files
    }
  }
  // Empty result or older Node: the distribution's bundle. SSL_CERT_FILE first, as OpenSSL does.
  const candidates = [process.env['SSL_CERT_FILE'], ...SYSTEM_BUNDLES];
  for (const file of candidates) {
    const pem = readPem(file);
    if (pem) return [pem];
  }
  return [];
}

/** A PEM file's text, or '' when unset / missing / unreadable: Node itself only warns about a bad
 *  NODE_EXTRA_CA_CERTS, and a host without a system bundle simply has nothing to add. */
function readPem(file: string | undefined): string {
  if (!file) return '';
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function splitPem(text: string): Array<{ key: string; pem: string }> {
  // Keyed on the base64 without whitespace: the same root arrives from rootCertificates and the
  // OS bundle with different line wrapping, and each duplicate would be parsed again.
  return [...text.matchAll(PEM_BLOCK)].map((m) => ({ key: m[0].replace(/\s+/g, ''), pem: m[0] }));
}

function collect(texts: string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const t of texts) for (const b of splitPem(t)) map.set(b.key, b.pem);
  return map;
}

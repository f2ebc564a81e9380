import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCA, issueServerCert, normalizeCertHosts, MAX_SERVER_CERT_DAYS } from '../../src/tls/ca.js';
import { loadIssuer } from '../../src/tls/x509.js';
import { aigateCA, upstreamCA } from '../support/pki.js';

const DAY = 86_400_000;

function openssl(args: string[], input?: string): string {
  return execFileSync('openssl', args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

describe('createCA', () => {
  const ca = aigateCA();
  const x = new X509Certificate(ca.certPem);

  it('is a self-signed RSA 2048 CA valid for about ten years', () => {
    expect(x.ca).toBe(true);
    expect(x.checkIssued(x)).toBe(true);
    expect(x.verify(x.publicKey)).toBe(true);
    expect(x.publicKey.asymmetricKeyType).toBe('rsa');
    expect(x.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    const years = (Date.parse(x.validTo) - Date.now()) / (365 * DAY);
    expect(years).toBeGreaterThan(9.9);
    expect(years).toBeLessThan(10.1);
    expect(x.checkPrivateKey(createPrivateKey(ca.keyPem))).toBe(true);
  });

  it('has critical CA:TRUE with pathlen 0 and keyCertSign', () => {
    const text = openssl(['x509', '-noout', '-text'], ca.certPem);
    expect(text).toMatch(/Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign/);
    expect(text).toMatch(/Subject Key Identifier/);
  });

  it('takes a common name', () => {
    const named = createCA({ commonName: 'ACME interception CA' });
    expect(new X509Certificate(named.certPem).subject).toContain('CN=ACME interception CA');
  });
});

describe('issueServerCert', () => {
  const ca = aigateCA();
  const caX = new X509Certificate(ca.certPem);
  const server = issueServerCert(ca, ['LocalHost', '127.0.0.1', '[::1]', '*.Example.COM.', 'gw.internal']);
  const x = new X509Certificate(server.certPem);

  it('chains to the CA', () => {
    expect(x.checkIssued(caX)).toBe(true);
    expect(x.verify(caX.publicKey)).toBe(true);
    expect(x.ca).toBe(false);
    const dir = mkdtempSync(join(tmpdir(), 'aigate-ca-'));
    writeFileSync(join(dir, 'ca.pem'), ca.certPem);
    writeFileSync(join(dir, 'srv.pem'), server.certPem);
    // -x509_strict: RFC 5280 checks (AKI present, SAN encoding, CA key usage …).
    expect(openssl(['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', join(dir, 'ca.pem'), join(dir, 'srv.pem')])).toContain('OK');
  });

  it('types DNS names and IP addresses correctly in the SAN', () => {
    expect(x.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, DNS:*.example.com, DNS:gw.internal');
    expect(x.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(x.checkIP('::1')).toBe('::1');
    expect(x.checkHost('localhost')).toBe('localhost');
    expect(x.checkHost('api.example.com')).toBe('*.example.com');
    expect(x.checkHost('example.com')).toBeUndefined();
    expect(x.checkIP('127.0.0.2')).toBeUndefined();
  });

  it('is for TLS servers only', () => {
    expect(x.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(openssl(['x509', '-noout', '-text'], server.certPem)).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
  });

  it('is valid at most 825 days and never past the CA', () => {
    const days = (Date.parse(x.validTo) - Date.now()) / DAY;
    expect(days).toBeLessThanOrEqual(MAX_SERVER_CERT_DAYS);
    expect(days).toBeGreaterThan(MAX_SERVER_CERT_DAYS - 1);
    const shortCA = createCA({ validityDays: 10 });
    const capped = new X509Certificate(issueServerCert(shortCA, ['localhost']).certPem);
    expect(Date.parse(capped.validTo)).toBeLessThanOrEqual(Date.parse(new X509Certificate(shortCA.certPem).validTo));
  });

  it('is not accepted by a different CA', () => {
    expect(x.checkIssued(new X509Certificate(upstreamCA().certPem))).toBe(false);
  });

  it('can be issued by an EC company CA made with openssl', () => {
    const dir = mkdtempSync(join(tmpdir(), 'aigate-ecca-'));
    const key = join(dir, 'ca.key');
    const crt = join(dir, 'ca.crt');
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
    openssl(['req', '-x509', '-new', '-key', key, '-out', crt, '-days', '30', '-subj', '/C=DE/O=Acme Corp/CN=Acme Proxy CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    const ecCA = { certPem: openssl(['x509', '-in', crt]), keyPem: openssl(['pkey', '-in', key]) };
    const leaf = issueServerCert(ecCA, ['gw.acme.test']);
    writeFileSync(join(dir, 'leaf.pem'), leaf.certPem);
    expect(openssl(['verify', '-x509_strict', '-CAfile', crt, join(dir, 'leaf.pem')])).toContain('OK');
    expect(new X509Certificate(leaf.certPem).issuer).toContain('CN=Acme Proxy CA');
  });

  it('rejects names that are neither DNS names nor IPs', () => {
    expect(() => normalizeCertHosts(['bad host'])).toThrow(/"bad host" is not a DNS name or IP address/);
    expect(() => normalizeCertHosts(['a/b'])).toThrow();
    expect(() => normalizeCertHosts(['*.127.0.0.1'])).toThrow();
    expect(() => normalizeCertHosts([])).toThrow(/at least one/);
  });

  it('refuses a CA key that does not belong to the certificate, or a non-CA certificate', () => {
    expect(() => loadIssuer({ certPem: ca.certPem, keyPem: upstreamCA().keyPem })).toThrow(/does not belong/);
    expect(() => loadIssuer(server)).toThrow(/not a CA/);
  });
});

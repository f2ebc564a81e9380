import { execFileSync } from 'node:child_process';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { spkiPin } from '../../src/tls/spki.js';

function selfSigned(): string {
  const dir = mkdtempSync(join(tmpdir(), 'aigate-spki-'));
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keyFile = join(dir, 'k.pem');
  writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  return execFileSync('openssl', ['req', '-x509', '-new', '-key', keyFile, '-subj', '/CN=pin.test', '-days', '1'], {
    encoding: 'utf8',
  });
}

/** The pipeline documented for HPKP / curl --pinnedpubkey. */
function opensslPin(pem: string): string {
  const pub = execFileSync('openssl', ['x509', '-pubkey', '-noout'], { input: pem });
  const der = execFileSync('openssl', ['pkey', '-pubin', '-outform', 'der'], { input: pub });
  const digest = execFileSync('openssl', ['dgst', '-sha256', '-binary'], { input: der });
  return `sha256/${digest.toString('base64')}`;
}

describe('spkiPin', () => {
  const pem = selfSigned();
  const expected = opensslPin(pem);

  it('matches the openssl computation for X509Certificate, DER and PEM input', () => {
    const x509 = new X509Certificate(pem);
    expect(spkiPin(x509)).toBe(expected);
    expect(spkiPin(x509.raw)).toBe(expected);
    expect(spkiPin(pem)).toBe(expected);
  });

  it('has the shape the config schema accepts', () => {
    expect(expected).toMatch(/^sha256\/[A-Za-z0-9+/]{43}=$/);
  });
});

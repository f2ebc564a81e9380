import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCertsInit } from '../../src/commands/certs.js';
import { certificateHosts, defaultCertHosts, initCerts } from '../../src/tls/ca.js';
import { upstreamCA } from '../support/pki.js';

function tmp(): string {
  return join(mkdtempSync(join(tmpdir(), 'aigate-certs-')), 'certs');
}

const mode = (p: string): number => statSync(p).mode & 0o777;
const sink = () => {
  let text = '';
  return { write: (s: string) => (text += s), get text() { return text; } };
};

describe('initCerts', () => {
  it('creates the directory, a CA and a proxy certificate with the default names; keys are 0600', () => {
    const dir = tmp();
    const r = initCerts({ dir });
    expect(r.created.map((p) => p.slice(dir.length + 1)).sort()).toEqual(['ca.crt', 'ca.key', 'proxy.crt', 'proxy.key']);
    expect(r.reused).toEqual([]);
    expect(mode(r.caKeyPath)).toBe(0o600);
    expect(mode(r.keyPath)).toBe(0o600);
    expect(mode(r.caCertPath) & 0o044).toBe(0o044); // certificates are public
    const ca = new X509Certificate(readFileSync(r.caCertPath));
    const cert = new X509Certificate(readFileSync(r.certPath));
    expect(cert.checkIssued(ca) && cert.verify(ca.publicKey)).toBe(true);
    expect(certificateHosts(cert)).toEqual(defaultCertHosts());
    expect(defaultCertHosts()).toEqual(expect.arrayContaining(['localhost', '127.0.0.1', '::1', hostname().toLowerCase()]));
  });

  it('reuses an existing CA and proxy certificate', () => {
    const dir = tmp();
    const first = initCerts({ dir });
    const caBefore = readFileSync(first.caCertPath, 'utf8');
    const certBefore = readFileSync(first.certPath, 'utf8');
    const second = initCerts({ dir });
    expect(second.created).toEqual([]);
    expect(second.reused).toHaveLength(4);
    expect(readFileSync(second.caCertPath, 'utf8')).toBe(caBefore);
    expect(readFileSync(second.certPath, 'utf8')).toBe(certBefore);
  });

  it('re-issues proxy.crt with the union of names when --host adds one, keeping the CA', () => {
    const dir = tmp();
    const first = initCerts({ dir, hosts: ['localhost'] });
    const caBefore = readFileSync(first.caCertPath, 'utf8');
    const r = initCerts({ dir, hosts: ['proxy.corp.example', '10.1.2.3'] });
    expect(r.renewed).toBe('adds proxy.corp.example, 10.1.2.3');
    expect(readFileSync(r.caCertPath, 'utf8')).toBe(caBefore);
    expect(r.created.map((p) => p.slice(dir.length + 1)).sort()).toEqual(['proxy.crt', 'proxy.key']);
    const cert = new X509Certificate(readFileSync(r.certPath));
    expect(certificateHosts(cert)).toEqual(['localhost', 'proxy.corp.example', '10.1.2.3']);
    expect(cert.checkIP('10.1.2.3')).toBe('10.1.2.3');
    expect(mode(r.keyPath)).toBe(0o600);
    // Asking for a subset changes nothing.
    expect(initCerts({ dir, hosts: ['localhost'] }).created).toEqual([]);
  });

  it('re-issues proxy.crt when it was signed by another CA', () => {
    const dir = tmp();
    const r0 = initCerts({ dir });
    rmSync(r0.caCertPath);
    rmSync(r0.caKeyPath);
    writeFileSync(r0.caCertPath, upstreamCA().certPem);
    writeFileSync(r0.caKeyPath, upstreamCA().keyPem, { mode: 0o600 });
    const r = initCerts({ dir });
    expect(r.renewed).toBe('not issued by the current CA');
    const cert = new X509Certificate(readFileSync(r.certPath));
    expect(cert.checkIssued(new X509Certificate(upstreamCA().certPem))).toBe(true);
  });

  it('refuses to replace a CA when only one half exists', () => {
    const dir = tmp();
    const r0 = initCerts({ dir });
    rmSync(r0.caKeyPath);
    expect(() => initCerts({ dir })).toThrow(/ca\.crt exists but .*ca\.key does not/);
  });

  it('warns about a reused key readable by others instead of changing it', () => {
    const dir = tmp();
    const r0 = initCerts({ dir });
    chmodSync(r0.caKeyPath, 0o644);
    const r = initCerts({ dir });
    expect(r.warnings).toEqual([expect.stringContaining('chmod 600')]);
    expect(mode(r.caKeyPath)).toBe(0o644);
  });
});

describe('runCertsInit', () => {
  it('prints what it created and how to trust the CA', () => {
    const dir = tmp();
    const stdout = sink();
    const stderr = sink();
    expect(runCertsInit({ dir, hosts: ['gw.example.com'], stdout, stderr })).toBe(0);
    expect(stdout.text).toContain('created');
    expect(stdout.text).toContain(`NODE_EXTRA_CA_CERTS=${join(dir, 'ca.crt')}`);
    expect(stdout.text).toContain('--cacert');
    expect(stdout.text).toContain('http.proxyStrictSSL');
    expect(stdout.text).toContain('update-ca-certificates');
    expect(stdout.text).toContain('gw.example.com');
    expect(stderr.text).toBe('');
  });

  it('exits 1 with one line on a bad host name', () => {
    const stdout = sink();
    const stderr = sink();
    expect(runCertsInit({ dir: tmp(), hosts: ['not a host'], stdout, stderr })).toBe(1);
    expect(stderr.text).toBe('aigate certs init: "not a host" is not a DNS name or IP address\n');
  });
});

import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { connect, createServer } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { LeafMinter } from '../../src/tls/mint.js';
import { aigateCA, upstreamCA } from '../support/pki.js';

const caX = new X509Certificate(aigateCA().certPem);

describe('LeafMinter', () => {
  it('mints a leaf for a host that chains to the CA, with SAN = host', async () => {
    const minter = new LeafMinter(aigateCA());
    const leaf = await minter.leafFor('API.GitHubCopilot.com');
    const x = new X509Certificate(leaf.certPem);
    expect(leaf.host).toBe('api.githubcopilot.com');
    expect(x.checkIssued(caX)).toBe(true);
    expect(x.verify(caX.publicKey)).toBe(true);
    expect(x.subjectAltName).toBe('DNS:api.githubcopilot.com');
    expect(x.checkHost('api.githubcopilot.com')).toBe('api.githubcopilot.com');
    expect(x.checkHost('evil.githubcopilot.com')).toBeUndefined();
    expect(x.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(x.ca).toBe(false);
  });

  it('passes openssl verify -x509_strict as a TLS server certificate', async () => {
    const minter = new LeafMinter(aigateCA());
    const dir = mkdtempSync(join(tmpdir(), 'aigate-mint-'));
    writeFileSync(join(dir, 'ca.pem'), aigateCA().certPem);
    writeFileSync(join(dir, 'leaf.pem'), (await minter.leafFor('api.anthropic.com')).certPem);
    const out = execFileSync('openssl', ['verify', '-x509_strict', '-purpose', 'sslserver', '-verify_hostname', 'api.anthropic.com',
      '-CAfile', join(dir, 'ca.pem'), join(dir, 'leaf.pem')], { encoding: 'utf8' });
    expect(out).toContain('OK');
  });

  it('types IP literals as iPAddress SANs', async () => {
    const minter = new LeafMinter(aigateCA());
    const v4 = new X509Certificate((await minter.leafFor('10.0.0.1')).certPem);
    expect(v4.subjectAltName).toBe('IP Address:10.0.0.1');
    expect(v4.checkIP('10.0.0.1')).toBe('10.0.0.1');
    const v6 = new X509Certificate((await minter.leafFor('[2001:db8::1]')).certPem);
    expect(v6.checkIP('2001:db8::1')).toBe('2001:db8::1');
  });

  it('expires well within the CA and within the configured lifetime', async () => {
    const now = Date.now();
    const minter = new LeafMinter(aigateCA(), { validityDays: 7 });
    const x = new X509Certificate((await minter.leafFor('a.example')).certPem);
    expect(Date.parse(x.validTo)).toBeLessThanOrEqual(now + 7 * 86_400_000 + 5_000);
    expect(Date.parse(x.validTo)).toBeLessThan(Date.parse(caX.validTo));
    expect(Date.parse(x.validFrom)).toBeLessThan(now); // backdated for client clock skew
  });

  it('reuses one key pair for all leaves', async () => {
    const minter = new LeafMinter(aigateCA());
    const a = new X509Certificate((await minter.leafFor('a.example')).certPem);
    const b = new X509Certificate((await minter.leafFor('b.example')).certPem);
    expect(a.publicKey.equals(b.publicKey)).toBe(true);
    expect(a.publicKey.asymmetricKeyType).toBe('ec');
    expect(a.serialNumber).not.toBe(b.serialNumber);
  });

  it('returns the cached context on a hit', async () => {
    const minter = new LeafMinter(aigateCA());
    const first = await minter.contextFor('api.anthropic.com');
    const second = await minter.contextFor('api.anthropic.com.');
    expect(second).toBe(first);
    expect(minter.stats).toMatchObject({ size: 1, mints: 1, hits: 1 });
  });

  it('coalesces concurrent requests for the same host into one mint', async () => {
    const minter = new LeafMinter(aigateCA());
    const contexts = await Promise.all(Array.from({ length: 20 }, () => minter.contextFor('api2.cursor.sh')));
    expect(new Set(contexts).size).toBe(1);
    expect(minter.stats).toMatchObject({ mints: 1, coalesced: 19 });
  });

  it('is bounded: the least recently used host is evicted', async () => {
    const minter = new LeafMinter(aigateCA(), { maxEntries: 2 });
    const a = await minter.contextFor('a.example');
    await minter.contextFor('b.example');
    await minter.contextFor('a.example'); // a is now the most recent
    await minter.contextFor('c.example'); // evicts b
    expect(minter.stats.size).toBe(2);
    expect(await minter.contextFor('a.example')).toBe(a);
    await minter.contextFor('b.example');
    expect(minter.stats.mints).toBe(4);
  });

  it('mints again when the cached leaf nears expiry', async () => {
    let clock = Date.now();
    const minter = new LeafMinter(aigateCA(), { validityDays: 2, renewBeforeMs: 86_400_000, now: () => clock });
    const first = await minter.contextFor('a.example');
    clock += 0.5 * 86_400_000;
    expect(await minter.contextFor('a.example')).toBe(first);
    clock += 0.6 * 86_400_000;
    expect(await minter.contextFor('a.example')).not.toBe(first);
  });

  it('refuses hosts that are not names, and an unusable CA', async () => {
    const minter = new LeafMinter(aigateCA());
    await expect(minter.contextFor('a b')).rejects.toThrow(/not a host name/);
    expect(() => new LeafMinter({ certPem: aigateCA().certPem, keyPem: upstreamCA().keyPem })).toThrow(/does not belong/);
  });

  it('serves a TLS handshake a strict client accepts with SNI = host and the CA as its only trust', async () => {
    const minter = new LeafMinter(aigateCA());
    await minter.ready();
    const server = createServer({
      SNICallback: (servername, cb) => {
        minter.contextFor(servername).then((ctx) => cb(null, ctx), (err: Error) => cb(err));
      },
    }, (socket) => socket.end('hello'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    try {
      const socket = connect({ host: '127.0.0.1', port, servername: 'api.githubcopilot.com', ca: aigateCA().certPem });
      await once(socket, 'secureConnect');
      expect(socket.authorized).toBe(true);
      const peer = socket.getPeerX509Certificate();
      expect(peer?.issuer).toBe(caX.subject);
      const [data] = (await once(socket, 'data')) as [Buffer];
      expect(data.toString()).toBe('hello');
      socket.destroy();
    } finally {
      server.close();
    }
  });
});

import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPin, parseTarget } from '../../src/commands/pin.js';
import { parseConfig } from '../../src/config/load.js';
import { spkiPin } from '../../src/tls/spki.js';
import { upstreamCA, upstreamCert } from '../support/pki.js';

const sink = () => {
  let text = '';
  return { write: (s: string) => (text += s), get text() { return text; } };
};

let server: Server;
let port: number;
let caFile: string;

beforeAll(async () => {
  const cert = upstreamCert();
  server = createServer({ key: cert.keyPem, cert: cert.certPem }, (s) => s.end());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
  const dir = mkdtempSync(join(tmpdir(), 'aigate-pin-'));
  caFile = join(dir, 'upstream-ca.crt');
  writeFileSync(caFile, upstreamCA().certPem);
});

afterAll(() => {
  server.close();
});

const expected = () => spkiPin(upstreamCert().certPem);

function config(extra: Record<string, unknown> = {}) {
  return parseConfig({
    connectTo: { 'api.githubcopilot.com:443': `127.0.0.1:${port}` },
    upstreamTls: { ca: [caFile] },
    ...extra,
  });
}

describe('parseTarget', () => {
  it.each([
    ['api.github.com', { host: 'api.github.com', port: 443 }],
    ['API.github.com:8443', { host: 'api.github.com', port: 8443 }],
    ['[::1]:9443', { host: '::1', port: 9443 }],
    ['::1', { host: '::1', port: 443 }],
    ['127.0.0.1:1', { host: '127.0.0.1', port: 1 }],
  ])('%s', (input, want) => expect(parseTarget(input)).toEqual(want));
  it.each(['', 'a b', 'host:0', 'host:99999', 'http://host/', 'a:b:c'])('rejects %j', (input) => expect(parseTarget(input)).toBeNull());
});

describe('runPin', () => {
  it('prints the leaf pin, dialling through connectTo with SNI = host and trusting upstreamTls.ca', async () => {
    const stdout = sink();
    const stderr = sink();
    expect(await runPin({ target: 'api.githubcopilot.com', config: config(), stdout, stderr })).toBe(0);
    expect(stdout.text).toBe(`${expected()}\n`);
    expect(stderr.text).toContain(`api.githubcopilot.com:443 via 127.0.0.1:${port} (connectTo)`);
    expect(stderr.text).toMatch(/issuer: {2}O=aigate, CN=aigate test CA: upstream/);
    expect(stderr.text).toContain('chain:   verified (bundled roots + upstreamTls.ca)');
    expect(stderr.text).toContain(`upstreamTls: { pins: { "api.githubcopilot.com": ["${expected()}"] } }`);
  });

  it('says whether the pin matches the configured pins', async () => {
    const good = sink();
    await runPin({ target: 'api.githubcopilot.com', config: config({ upstreamTls: { ca: [caFile], pins: { 'api.githubcopilot.com': [expected()] } } }), stdout: sink(), stderr: good });
    expect(good.text).toContain('matches upstreamTls.pins');
    const bad = sink();
    const other = `sha256/${Buffer.alloc(32).toString('base64')}`;
    await runPin({ target: 'api.githubcopilot.com', config: config({ upstreamTls: { ca: [caFile], pins: { 'api.githubcopilot.com': [other] } } }), stdout: sink(), stderr: bad });
    expect(bad.text).toContain('does NOT match any of the 1 pin(s)');
  });

  it('connects to an IP target and checks the IP SAN', async () => {
    const stdout = sink();
    const stderr = sink();
    expect(await runPin({ target: `127.0.0.1:${port}`, config: config(), stdout, stderr })).toBe(0);
    expect(stdout.text).toBe(`${expected()}\n`);
  });

  it('fails with a clear message when the CA is not trusted, unless --insecure', async () => {
    const stdout = sink();
    const stderr = sink();
    const noCa = parseConfig({ connectTo: { 'api.githubcopilot.com:443': `127.0.0.1:${port}` } });
    expect(await runPin({ target: 'api.githubcopilot.com', config: noCa, stdout, stderr })).toBe(1);
    expect(stdout.text).toBe('');
    expect(stderr.text).toMatch(/^aigate pin: api\.githubcopilot\.com:443 via 127\.0\.0\.1:\d+ \(connectTo\): certificate rejected \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY):/);
    expect(stderr.text).toContain('upstreamTls.ca');

    const out2 = sink();
    const err2 = sink();
    expect(await runPin({ target: 'api.githubcopilot.com', config: noCa, stdout: out2, stderr: err2, insecure: true })).toBe(0);
    expect(out2.text).toBe(`${expected()}\n`);
    expect(err2.text).toContain('NOT VERIFIED');
  });

  it('fails when the certificate is not for the requested host', async () => {
    const stderr = sink();
    const cfg = parseConfig({ connectTo: { 'wrong.example.com:443': `127.0.0.1:${port}` }, upstreamTls: { ca: [caFile] } });
    expect(await runPin({ target: 'wrong.example.com', config: cfg, stdout: sink(), stderr })).toBe(1);
    expect(stderr.text).toContain('ERR_TLS_CERT_ALTNAME_INVALID');
  });

  it('fails on a refused connection, a bad target and an unreadable CA file', async () => {
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const deadPort = (closed.address() as AddressInfo).port;
    closed.close();
    await once(closed, 'close');
    const e1 = sink();
    expect(await runPin({ target: `127.0.0.1:${deadPort}`, stdout: sink(), stderr: e1 })).toBe(1);
    expect(e1.text).toBe(`aigate pin: 127.0.0.1:${deadPort}: connection refused\n`);
    const e2 = sink();
    expect(await runPin({ target: 'a b', stdout: sink(), stderr: e2 })).toBe(1);
    expect(e2.text).toBe('aigate pin: "a b" is not HOST or HOST:PORT\n');
    const e3 = sink();
    expect(await runPin({ target: 'x.example', config: parseConfig({ upstreamTls: { ca: ['/nonexistent/ca.pem'] } }), stdout: sink(), stderr: e3 })).toBe(1);
    expect(e3.text).toBe('aigate pin: cannot read upstreamTls.ca[0] (/nonexistent/ca.pem): ENOENT\n');
  });

  it('times out', async () => {
    const { createServer: plain } = await import('node:net');
    const silent = plain(() => undefined);
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const p = (silent.address() as AddressInfo).port;
    const stderr = sink();
    expect(await runPin({ target: `127.0.0.1:${p}`, stdout: sink(), stderr, timeoutMs: 200 })).toBe(1);
    expect(stderr.text).toContain('no TLS handshake within 200 ms');
    silent.close();
  });
});

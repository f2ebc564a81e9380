// Client identity behind balancers and with client certificates (issue #17 item 3): PROXY protocol
// v1/v2 on the raw TCP socket before TLS / HTTP, X-Forwarded-For from trusted proxies only, and the
// gateway user from a verified client certificate. Real bytes on real sockets, real TLS.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connect as tlsConnect } from 'node:tls';
import { connect as h2Connect } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { proxyHeaderTimeout } from '../../src/server/proxy-front.js';
import { metricValue } from '../support/metrics.js';
import { clientCert, testCA, type PemPair } from '../support/pki.js';
import { startTestProxy, startVendors, type TestProxy } from '../support/proxy.js';
import type { FakeVendors } from '../support/vendors.js';

const run = promisify(execFile);

const V2_SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** A PROXY v2 header (PROXY command, INET, STREAM) naming `src`, with an AWS-style TLV after the addresses. */
function proxyV2(src: [number, number, number, number], sport: number): Buffer {
  const tlv = Buffer.from([0xea, 0x00, 0x04, 0x01, 0x76, 0x70, 0x63]);
  const block = Buffer.alloc(12);
  Buffer.from(src).copy(block, 0);
  Buffer.from([127, 0, 0, 1]).copy(block, 4);
  block.writeUInt16BE(sport, 8);
  block.writeUInt16BE(8443, 10);
  const head = Buffer.from([0x21, 0x11, 0, 0]);
  head.writeUInt16BE(block.length + tlv.length, 2);
  return Buffer.concat([V2_SIG, head, block, tlv]);
}

/** A LOCAL v2 header (a balancer's own health check): names nobody. */
const PROXY_V2_LOCAL = Buffer.concat([V2_SIG, Buffer.from([0x20, 0x00, 0, 0])]);

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * A real HTTPS request to the gateway over a raw TCP socket on which `preamble` pieces (a PROXY
 * header, possibly split) are written before the TLS ClientHello. Rejects when aigate closes the
 * connection instead of answering.
 */
function gatewayGet(
  t: TestProxy,
  path: string,
  opts: { preamble?: Buffer[]; headers?: Record<string, string>; cert?: PemPair } = {},
): Promise<Answer> {
  const port = t.proxy.addresses.gateway!.port;
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        path,
        headers: opts.headers,
        createConnection: () => {
          const raw = netConnect(port, '127.0.0.1');
          for (const piece of opts.preamble ?? []) raw.write(piece);
          return tlsConnect({
            socket: raw,
            servername: 'localhost',
            ca: t.caPem,
            ...(opts.cert ? { cert: opts.cert.certPem, key: opts.cert.keyPem } : {}),
          });
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** A request inside an intercepted tunnel on the forward listener, opened after `header` on the raw socket. */
function tunnelGet(t: TestProxy, header: string, host: string, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const raw = netConnect(t.proxy.addresses.forward!.port, '127.0.0.1');
    raw.on('error', reject);
    raw.write(`${header}CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\n\r\n`);
    let got = '';
    const onData = (c: Buffer) => {
      got += c.toString('latin1');
      if (!got.includes('\r\n\r\n')) return;
      raw.off('data', onData);
      if (!got.startsWith('HTTP/1.1 200')) return reject(new Error(got));
      const req = httpsRequest({ host, path, createConnection: () => tlsConnect({ socket: raw, servername: host, ca: t.caPem }) }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      });
      req.on('error', reject);
      req.end();
    };
    raw.on('data', onData);
  });
}

/** What the fake upstream saw of an /echo request. */
function upstreamHeaders(a: Answer): Record<string, string> {
  return (JSON.parse(a.body) as { headers: Record<string, string> }).headers;
}

/** Writes `bytes` on a fresh TCP connection; resolves with everything received once aigate closes it. */
function rawExchange(port: number, bytes: Buffer[]): Promise<string> {
  return new Promise((resolve) => {
    const socket: Socket = netConnect(port, '127.0.0.1', () => {
      for (const b of bytes) socket.write(b);
    });
    let got = '';
    socket.on('data', (c: Buffer) => (got += c.toString('latin1')));
    socket.on('error', () => undefined);
    socket.once('end', () => socket.end()); // aigate's answer is complete (the forward listener allows half-open)
    socket.once('close', () => resolve(got));
  });
}

let vendors: FakeVendors;
beforeAll(async () => {
  vendors = await startVendors();
});
afterAll(async () => {
  await vendors?.close();
});

describe('PROXY protocol on the gateway and forward listeners', () => {
  let p: TestProxy;
  beforeAll(async () => {
    p = await startTestProxy(vendors, (raw) => {
      const listen = raw['listen'] as Record<string, Record<string, unknown>>;
      listen['gateway']!['proxyProtocol'] = true;
      listen['forward'] = { host: '127.0.0.1', port: 0, proxyProtocol: true };
      raw['trustedProxies'] = ['10.0.0.0/8'];
      raw['egress'] = { allow: [{ host: 'api.anthropic.com', ports: [443], inspect: true }] };
    });
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('v1 before TLS: the declared source is the client in the audit line and upstream X-Forwarded-For / X-Real-IP', async () => {
    const a = await gatewayGet(p, '/claude/echo', { preamble: [Buffer.from('PROXY TCP4 203.0.113.7 127.0.0.1 51234 8443\r\n')] });
    expect(a.status).toBe(200);
    expect(upstreamHeaders(a)['x-forwarded-for']).toBe('203.0.113.7');
    expect(upstreamHeaders(a)['x-real-ip']).toBe('203.0.113.7');
    const line = await p.auditWhere((r) => r.id === a.headers['x-aigate-request-id']);
    expect(line.client.ip).toBe('203.0.113.7');
  });

  it('v2 with TLVs, written in pieces before TLS: the declared source is the client', async () => {
    const header = proxyV2([198, 51, 100, 23], 40000);
    const a = await gatewayGet(p, '/claude/echo', { preamble: [header.subarray(0, 5), header.subarray(5, 17), header.subarray(17)] });
    expect(a.status).toBe(200);
    expect(upstreamHeaders(a)['x-forwarded-for']).toBe('198.51.100.23');
    expect((await p.auditWhere((r) => r.id === a.headers['x-aigate-request-id'])).client.ip).toBe('198.51.100.23');
  });

  it('v2 LOCAL (a health check) is served as the balancer itself', async () => {
    const a = await gatewayGet(p, '/claude/echo', { preamble: [PROXY_V2_LOCAL] });
    expect(a.status).toBe(200);
    expect((await p.auditWhere((r) => r.id === a.headers['x-aigate-request-id'])).client.ip).toBe('127.0.0.1');
  });

  it('a connection without a PROXY header, or with a malformed one, is closed before TLS', async () => {
    const before = await refusedCount(p);
    await expect(gatewayGet(p, '/claude/echo')).rejects.toThrow();
    await expect(gatewayGet(p, '/claude/echo', { preamble: [Buffer.from('PROXY TCP4 203.0.113.7 nonsense 1 2\r\n')] })).rejects.toThrow();
    expect(await rawExchange(p.proxy.addresses.gateway!.port, [Buffer.from('PROXY TCP4 999.0.0.1 127.0.0.1 1 2\r\n')])).toBe('');
    expect(await refusedCount(p)).toBe(before + 3);
  });

  it('curl --haproxy-protocol (a real client sending v1) on the gateway', async () => {
    const gw = await run('curl', ['-sS', '--haproxy-protocol', '--cacert', p.caFile, `${p.gatewayUrl}/claude/echo`]);
    expect((JSON.parse(gw.stdout) as { headers: Record<string, string> }).headers['x-forwarded-for']).toBe('127.0.0.1');
  });

  it('forward listener: an intercepted tunnel after a PROXY header serves its requests as the declared client', async () => {
    const a = await tunnelGet(p, 'PROXY TCP4 203.0.113.50 127.0.0.1 1000 3128\r\n', 'api.anthropic.com', '/echo');
    expect(a.status).toBe(200);
    expect(upstreamHeaders(a)['x-forwarded-for']).toBe('203.0.113.50');
    expect((await p.auditWhere((r) => r.id === a.headers['x-aigate-request-id'])).client.ip).toBe('203.0.113.50');
  });

  it('a header that does not complete in time closes the connection', async () => {
    const before = await refusedCount(p);
    const saved = proxyHeaderTimeout.ms;
    proxyHeaderTimeout.ms = 100;
    try {
      expect(await rawExchange(p.proxy.addresses.gateway!.port, [Buffer.from('PROXY TCP4 203.0.113.7 ')])).toBe('');
    } finally {
      proxyHeaderTimeout.ms = saved;
    }
    expect(await refusedCount(p)).toBe(before + 1);
  });

  it('forward listener: the declared source is the client of a CONNECT (audited, even when denied)', async () => {
    const answer = await rawExchange(p.proxy.addresses.forward!.port, [
      Buffer.from('PROXY TCP6 2001:db8::42 ::1 40000 3128\r\n'),
      Buffer.from('CONNECT denied.example:443 HTTP/1.1\r\nHost: denied.example:443\r\n\r\n'),
    ]);
    expect(answer).toMatch(/^HTTP\/1\.1 403 /);
    const id = /x-aigate-request-id: (\S+)/i.exec(answer)![1];
    expect((await p.auditWhere((r) => r.id === id)).client.ip).toBe('2001:db8::42');
  });

  it('forward listener: a request without the header is closed unanswered', async () => {
    expect(await rawExchange(p.proxy.addresses.forward!.port, [Buffer.from('CONNECT denied.example:443 HTTP/1.1\r\nHost: x\r\n\r\n')])).toBe('');
  });

  it('X-Forwarded-For counts when the PROXY-declared peer is a trusted proxy, and only then', async () => {
    const xff = { 'x-forwarded-for': '192.0.2.66, 198.51.100.1, 10.9.9.9' };
    const trusted = await gatewayGet(p, '/claude/echo', { preamble: [Buffer.from('PROXY TCP4 10.1.1.1 127.0.0.1 1000 8443\r\n')], headers: xff });
    // Right to left: 10.9.9.9 is a trusted hop, 198.51.100.1 is the first untrusted one.
    expect((await p.auditWhere((r) => r.id === trusted.headers['x-aigate-request-id'])).client.ip).toBe('198.51.100.1');
    expect(upstreamHeaders(trusted)['x-forwarded-for']).toBe('198.51.100.1');
    const untrusted = await gatewayGet(p, '/claude/echo', { preamble: [Buffer.from('PROXY TCP4 203.0.113.9 127.0.0.1 1000 8443\r\n')], headers: xff });
    expect((await p.auditWhere((r) => r.id === untrusted.headers['x-aigate-request-id'])).client.ip).toBe('203.0.113.9');
  });
});

describe('PROXY protocol on the admin listener', () => {
  let p: TestProxy;
  beforeAll(async () => {
    p = await startTestProxy(vendors, (raw) => {
      (raw['listen'] as Record<string, Record<string, unknown>>)['admin']!['proxyProtocol'] = true;
    });
  });
  afterAll(async () => {
    await p?.stop();
  });

  const healthz = Buffer.from('GET /healthz HTTP/1.1\r\nHost: aigate\r\nConnection: close\r\n\r\n');
  const refused = () => metricValue(p.proxy.metrics, 'aigate_connections_refused_total', { listener: 'admin', reason: 'proxy_protocol' });

  it('a request after a PROXY v1 header gets /healthz ok (raw bytes and curl --haproxy-protocol)', async () => {
    const answer = await rawExchange(p.proxy.addresses.admin!.port, [Buffer.from('PROXY TCP4 203.0.113.7 127.0.0.1 51234 9090\r\n'), healthz]);
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).toContain('\r\n\r\n3\r\nok\n\r\n0\r\n\r\n'); // chunked: "ok\n", then the last chunk
    const curl = await run('curl', ['-sS', '--haproxy-protocol', `${p.adminUrl}/healthz`]);
    expect(curl.stdout).toBe('ok\n');
  });

  it('a request without the header is closed unanswered, and counted', async () => {
    const before = await refused();
    expect(await rawExchange(p.proxy.addresses.admin!.port, [healthz])).toBe('');
    expect(await refused()).toBe(before + 1);
  });
});

describe('PROXY protocol and limits.connectionsPerClient', () => {
  /** A TLS connection to the gateway after `header`: 'secure' once served, 'closed' if aigate closed it. */
  function held(t: TestProxy, header: string): Promise<{ outcome: 'secure' | 'closed'; close: () => void }> {
    return new Promise((resolve) => {
      const raw = netConnect(t.proxy.addresses.gateway!.port, '127.0.0.1');
      raw.write(header);
      const tls = tlsConnect({ socket: raw, servername: 'localhost', ca: t.caPem });
      const close = () => tls.destroy();
      tls.on('error', () => undefined);
      tls.once('secureConnect', () => resolve({ outcome: 'secure', close }));
      tls.once('close', () => resolve({ outcome: 'closed', close }));
    });
  }

  it('the cap counts the declared client, not the balancer', async () => {
    const p = await startTestProxy(vendors, (raw) => {
      (raw['listen'] as Record<string, Record<string, unknown>>)['gateway']!['proxyProtocol'] = true;
      raw['limits'] = { connectionsPerClient: 1 };
    });
    const open: Array<{ close: () => void }> = [];
    try {
      const first = await held(p, 'PROXY TCP4 203.0.113.1 127.0.0.1 1000 8443\r\n');
      const other = await held(p, 'PROXY TCP4 203.0.113.2 127.0.0.1 1000 8443\r\n');
      const again = await held(p, 'PROXY TCP4 203.0.113.1 127.0.0.1 1001 8443\r\n');
      open.push(first, other, again);
      expect([first.outcome, other.outcome, again.outcome]).toEqual(['secure', 'secure', 'closed']);
    } finally {
      for (const c of open) c.close();
      await p.stop();
    }
  });
});

async function refusedCount(t: TestProxy): Promise<number> {
  const text = await (await fetch(`${t.adminUrl}/metrics`)).text();
  const m = /aigate_connections_refused_total\{listener="gateway",reason="proxy_protocol"\} (\d+)/.exec(text);
  return m ? Number(m[1]) : 0;
}

describe('trustedProxies without PROXY protocol', () => {
  it('honours X-Forwarded-For from a trusted TCP peer and ignores it from any other', async () => {
    const trusting = await startTestProxy(vendors, (raw) => (raw['trustedProxies'] = ['127.0.0.0/8']));
    const other = await startTestProxy(vendors, (raw) => (raw['trustedProxies'] = ['10.0.0.0/8']));
    try {
      const headers = { 'x-forwarded-for': '198.51.100.77' };
      const a = await gatewayGet(trusting, '/claude/echo', { headers });
      expect((await trusting.auditWhere((r) => r.id === a.headers['x-aigate-request-id'])).client.ip).toBe('198.51.100.77');
      expect(upstreamHeaders(a)['x-forwarded-for']).toBe('198.51.100.77');
      const b = await gatewayGet(other, '/claude/echo', { headers });
      expect((await other.auditWhere((r) => r.id === b.headers['x-aigate-request-id'])).client.ip).toBe('127.0.0.1');
      expect(upstreamHeaders(b)['x-forwarded-for']).toBe('127.0.0.1');
    } finally {
      await trusting.stop();
      await other.stop();
    }
  });
});

describe('gateway client certificates (mTLS)', () => {
  /** A gateway asking for client certificates from the "clients" test CA. */
  function withClientCertificates(settings: Record<string, unknown>) {
    return startTestProxy(vendors, (raw, dir) => {
      const ca = join(dir, 'clients-ca.crt');
      writeFileSync(ca, testCA('clients').certPem);
      const listen = raw['listen'] as Record<string, Record<string, unknown>>;
      listen['gateway']!['clientCertificate'] = { ca, ...settings };
    });
  }
  const alice = () => clientCert('clients', { cn: 'alice', email: 'alice@example.com' });
  const mallory = () => clientCert('intruders', { cn: 'mallory', email: 'mallory@example.com' });

  it('required: a verified certificate names the user (CN); none, or one from another CA, is refused in TLS', async () => {
    const p = await withClientCertificates({ required: true });
    try {
      const a = await gatewayGet(p, '/claude/echo', { cert: alice() });
      expect(a.status).toBe(200);
      expect((await p.auditWhere((r) => r.id === a.headers['x-aigate-request-id'])).client).toEqual({ ip: '127.0.0.1', user: 'alice' });
      await expect(gatewayGet(p, '/claude/echo')).rejects.toThrow();
      await expect(gatewayGet(p, '/claude/echo', { cert: mallory() })).rejects.toThrow();
      expect(p.audit.some((r) => r.client.user === 'mallory')).toBe(false);
    } finally {
      await p.stop();
    }
  });

  it('an HTTP/2 stream is named by the certificate of its connection too', async () => {
    const p = await withClientCertificates({ required: true });
    try {
      const pair = alice();
      const session = h2Connect(p.gatewayUrl, { ca: p.caPem, cert: pair.certPem, key: pair.keyPem });
      try {
        const id = await new Promise<string>((resolve, reject) => {
          const stream = session.request({ ':method': 'GET', ':path': '/claude/echo' });
          stream.on('response', (headers) => resolve(String(headers['x-aigate-request-id'])));
          stream.on('error', reject);
          stream.resume();
          stream.end();
        });
        const record = await p.auditWhere((r) => r.id === id);
        expect(record).toMatchObject({ protocol: 'h2', client: { ip: '127.0.0.1', user: 'alice' } });
      } finally {
        session.close();
      }
    } finally {
      await p.stop();
    }
  });

  it('optional: no certificate is anonymous, a verified one names the user by SAN email, an unverifiable one is refused', async () => {
    const p = await withClientCertificates({ required: false, userField: 'SAN:email' });
    try {
      const anonymous = await gatewayGet(p, '/claude/echo');
      expect(anonymous.status).toBe(200);
      expect((await p.auditWhere((r) => r.id === anonymous.headers['x-aigate-request-id'])).client.user).toBeNull();
      const a = await gatewayGet(p, '/claude/echo', { cert: alice() });
      expect((await p.auditWhere((r) => r.id === a.headers['x-aigate-request-id'])).client.user).toBe('alice@example.com');
      await expect(gatewayGet(p, '/claude/echo', { cert: mallory() })).rejects.toThrow();
    } finally {
      await p.stop();
    }
  });

  it('a CA file that is not a PEM certificate stops the start, naming the key', async () => {
    const start = startTestProxy(vendors, (raw, dir) => {
      const ca = join(dir, 'clients-ca.crt');
      writeFileSync(ca, 'not a certificate');
      (raw['listen'] as Record<string, Record<string, unknown>>)['gateway']!['clientCertificate'] = { ca };
    });
    await expect(start).rejects.toThrow(/listen\.gateway\.clientCertificate\.ca: .*not a PEM certificate/);
  });

  it('the certificate user keys the rate limit (rateLimit.key: user): two users, two buckets', async () => {
    const p = await startTestProxy(vendors, (raw, dir) => {
      const ca = join(dir, 'clients-ca.crt');
      writeFileSync(ca, testCA('clients').certPem);
      (raw['listen'] as Record<string, Record<string, unknown>>)['gateway']!['clientCertificate'] = { ca, required: true, userField: 'emailAddress' };
      raw['rateLimit'] = { key: 'user', rate: 0.001, burst: 1 };
    });
    try {
      const bob = clientCert('clients', { cn: 'bob', email: 'bob@example.com' });
      expect((await gatewayGet(p, '/claude/echo', { cert: alice() })).status).toBe(200);
      expect((await gatewayGet(p, '/claude/echo', { cert: alice() })).status).toBe(429);
      expect((await gatewayGet(p, '/claude/echo', { cert: bob })).status).toBe(200);
    } finally {
      await p.stop();
    }
  });
});

describe('vendor-key identity (client.credential, rateLimit.key: credential)', () => {
  it('two developers behind one address with their own keys get their own buckets; the audit line has a fingerprint, never the key', async () => {
    const p = await startTestProxy(vendors, (raw) => {
      raw['rateLimit'] = { key: 'credential', rate: 0.001, burst: 1 };
      (raw['audit'] as Record<string, unknown>)['fingerprintKey'] = 'identity-test-key';
    });
    const keyA = 'sk-ant-api03-developer-a-0123456789abcdef';
    const keyB = 'sk-ant-api03-developer-b-0123456789abcdef';
    try {
      const a1 = await gatewayGet(p, '/claude/echo', { headers: { 'x-api-key': keyA } });
      expect(a1.status).toBe(200);
      expect((await gatewayGet(p, '/claude/echo', { headers: { authorization: `Bearer ${keyA}` } })).status).toBe(429);
      const b1 = await gatewayGet(p, '/claude/echo', { headers: { authorization: `Bearer ${keyB}` } });
      expect(b1.status).toBe(200);
      // No key: the address's own bucket, untouched so far.
      expect((await gatewayGet(p, '/claude/echo')).status).toBe(200);
      expect((await gatewayGet(p, '/claude/echo')).status).toBe(429);

      const lineA = await p.auditWhere((r) => r.id === a1.headers['x-aigate-request-id']);
      const lineB = await p.auditWhere((r) => r.id === b1.headers['x-aigate-request-id']);
      expect(lineA.client.credential).toMatch(/^[0-9a-f]{16}$/);
      expect(lineB.client.credential).toMatch(/^[0-9a-f]{16}$/);
      expect(lineA.client.credential).not.toBe(lineB.client.credential);
      expect(lineA.client.ip).toBe(lineB.client.ip);
      // The key still reaches the vendor; it appears in no audit line.
      expect(upstreamHeaders(a1)['x-api-key']).toBe(keyA);
      const all = JSON.stringify(p.audit);
      expect(all).not.toContain('developer-a');
      expect(all).not.toContain('developer-b');
    } finally {
      await p.stop();
    }
  });

  it('the same key has the same fingerprint across restarts with audit.fingerprintKey set', async () => {
    const edit = (raw: Record<string, unknown>) => ((raw['audit'] as Record<string, unknown>)['fingerprintKey'] = 'identity-test-key');
    const fingerprints: Array<string | undefined> = [];
    for (let i = 0; i < 2; i++) {
      const p = await startTestProxy(vendors, edit);
      try {
        const a = await gatewayGet(p, '/claude/echo', { headers: { authorization: 'Bearer sk-same-key-0123456789' } });
        fingerprints.push((await p.auditWhere((r) => r.id === a.headers['x-aigate-request-id'])).client.credential);
      } finally {
        await p.stop();
      }
    }
    expect(fingerprints[0]).toMatch(/^[0-9a-f]{16}$/);
    expect(fingerprints[1]).toBe(fingerprints[0]);
  });
});

// Forward mode end to end: CONNECT with the allowlist, TLS interception with minted leaves, blind
// tunnels, proxy authentication, and real proxy-aware clients (curl, undici ProxyAgent,
// https-proxy-agent, the Anthropic SDK).
import Anthropic from '@anthropic-ai/sdk';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest, type Server } from 'node:http';
import { get as httpsGet } from 'node:https';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import { join } from 'node:path';
import { promisify } from 'node:util';
import bcrypt from 'bcryptjs';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { ProxyAgent, fetch as undiciFetch, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { LeafMinter } from '../../src/tls/mint.js';
import { startTestProxy, startVendors, testPki, type TestProxy } from '../support/proxy.js';
import type { FakeVendors } from '../support/vendors.js';

const run = promisify(execFile);
let vendors: FakeVendors;
let plain: Server;
const plainSeen: Array<{ url: string; headers: Record<string, unknown>; body: string }> = [];
let fw: TestProxy;
let proxyUrl: string;
let forwardPort: number;

const ALLOW = [
  { host: 'api.githubcopilot.com', ports: [443], inspect: true },
  { host: '*.githubcopilot.com', ports: [443], inspect: true },
  { host: 'api.anthropic.com', ports: [443], inspect: true },
  { host: 'licensing.example.com', ports: [443, 8443], inspect: false },
  { host: 'localhost', ports: [443] }, // allowed by name, but resolves to loopback
  { host: 'plain.example.com', ports: [80] },
];

beforeAll(async () => {
  vendors = await startVendors();
  // A plain-HTTP upstream for absolute-form requests.
  plain = createHttpServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      plainSeen.push({ url: req.url ?? '', headers: req.headers, body });
      res.writeHead(200, { 'content-type': 'text/plain' }).end('plain ok');
    });
  });
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
  const plainPort = (plain.address() as { port: number }).port;
  fw = await startTestProxy(vendors, (raw) => {
    (raw['listen'] as Record<string, unknown>)['forward'] = { host: '127.0.0.1', port: 0 };
    raw['egress'] = { allow: ALLOW };
    const connectTo = raw['connectTo'] as Record<string, string>;
    connectTo['licensing.example.com:443'] = `127.0.0.1:${vendors.port}`;
    connectTo['gone.githubcopilot.com:443'] = `127.0.0.1:${vendors.port}`;
    connectTo['copilot-proxy.githubcopilot.com:443'] = `127.0.0.1:${vendors.port}`;
    connectTo['plain.example.com:80'] = `127.0.0.1:${plainPort}`;
  });
  forwardPort = fw.proxy.addresses.forward!.port;
  proxyUrl = `http://127.0.0.1:${forwardPort}`;
});
afterAll(async () => {
  await fw?.stop();
  await vendors?.close();
  plain?.close();
});

/** Sends a raw CONNECT and returns the status line and the socket (for TLS on top). */
function connectRaw(target: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; head: string; socket: import('node:net').Socket }>((resolve, reject) => {
    const socket = netConnect(forwardPort, '127.0.0.1');
    let buf = '';
    socket.on('error', reject);
    socket.on('data', function onData(chunk: Buffer) {
      buf += chunk.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      resolve({ status: Number(buf.split(' ')[1]), head: buf, socket });
    });
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${extra}\r\n`);
  });
}

function peerCertificate(socket: import('node:net').Socket, servername: string): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const tls = tlsConnect({ socket, servername, rejectUnauthorized: false }, () => {
      resolve(tls.getPeerCertificate());
      tls.destroy();
    });
    tls.on('error', reject);
  });
}

describe('CONNECT with interception', () => {
  it('curl -x reaches the fake upstream through a certificate minted for the host by the aigate CA', async () => {
    const before = vendors.requests.length;
    const { stdout, stderr } = await run('curl', [
      '-sS', '-v', '-x', proxyUrl, '--cacert', fw.caFile,
      '-H', 'content-type: application/json', '--data', '{"prompt":"hello"}',
      'https://api.githubcopilot.com/echo',
    ]);
    const echoed = JSON.parse(stdout) as { path: string; headers: Record<string, string>; body: string };
    expect(echoed.path).toBe('/echo');
    expect(echoed.body).toBe('{"prompt":"hello"}');
    expect(stderr).toMatch(/issuer:.*aigate Test CA/);
    expect(stderr).toMatch(/subject:.*api\.githubcopilot\.com|subjectAltName: host "api\.githubcopilot\.com" matched/);
    const seen = vendors.requests[before]!;
    expect(seen.sni).toBe('api.githubcopilot.com');
    expect(seen.host).toBe('api.githubcopilot.com');

    const record = await fw.auditWhere((r) => r.mode === 'forward' && r.event === 'request' && r.path === '/echo');
    expect(record).toMatchObject({ route: 'api.githubcopilot.com', host: 'api.githubcopilot.com', status: 200, decision: 'allow' });
    const tunnel = await fw.auditWhere((r) => r.event === 'connect' && r.host === 'api.githubcopilot.com' && r.status === 200);
    expect(tunnel.bytesIn).toBeGreaterThan(0);
  });

  it('a client that goes while its certificate is being minted still gets its one audit line (499, aborted)', async () => {
    const host = 'gone.githubcopilot.com';
    let clientClosed!: Promise<void>;
    let minting!: () => void;
    const reached = new Promise<void>((r) => (minting = r));
    const mint = LeafMinter.prototype.contextFor;
    const spy = vi.spyOn(LeafMinter.prototype, 'contextFor').mockImplementation(async function (this: LeafMinter, name: string) {
      if (name === host) {
        minting();
        await clientClosed;
        // One more turn of the event loop: the proxy's side of the connection sees the reset.
        await new Promise((r) => setImmediate(r));
        await new Promise((r) => setImmediate(r));
      }
      return mint.call(this, name);
    });
    try {
      const socket = netConnect(forwardPort, '127.0.0.1');
      socket.on('error', () => undefined);
      clientClosed = new Promise((r) => socket.once('close', () => r()));
      socket.write(`CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\n\r\n`);
      await reached;
      socket.resetAndDestroy();
      const record = await fw.auditWhere((r) => r.event === 'connect' && r.host === host);
      expect(record).toMatchObject({ status: 499, aborted: true, route: '*.githubcopilot.com', method: 'CONNECT' });
    } finally {
      spy.mockRestore();
    }
  });

  it('a CONNECT inside an intercepted tunnel: 400, audited, closed (a tunnel inside a tunnel is not proxied)', async () => {
    const { socket } = await connectRaw('api.anthropic.com:443');
    const answer = await new Promise<string>((resolve, reject) => {
      const tls = tlsConnect({ socket, servername: 'api.anthropic.com', ca: fw.caPem }, () => tls.write('CONNECT internal.example:22 HTTP/1.1\r\nHost: internal.example:22\r\n\r\n'));
      let text = '';
      tls.on('data', (c: Buffer) => (text += c.toString()));
      tls.on('error', reject);
      tls.on('close', () => resolve(text));
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('a tunnel inside a tunnel is not proxied');
    const id = /x-aigate-request-id: (\S+)/i.exec(answer)![1]!;
    expect(await fw.auditWhere((r) => r.id === id)).toMatchObject({ event: 'connect', method: 'CONNECT', status: 400, mode: 'forward' });
  });

  it('the minted leaf names the host and chains to tls.ca', async () => {
    const { status, socket } = await connectRaw('api.anthropic.com:443');
    expect(status).toBe(200);
    const cert = await peerCertificate(socket, 'api.anthropic.com');
    const x509 = new X509Certificate(cert.raw);
    expect(x509.subjectAltName).toContain('DNS:api.anthropic.com');
    expect(x509.verify(new X509Certificate(testPki().proxyCa.certPem).publicKey)).toBe(true);
  });

  it('a wildcard entry allows a subdomain, keep-alive inside the tunnel works', async () => {
    const agent = new ProxyAgent({ uri: proxyUrl, requestTls: { ca: fw.caPem } });
    for (let i = 0; i < 3; i++) {
      const res = await request('https://copilot-proxy.githubcopilot.com/echo', { dispatcher: agent });
      expect(res.statusCode).toBe(200);
      await res.body.dump();
    }
    await agent.close();
    const connects = fw.audit.filter((r) => r.event === 'connect' && r.host === 'copilot-proxy.githubcopilot.com');
    expect(connects.length).toBeLessThanOrEqual(1); // one tunnel (its line is written at close)
  });

  it('undici ProxyAgent: streaming SSE through an intercepted tunnel', async () => {
    const agent = new ProxyAgent({ uri: proxyUrl, requestTls: { ca: fw.caPem } });
    const res = await request('https://api.githubcopilot.com/chat/completions', {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json', 'x-test-hold': 'fw-sse' },
      body: JSON.stringify({ stream: true, messages: [{ role: 'user', content: 'x' }] }),
    });
    const it = res.body[Symbol.asyncIterator]();
    const first = await it.next(); // the upstream holds the rest until released
    expect(String(first.value)).toContain('chat.completion.chunk');
    vendors.release('fw-sse');
    let rest = '';
    for (let r = await it.next(); !r.done; r = await it.next()) rest += String(r.value);
    expect(rest).toContain('data: [DONE]');
    await agent.close();
  });

  it('https-proxy-agent client', async () => {
    const agent = new HttpsProxyAgent(proxyUrl, { ca: fw.caPem });
    const body = await new Promise<string>((resolve, reject) => {
      httpsGet('https://api.githubcopilot.com/echo?via=hpa', { agent, ca: fw.caPem }, (res) => {
        let b = '';
        res.on('data', (c: Buffer) => (b += c.toString()));
        res.on('end', () => resolve(b));
      }).on('error', reject);
    });
    expect((JSON.parse(body) as { path: string }).path).toBe('/echo?via=hpa');
  });

  it('@anthropic-ai/sdk through the proxy (HTTPS_PROXY-style), streaming', async () => {
    const agent = new ProxyAgent({ uri: proxyUrl, requestTls: { ca: fw.caPem } });
    const anthropic = new Anthropic({
      apiKey: 'sk-ant-test',
      fetch: ((url: string, init: RequestInit) => undiciFetch(url, { ...(init as object), dispatcher: agent } as never)) as never,
    });
    const stream = anthropic.messages.stream({ model: 'claude-test-model', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] });
    const final = await stream.finalMessage();
    expect(final.content[0]).toMatchObject({ type: 'text', text: 'Hello from the fake vendor.' });
    await agent.close();
  });
});

describe('blind tunnel', () => {
  it('inspect: false relays the upstream\'s own certificate and audits the tunnel once at close', async () => {
    const { status, socket } = await connectRaw('licensing.example.com:443');
    expect(status).toBe(200);
    const cert = await peerCertificate(socket, 'licensing.example.com');
    expect(cert.issuer.CN).toBe('Fake Vendors Test CA');
    const record = await fw.auditWhere((r) => r.event === 'tunnel' && r.host === 'licensing.example.com');
    expect(record).toMatchObject({ mode: 'forward', status: 200, decision: 'allow', route: 'licensing.example.com', method: 'CONNECT' });
    expect(record.bytesIn).toBeGreaterThan(0);
    expect(record.bytesOut).toBeGreaterThan(0);
  });
});

describe('default deny', () => {
  const denied: Array<[string, RegExp]> = [
    ['evil.example.com:443', /not in the egress allowlist/],
    ['api.githubcopilot.com:22', /port 22 is not allowed/],
    ['127.0.0.1:6379', /IP address not listed/],
    ['localhost:443', /resolves to .*private address/],
    ['githubcopilot.com:443', /not in the egress allowlist/], // *. never matches the apex
  ];
  for (const [target, why] of denied) {
    it(`CONNECT ${target} → 403, nothing reaches an upstream`, async () => {
      const before = vendors.requests.length;
      const { status, head, socket } = await connectRaw(target);
      expect(status).toBe(403);
      expect(head).toMatch(/content-type: application\/json/i);
      const body = await new Promise<string>((resolve) => {
        let b = head.slice(head.indexOf('\r\n\r\n') + 4);
        socket.on('data', (c: Buffer) => (b += c.toString()));
        socket.on('close', () => resolve(b));
      });
      const parsed = JSON.parse(body) as { error: { type: string; message: string } };
      expect(parsed.error.type).toBe('egress_denied');
      expect(parsed.error.message).toMatch(why);
      expect(vendors.requests.length).toBe(before);
      const record = await fw.auditWhere((r) => r.event === 'connect' && r.status === 403 && (r.host ?? '').length > 0 && target.startsWith(r.host!));
      expect(record).toMatchObject({ decision: 'deny', reason: 'egress_denied', mode: 'forward' });
    });
  }

  it('absolute-form http:// to a host not allowed → 403', async () => {
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: forwardPort, path: 'http://evil.example.com/x', headers: { host: 'evil.example.com' } }, (r) => {
        let b = '';
        r.on('data', (c: Buffer) => (b += c.toString()));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, body: b }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body)).toMatchObject({ error: { type: 'egress_denied' } });
  });

  it('absolute-form http:// to an allowed host is forwarded and inspected like everything else', async () => {
    const send = (body: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest(
          { host: '127.0.0.1', port: forwardPort, method: 'POST', path: 'http://plain.example.com/v1/complete?x=1', headers: { host: 'plain.example.com', 'content-type': 'text/plain' } },
          (r) => {
            let b = '';
            r.on('data', (c: Buffer) => (b += c.toString()));
            r.on('end', () => resolve({ status: r.statusCode ?? 0, body: b }));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    const ok = await send('def add(a, b): return a + b');
    expect(ok).toEqual({ status: 200, body: 'plain ok' });
    expect(plainSeen[plainSeen.length - 1]).toMatchObject({ url: '/v1/complete?x=1', body: 'def add(a, b): return a + b' });
    expect(plainSeen[plainSeen.length - 1]!.headers['x-forwarded-proto']).toBe('http');
    const record = await fw.auditWhere((r) => r.mode === 'forward' && r.host === 'plain.example.com' && r.status === 200);
    expect(record).toMatchObject({ route: 'plain.example.com', path: '/v1/complete', decision: 'allow' });

    const before = plainSeen.length;
    const blocked = await send('db_password = "Tr0ub4dor-and-3"');
    expect(blocked.status).toBe(403);
    expect(JSON.parse(blocked.body)).toMatchObject({ error: { type: 'sensitive_content' } });
    expect(plainSeen.length).toBe(before);
  });

  it('an origin-form request on the forward port is told how to use the proxy', async () => {
    const res = await request(`${proxyUrl}/v1/models`);
    expect(res.statusCode).toBe(400);
    expect(((await res.body.json()) as { error: { message: string } }).error.message).toMatch(/CONNECT/);
  });
});

describe('proxy authentication', () => {
  let authed: TestProxy;
  beforeAll(async () => {
    authed = await startTestProxy(vendors, (raw, dir) => {
      (raw['listen'] as Record<string, unknown>)['forward'] = { host: '127.0.0.1', port: 0 };
      raw['egress'] = { allow: ALLOW };
      const users = join(dir, 'users.htpasswd');
      writeFileSync(users, `alice:${bcrypt.hashSync('wonderland', 8)}\n`);
      raw['auth'] = { usersFile: users, required: true };
      raw['rateLimit'] = { key: 'user', rate: 0.001, burst: 2 };
    });
  });
  afterAll(() => authed?.stop());

  it('407 with Proxy-Authenticate without credentials; the user is audited and rate-limited by name', async () => {
    const port = authed.proxy.addresses.forward!.port;
    const noAuth = new ProxyAgent({ uri: `http://127.0.0.1:${port}`, requestTls: { ca: authed.caPem } });
    await expect(request('https://api.githubcopilot.com/echo', { dispatcher: noAuth })).rejects.toThrow(/407/);
    const denied = await authed.auditWhere((r) => r.status === 407);
    expect(denied).toMatchObject({ event: 'connect', decision: 'deny', reason: 'proxy_auth_required' });

    const alice = new ProxyAgent({ uri: `http://alice:wonderland@127.0.0.1:${port}`, requestTls: { ca: authed.caPem } });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await request('https://api.githubcopilot.com/echo', { dispatcher: alice });
      statuses.push(res.statusCode);
      await res.body.dump();
    }
    expect(statuses).toEqual([200, 200, 429]);
    const record = await authed.auditWhere((r) => r.event === 'request' && r.status === 200);
    expect(record.client).toEqual({ ip: '127.0.0.1', user: 'alice' });

    const wrong = new ProxyAgent({ uri: `http://alice:nope@127.0.0.1:${port}`, requestTls: { ca: authed.caPem } });
    await expect(request('https://api.githubcopilot.com/echo', { dispatcher: wrong })).rejects.toThrow(/407/);
    await Promise.all([noAuth.close(), alice.close(), wrong.close()]);
  });
});

// A secret in the request URL goes upstream as surely as one in the body: the path and query are
// inspected like a body (block by default, redact treated as block, monitor audited), in gateway
// mode, inside intercepted tunnels and in absolute-form requests. And a secret in a CONNECT or
// absolute-form host never reaches the audit log, the dashboard feed or the operational log.
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest, type Server } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AuditRecord } from '../../src/audit/log.js';
import { Rng, make } from '../corpus/secrets.js';
import { startTestProxy, startVendors, type TestProxy } from '../support/proxy.js';
import type { FakeVendors } from '../support/vendors.js';

let vendors: FakeVendors;
let plain: Server;
const plainSeen: string[] = [];
let px: TestProxy;
let forwardPort: number;
const logLines: string[] = [];

const token = make.githubPat(new Rng(701));
/** The same token with its first character percent-encoded: what a URL parser decodes back. */
const encoded = `%${token.charCodeAt(0).toString(16)}${token.slice(1)}`;
/** The part of the token no log may hold (the masked form keeps the `ghp_` prefix at most). */
const secretPart = token.slice(4, 30);

beforeAll(async () => {
  vendors = await startVendors();
  plain = createHttpServer((req, res) => {
    plainSeen.push(req.url ?? '');
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain' }).end('plain ok'));
  });
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
  const plainPort = (plain.address() as { port: number }).port;
  px = await startTestProxy(
    vendors,
    (raw) => {
      (raw['listen'] as Record<string, unknown>)['forward'] = { host: '127.0.0.1', port: 0 };
      (raw['routes'] as unknown[]).push(
        { name: 'watched', prefix: '/watched/', upstream: 'https://api.anthropic.com', action: 'monitor' },
        { name: 'scrubbed', prefix: '/scrubbed/', upstream: 'https://api.anthropic.com', action: 'redact' },
      );
      raw['egress'] = {
        allow: [
          { host: 'api.anthropic.com', ports: [443], inspect: true },
          // Under monitor: a secret in the host is audited, and the tunnel is opened.
          { host: '*.githubcopilot.com', ports: [443], inspect: true, action: 'monitor' },
          { host: '*.example.net', ports: [443], inspect: true },
          { host: 'plain.example.com', ports: [80] },
          { host: '*.plain.example.com', ports: [80] },
        ],
      };
      const connectTo = raw['connectTo'] as Record<string, string>;
      connectTo['plain.example.com:80'] = `127.0.0.1:${plainPort}`;
      connectTo[`${token.toLowerCase()}.githubcopilot.com:443`] = `127.0.0.1:${vendors.port}`;
    },
    { log: (line) => logLines.push(line) },
  );
  forwardPort = px.proxy.addresses.forward!.port;
});
afterAll(async () => {
  await px?.stop();
  await vendors?.close();
  plain?.close();
});

/** The audit file as written so far. */
function auditFile(): string {
  px.proxy.audit.flush();
  return readFileSync(join(px.dir, 'audit.log'), 'utf8');
}

async function get(path: string) {
  const res = await request(`${px.gatewayUrl}${path}`, { dispatcher: px.client });
  const body = await res.body.text();
  const id = String(res.headers['x-aigate-request-id']);
  const record = await px.auditWhere((r) => r.id === id);
  expect(px.audit.filter((r) => r.id === id)).toHaveLength(1);
  return { status: res.statusCode, body, record };
}

function expectBlocked(res: { status: number; body: string; record: AuditRecord }) {
  expect(res.status).toBe(403);
  const parsed = JSON.parse(res.body) as { error: { type: string; message: string } };
  expect(parsed.error.type).toBe('sensitive_content');
  expect(parsed.error.message).toContain('github-pat');
  expect(parsed.error.message).not.toContain(secretPart);
  expect(res.record).toMatchObject({ status: 403, decision: 'block', reason: 'sensitive_content' });
  expect(res.record.findings).toEqual([{ rule: 'github-pat', line: 1, action: 'block', fingerprint: expect.stringMatching(/^[0-9a-f]{16}$/) }]);
  expect(JSON.stringify(res.record)).not.toContain(secretPart);
}

describe('a secret in the URL, gateway mode', () => {
  for (const [where, path] of [
    ['a path segment', `/claude/v1/files/${token}`],
    ['a path segment, percent-encoded', `/claude/v1/files/${encoded}`],
    ['the query string', `/claude/v1/models?key=${token}`],
    ['the query string, percent-encoded', `/claude/v1/models?a=1&key=${encoded}`],
  ] as const) {
    it(`in ${where}: 403 naming the rule, finding audited (line 1), nothing forwarded`, async () => {
      const before = vendors.requests.length;
      const res = await get(path);
      expectBlocked(res);
      expect(vendors.requests.length).toBe(before);
    });
  }

  it('the blocked path is audited masked, in the file too', async () => {
    const res = await get(`/claude/v1/files/${token}`);
    expect(res.record.path).toBe('/claude/v1/files/[REDACTED:github-pat]');
    expect(auditFile()).not.toContain(secretPart);
  });

  it('a route under monitor: forwarded as sent, the finding audited with action monitor', async () => {
    const before = vendors.requests.length;
    const res = await get(`/watched/v1/models?key=${token}`);
    expect(res.status).toBe(404); // the fake vendor's answer: it was forwarded
    expect(vendors.requests.length).toBe(before + 1);
    expect(vendors.requests[vendors.requests.length - 1]!.path).toBe(`/v1/models?key=${token}`);
    expect(res.record).toMatchObject({ decision: 'allow', status: 404 });
    expect(res.record.findings).toEqual([{ rule: 'github-pat', line: 1, action: 'monitor', fingerprint: expect.any(String) }]);
  });

  it('a route under redact: a URL is not rewritten, the request is blocked instead', async () => {
    const before = vendors.requests.length;
    expectBlocked(await get(`/scrubbed/v1/models?key=${token}`));
    expect(vendors.requests.length).toBe(before);
  });

  it('a WebSocket upgrade with a secret in its URL: 403, nothing forwarded', async () => {
    const before = vendors.requests.length;
    const text = await new Promise<string>((resolve, reject) => {
      const socket = tlsConnect({ port: Number(new URL(px.gatewayUrl).port), host: '127.0.0.1', servername: 'localhost', ca: px.caPem }, () => {
        socket.write(
          `GET /claude/ws?token=${token} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
        );
      });
      let t = '';
      socket.on('data', (c: Buffer) => (t += c.toString('latin1')));
      socket.on('error', reject);
      socket.on('close', () => resolve(t));
    });
    expect(text).toMatch(/^HTTP\/1\.1 403 /);
    expect(text).toContain('sensitive_content');
    expect(vendors.requests.length).toBe(before);
  });
});

/** Sends a raw CONNECT; resolves with the status and the socket. */
function connectRaw(target: string) {
  return new Promise<{ status: number; head: string; socket: Socket }>((resolve, reject) => {
    const socket = netConnect(forwardPort, '127.0.0.1');
    let buf = '';
    socket.on('error', reject);
    socket.on('data', function onData(chunk: Buffer) {
      buf += chunk.toString('latin1');
      if (!buf.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      resolve({ status: Number(buf.split(' ')[1]), head: buf, socket });
    });
    socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  });
}

function plainGet(url: string) {
  return new Promise<{ status: number; body: string; id: string }>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: forwardPort, path: url, headers: { host: new URL(url).host } }, (r) => {
      let b = '';
      r.on('data', (c: Buffer) => (b += c.toString()));
      r.on('end', () => resolve({ status: r.statusCode ?? 0, body: b, id: String(r.headers['x-aigate-request-id']) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('a secret in the URL, forward mode', () => {
  it('inside an intercepted tunnel: 403, finding audited, nothing forwarded', async () => {
    const before = vendors.requests.length;
    const agent = new ProxyAgent({ uri: `http://127.0.0.1:${forwardPort}`, requestTls: { ca: px.caPem } });
    const res = await request(`https://api.anthropic.com/v1/models?key=${encoded}`, { dispatcher: agent });
    const body = await res.body.text();
    await agent.close();
    const record = await px.auditWhere((r) => r.id === res.headers['x-aigate-request-id']);
    expectBlocked({ status: res.statusCode, body, record });
    expect(record.mode).toBe('forward');
    expect(vendors.requests.length).toBe(before);
  });

  it('absolute-form http://: 403, finding audited, nothing forwarded', async () => {
    const before = plainSeen.length;
    const res = await plainGet(`http://plain.example.com/v1/files/${token}?x=1`);
    const record = await px.auditWhere((r) => r.id === res.id);
    expectBlocked({ ...res, record });
    expect(record.path).toBe('/v1/files/[REDACTED:github-pat]');
    expect(plainSeen.length).toBe(before);
  });
});

describe('a secret in an allowed CONNECT or absolute-form host (it leaves in DNS, SNI and Host)', () => {
  it('CONNECT under block: 403 sensitive_content before the name is resolved, the finding on the connect line', async () => {
    const { status, head, socket } = await connectRaw(`${token}.example.net:443`);
    expect(status).toBe(403); // resolving first would have failed as 502 (no such name)
    expect(head).toMatch(/content-type: application\/json/i);
    socket.destroy();
    const record = await px.auditWhere((r) => r.event === 'connect' && (r.host ?? '').endsWith('.example.net'));
    expect(record).toMatchObject({ status: 403, decision: 'block', reason: 'sensitive_content', host: '[REDACTED:github-pat].example.net' });
    expect(record.findings).toEqual([{ rule: 'github-pat', line: 1, action: 'block', fingerprint: expect.stringMatching(/^[0-9a-f]{16}$/) }]);
  });

  it('absolute-form http:// under block: 403 sensitive_content, nothing forwarded', async () => {
    const before = plainSeen.length;
    const res = await plainGet(`http://${token}.plain.example.com/x`);
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body)).toMatchObject({ error: { type: 'sensitive_content', message: expect.stringContaining('github-pat') } });
    const record = await px.auditWhere((r) => r.id === res.id);
    expect(record.findings).toEqual([{ rule: 'github-pat', line: 1, action: 'block', fingerprint: expect.any(String) }]);
    expect(plainSeen.length).toBe(before);
  });
});

describe('a secret in a CONNECT or absolute-form host', () => {
  const dashboard = async () => (await request(`${px.adminUrl}/api/dashboard`)).body.text();

  it('a denied CONNECT: the audit line, the file and the dashboard feed mask it', async () => {
    const { status, socket } = await connectRaw(`${token}.example.com:443`);
    expect(status).toBe(403);
    socket.destroy();
    const record = await px.auditWhere((r) => r.event === 'connect' && r.status === 403 && (r.host ?? '').endsWith('.example.com'));
    expect(record.host).toBe('[REDACTED:github-pat].example.com');
    expect(auditFile()).not.toContain(secretPart);
    expect(await dashboard()).not.toContain(secretPart);
  });

  it('an allowed CONNECT (wildcard): masked although the host is logged in lower case', async () => {
    const { status, socket } = await connectRaw(`${token}.githubcopilot.com:443`);
    expect(status).toBe(200);
    // Not TLS inside the tunnel: the interception fails, and the operational log says so, naming the host.
    socket.write('not a TLS client hello\r\n\r\n');
    const record = await px.auditWhere((r) => r.event === 'connect' && (r.host ?? '').endsWith('.githubcopilot.com'));
    expect(record.host).toBe('[REDACTED:github-pat].githubcopilot.com');
    expect(record.findings).toEqual([{ rule: 'github-pat', line: 1, action: 'monitor', fingerprint: expect.any(String) }]);
    expect(JSON.stringify(record).toLowerCase()).not.toContain(secretPart.toLowerCase());
    await vi.waitFor(() => expect(logLines.some((l) => l.includes('intercepted TLS failed'))).toBe(true), { timeout: 5000, interval: 10 });
    expect(logLines.join('\n').toLowerCase()).not.toContain(secretPart.toLowerCase());
    expect(auditFile().toLowerCase()).not.toContain(secretPart.toLowerCase());
  });

  it('an absolute-form host, as sent or percent-encoded: masked', async () => {
    for (const host of [`${token}.example.com`, `${encoded}.example.com`]) {
      const res = await plainGet(`http://${host}/x`);
      expect(res.status).toBe(403);
      const record = await px.auditWhere((r) => r.id === res.id);
      expect(record.host).toBe('[REDACTED:github-pat].example.com');
    }
    expect(auditFile().toLowerCase()).not.toContain(secretPart.toLowerCase());
    expect((await dashboard()).toLowerCase()).not.toContain(secretPart.toLowerCase());
  });
});

describe('requests inside a tunnel to a host holding a secret', () => {
  it('their audit lines mask the host too (read as the client spelt it in its CONNECT)', async () => {
    const { status, socket } = await connectRaw(`${token}.githubcopilot.com:443`);
    expect(status).toBe(200);
    const tls = tlsConnect({ socket, servername: `${token.toLowerCase()}.githubcopilot.com`, ca: px.caPem });
    await new Promise<void>((resolve, reject) => {
      tls.once('secureConnect', () => resolve());
      tls.once('error', reject);
    });
    let text = '';
    tls.on('data', (c: Buffer) => (text += c.toString('latin1')));
    tls.write('GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await new Promise<void>((r) => tls.once('close', () => r()));
    const id = /x-aigate-request-id: ([0-9a-f-]{36})/i.exec(text)?.[1];
    expect(id).toBeTruthy();
    const record = await px.auditWhere((r) => r.id === id);
    expect(record).toMatchObject({ event: 'request', mode: 'forward', host: '[REDACTED:github-pat].githubcopilot.com' });
    expect(auditFile().toLowerCase()).not.toContain(secretPart.toLowerCase());
  });
});

// Gateway failures: every refusal has the SPEC §7 body, a request id and exactly one audit line.
import { connect as tlsConnect } from 'node:tls';
import { Readable } from 'node:stream';
import { request } from 'undici';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsRequest } from '../support/http.js';
import { startTestProxy, startVendors, type TestProxy } from '../support/proxy.js';
import { freePort } from '../support/ports.js';
import type { FakeVendors } from '../support/vendors.js';

let vendors: FakeVendors;
let gw: TestProxy;
let closedPort: number;

beforeAll(async () => {
  vendors = await startVendors();
  closedPort = await freePort(); // free a moment ago: nothing listens there

  gw = await startTestProxy(vendors, (raw) => {
    (raw['routes'] as unknown[]).push(
      { name: 'down', prefix: '/down/', upstream: 'https://down.example.com' },
      { name: 'untrusted', prefix: '/untrusted/', upstream: 'https://untrusted.example.com' },
      { name: 'wrongname', prefix: '/wrongname/', upstream: 'https://wrong.example.com' },
    );
    const connectTo = raw['connectTo'] as Record<string, string>;
    connectTo['down.example.com:443'] = `127.0.0.1:${closedPort}`;
    // The fake vendor's certificate is not for this name: verification must fail.
    connectTo['wrong.example.com:443'] = `127.0.0.1:${vendors.port}`;
    raw['timeouts'] = { connect: '2s', firstByte: '300ms', idle: '1s', drain: '2s' };
    raw['inspect'] = { maxBodyBytes: '64kb' };
  });
});
afterAll(async () => {
  await gw?.stop();
  await vendors?.close();
});

interface ErrorBody {
  type: string;
  error: { type: string; message: string; code: string };
}

async function expectError(res: { status: number; headers: Record<string, unknown>; body: string }, status: number, type: string) {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toBe('application/json');
  const id = res.headers['x-aigate-request-id'] as string;
  expect(id).toMatch(/^[0-9a-f-]{36}$/);
  const body = JSON.parse(res.body) as ErrorBody;
  expect(body).toMatchObject({ type: 'error', error: { type, code: type } });
  expect(body.error.message.length).toBeGreaterThan(5);
  const record = await gw.auditWhere((r) => r.id === id);
  expect(record.status).toBe(status);
  expect(record.reason).toBe(type);
  expect(gw.audit.filter((r) => r.id === id)).toHaveLength(1);
  return { body, record };
}

const get = (path: string, headers: Record<string, string> = {}) => httpsRequest(gw.gatewayUrl, { ca: gw.caPem, path, headers });

describe('routing cannot be tricked', () => {
  const cases: Array<[string, string | null]> = [
    ['/copilot/../cursor/echo', '/echo'], // resolves to /cursor/echo: cursor's upstream, normalised path
    ['/copilot/./echo', '/echo'],
    ['/copilot//echo', '/echo'],
    ['/copilot/%2e%2e/claude/echo', '/echo'],
    ['/copilot/x/%2E%2E/echo', '/echo'],
    ['/copilot%2fecho', '/echo'],
    ['/copilot/a%2f..%2f..%2fecho', null], // climbs out of every route: not found
    ['/copilot/..', null],
    ['/../../etc/passwd', null],
    ['/%2e%2e/%2e%2e/copilot/echo', '/echo'],
    ['/copilot\\..\\..\\cursor/echo', '/echo'],
  ];
  for (const [path, upstreamPath] of cases) {
    it(`${path} → ${upstreamPath ?? '404'}`, async () => {
      const before = vendors.requests.length;
      const res = await get(path, { host: 'evil.example.com' });
      if (upstreamPath === null) {
        await expectError(res, 404, 'not_found');
        expect(vendors.requests.length).toBe(before);
        return;
      }
      expect(res.status).toBe(200);
      const echoed = JSON.parse(res.body) as { path: string; headers: Record<string, string> };
      expect(echoed.path).toBe(upstreamPath);
      expect(['api.githubcopilot.com', 'api.cursor.sh', 'api.anthropic.com']).toContain(echoed.headers['host']);
    });
  }

  it('an absolute-form target is routed by its path only, never to its authority', async () => {
    const res = await get('https://evil.example.com/copilot/echo');
    expect(res.status).toBe(200);
    expect((JSON.parse(res.body) as { headers: Record<string, string> }).headers['host']).toBe('api.githubcopilot.com');
  });

  it('unknown route: 404 naming the configured prefixes', async () => {
    const { body, record } = await expectError(await get('/gemini/v1/models'), 404, 'not_found');
    expect(body.error.message).toContain('/copilot/');
    expect(record.decision).toBe('deny');
    expect(record.route).toBeNull();
  });

  it('control characters in the path: 400', async () => {
    await expectError(await get('/copilot/a%00b'), 400, 'bad_request');
  });
});

describe('upstream failures', () => {
  it('upstream down: 502 upstream_unavailable', async () => {
    const { record } = await expectError(await get('/down/x'), 502, 'upstream_unavailable');
    expect(record.decision).toBe('error');
    expect(record.route).toBe('down');
  });

  it('WebSocket upgrade with the upstream down or untrusted: 502 as for plain requests', async () => {
    const upgrade = (path: string) => {
      const ws = new WebSocket(`${gw.gatewayUrl.replace('https', 'wss')}${path}`, { ca: gw.caPem });
      return new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
        ws.on('open', () => reject(new Error('the upgrade succeeded')));
        ws.on('error', reject);
        ws.on('unexpected-response', (req, res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => {
            req.destroy();
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
          });
        });
      });
    };
    const { record } = await expectError(await upgrade('/down/ws'), 502, 'upstream_unavailable');
    expect(record).toMatchObject({ decision: 'error', route: 'down' });
    await expectError(await upgrade('/wrongname/ws'), 502, 'upstream_certificate');
  });

  it('upstream certificate not trusted / wrong name: 502 upstream_certificate', async () => {
    const { body } = await expectError(await get('/wrongname/echo'), 502, 'upstream_certificate');
    expect(body.error.message).toContain('wrong.example.com');
  });

  it('slow upstream: 504 upstream_timeout after timeouts.firstByte', async () => {
    const { body } = await expectError(await get('/copilot/slow'), 504, 'upstream_timeout');
    expect(body.error.message).toContain('timeouts.firstByte');
  });

  it('a stream silent for timeouts.idle is cut (never made to look complete) and audited as upstream_timeout', async () => {
    const res = await request(`${gw.gatewayUrl}/openai/chat/completions`, {
      method: 'POST',
      dispatcher: gw.client,
      headers: { 'content-type': 'application/json', 'x-test-hold': 'idle' },
      body: JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'x' }] }),
    });
    expect(res.statusCode).toBe(200);
    const it = res.body[Symbol.asyncIterator]();
    await it.next(); // first event; the upstream now says nothing
    await expect((async () => {
      for (let r = await it.next(); !r.done; r = await it.next());
    })()).rejects.toThrow();
    const record = await gw.auditWhere((r) => r.id === res.headers['x-aigate-request-id']);
    expect(record).toMatchObject({ status: 200, decision: 'error', reason: 'upstream_timeout' });
    vendors.release('idle');
  });

  it('passes upstream error statuses through unchanged', async () => {
    const res = await get('/copilot/status/429');
    expect(res.status).toBe(429);
    expect(JSON.parse(res.body)).toEqual({ status: 429 });
  });
});

describe('bad requests', () => {
  it('oversized headers: 400 bad_request with an audit line', async () => {
    const res = await get('/copilot/echo', { 'x-big': 'a'.repeat(20_000) });
    const { record } = await expectError(res, 400, 'bad_request');
    expect(record.method).toBeNull();
  });

  it('body over inspect.maxBodyBytes: 413 and nothing forwarded', async () => {
    const before = vendors.requests.length;
    const res = await httpsRequest(`${gw.gatewayUrl}/copilot/echo`, { ca: gw.caPem, method: 'POST', body: 'x'.repeat(65 * 1024) });
    const { body, record } = await expectError(res, 413, 'body_too_large');
    expect(body.error.message).toContain('64 KiB');
    expect(record.decision).toBe('block');
    expect(vendors.requests.length).toBe(before);
  });

  it('body over the limit without Content-Length (chunked): 413', async () => {
    const res = await request(`${gw.gatewayUrl}/copilot/echo`, {
      method: 'POST',
      dispatcher: gw.client,
      body: Readable.from(
        (function* () {
          for (let i = 0; i < 100; i++) yield Buffer.alloc(1024, 0x62);
        })(),
      ),
    });
    expect(res.statusCode).toBe(413);
    await res.body.dump();
  });
});

describe('client abort', () => {
  it('cancels the upstream request and audits the flow as aborted', async () => {
    const socket = tlsConnect({ host: '127.0.0.1', port: Number(new URL(gw.gatewayUrl).port), ca: gw.caPem, servername: 'localhost' });
    await new Promise<void>((r) => socket.once('secureConnect', () => r()));
    const body = JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'x' }] });
    socket.write(
      `POST /openai/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nx-test-hold: abort\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
    await vendors.held('abort'); // the upstream has sent its first event and waits
    await new Promise<void>((r) => socket.once('data', () => r()));
    socket.destroy();
    const record = await gw.auditWhere((r) => r.path === '/openai/chat/completions' && r.aborted === true);
    expect(record.status).toBe(200);
    expect(record.bytesOut).toBeGreaterThan(0);
    vendors.release('abort');
  });
});

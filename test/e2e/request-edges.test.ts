// Requests Node's HTTP server would answer by itself — an unknown `Expect`, an HTTP/1.1 request with
// no Host — get aigate's error contract instead (SPEC §7: JSON body, X-Aigate-Request-Id) and their
// audit line (SPEC §8). Tested on the gateway; the forward servers use the same options and stage.
// Sent over raw TLS: no client library sends them.
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { Rng, make } from '../corpus/secrets.js';
import { startTestProxy, startVendors, type TestProxy } from '../support/proxy.js';
import type { FakeVendors } from '../support/vendors.js';

let vendors: FakeVendors;
let gw: TestProxy;
beforeAll(async () => {
  vendors = await startVendors();
  gw = await startTestProxy(vendors);
});
afterAll(async () => {
  await gw?.stop();
  await vendors?.close();
});

/** Sends `head` (+ body) on a fresh TLS connection to the gateway; resolves with the final answer once the proxy closes. */
function raw(head: string, body = ''): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ port: Number(new URL(gw.gatewayUrl).port), host: '127.0.0.1', servername: 'localhost', ca: gw.caPem }, () => {
      // Not end(): Node's server drops a request whose client half-closes before the answer.
      socket.write(`${head}\r\n\r\n${body}`);
    });
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => {
      // Interim answers (100 Continue) come first: the final one is the last head.
      while (/^HTTP\/1\.1 1\d\d /.test(text)) text = text.slice(text.indexOf('\r\n\r\n') + 4);
      const [top = '', ...rest] = text.split('\r\n\r\n');
      const [statusLine = '', ...lines] = top.split('\r\n');
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: rest.join('\r\n\r\n') });
    });
  });
}

describe('requests Node would answer by itself', () => {
  it('an Expect other than 100-continue: 400 bad_request with a request id and an audit line, nothing forwarded', async () => {
    const before = vendors.requests.length;
    const res = await raw('POST /claude/v1/messages HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\nExpect: fancy', '{}');
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toBe('application/json');
    const id = res.headers['x-aigate-request-id'];
    expect(id).toBeTruthy();
    expect(JSON.parse(res.body)).toMatchObject({ type: 'error', error: { type: 'bad_request', message: 'unsupported expectation "Expect: fancy" (only 100-continue is)' } });
    expect(await gw.auditWhere((r) => r.id === id)).toMatchObject({ status: 400, decision: 'error', reason: 'bad_request', path: '/claude/v1/messages' });
    expect(vendors.requests.length).toBe(before);
  });

  it('HTTP/1.1 without Host: 400 bad_request with a request id and an audit line; HTTP/1.0 needs none', async () => {
    const res = await raw('GET /claude/v1/models HTTP/1.1\r\nConnection: close');
    expect(res.status).toBe(400);
    const id = res.headers['x-aigate-request-id'];
    expect(id).toBeTruthy();
    expect(JSON.parse(res.body)).toMatchObject({ error: { type: 'bad_request', message: 'an HTTP/1.1 request needs a Host header' } });
    expect(await gw.auditWhere((r) => r.id === id)).toMatchObject({ status: 400, reason: 'bad_request' });

    const old = await raw('POST /claude/v1/messages HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: 2', '{}');
    expect(old.status).toBe(200);
  });

  it('a WebSocket upgrade refused by aigate (no route): its 404, then the proxy closes the connection', async () => {
    // `raw` resolves when the proxy closes: without the close, this waits for the test timeout.
    const res = await raw('GET /nowhere/ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==');
    expect(res.status).toBe(404);
    expect(JSON.parse(res.body)).toMatchObject({ error: { type: 'not_found' } });
    expect(await gw.auditWhere((r) => r.id === res.headers['x-aigate-request-id'])).toMatchObject({ status: 404, decision: 'deny' });
  });

  it('CONNECT sent to the gateway: 400 saying where CONNECT is served, audited, connection closed', async () => {
    const res = await raw('CONNECT api.anthropic.com:443 HTTP/1.1\r\nHost: api.anthropic.com:443');
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ error: { type: 'bad_request', message: expect.stringContaining('listen.forward') } });
    expect(await gw.auditWhere((r) => r.id === res.headers['x-aigate-request-id'])).toMatchObject({ event: 'connect', method: 'CONNECT', status: 400 });
  });

  it('Expect: 100-continue still works (curl sends it for large bodies)', async () => {
    const res = await raw('POST /claude/v1/messages HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\nExpect: 100-continue', '{}');
    expect(res.status).toBe(200);
  });
});

describe('a secret in the request path', () => {
  it('is masked in the audit line (file and dashboard feed), as sent or percent-encoded', async () => {
    const token = make.githubPat(new Rng(11));
    const encoded = `%${token.charCodeAt(0).toString(16)}${token.slice(1)}`;
    const other = make.githubPat(new Rng(12));
    const otherEncoded = `%${other.charCodeAt(0).toString(16)}${other.slice(1)}`;
    for (const [segment, logged] of [
      [token, '/claude/v1/files/[REDACTED:github-pat]'],
      [encoded, '/claude/v1/files/[REDACTED:github-pat]'],
      [`${token}/${otherEncoded}`, '/claude/v1/files/[REDACTED:github-pat]/[REDACTED:github-pat]'],
    ]) {
      const res = await request(`${gw.gatewayUrl}/claude/v1/files/${segment}`, { dispatcher: gw.client });
      await res.body.text();
      const id = String(res.headers['x-aigate-request-id']);
      const record = await gw.auditWhere((r) => r.id === id);
      expect(record.path).toBe(logged);
    }
    gw.proxy.audit.flush();
    const file = readFileSync(join(gw.dir, 'audit.log'), 'utf8');
    expect(file).not.toContain(token.slice(4));
    expect(file).not.toContain(other.slice(4));
    expect(file).toContain('/claude/v1/files/[REDACTED:github-pat]');
  });
});

/** Sends `head` + `body` and resolves with the answer; asserts the SPEC §7 shape and the one audit line. */
async function refused(head: string, body: string, status: number, type: string) {
  const before = vendors.requests.length;
  const res = await raw(head, body);
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toBe('application/json');
  const id = res.headers['x-aigate-request-id'];
  expect(id).toMatch(/^[0-9a-f-]{36}$/);
  const parsed = JSON.parse(res.body) as { error: { type: string; message: string } };
  expect(parsed).toMatchObject({ type: 'error', error: { type, code: type } });
  const record = await gw.auditWhere((r) => r.id === id);
  expect(record).toMatchObject({ status, reason: type, method: 'POST', path: '/claude/v1/messages' });
  expect(gw.audit.filter((r) => r.id === id)).toHaveLength(1);
  expect(vendors.requests.length).toBe(before);
  return parsed.error.message;
}

/** Chunked framing of `body` in one chunk. */
const chunked = (body: string) => `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`;

describe('transfer codings aigate does not implement (RFC 9112 §6.1)', () => {
  const post = 'POST /claude/v1/messages HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nConnection: close\r\n';
  for (const [name, te] of [
    ['gzip, chunked', 'Transfer-Encoding: gzip, chunked'],
    ['deflate, chunked', 'Transfer-Encoding: deflate, chunked'],
    ['compress, chunked', 'Transfer-Encoding: compress, chunked'],
    ['identity, chunked', 'Transfer-Encoding: identity, chunked'],
    ['gzip and chunked as two header lines', 'Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked'],
  ] as const) {
    it(`Transfer-Encoding ${name}: 501 not_implemented, one audit line, nothing forwarded`, async () => {
      const message = await refused(`${post}${te}`, chunked('{"a":1}'), 501, 'not_implemented');
      expect(message).toMatch(/Transfer-Encoding/);
    });
  }

  it('Transfer-Encoding with chunked not last: 400 bad_request with method and path, one audit line', async () => {
    for (const te of ['Transfer-Encoding: gzip', 'Transfer-Encoding: chunked;q=1']) {
      const message = await refused(`${post}${te}`, 'abc', 400, 'bad_request');
      expect(message).toMatch(/Transfer-Encoding/);
    }
  });

  it('plain chunked (any case, empty list elements) is still accepted', async () => {
    for (const te of ['Transfer-Encoding: chunked', 'Transfer-Encoding: CHUNKED', 'Transfer-Encoding: ,chunked']) {
      const res = await raw(`${post}${te}`, chunked('{"a":1}'));
      expect(res.status).toBe(200);
    }
  });
});

describe('headers that decide how the body is read, given twice', () => {
  const post = 'POST /claude/v1/messages HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n';
  it('two Content-Type headers: 400 naming the header; a percent-encoded token in a form cannot slip through as text/plain', async () => {
    const token = make.githubPat(new Rng(21));
    const form = `q=${encodeURIComponent(token).replace(/^g/, '%67')}`;
    const message = await refused(
      `${post}Content-Type: text/plain\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${form.length}`,
      form,
      400,
      'bad_request',
    );
    expect(message).toMatch(/Content-Type/);
  });

  it('a Content-Type listing two media types: 400 (a Fetch-standard parser reads the last one)', async () => {
    const message = await refused(`${post}Content-Type: text/plain, application/x-www-form-urlencoded\r\nContent-Length: 2`, '{}', 400, 'bad_request');
    expect(message).toMatch(/Content-Type/);
    // A comma inside a quoted parameter is not a list.
    const ok = await raw(`${post}Content-Type: multipart/form-data; boundary="a,b"\r\nContent-Length: 2`, '{}');
    expect(ok.status).toBe(200);
  });

  it('a Content-Type parameter given twice: 400 (aigate read the first boundary; parsers keeping parameters in a map read the last)', async () => {
    // The part holding the token is delimited by the second boundary and sent in base64: read by
    // the first boundary, the body had no part to decode and was forwarded.
    const token = make.githubPat(new Rng(22));
    const body = `--x\r\nContent-Disposition: form-data; name="file"; filename="notes.txt"\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.from(`deploy token ${token}\n`).toString('base64')}\r\n--x--\r\n`;
    const before = vendors.requests.length;
    for (const ct of ['multipart/form-data; boundary=y; boundary=x', 'multipart/form-data; boundary=y; BOUNDARY="x"']) {
      const message = await refused(`${post}Content-Type: ${ct}\r\nContent-Length: ${body.length}`, body, 400, 'bad_request');
      expect(message).toMatch(/boundary/);
    }
    expect(vendors.requests.length).toBe(before);
    // One boundary: the part is read and its token blocked.
    await refused(`${post}Content-Type: multipart/form-data; boundary=x\r\nContent-Length: ${body.length}`, body, 403, 'sensitive_content');
  });

  it('two Host headers: 400 (RFC 9112 §3.2)', async () => {
    const message = await refused(`POST /claude/v1/messages HTTP/1.1\r\nHost: localhost\r\nHost: evil.example.com\r\nConnection: close\r\nContent-Length: 2`, '{}', 400, 'bad_request');
    expect(message).toMatch(/Host/);
  });

  it('two Content-Length headers: 400 saying so (Node refuses them; the message must not blame Transfer-Encoding)', async () => {
    const res = await raw(`${post}Content-Length: 2\r\nContent-Length: 2`, '{}');
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ error: { type: 'bad_request', message: expect.stringMatching(/Content-Length/) } });
    expect((JSON.parse(res.body) as { error: { message: string } }).error.message).not.toMatch(/Transfer-Encoding/);
  });

  it('Content-Encoding given twice is one list: inspection undoes both layers, the upstream gets both headers', async () => {
    const send = (content: string) => {
      const body = brotliCompressSync(gzipSync(Buffer.from(JSON.stringify({ messages: [{ role: 'user', content }] }))));
      return new Promise<{ status: number; body: string; sent: Buffer }>((resolve, reject) => {
        const socket = tlsConnect({ port: Number(new URL(gw.gatewayUrl).port), host: '127.0.0.1', servername: 'localhost', ca: gw.caPem }, () => {
          socket.write(`${post}Content-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Encoding: br\r\nContent-Length: ${body.length}\r\n\r\n`);
          socket.write(body);
        });
        let text = '';
        socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
        socket.on('error', reject);
        socket.on('close', () => resolve({ status: Number(text.split(' ')[1]), body: text.slice(text.indexOf('\r\n\r\n') + 4), sent: body }));
      });
    };
    const before = vendors.requests.length;
    const blocked = await send('db_password = "Tr0ub4dor-and-3"');
    expect(blocked.status).toBe(403);
    expect(JSON.parse(blocked.body)).toMatchObject({ error: { type: 'sensitive_content' } });
    expect(vendors.requests.length).toBe(before);

    const clean = await send('def add(a, b): return a + b');
    expect(clean.status).toBe(200);
    const seen = vendors.requests[vendors.requests.length - 1]!;
    expect(seen.headers['content-encoding']).toBe('gzip, br');
    expect(seen.body.equals(clean.sent)).toBe(true);
  });
});

describe('one audit line per connection that aborts or breaks mid-request', () => {
  /** A TLS connection that has sent `head` (with Expect: 100-continue) and seen the 100: the request is in a flow. */
  async function inFlight(head: string) {
    const socket = tlsConnect({ port: Number(new URL(gw.gatewayUrl).port), host: '127.0.0.1', servername: 'localhost', ca: gw.caPem });
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.on('error', () => undefined);
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    await new Promise<void>((r) => socket.once('secureConnect', () => r()));
    socket.write(`${head}\r\nExpect: 100-continue\r\n\r\n`);
    await vi.waitFor(() => expect(text).toMatch(/^HTTP\/1\.1 100 /), { timeout: 5000, interval: 5 });
    return { socket, closed, text: () => text };
  }

  /** Records written from `from` on, once a later sentinel request's own line is in (lines are written in order). */
  async function linesSince(from: number) {
    const res = await request(`${gw.gatewayUrl}/claude/v1/models?sentinel`, { dispatcher: gw.client });
    await res.body.dump();
    const id = String(res.headers['x-aigate-request-id']);
    await gw.auditWhere((r) => r.id === id);
    return gw.audit.slice(from).filter((r) => r.id !== id);
  }

  const requestsCounted = async () => {
    const metric = await gw.proxy.metrics.requests.get();
    return metric.values.reduce((n, v) => n + v.value, 0);
  };

  for (const [name, framing] of [
    ['Content-Length', 'Content-Length: 100000'],
    ['chunked', 'Transfer-Encoding: chunked'],
  ] as const) {
    it(`an upload (${name}) the client ends half-way: exactly one line (499, aborted) and one metrics count`, async () => {
      const from = gw.audit.length;
      const counted = await requestsCounted();
      const before = vendors.requests.length;
      const c = await inFlight(`POST /claude/v1/messages HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n${framing}`);
      c.socket.write(name === 'chunked' ? '400\r\n{"messages":' : '{"messages":');
      c.socket.end();
      await c.closed;
      const lines = await linesSince(from);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ method: 'POST', path: '/claude/v1/messages', status: 499, aborted: true });
      expect(await requestsCounted()).toBe(counted + 2); // the aborted upload and the sentinel
      expect(vendors.requests.length).toBe(before + 1); // the sentinel only
    });
  }

  it('a malformed chunk mid-body: the flow itself answers 400 (method, path), one line, nothing forwarded', async () => {
    const from = gw.audit.length;
    const before = vendors.requests.length;
    const c = await inFlight('POST /claude/v1/messages HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked');
    c.socket.write('zz\r\n{}\r\n');
    await c.closed;
    expect(c.text()).toMatch(/HTTP\/1\.1 400 /);
    const lines = await linesSince(from);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ method: 'POST', path: '/claude/v1/messages', status: 400, reason: 'bad_request' });
    expect(c.text()).toContain(`x-aigate-request-id: ${lines[0]!.id}`);
    expect(vendors.requests.length).toBe(before + 1);
  });
  it('a request aigate refused before reading its body, whose body then turns out malformed: still one line (its 404)', async () => {
    const from = gw.audit.length;
    const c = await inFlight('POST /nowhere/x HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked');
    await vi.waitFor(() => expect(c.text()).toMatch(/HTTP\/1\.1 404 /), { timeout: 5000, interval: 5 });
    c.socket.write('zz\r\n{}\r\n');
    await c.closed;
    const lines = await linesSince(from);
    expect(lines.map((r) => [r.method, r.status])).toEqual([['POST', 404]]);
  });
});


describe('a broken request pipelined behind one still being answered', () => {
  it('gets its 400 after the earlier response, never in the middle of it; one line each', async () => {
    const from = gw.audit.length;
    const body = JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'x' }] });
    const socket = tlsConnect({ port: Number(new URL(gw.gatewayUrl).port), host: '127.0.0.1', servername: 'localhost', ca: gw.caPem });
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    await new Promise<void>((r) => socket.once('secureConnect', () => r()));
    socket.write(
      `POST /openai/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nx-test-hold: pipelined\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
        'GET /claude/v1/models HTTP/1.1\r\nHost: localhost\r\nBad Header\r\n\r\n',
    );
    await Promise.race([vendors.held('pipelined'), closed]);
    vendors.release('pipelined');
    await closed;
    const heads = [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
    expect(heads).toEqual([200, 400]);
    expect(text.indexOf('data: [DONE]')).toBeLessThan(text.indexOf('HTTP/1.1 400 '));
    await vi.waitFor(() => expect(gw.audit.slice(from).map((r) => r.status).sort()).toEqual([200, 400]), { timeout: 5000, interval: 10 });
  });
});

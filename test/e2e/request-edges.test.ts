// Requests Node's HTTP server would answer by itself — an unknown `Expect`, an HTTP/1.1 request with
// no Host — get aigate's error contract instead (SPEC §7: JSON body, X-Aigate-Request-Id) and their
// audit line (SPEC §8). Tested on the gateway; the forward servers use the same options and stage.
// Sent over raw TLS: no client library sends them.
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

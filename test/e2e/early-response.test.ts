// Issue 7's trap: an upstream that answers before it has read the request body (vendors do, with
// 401/413 — and nginx's `return 200`), then the client reuses its keep-alive connection. A
// streaming proxy can stall there (the rest of the first body still sits between client, proxy
// and upstream when the next request arrives). aigate reads the whole body before forwarding, so
// the client side is always consumed; these tests pin that a second request on the same client
// connection completes, with large bodies sent with Content-Length and chunked.
// Waits are bounded by the test timeout, never by sleeps.
import type { IncomingMessage } from 'node:http';
import { Agent, request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

/** A clean (secret-free) JSON chat body of about `bytes` bytes: source code as the user message. */
function largeBody(bytes: number): Buffer {
  const line = 'export function add(a: number, b: number): number {\n  return a + b; // "sum"\n}\n';
  const content = line.repeat(Math.ceil(bytes / line.length));
  return Buffer.from(JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content }] }));
}

interface Answer {
  status: number;
  body: string;
  reusedSocket: boolean;
}

/** One request on `agent`; `chunked` sends the body in pieces without Content-Length. */
function send(agent: Agent, path: string, body: Buffer | null, chunked = false): Promise<Answer> {
  const url = new URL(path, gw.gatewayUrl);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (body && !chunked) headers['content-length'] = String(body.length);
    const req = request(
      { host: url.hostname, port: url.port, path: url.pathname, method: body ? 'POST' : 'GET', agent, headers },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), reusedSocket: req.reusedSocket }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (!body) return void req.end();
    if (!chunked) return void req.end(body);
    const piece = 16 * 1024;
    for (let i = 0; i < body.length; i += piece) req.write(body.subarray(i, i + piece));
    req.end();
  });
}

describe('upstream answers before reading the request body', () => {
  for (const chunked of [false, true]) {
    it(`the next request on the same client connection completes (${chunked ? 'chunked' : 'Content-Length'} bodies)`, async () => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: gw.caPem });
      try {
        const body = largeBody(1024 * 1024);
        for (let round = 0; round < 3; round++) {
          const early = await send(agent, '/copilot/early', body, chunked);
          expect(early.status).toBe(200);
          expect(JSON.parse(early.body)).toEqual({ early: true });
          if (round > 0) expect(early.reusedSocket).toBe(true);

          const next = await send(agent, '/openai/chat/completions', Buffer.from(JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'after early' }] })));
          expect(next.status).toBe(200);
          expect(next.reusedSocket).toBe(true);
          expect(JSON.parse(next.body).choices[0].message.content).toBe('echo: after early');
        }
        const audited = await gw.auditWhere((r) => r.path === '/copilot/early');
        expect(audited).toMatchObject({ status: 200, decision: 'allow', bytesIn: body.length });
      } finally {
        agent.destroy();
      }
    }, 20_000);
  }

  it('aigate answering before the body (no route: 404) leaves the connection usable', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: gw.caPem });
    try {
      const body = largeBody(1024 * 1024);
      for (const chunked of [false, true]) {
        const refused = await send(agent, '/no-such-route/chat', body, chunked);
        expect(refused.status).toBe(404);
        const next = await send(agent, '/openai/chat/completions', Buffer.from(JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'after 404' }] })));
        expect(next.status).toBe(200);
        expect(next.reusedSocket).toBe(true);
      }
    } finally {
      agent.destroy();
    }
  }, 20_000);

  it('back-to-back early answers with large bodies on one connection do not stall', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: gw.caPem });
    try {
      const body = largeBody(256 * 1024);
      for (let i = 0; i < 20; i++) {
        const r = await send(agent, '/copilot/early', body);
        expect(r.status).toBe(200);
        if (i > 0) expect(r.reusedSocket).toBe(true);
      }
    } finally {
      agent.destroy();
    }
  }, 20_000);
});

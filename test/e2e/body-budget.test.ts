// Budgets for request bodies held for inspection (issue #19 item 11): uploads that withhold their
// last byte hold their bytes; beyond limits.bufferedBodyBytesPerClient a client gets 429, beyond
// limits.bufferedBodyBytes everyone gets 503, both with Retry-After, an audit line and a metric; and
// however a request ends (answered, refused, blocked, aborted, stalled, failed upstream) its bytes
// are given back. Assertions are on the proxy's own counter (aigate_buffered_body_bytes), polled,
// never on memory or durations. Clients come from several loopback addresses (127.0.0.x reach the
// proxy's 127.0.0.1 on Linux), each its own client.
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { refusedBodyLinger } from '../../src/pipeline/stages/read-body.js';
import { startTestProxy, startVendors, type RawConfig, type TestProxy } from '../support/proxy.js';
import type { FakeVendors } from '../support/vendors.js';
import { metricValue } from '../support/metrics.js';
import { readAnswer, type Answer } from '../support/http.js';

const KiB = 1024;
let vendors: FakeVendors;
const savedLinger = refusedBodyLinger.ms;

beforeAll(async () => {
  refusedBodyLinger.ms = 300;
  vendors = await startVendors();
});
afterAll(async () => {
  refusedBodyLinger.ms = savedLinger;
  await vendors?.close();
});

function budgetProxy(edit: (raw: RawConfig) => void = () => {}): Promise<TestProxy> {
  return startTestProxy(vendors, (raw) => {
    (raw['listen'] as Record<string, unknown>)['forward'] = { host: '127.0.0.1', port: 0 };
    raw['egress'] = { allow: [{ host: 'api.githubcopilot.com', ports: [443], inspect: true }] };
    raw['inspect'] = { maxBodyBytes: '256kb' };
    raw['limits'] = { bufferedBodyBytesPerClient: '512kb', bufferedBodyBytes: '1mb' };
    (raw['routes'] as unknown[]).push({ name: 'dead', prefix: '/dead/', upstream: 'https://dead.example.com' });
    (raw['connectTo'] as Record<string, string>)['dead.example.com:443'] = '127.0.0.1:1';
    edit(raw);
  });
}

function gatewaySocket(px: TestProxy, from: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const raw = netConnect({ host: '127.0.0.1', port: px.proxy.addresses.gateway!.port, localAddress: from });
    const s = tlsConnect({ socket: raw, servername: 'localhost', ca: px.caPem }, () => resolve(s));
    s.on('error', reject);
  });
}

/** TLS inside an intercepted CONNECT tunnel from `from`. */
function tunnelSocket(px: TestProxy, from: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const raw = netConnect({ port: px.proxy.addresses.forward!.port, host: '127.0.0.1', localAddress: from });
    raw.on('error', reject);
    raw.write('CONNECT api.githubcopilot.com:443 HTTP/1.1\r\nHost: api.githubcopilot.com:443\r\n\r\n');
    raw.once('data', (chunk: Buffer) => {
      if (!chunk.toString('latin1').startsWith('HTTP/1.1 200 ')) return reject(new Error(chunk.toString('latin1')));
      const s = tlsConnect({ socket: raw, servername: 'api.githubcopilot.com', ca: px.caPem }, () => resolve(s));
      s.on('error', reject);
    });
  });
}

interface Upload {
  socket: TLSSocket;
  answer: Promise<Answer>;
  /** Sends what was withheld (the last byte, or the end of a chunked body). */
  finish(): void;
  /** Sends one more chunk of a chunked body. */
  chunk(bytes: number): void;
}

const filler = (n: number) => Buffer.alloc(n, 'a');
const chunkOf = (n: number) => Buffer.concat([Buffer.from(`${n.toString(16)}\r\n`), filler(n), Buffer.from('\r\n')]);

/**
 * A POST that withholds the end of its body: `length` declared and all but its last byte sent, or
 * chunked with a first chunk of `first` bytes and no last chunk.
 */
function upload(socket: TLSSocket, path: string, body: { length: number } | { first: number }): Upload {
  const answer = readAnswer(socket);
  socket.on('error', () => undefined);
  const host = path.startsWith('/copilot/') || path.startsWith('/dead/') ? 'localhost' : 'api.githubcopilot.com';
  const head = `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: text/plain\r\n`;
  if ('length' in body) {
    socket.write(`${head}Content-Length: ${body.length}\r\n\r\n`);
    socket.write(filler(body.length - 1));
    return { socket, answer, finish: () => socket.write('a'), chunk: () => undefined };
  }
  socket.write(`${head}Transfer-Encoding: chunked\r\n\r\n`);
  socket.write(chunkOf(body.first));
  return { socket, answer, finish: () => socket.write('0\r\n\r\n'), chunk: (n) => socket.write(chunkOf(n)) };
}

/** Polls the proxy's buffered-body counter until it reads `bytes` (bounded by the test's timeout). */
async function untilHeld(px: TestProxy, bytes: number): Promise<void> {
  for (;;) {
    if ((await metricValue(px.proxy.metrics, 'aigate_buffered_body_bytes')) === bytes) return;
    await new Promise((r) => setTimeout(r, 10));
  }
}

function expectRefusal(a: Answer, type: 'rate_limited' | 'overloaded', limitKey: string): void {
  expect(a.status).toBe(type === 'rate_limited' ? 429 : 503);
  expect(a.headers['retry-after']).toBe('5');
  expect(a.headers['content-type']).toBe('application/json');
  const body = JSON.parse(a.body) as { error: { type: string; message: string } };
  expect(body.error.type).toBe(type);
  expect(body.error.message).toContain(limitKey);
}

describe('limits.bufferedBodyBytesPerClient', () => {
  let px: TestProxy;
  beforeAll(async () => {
    px = await budgetProxy();
  });
  afterAll(() => px?.stop());

  it('a client whose withheld uploads fill its budget gets 429 with Retry-After; other clients do not; all of it comes back', async () => {
    const a1 = upload(await gatewaySocket(px, '127.0.0.11'), '/copilot/status/200', { length: 200 * KiB });
    const a2 = upload(await gatewaySocket(px, '127.0.0.11'), '/copilot/status/200', { length: 200 * KiB });
    await untilHeld(px, 400 * KiB);

    // A declared length that does not fit is refused before its body is read; the body is then
    // read into nothing, so a client that finishes it gets its answer and keeps its connection.
    const a3 = upload(await gatewaySocket(px, '127.0.0.11'), '/copilot/status/200', { length: 200 * KiB });
    const refused = await a3.answer;
    expectRefusal(refused, 'rate_limited', 'limits.bufferedBodyBytesPerClient');
    const line = await px.auditWhere((r) => r.id === refused.headers['x-aigate-request-id']);
    expect(line).toMatchObject({ status: 429, decision: 'rate_limited', reason: 'rate_limited', client: { ip: '127.0.0.11' } });
    a3.finish();
    const next = readAnswer(a3.socket);
    a3.socket.write('POST /copilot/status/200 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}');
    expect((await next).status).toBe(200);

    // A chunked body takes budget as it grows, and is refused when it outgrows what is left.
    const c = upload(await gatewaySocket(px, '127.0.0.11'), '/copilot/status/200', { first: 100 * KiB });
    await untilHeld(px, 500 * KiB);
    const cut = new Promise<void>((resolve) => c.socket.once('close', () => resolve()));
    c.chunk(100 * KiB);
    expectRefusal(await c.answer, 'rate_limited', 'limits.bufferedBodyBytesPerClient');
    await untilHeld(px, 400 * KiB);
    // It never finishes its body: its connection is cut after refusedBodyLinger.
    await cut;

    // Another client has its own budget.
    const b = upload(await gatewaySocket(px, '127.0.0.12'), '/copilot/status/200', { length: 200 * KiB });
    await untilHeld(px, 600 * KiB);

    a1.finish();
    expect((await a1.answer).status).toBe(200);
    a2.socket.destroy(); // abandoned mid-body
    b.finish();
    expect((await b.answer).status).toBe(200);
    await untilHeld(px, 0);
    expect(await metricValue(px.proxy.metrics, 'aigate_body_budget_refusals_total', { scope: 'client' })).toBe(2);
    expect(await metricValue(px.proxy.metrics, 'aigate_body_budget_refusals_total', { scope: 'process' })).toBe(0);
    for (const u of [a1, a3, c, b]) u.socket.destroy();
  });

  it('bodies inside an intercepted tunnel count against the same budget', async () => {
    const t1 = upload(await tunnelSocket(px, '127.0.0.13'), '/echo', { length: 250 * KiB });
    const t2 = upload(await tunnelSocket(px, '127.0.0.13'), '/echo', { length: 250 * KiB });
    await untilHeld(px, 500 * KiB);
    const t3 = upload(await tunnelSocket(px, '127.0.0.13'), '/echo', { length: 20 * KiB });
    const refused = await t3.answer;
    expectRefusal(refused, 'rate_limited', 'limits.bufferedBodyBytesPerClient');
    const line = await px.auditWhere((r) => r.id === refused.headers['x-aigate-request-id']);
    expect(line).toMatchObject({ mode: 'forward', status: 429, reason: 'rate_limited', host: 'api.githubcopilot.com' });
    t1.finish();
    expect((await t1.answer).status).toBe(200);
    t2.socket.destroy();
    await untilHeld(px, 0);
    for (const u of [t1, t3]) u.socket.destroy();
  });
});

describe('limits.bufferedBodyBytes', () => {
  let px: TestProxy;
  beforeAll(async () => {
    px = await budgetProxy();
  });
  afterAll(() => px?.stop());

  it('once the process holds its budget, a body from anyone gets 503 with Retry-After until bytes come back', async () => {
    const held: Upload[] = [];
    for (const from of ['127.0.0.21', '127.0.0.21', '127.0.0.22', '127.0.0.22', '127.0.0.23']) {
      held.push(upload(await gatewaySocket(px, from), '/copilot/status/200', { length: 200 * KiB }));
    }
    await untilHeld(px, 1000 * KiB);
    // 127.0.0.23 holds 200 KiB of its 512: its own budget has room, the process's has not.
    const over = upload(await gatewaySocket(px, '127.0.0.23'), '/copilot/status/200', { length: 200 * KiB });
    const refused = await over.answer;
    expectRefusal(refused, 'overloaded', 'limits.bufferedBodyBytes');
    const line = await px.auditWhere((r) => r.id === refused.headers['x-aigate-request-id']);
    expect(line).toMatchObject({ status: 503, decision: 'error', reason: 'overloaded', client: { ip: '127.0.0.23' } });
    expect(await metricValue(px.proxy.metrics, 'aigate_body_budget_refusals_total', { scope: 'process' })).toBe(1);

    held[0]!.socket.destroy();
    await untilHeld(px, 800 * KiB);
    const again = upload(await gatewaySocket(px, '127.0.0.24'), '/copilot/status/200', { length: 200 * KiB });
    again.finish();
    expect((await again.answer).status).toBe(200);
    for (const u of held.slice(1)) u.socket.destroy();
    await untilHeld(px, 0);
    for (const u of [over, again]) u.socket.destroy();
  });
});

describe('every way a request ends gives its bytes back', () => {
  let px: TestProxy;
  beforeAll(async () => {
    px = await budgetProxy((raw) => {
      raw['timeouts'] = { connect: '2s', firstByte: '5s', idle: '300ms', drain: '2s' };
    });
  });
  afterAll(() => px?.stop());

  /** One request from `from`, held until its bytes show, then let go; returns the answer. */
  async function through(from: string, path: string, body: string | { first: number; then: number }): Promise<Answer> {
    const socket = await gatewaySocket(px, from);
    socket.on('error', () => undefined);
    const answer = readAnswer(socket);
    const head = `POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n`;
    if (typeof body === 'string') {
      const bytes = Buffer.from(body);
      socket.write(`${head}Content-Length: ${bytes.length}\r\n\r\n`);
      socket.write(bytes.subarray(0, bytes.length - 1));
      await untilHeld(px, bytes.length);
      socket.write(bytes.subarray(bytes.length - 1));
    } else {
      socket.write(`${head}Transfer-Encoding: chunked\r\n\r\n`);
      socket.write(chunkOf(body.first));
      await untilHeld(px, body.first);
      socket.write(chunkOf(body.then));
    }
    const a = await answer;
    socket.destroy();
    return a;
  }

  it('answered, blocked, too large, failed upstream, stalled', async () => {
    expect((await through('127.0.0.31', '/copilot/status/200', '{"prompt":"hello"}')).status).toBe(200);
    await untilHeld(px, 0);
    expect((await through('127.0.0.31', '/copilot/status/200', '{"code":"db_password = \\"Tr0ub4dor-and-3\\""}')).status).toBe(403);
    await untilHeld(px, 0);
    expect((await through('127.0.0.31', '/copilot/status/200', { first: 200 * KiB, then: 100 * KiB })).status).toBe(413);
    await untilHeld(px, 0);
    expect((await through('127.0.0.31', '/dead/v1', '{"prompt":"hello"}')).status).toBe(502);
    await untilHeld(px, 0);

    // Stalled mid-body for timeouts.idle: 408, and the bytes it held come back.
    const stalled = upload(await gatewaySocket(px, '127.0.0.31'), '/copilot/status/200', { length: 100 * KiB });
    await untilHeld(px, 100 * KiB);
    expect((await stalled.answer).status).toBe(408);
    await untilHeld(px, 0);
    stalled.socket.destroy();
  });
});

describe('WebSocket messages count against the budgets', () => {
  it('fragments of messages withheld at their last frame hold budget; beyond it the connection is closed 1013, audited, and all is given back', async () => {
    const px = await budgetProxy();
    try {
      const url = `${px.gatewayUrl.replace('https', 'wss')}/copilot/ws`;
      const sockets: WebSocket[] = [];
      const closes: Array<Promise<number>> = [];
      const part = Buffer.alloc(200 * 1024, 0x61);
      for (let i = 0; i < 3; i++) {
        const ws = new WebSocket(url, { ca: px.caPem, perMessageDeflate: false });
        closes.push(new Promise((resolve) => ws.on('close', (code) => resolve(code))));
        await new Promise<void>((resolve, reject) => {
          ws.once('open', () => resolve());
          ws.once('error', reject);
        });
        sockets.push(ws);
        // The first fragment of a message whose last one never comes: the relay must hold it.
        ws.send(part, { binary: true, fin: false });
        if (i < 2) await untilHeld(px, (i + 1) * (part.length + 14));
      }
      // 3 × 200 KiB > 512 KiB for this client: the third connection is closed "try again later".
      expect(await closes[2]).toBe(1013);
      const record = await px.auditWhere((r) => r.status === 101 && r.reason === 'rate_limited');
      expect(record).toMatchObject({ decision: 'error', reason: 'rate_limited' });
      await untilHeld(px, 2 * (part.length + 14));
      for (const ws of sockets) ws.terminate();
      await untilHeld(px, 0);
    } finally {
      await px.stop();
    }
  });

  it('a compressed message arriving in fragments holds what it inflates to, not its few wire bytes; beyond the budget 1013', async () => {
    const px = await budgetProxy();
    try {
      const url = `${px.gatewayUrl.replace('https', 'wss')}/copilot/ws-deflate`;
      const part = Buffer.alloc(200 * 1024, 0x61); // deflates to well under 1 KiB
      const sockets: WebSocket[] = [];
      const outcomes: string[] = [];
      for (let i = 0; i < 3; i++) {
        const ws = new WebSocket(url, { ca: px.caPem, perMessageDeflate: { threshold: 0 } });
        sockets.push(ws);
        const closed = new Promise<string>((resolve) => ws.on('close', (code) => resolve(`closed ${code}`)));
        await new Promise<void>((resolve, reject) => {
          ws.once('open', () => resolve());
          ws.once('error', reject);
        });
        expect(ws.extensions).toContain('permessage-deflate');
        // The first fragment of a message whose last one never comes, then a ping: its pong comes
        // back only once the relay has read (and inflated) the fragment before it.
        ws.send(part, { binary: true, fin: false, compress: true });
        ws.ping();
        outcomes.push(await Promise.race([new Promise<string>((resolve) => ws.once('pong', () => resolve('pong'))), closed]));
        if (i < 2) expect(await metricValue(px.proxy.metrics, 'aigate_buffered_body_bytes')).toBeGreaterThanOrEqual((i + 1) * part.length);
      }
      // 3 × 200 KiB inflated > 512 KiB for this client: the third connection is closed "try again later".
      expect(outcomes).toEqual(['pong', 'pong', 'closed 1013']);
      const record = await px.auditWhere((r) => r.status === 101 && r.reason === 'rate_limited');
      expect(record).toMatchObject({ decision: 'error', reason: 'rate_limited' });
      expect(await metricValue(px.proxy.metrics, 'aigate_body_budget_refusals_total', { scope: 'client' })).toBe(1);
      // A message that completes is judged and forwarded whole; what its fragments held is given back.
      const echoed = new Promise<Buffer>((resolve) => sockets[0]!.once('message', (data: Buffer) => resolve(data)));
      sockets[0]!.send(Buffer.from('end'), { binary: true, fin: true, compress: true });
      expect((await echoed).equals(Buffer.concat([part, Buffer.from('end')]))).toBe(true);
      expect(await metricValue(px.proxy.metrics, 'aigate_buffered_body_bytes')).toBeLessThan(2 * part.length);
      for (const ws of sockets) ws.terminate();
      await untilHeld(px, 0);
    } finally {
      await px.stop();
    }
  });
});

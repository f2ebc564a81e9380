// WebSocket messages through aigate (SPEC §11, issue #14 part 1): every client message is inspected
// before it is forwarded, with permessage-deflate on and off, fragmented, text and binary, through
// the gateway and through an intercepted forward-mode tunnel. Real `ws` clients and a real `ws`
// server upstream (test/support/vendors.ts) that records what it received: the assertions are on
// what reached the upstream. Bad frames are sent over raw TLS, as no library sends them.
import { randomBytes } from 'node:crypto';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { createDeflateRaw } from 'node:zlib';
import { HttpsProxyAgent } from 'https-proxy-agent';
import WebSocket, { type ClientOptions } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/audit/log.js';
import { startTestProxy, startVendors, type TestProxy } from '../support/proxy.js';
import type { FakeVendors, RecordedWebSocket } from '../support/vendors.js';
import { githubToken } from '../support/secrets.js';
import { Rng, make } from '../corpus/secrets.js';

/** A GitHub classic token with a valid checksum, made at run time (never a literal in the repo). */
const MAX_BODY = 256 * 1024;
let vendors: FakeVendors;
let gw: TestProxy;
let proxyUrl: string;

beforeAll(async () => {
  vendors = await startVendors();
  gw = await startTestProxy(vendors, (raw) => {
    const routes = raw['routes'] as Array<Record<string, unknown>>;
    const copilot = 'https://api.githubcopilot.com';
    routes.push(
      { name: 'redact', prefix: '/redact/', upstream: copilot, action: 'redact' },
      { name: 'monitor', prefix: '/monitor/', upstream: copilot, action: 'monitor' },
      { name: 'relay', prefix: '/relay/', upstream: copilot, websocket: 'relay' },
      { name: 'refuse', prefix: '/refuse/', upstream: copilot, websocket: 'refuse' },
    );
    raw['inspect'] = { action: 'block', maxBodyBytes: MAX_BODY };
    (raw['listen'] as Record<string, unknown>)['forward'] = { host: '127.0.0.1', port: 0 };
    raw['egress'] = {
      allow: [
        { host: 'api.githubcopilot.com', ports: [443], inspect: true },
        { host: 'api.openai.com', ports: [443], inspect: true, websocket: 'refuse' },
      ],
    };
  });
  proxyUrl = `http://127.0.0.1:${gw.proxy.addresses.forward!.port}`;
});
afterAll(async () => {
  await gw?.stop();
  await vendors?.close();
});

/** Polls `check` until it holds (bounded): synchronisation on a condition, never a sleep. */
async function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface Session {
  ws: WebSocket;
  /** The last path segment that names this connection, upstream and in the audit. */
  tag: string;
  /** Messages the client received, in order. */
  received: Array<{ data: Buffer; binary: boolean }>;
  closed: Promise<{ code: number; reason: string }>;
  /** The upstream's record of this connection. */
  upstream(): RecordedWebSocket;
  /** Resolves once the upstream saw the close: every message before it has arrived. */
  upstreamClosed(): Promise<RecordedWebSocket>;
}

let tags = 0;
/** Opens a client WebSocket through the gateway to `path`, tagged so the upstream's record is found. */
async function open(path: string, options: ClientOptions = {}, base = gw.gatewayUrl.replace('https', 'wss')): Promise<Session> {
  const tag = `t${++tags}-${Date.now()}`;
  const url = `${base}${path}/${tag}`;
  const ws = new WebSocket(url, { ca: gw.caPem, perMessageDeflate: false, ...options });
  const received: Session['received'] = [];
  ws.on('message', (data, binary) => received.push({ data: data as Buffer, binary }));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const upstream = () => {
    const found = vendors.webSockets.find((c) => c.url.endsWith(`/${tag}`));
    if (!found) throw new Error(`the upstream saw no connection tagged ${tag}`);
    return found;
  };
  await until(() => vendors.webSockets.some((c) => c.url.endsWith(`/${tag}`)), 'the upstream connection');
  const upstreamClosed = async () => {
    await until(() => upstream().closed !== undefined, 'the upstream close');
    return upstream();
  };
  return { ws, tag, received, closed, upstream, upstreamClosed };
}

const texts = (list: Array<{ data: Buffer }>) => list.map((m) => m.data.toString());

/** The connection's audit line (written when it closes) and the message lines under it. */
async function auditOf(tag: string): Promise<{ connection: AuditRecord; messages: AuditRecord[] }> {
  const connection = await gw.auditWhere((r) => r.event === 'request' && (r.path ?? '').endsWith(`/${tag}`));
  return { connection, messages: gw.audit.filter((r) => r.event === 'message' && r.parent === connection.id) };
}

describe('clean messages', () => {
  it('text and binary pass both ways unchanged and in order (deflate off)', async () => {
    const s = await open('/copilot/ws-plain');
    const sent: Array<{ data: Buffer; binary: boolean }> = [];
    for (let i = 0; i < 20; i++) {
      const binary = i % 3 === 0;
      const data = binary ? randomBytes(100 + i) : Buffer.from(`message ${i}: ${'x'.repeat(i * 50)}`);
      sent.push({ data, binary });
      s.ws.send(data, { binary });
    }
    await until(() => s.received.length === 20, 'the echoes');
    expect(s.upstream().extensions).toBe('');
    expect(s.upstream().messages).toEqual(sent);
    expect(s.received.map((m) => m.binary)).toEqual(sent.map((m) => m.binary));
    expect(s.received.map((m) => (m.binary ? m.data.toString('hex') : m.data.toString()))).toEqual(
      sent.map((m) => (m.binary ? m.data.toString('hex') : `echo: ${m.data.toString()}`)),
    );
    s.ws.close(1000, 'done');
    expect(await s.closed).toEqual({ code: 1000, reason: 'done' });
    const { connection, messages } = await auditOf(s.tag);
    expect(connection).toMatchObject({ status: 101, decision: 'allow', reason: null, route: 'copilot' });
    expect(connection.messages).toEqual({ in: 20, out: 20, forwarded: 20, blocked: 0, redacted: 0, monitored: 0 });
    expect(messages).toEqual([]);
    await until(() => s.upstream().closed !== undefined, 'the upstream close');
    expect(s.upstream().closed).toEqual({ code: 1000, reason: 'done' });
  });

  it('permessage-deflate with context takeover: several messages re-compressed in aigate\'s own context', async () => {
    const s = await open('/copilot/ws-deflate', { perMessageDeflate: { threshold: 0 } });
    expect(s.ws.extensions).toContain('permessage-deflate');
    expect(s.upstream().extensions).toContain('permessage-deflate');
    const sent = Array.from({ length: 8 }, (_, i) => `{"type":"response.create","input":"the same long prompt repeated, turn ${i}"}`);
    for (const m of sent) s.ws.send(m);
    await until(() => s.received.length === sent.length, 'the echoes');
    expect(texts(s.upstream().messages)).toEqual(sent);
    expect(texts(s.received)).toEqual(sent.map((m) => `echo: ${m}`));
    s.ws.close();
    await s.closed;
  });

  it('client_no_context_takeover and window bits as the upstream accepted them', async () => {
    for (const path of ['/copilot/ws-deflate-no-takeover', '/copilot/ws-deflate-bits']) {
      const s = await open(path, { perMessageDeflate: { threshold: 0 } });
      if (path.endsWith('no-takeover')) expect(s.upstream().extensions).toContain('client_no_context_takeover');
      else expect(s.upstream().extensions).toContain('client_max_window_bits=9');
      const sent = Array.from({ length: 5 }, (_, i) => `${'abc'.repeat(400)} message ${i}`);
      for (const m of sent) s.ws.send(m);
      await until(() => s.received.length === sent.length, `the echoes on ${path}`);
      expect(texts(s.upstream().messages)).toEqual(sent);
      s.ws.close();
      await s.closed;
    }
  });

  it('a fragmented message with a ping between its fragments arrives whole, the ping too', async () => {
    for (const deflate of [false, true]) {
      const s = await open(deflate ? '/copilot/ws-deflate' : '/copilot/ws', { perMessageDeflate: deflate ? { threshold: 0 } : false });
      s.ws.send('first part, ', { fin: false });
      s.ws.ping('between');
      s.ws.send('second part, ', { fin: false });
      s.ws.send('last part', { fin: true });
      await until(() => s.received.length === 1, 'the echo');
      expect(texts(s.upstream().messages)).toEqual(['first part, second part, last part']);
      expect(s.upstream().pings.map(String)).toEqual(['between']);
      s.ws.close();
      await s.closed;
    }
  });

  it('large messages both ways (200 KiB each, deflate on): whole, in order, under backpressure', async () => {
    const s = await open('/copilot/ws-deflate', { perMessageDeflate: { threshold: 0 } });
    const sent = Array.from({ length: 6 }, (_, i) => (i % 2 ? randomBytes(200 * 1024) : Buffer.from(`${i} `.repeat(100 * 1024))));
    sent.forEach((m, i) => s.ws.send(m, { binary: i % 2 === 1 }));
    await until(() => s.received.length === sent.length, 'the echoes', 15_000);
    expect(s.upstream().messages.map((m) => m.data.equals(sent[s.upstream().messages.indexOf(m)]!))).toEqual(sent.map(() => true));
    expect(s.received.filter((m) => m.binary).map((m) => m.data.toString('base64'))).toEqual(sent.filter((_, i) => i % 2).map((m) => m.toString('base64')));
    s.ws.close();
    await s.closed;
  });

  it('OpenAI Responses over WebSocket: response.create in, the event stream back', async () => {
    const s = await open('/openai/responses', { perMessageDeflate: { threshold: 0 } });
    s.ws.send(JSON.stringify({ type: 'response.create', model: 'gpt-5-codex', input: [{ role: 'user', content: [{ type: 'input_text', text: 'hello' }] }] }));
    await until(() => s.received.some((m) => m.data.toString().includes('response.completed')), 'response.completed');
    const events = s.received.map((m) => JSON.parse(m.data.toString()) as { type: string; delta?: string });
    expect(events[0]!.type).toBe('response.created');
    expect(events.at(-1)!.type).toBe('response.completed');
    expect(events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('')).toBe('echo: hello');
    s.ws.close();
    await s.closed;
  });
});

describe('block', () => {
  it('a token in a text message: not forwarded, later messages neither; error event then close 1008 naming the rule', async () => {
    const token = githubToken();
    const s = await open('/copilot/ws-block-plain');
    s.ws.send('clean before');
    await until(() => s.received.length === 1, 'the first echo');
    s.ws.send(`here is my token ${token}`);
    s.ws.send('sent after the secret');
    const closed = await s.closed;
    expect(closed.code).toBe(1008);
    expect(closed.reason).toBe('sensitive_content: github-pat');
    expect(s.received).toHaveLength(2);
    const event = JSON.parse(s.received[1]!.data.toString()) as { type: string; error: { type: string; message: string; code: string } };
    expect(event).toEqual({
      type: 'error',
      error: { type: 'sensitive_content', message: 'message blocked: 1 secret found (github-pat line 1)', code: 'sensitive_content' },
    });
    await until(() => s.upstream().closed !== undefined, 'the upstream close');
    expect(texts(s.upstream().messages)).toEqual(['clean before']);
    expect(s.upstream().closed!.code).toBe(1008);

    const { connection, messages } = await auditOf(s.tag);
    expect(connection).toMatchObject({ decision: 'block', reason: 'sensitive_content', findings: [] });
    expect(connection.messages).toMatchObject({ in: 2, forwarded: 1, blocked: 1 });
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({ event: 'message', parent: connection.id, decision: 'block', reason: 'sensitive_content', route: 'copilot' });
    expect(messages[0]!.findings).toEqual([expect.objectContaining({ rule: 'github-pat', line: 1, action: 'block' })]);
    const lines = JSON.stringify(gw.audit);
    expect(lines).not.toContain(token);
    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/aigate_websocket_messages_total\{route="copilot",decision="block"\} [1-9]/);
  });

  // Control frames reach the upstream as sent (a ping's data, a close reason): up to 125 bytes each,
  // as many pings as the client likes. Each payload is scanned like a message.
  it('a token in a ping, a pong or a close reason: not passed on; error event then close 1008; a clean ping still is', async () => {
    const key = make.awsKeyId(new Rng(31));
    for (const send of [
      (s: Session) => s.ws.ping(`k=${key}`),
      (s: Session) => s.ws.pong(`k=${key}`),
      (s: Session) => s.ws.close(1000, `leaving ${key}`),
    ]) {
      const s = await open('/copilot/ws-control');
      s.ws.ping('clean');
      await until(() => s.upstream().pings.length === 1, 'the clean ping');
      send(s);
      const closed = await s.closed;
      expect(closed).toEqual({ code: 1008, reason: 'sensitive_content: aws-access-key' });
      const upstream = await s.upstreamClosed();
      expect(upstream.pings.map(String)).toEqual(['clean']);
      expect(upstream.closed!.code).toBe(1008);
      expect(JSON.stringify(upstream)).not.toContain(key);
      const { connection, messages } = await auditOf(s.tag);
      expect(connection).toMatchObject({ decision: 'block', reason: 'sensitive_content' });
      expect(messages[0]!.findings).toEqual([expect.objectContaining({ rule: 'aws-access-key', action: 'block' })]);
    }
  });

  it('compressed with context takeover, after clean compressed messages: blocked, the earlier ones intact upstream', async () => {
    const token = githubToken();
    const s = await open('/copilot/ws-deflate', { perMessageDeflate: { threshold: 0 } });
    for (let i = 0; i < 3; i++) s.ws.send(`{"type":"response.create","input":"turn ${i}"}`);
    s.ws.send(`{"type":"response.create","input":"token = ${token}"}`);
    const closed = await s.closed;
    expect(closed).toEqual({ code: 1008, reason: 'sensitive_content: github-pat' });
    expect(texts((await s.upstreamClosed()).messages)).toEqual([0, 1, 2].map((i) => `{"type":"response.create","input":"turn ${i}"}`));
    expect(JSON.parse(s.received.at(-1)!.data.toString())).toMatchObject({ type: 'error', error: { type: 'sensitive_content' } });
  });

  it('a token split across fragments (a ping between them) is found in the reassembled message', async () => {
    const token = githubToken();
    const s = await open('/copilot/ws-deflate-no-takeover', { perMessageDeflate: { threshold: 0 } });
    s.ws.send(`my token is ${token.slice(0, 20)}`, { fin: false });
    s.ws.ping('keepalive');
    s.ws.send(`${token.slice(20)} ok`, { fin: true });
    expect((await s.closed).code).toBe(1008);
    expect((await s.upstreamClosed()).messages).toEqual([]);
  });

  it('a binary message is scanned like a text one', async () => {
    const token = githubToken();
    const s = await open('/copilot/ws');
    s.ws.send(Buffer.from(`\x00\x01binary frame with ${token}\x02`), { binary: true });
    expect((await s.closed).code).toBe(1008);
    expect((await s.upstreamClosed()).messages).toEqual([]);
  });

  it('OpenAI Responses: a response.create carrying a secret gets the error event Codex displays', async () => {
    const token = githubToken();
    const s = await open('/openai/responses', { perMessageDeflate: { threshold: 0 } });
    s.ws.send(JSON.stringify({ type: 'response.create', model: 'gpt-5-codex', input: [{ role: 'user', content: [{ type: 'input_text', text: `GITHUB_TOKEN=${token}` }] }] }));
    const closed = await s.closed;
    expect(closed.code).toBe(1008);
    expect(closed.reason).toContain('github-pat');
    const [event] = s.received.map((m) => JSON.parse(m.data.toString()) as { type: string; error: { type: string; code: string; message: string } });
    expect(event).toMatchObject({ type: 'error', error: { type: 'sensitive_content', code: 'sensitive_content' } });
    expect(event!.error.message).toContain('github-pat');
    expect(event!.error.message).not.toContain(token);
    expect((await s.upstreamClosed()).messages).toEqual([]);
  });
});

describe('redact and monitor', () => {
  it('redact: the upstream receives the redacted message, re-compressed with its negotiated deflate', async () => {
    const token = githubToken();
    const s = await open('/redact/ws-deflate', { perMessageDeflate: { threshold: 0 } });
    s.ws.send('clean one');
    s.ws.send(JSON.stringify({ input: `use ${token} please` }));
    s.ws.send('clean two');
    await until(() => s.received.length === 3, 'the echoes');
    expect(texts(s.upstream().messages)).toEqual(['clean one', JSON.stringify({ input: 'use [REDACTED:github-pat] please' }), 'clean two']);
    s.ws.close();
    await s.closed;
    const { connection, messages } = await auditOf(s.tag);
    expect(connection).toMatchObject({ decision: 'redact', reason: null });
    expect(connection.messages).toMatchObject({ in: 3, forwarded: 3, redacted: 1, blocked: 0 });
    expect(messages).toEqual([expect.objectContaining({ decision: 'redact', parent: connection.id, findings: [expect.objectContaining({ rule: 'github-pat', action: 'redact' })] })]);
  });

  it('monitor: forwarded unchanged, the message audited with its finding', async () => {
    const token = githubToken();
    const s = await open('/monitor/ws');
    s.ws.send(`token ${token}`);
    await until(() => s.received.length === 1, 'the echo');
    expect(texts(s.upstream().messages)).toEqual([`token ${token}`]);
    s.ws.close();
    await s.closed;
    const { connection, messages } = await auditOf(s.tag);
    expect(connection).toMatchObject({ decision: 'allow' });
    expect(connection.messages).toMatchObject({ in: 1, forwarded: 1, monitored: 1 });
    expect(messages).toEqual([expect.objectContaining({ decision: 'allow', findings: [expect.objectContaining({ rule: 'github-pat', action: 'monitor' })] })]);
  });
});

describe('policy per route', () => {
  it('websocket: relay passes messages uninspected', async () => {
    const token = githubToken();
    const s = await open('/relay/ws');
    s.ws.send(`token ${token}`);
    await until(() => s.received.length === 1, 'the echo');
    expect(texts(s.upstream().messages)).toEqual([`token ${token}`]);
    s.ws.close();
    await s.closed;
  });

  it('websocket: refuse answers the upgrade 426 with the error body, audited, nothing dialled', async () => {
    const before = vendors.requests.length;
    const ws = new WebSocket(`${gw.gatewayUrl.replace('https', 'wss')}/refuse/ws`, { ca: gw.caPem });
    const res = await new Promise<{ status: number; body: string; id: string }>((resolve, reject) => {
      ws.on('open', () => reject(new Error('the upgrade succeeded')));
      ws.on('error', reject);
      ws.on('unexpected-response', (req, response) => {
        let body = '';
        response.on('data', (c: Buffer) => (body += c.toString()));
        response.on('end', () => {
          req.destroy();
          resolve({ status: response.statusCode ?? 0, body, id: String(response.headers['x-aigate-request-id']) });
        });
      });
    });
    expect(res.status).toBe(426);
    expect(JSON.parse(res.body)).toMatchObject({ type: 'error', error: { type: 'websocket_refused', code: 'websocket_refused' } });
    expect(await gw.auditWhere((r) => r.id === res.id)).toMatchObject({ status: 426, decision: 'deny', reason: 'websocket_refused', route: 'refuse' });
    expect(vendors.requests.length).toBe(before);
  });
});

// ---- raw frames --------------------------------------------------------------------------------

/** One frame as a client (masked unless told otherwise) or a server writes it. */
function frame(opcode: number, payload: Buffer, opts: { fin?: boolean; mask?: boolean; rsv1?: boolean } = {}): Buffer {
  const { fin = true, mask = true, rsv1 = false } = opts;
  const len = payload.length;
  const head = Buffer.alloc(2 + (len > 65535 ? 8 : len > 125 ? 2 : 0));
  head[0] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode;
  if (len > 65535) {
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  } else if (len > 125) {
    head[1] = 126;
    head.writeUInt16BE(len, 2);
  } else head[1] = len;
  if (!mask) return Buffer.concat([head, payload]);
  head[1]! |= 0x80;
  const key = randomBytes(4);
  const masked = Buffer.from(payload.map((b, i) => b ^ key[i % 4]!));
  return Buffer.concat([head, key, masked]);
}

/** The unmasked frames a server sent, parsed. */
function parseFrames(bytes: Buffer): Array<{ opcode: number; payload: Buffer }> {
  const out: Array<{ opcode: number; payload: Buffer }> = [];
  let i = 0;
  while (i + 2 <= bytes.length) {
    let len = bytes[i + 1]! & 0x7f;
    let at = i + 2;
    if (len === 126) {
      len = bytes.readUInt16BE(at);
      at += 2;
    } else if (len === 127) {
      len = Number(bytes.readBigUInt64BE(at));
      at += 8;
    }
    out.push({ opcode: bytes[i]! & 0x0f, payload: bytes.subarray(at, at + len) });
    i = at + len;
  }
  return out;
}

/** A WebSocket handshake over raw TLS to the gateway; resolves once the 101 is read. */
function rawWebSocket(path: string, extensions?: string): Promise<{ socket: TLSSocket; frames: () => Buffer; ended: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ port: Number(new URL(gw.gatewayUrl).port), host: '127.0.0.1', servername: 'localhost', ca: gw.caPem }, () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n${extensions ? `Sec-WebSocket-Extensions: ${extensions}\r\n` : ''}\r\n`,
      );
    });
    let buf = Buffer.alloc(0);
    let upgraded = false;
    const ended = new Promise<void>((r) => socket.on('close', () => r()));
    socket.on('error', () => {});
    socket.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (upgraded) return;
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString();
      if (!head.startsWith('HTTP/1.1 101')) return reject(new Error(`no upgrade: ${head}`));
      upgraded = true;
      buf = buf.subarray(end + 4);
      resolve({ socket, frames: () => buf, ended });
    });
  });
}

const closeOf = (frames: Array<{ opcode: number; payload: Buffer }>) => {
  const close = frames.find((f) => f.opcode === 8);
  return close ? { code: close.payload.readUInt16BE(0), reason: close.payload.subarray(2).toString() } : null;
};

describe('bad input', () => {
  it('an unmasked client frame: close 1002, nothing forwarded, audited', async () => {
    const ws = await rawWebSocket('/copilot/ws/raw-unmasked');
    ws.socket.write(frame(1, Buffer.from('not masked'), { mask: false }));
    await ws.ended;
    expect(closeOf(parseFrames(ws.frames()))).toMatchObject({ code: 1002 });
    const up = vendors.webSockets.find((c) => c.url.endsWith('/raw-unmasked'))!;
    expect(up.messages).toEqual([]);
    const { connection } = await auditOf('raw-unmasked');
    expect(connection).toMatchObject({ decision: 'error', reason: 'bad_request' });
  });

  it('a reserved opcode and a bad continuation: close 1002', async () => {
    for (const [tag, bytes] of [
      ['opcode', frame(3, Buffer.from('x'))],
      ['continuation', frame(0, Buffer.from('x'))],
      ['rsv1-without-deflate', frame(1, Buffer.from('x'), { rsv1: true })],
    ] as const) {
      const ws = await rawWebSocket(`/copilot/ws/raw-${tag}`);
      ws.socket.write(bytes);
      await ws.ended;
      expect(closeOf(parseFrames(ws.frames()))?.code, tag).toBe(1002);
    }
  });

  it('a message over inspect.maxBodyBytes: close 1009 before it is read whole, a message audit line', async () => {
    const s = await open('/copilot/ws-oversized');
    s.ws.send('small first');
    s.ws.send(Buffer.alloc(MAX_BODY + 1, 0x61));
    const closed = await s.closed;
    expect(closed.code).toBe(1009);
    expect(texts((await s.upstreamClosed()).messages)).toEqual(['small first']);
    const { connection, messages } = await auditOf(s.tag);
    expect(connection).toMatchObject({ decision: 'block', reason: 'body_too_large' });
    expect(messages).toEqual([expect.objectContaining({ event: 'message', decision: 'block', reason: 'body_too_large' })]);
  });

  it('a deflate bomb: close 1009, inflation stopped at the limit (no memory blow-up)', async () => {
    // 256 MiB of zeros deflate to ~256 KiB... kept under the frame limit with 200 MiB.
    const deflater = createDeflateRaw();
    const parts: Buffer[] = [];
    deflater.on('data', (c: Buffer) => parts.push(c));
    const zeros = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < 200; i++) deflater.write(zeros);
    await new Promise<void>((r) => deflater.flush(() => r()));
    const compressed = Buffer.concat(parts);
    expect(compressed.length).toBeLessThan(MAX_BODY);
    const ws = await rawWebSocket('/copilot/ws-deflate/raw-bomb', 'permessage-deflate; client_max_window_bits');
    const before = process.memoryUsage().rss;
    ws.socket.write(frame(2, compressed, { rsv1: true }));
    await ws.ended;
    expect(closeOf(parseFrames(ws.frames()))?.code).toBe(1009);
    // An unbounded inflation would have held 200 MiB.
    expect(process.memoryUsage().rss - before).toBeLessThan(100 * 1024 * 1024);
    expect(vendors.webSockets.find((c) => c.url.endsWith('/raw-bomb'))!.messages).toEqual([]);
  });

  it('an upgrade request with a body: 400, nothing forwarded, one audit line (#19)', async () => {
    const before = vendors.requests.length;
    for (const [tag, head] of [
      ['cl', 'POST /copilot/ws?body=cl HTTP/1.1\r\nContent-Length: 11\r\n'],
      ['te', 'GET /copilot/ws?body=te HTTP/1.1\r\nTransfer-Encoding: chunked\r\n'],
    ] as const) {
      const body = tag === 'cl' ? 'hello world' : 'b\r\nhello world\r\n0\r\n\r\n';
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = tlsConnect({ port: Number(new URL(gw.gatewayUrl).port), host: '127.0.0.1', servername: 'localhost', ca: gw.caPem }, () => {
          socket.write(
            `${head}Host: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n` +
              `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n${body}`,
          );
        });
        let text = '';
        socket.on('data', (c: Buffer) => (text += c.toString()));
        socket.on('close', () => resolve(text));
        socket.on('error', reject);
      });
      expect(answer).toMatch(/^HTTP\/1\.1 400 /);
      expect(answer).toContain('"type":"bad_request"');
      const id = /x-aigate-request-id: (\S+)/i.exec(answer)![1];
      await gw.auditWhere((r) => r.id === id);
      expect(gw.audit.filter((r) => r.id === id)).toEqual([expect.objectContaining({ status: 400, decision: 'error', reason: 'bad_request' })]);
    }
    expect(vendors.requests.length).toBe(before);
  });
});

describe('forward mode (intercepted tunnel)', () => {
  const viaProxy = (options: ClientOptions = {}): ClientOptions => ({ agent: new HttpsProxyAgent(proxyUrl, { ca: gw.caPem }), ...options });

  it('clean messages pass, a secret is blocked with the error event and close 1008', async () => {
    const token = githubToken();
    const s = await open('/ws-deflate', viaProxy({ perMessageDeflate: { threshold: 0 } }), 'wss://api.githubcopilot.com');
    s.ws.send('hello through the tunnel');
    await until(() => s.received.length === 1, 'the echo');
    s.ws.send(`secret ${token}`);
    expect(await s.closed).toEqual({ code: 1008, reason: 'sensitive_content: github-pat' });
    expect(texts((await s.upstreamClosed()).messages)).toEqual(['hello through the tunnel']);
    expect(JSON.parse(s.received[1]!.data.toString())).toMatchObject({ type: 'error', error: { type: 'sensitive_content' } });
    const { connection, messages } = await auditOf(s.tag);
    expect(connection).toMatchObject({ mode: 'forward', route: 'api.githubcopilot.com', decision: 'block' });
    expect(messages).toEqual([expect.objectContaining({ mode: 'forward', parent: connection.id, decision: 'block' })]);
  });

  it('websocket: refuse on an egress.allow entry: 426', async () => {
    const ws = new WebSocket('wss://api.openai.com/v1/responses', viaProxy({ ca: gw.caPem }));
    const status = await new Promise<number>((resolve, reject) => {
      ws.on('open', () => reject(new Error('the upgrade succeeded')));
      ws.on('error', reject);
      ws.on('unexpected-response', (req, res) => {
        req.destroy();
        resolve(res.statusCode ?? 0);
      });
    });
    expect(status).toBe(426);
  });
});

describe('aigate\'s frames on the upstream → client stream', () => {
  it('a fragmented message open downstream: only the close is sent (no text frame inside it)', async () => {
    const s = await open('/copilot/ws-open-fragment');
    // The client has the first fragment once the upstream's pong to this ping comes back after it.
    const pong = new Promise<void>((r) => s.ws.once('pong', () => r()));
    s.ws.ping('after the fragment');
    await pong;
    s.ws.send(`token ${githubToken()}`);
    expect(await s.closed).toEqual({ code: 1008, reason: 'sensitive_content: github-pat' });
    expect(s.received).toEqual([]);
    expect((await s.upstreamClosed()).messages).toEqual([]);
  });

  it('a masked frame from the upstream is not relayed: close 1002, audited as the upstream\'s fault', async () => {
    const s = await open('/copilot/ws-masked-server');
    expect((await s.closed).code).toBe(1002);
    expect(s.received).toEqual([]);
    const { connection } = await auditOf(s.tag);
    expect(connection).toMatchObject({ decision: 'error', reason: 'upstream_unavailable' });
  });
});

describe('drain', () => {
  it('SIGTERM\'s drain ends an open inspected WebSocket after the grace period, with its audit line', async () => {
    const own = await startTestProxy(vendors);
    const ws = new WebSocket(`${own.gatewayUrl.replace('https', 'wss')}/copilot/ws/drained`, { ca: own.caPem });
    const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
    const upstreamSeen = vendors.webSockets.length;
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.send('before the drain');
    await new Promise((r) => ws.once('message', r));
    const { forced } = await own.proxy.drain(200);
    expect(forced).toBe(1);
    expect(await closed).toBe(1001);
    const lines = own.audit.filter((r) => r.path === '/copilot/ws/drained');
    await until(() => vendors.webSockets[upstreamSeen]?.closed !== undefined, 'the upstream close');
    expect(vendors.webSockets[upstreamSeen]!.closed!.code).toBe(1001);
    expect(lines).toEqual([expect.objectContaining({ status: 101, messages: expect.objectContaining({ in: 1, forwarded: 1 }) })]);
    await own.client.close();
  });
});

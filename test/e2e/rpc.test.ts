// gRPC-Web and Connect through aigate with real Connect clients and a real Connect server from npm
// (@connectrpc/connect-node over HTTP/1.1), in gateway mode and inside an intercepted forward-mode
// tunnel: messages gzip-compressed inside their envelopes are decompressed and inspected one by
// one; clean ones are forwarded as they come, a secret is refused in the protocol's own shape.
import { PassThrough } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { create, toBinary } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient, type Transport } from '@connectrpc/connect';
import { compressionGzip, createConnectTransport, createGrpcWebTransport } from '@connectrpc/connect-node';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { ProxyAgent, request, type Dispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChatService, PromptSchema, startFakeConnect, type FakeConnect, type PromptShape } from '../support/connect.js';
import { startTestProxy, startVendors, testPki, type TestProxy } from '../support/proxy.js';
import type { FakeVendors } from '../support/vendors.js';
import { githubToken } from '../support/secrets.js';

const token = githubToken();
const MAX = 64 * 1024;
let vendors: FakeVendors;
let fake: FakeConnect;
let aigate: TestProxy;
let proxyUrl: string;

/**
 * A bidirectional Connect stream as a server answers one over HTTP/1.1: response headers at once,
 * then each request envelope echoed back as soon as it arrives. Records what arrived and whether
 * the request was cut.
 */
interface EchoUpstream {
  port: number;
  arrived: Buffer[];
  cut: number;
  server: Server;
}

async function startEchoUpstream(): Promise<EchoUpstream> {
  const state: EchoUpstream = { port: 0, arrived: [], cut: 0, server: undefined as unknown as Server };
  state.server = createHttpsServer(testPki().vendorCerts['api.openai.com']!, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/connect+proto' });
    res.flushHeaders();
    let pending = Buffer.alloc(0);
    req.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
        const env = pending.subarray(0, 5 + pending.readUInt32BE(1));
        pending = pending.subarray(env.length);
        state.arrived.push(env);
        res.write(env);
      }
    });
    req.on('end', () => res.end(envelope(0x02, Buffer.from('{}'))));
    req.on('error', () => state.cut++);
    req.on('close', () => {
      if (!req.complete) state.cut++;
    });
  });
  await new Promise<void>((r) => state.server.listen(0, '127.0.0.1', r));
  state.port = (state.server.address() as AddressInfo).port;
  return state;
}

let echo: EchoUpstream;

beforeAll(async () => {
  vendors = await startVendors();
  fake = await startFakeConnect(testPki().vendorCerts['api.cursor.sh']!);
  echo = await startEchoUpstream();
  aigate = await startTestProxy(vendors, (raw) => {
    (raw['connectTo'] as Record<string, string>)['api.cursor.sh:443'] = `127.0.0.1:${fake.port}`;
    (raw['connectTo'] as Record<string, string>)['api.openai.com:443'] = `127.0.0.1:${echo.port}`;
    (raw['listen'] as Record<string, unknown>)['forward'] = { host: '127.0.0.1', port: 0 };
    raw['egress'] = { allow: [{ host: 'api.cursor.sh', ports: [443], inspect: true }] };
    raw['inspect'] = { action: 'block', maxBodyBytes: MAX };
    (raw['routes'] as Array<Record<string, unknown>>).push(
      { name: 'cursor-watch', prefix: '/cursor-watch/', upstream: 'https://api.cursor.sh', action: 'monitor' },
      { name: 'cursor-redact', prefix: '/cursor-redact/', upstream: 'https://api.cursor.sh', action: 'redact' },
    );
  });
  proxyUrl = `http://127.0.0.1:${aigate.proxy.addresses.forward!.port}`;
});
afterAll(async () => {
  await proxyAgent?.close();
  await aigate?.stop();
  await fake?.close();
  echo?.server.closeAllConnections();
  echo?.server.close();
  await vendors?.close();
});

type Mode = 'gateway' | 'forward';
const MODES: Mode[] = ['gateway', 'forward'];

function baseUrl(mode: Mode): string {
  return mode === 'gateway' ? `${aigate.gatewayUrl}/cursor` : 'https://api.cursor.sh';
}

function nodeOptions(mode: Mode) {
  const ca = aigate.caPem;
  return mode === 'gateway' ? { ca } : { ca, agent: new HttpsProxyAgent(proxyUrl, { ca }) };
}

function transports(mode: Mode): Record<'connect' | 'grpc-web', Transport> {
  const common = { baseUrl: baseUrl(mode), httpVersion: '1.1' as const, nodeOptions: nodeOptions(mode), sendCompression: compressionGzip, compressMinBytes: 0, useBinaryFormat: true };
  return { connect: createConnectTransport(common), 'grpc-web': createGrpcWebTransport(common) };
}

/** The client's methods as this service defines them (the descriptor is built at run time, so not typed). */
interface ChatClient {
  say(p: PromptShape): Promise<{ text: string }>;
  listen(p: PromptShape): AsyncIterable<{ text: string }>;
}

function client(mode: Mode, protocol: 'connect' | 'grpc-web'): ChatClient {
  return createClient(ChatService, transports(mode)[protocol]) as unknown as ChatClient;
}

async function connectError(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error('the call succeeded');
}

const clean: PromptShape = { text: 'refactor this function', context: { file: 'const answer = 42;\n' } };
const leaky: PromptShape = { text: 'why does this fail?', context: { file: `const client = new Octokit({ auth: "${token}" });\n` } };

/** The first request line audited from index `n` on whose decision is `decision`. */
function auditedAfter(n: number, decision: string) {
  return aigate.auditWhere((r) => r.event === 'request' && r.decision === decision && aigate.audit.indexOf(r) >= n);
}

describe.each(MODES)('%s mode', (mode) => {
  for (const protocol of ['connect', 'grpc-web'] as const) {
    it(`${protocol} unary: a clean gzip-compressed message passes, a secret in a nested field is refused as permission_denied`, async () => {
      const chat = client(mode, protocol);
      const reply = await chat.say(clean);
      expect(reply.text).toBe(`echo: ${clean.text}`);

      const before = fake.received.length;
      const n = aigate.audit.length;
      const err = await connectError(chat.say(leaky));
      expect(err.code).toBe(Code.PermissionDenied);
      expect(err.rawMessage).toContain('github-pat');
      expect(err.rawMessage).not.toContain(token);
      expect(fake.received.length).toBe(before);
      const record = await auditedAfter(n, 'block');
      expect(record.reason).toBe('sensitive_content');
      expect(record.findings.map((f) => f.rule)).toContain('github-pat');
      expect(JSON.stringify(aigate.audit)).not.toContain(token);
    });

    it(`${protocol} server-streaming: clean passes with every part, a secret is refused before anything is forwarded`, async () => {
      const chat = client(mode, protocol);
      const parts: string[] = [];
      for await (const r of chat.listen(clean)) parts.push(r.text);
      expect(parts).toEqual(['part 1', 'part 2', 'part 3']);

      const before = fake.received.length;
      const err = await connectError(
        (async () => {
          for await (const _ of chat.listen(leaky)) void _;
        })(),
      );
      expect(err.code).toBe(Code.PermissionDenied);
      expect(err.rawMessage).toContain('github-pat');
      expect(fake.received.length).toBe(before);
    });
  }

  it('Connect unary with the JSON codec: inspected as JSON on the ordinary path, refused in Connect\'s shape (403, code permission_denied)', async () => {
    const common = { baseUrl: baseUrl(mode), httpVersion: '1.1' as const, nodeOptions: nodeOptions(mode), useBinaryFormat: false };
    const chat = createClient(ChatService, createConnectTransport(common)) as unknown as ChatClient;
    expect((await chat.say(clean)).text).toBe(`echo: ${clean.text}`);
    const before = fake.received.length;
    const err = await connectError(chat.say(leaky));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.rawMessage).toMatch(/^request blocked: 1 secret found \(github-pat line 1\)$/);
    // Streaming with the JSON codec: each envelope's message is JSON.
    const streamErr = await connectError(
      (async () => {
        for await (const _ of chat.listen(leaky)) void _;
      })(),
    );
    expect(streamErr.code).toBe(Code.PermissionDenied);
    expect(streamErr.rawMessage).toMatch(/^request blocked: 1 secret found \(github-pat line 1\) in message 1$/);
    expect(fake.received.length).toBe(before);
    // A unary compression aigate cannot undo is refused as Connect's unimplemented, not forwarded.
    const zstd = await request(url(mode, '/aigate.test.Chat/Say'), {
      dispatcher: dispatcher(mode),
      method: 'POST',
      headers: { 'content-type': 'application/proto', 'connect-protocol-version': '1', 'content-encoding': 'zstd' },
      body: Buffer.from('not zstd'),
    });
    expect(zstd.statusCode).toBe(501);
    expect(await zstd.body.json()).toMatchObject({ code: 'unimplemented' });
    expect(fake.received.length).toBe(before);
  });
});

// ---- The raw protocols, driven with undici and a streaming body ----

let proxyAgent: ProxyAgent | undefined;
function dispatcher(mode: Mode): Dispatcher {
  if (mode === 'gateway') return aigate.client;
  proxyAgent ??= new ProxyAgent({ uri: proxyUrl, requestTls: { ca: aigate.caPem } });
  return proxyAgent;
}

function url(mode: Mode, path: string): string {
  return `${baseUrl(mode)}${path}`;
}

/** One envelope: flags, 4-byte length, message. */
function envelope(flags: number, message: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out[0] = flags;
  out.writeUInt32BE(message.length, 1);
  Buffer.from(message).copy(out, 5);
  return out;
}

function prompt(p: PromptShape): Uint8Array {
  return toBinary(PromptSchema, create(PromptSchema, p as never));
}

/** A gzip-compressed envelope of a Prompt. */
function gz(p: PromptShape): Buffer {
  return envelope(0x01, gzipSync(prompt(p)));
}

/** Envelopes of a response body: flags and message. */
function envelopesOf(body: Buffer): Array<{ flags: number; data: Buffer }> {
  const out: Array<{ flags: number; data: Buffer }> = [];
  for (let at = 0; at + 5 <= body.length; ) {
    const len = body.readUInt32BE(at + 1);
    out.push({ flags: body[at]!, data: body.subarray(at + 5, at + 5 + len) });
    at += 5 + len;
  }
  return out;
}

function endStream(body: Buffer): { error?: { code: string; message: string } } {
  const last = envelopesOf(body).at(-1)!;
  expect(last.flags & 0x02).toBe(0x02);
  return JSON.parse(last.data.toString('utf8')) as { error?: { code: string; message: string } };
}

// undici's ProxyAgent adds a host header to the headers object it is given: each request gets a copy.
const STREAM_HEADERS: Readonly<Record<string, string>> = { 'content-type': 'application/connect+proto', 'connect-protocol-version': '1', 'connect-content-encoding': 'gzip', 'connect-accept-encoding': 'gzip' };

describe.each(MODES)('%s mode, raw Connect streaming', (mode) => {
  it('forwards each clean message as soon as it is inspected: message 1 reaches the server while the client still holds message 2', async () => {
    const body = new PassThrough();
    const before = fake.received.filter((r) => r.method === 'Upload').length;
    const n = aigate.audit.length;
    const response = request(url(mode, '/aigate.test.Chat/Upload'), { dispatcher: dispatcher(mode), method: 'POST', headers: { ...STREAM_HEADERS }, body });
    const first = gz({ text: 'message one' });
    body.write(first);
    await fake.receivedCount('Upload', before + 1); // the stream is still open: only aigate forwarding message 1 at once can satisfy this
    const second = gz({ text: 'message two' });
    body.end(second);
    const res = await response;
    const bytes = Buffer.from(await res.body.arrayBuffer());
    expect(res.statusCode).toBe(200);
    expect(endStream(bytes).error).toBeUndefined();
    expect(fake.received.filter((r) => r.method === 'Upload').slice(before).map((r) => r.text)).toEqual(['message one', 'message two']);
    const record = await auditedAfter(n, 'allow');
    expect(record.bytesIn).toBe(first.length + second.length);
  });

  it('a secret in message 3: messages 1 and 2 forwarded, 3 not, the upstream call cut, the client told permission_denied', async () => {
    const body = new PassThrough();
    const before = fake.received.filter((r) => r.method === 'Upload').length;
    const cutBefore = fake.cut.length;
    const n = aigate.audit.length;
    const response = request(url(mode, '/aigate.test.Chat/Upload'), { dispatcher: dispatcher(mode), method: 'POST', headers: { ...STREAM_HEADERS }, body });
    body.write(gz({ text: 'one' }));
    body.write(gz({ text: 'two' }));
    await fake.receivedCount('Upload', before + 2);
    body.write(gz({ text: 'three', context: { file: `token = "${token}"\n` } }));
    const res = await response;
    const bytes = Buffer.from(await res.body.arrayBuffer());
    body.destroy();
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/connect+proto');
    const error = endStream(bytes).error!;
    expect(error.code).toBe('permission_denied');
    expect(error.message).toContain('github-pat');
    expect(error.message).toContain('message 3');
    expect(bytes.toString('latin1')).not.toContain(token);
    const record = await auditedAfter(n, 'block');
    expect(record.reason).toBe('sensitive_content');
    expect(record.status).toBe(200);
    expect(record.findings.map((f) => f.rule)).toEqual(['github-pat']);
    await expect.poll(() => fake.cut.length).toBeGreaterThan(cutBefore);
    expect(fake.received.filter((r) => r.method === 'Upload').slice(before).map((r) => r.text)).toEqual(['one', 'two']);
  });

  it('an envelope whose length runs past the body: invalid_argument, nothing forwarded', async () => {
    const before = fake.received.length;
    const n = aigate.audit.length;
    const whole = gz({ text: 'fine' });
    const res = await request(url(mode, '/aigate.test.Chat/Upload'), {
      dispatcher: dispatcher(mode),
      method: 'POST',
      headers: { ...STREAM_HEADERS },
      body: whole.subarray(0, whole.length - 3),
    });
    const bytes = Buffer.from(await res.body.arrayBuffer());
    expect(endStream(bytes).error!.code).toBe('invalid_argument');
    expect(fake.received.length).toBe(before);
    const record = await auditedAfter(n, 'error');
    expect(record.reason).toBe('bad_request');
  });

  it('an unknown message compression: unimplemented with the accepted ones, nothing forwarded', async () => {
    const before = fake.received.length;
    const res = await request(url(mode, '/aigate.test.Chat/Upload'), {
      dispatcher: dispatcher(mode),
      method: 'POST',
      headers: { ...STREAM_HEADERS, 'connect-content-encoding': 'snappy' },
      body: envelope(0x01, Buffer.from('not really snappy')),
    });
    const bytes = Buffer.from(await res.body.arrayBuffer());
    expect(endStream(bytes).error!.code).toBe('unimplemented');
    expect(res.headers['connect-accept-encoding']).toBe('gzip,deflate');
    expect(fake.received.length).toBe(before);
  });

  it('a message over inspect.maxBodyBytes, declared or once decompressed: resource_exhausted, nothing forwarded', async () => {
    const before = fake.received.length;
    // Declared too large: refused from the 5-byte prefix, before the message is read.
    const declared = Buffer.alloc(5);
    declared.writeUInt32BE(MAX + 1, 1);
    const res1 = await request(url(mode, '/aigate.test.Chat/Upload'), { dispatcher: dispatcher(mode), method: 'POST', headers: { ...STREAM_HEADERS }, body: Buffer.concat([declared, Buffer.alloc(1024)]) });
    expect(endStream(Buffer.from(await res1.body.arrayBuffer())).error!.code).toBe('resource_exhausted');
    // A small gzip bomb.
    const bomb = envelope(0x01, gzipSync(Buffer.alloc(MAX * 4, 0x61)));
    const res2 = await request(url(mode, '/aigate.test.Chat/Upload'), { dispatcher: dispatcher(mode), method: 'POST', headers: { ...STREAM_HEADERS }, body: bomb });
    expect(endStream(Buffer.from(await res2.body.arrayBuffer())).error!.code).toBe('resource_exhausted');
    expect(fake.received.length).toBe(before);
  });

  it('gRPC-Web text (base64 around the envelopes, padded per message): a secret is refused trailers-only with grpc-status 7', async () => {
    const before = fake.received.length;
    // The secret is in message 1, so nothing goes upstream (connect-node does not serve grpc-web-text
    // and would answer a forwarded call at once); message 1's padding sits mid-stream.
    let leakyFirst = gz({ text: 'x', context: { file: token } });
    for (let pad = 'x'; leakyFirst.length % 3 === 0; pad += 'x') leakyFirst = gz({ text: pad, context: { file: token } });
    const text = [leakyFirst, gz({ text: 'clean second' })].map((e) => e.toString('base64')).join('');
    expect(text.indexOf('=')).toBeLessThan(text.length - 2);
    const res = await request(url(mode, '/aigate.test.Chat/Say'), {
      dispatcher: dispatcher(mode),
      method: 'POST',
      headers: { 'content-type': 'application/grpc-web-text', 'grpc-encoding': 'gzip', 'x-grpc-web': '1' },
      body: text,
    });
    await res.body.arrayBuffer();
    expect(res.statusCode).toBe(200);
    expect(res.headers['grpc-status']).toBe('7');
    expect(decodeURIComponent(String(res.headers['grpc-message']))).toContain('github-pat');
    expect(res.headers['content-type']).toBe('application/grpc-web-text');
    expect(res.headers['x-aigate-request-id']).toBeTruthy();
    expect(fake.received.length).toBe(before);
  });

  it('gRPC framing: a secret is refused trailers-only (grpc-status 7, grpc-message naming rule, line and message); bad framing gets grpc-status 3; unknown grpc-encoding 12', async () => {
    const headers = { 'content-type': 'application/grpc+proto', 'grpc-encoding': 'gzip', te: 'trailers' };
    const before = fake.received.length;
    const refused = await request(url(mode, '/aigate.test.Chat/Say'), { dispatcher: dispatcher(mode), method: 'POST', headers, body: gz({ text: 'ok', context: { file: `// deploy\nconst t = "${token}";` } }) });
    await refused.body.arrayBuffer();
    expect(refused.statusCode).toBe(200);
    expect(refused.headers['grpc-status']).toBe('7');
    expect(String(refused.headers['grpc-message'])).toMatch(/^request blocked: 1 secret found \(github-pat line 2\) in message 1$/);
    expect(refused.headers['content-type']).toBe('application/grpc+proto');
    const truncated = await request(url(mode, '/aigate.test.Chat/Say'), { dispatcher: dispatcher(mode), method: 'POST', headers, body: Buffer.from([0, 0, 0, 0, 9, 1, 2]) });
    await truncated.body.arrayBuffer();
    expect(truncated.headers['grpc-status']).toBe('3');
    const unknown = await request(url(mode, '/aigate.test.Chat/Say'), { dispatcher: dispatcher(mode), method: 'POST', headers: { ...headers, 'grpc-encoding': 'zstd' }, body: gz({ text: 'ok' }) });
    await unknown.body.arrayBuffer();
    expect(unknown.headers['grpc-status']).toBe('12');
    expect(unknown.headers['grpc-accept-encoding']).toBe('gzip,deflate');
    // A whole-body Content-Encoding on top of the envelopes: the upstream would read other envelopes.
    const wrapped = await request(url(mode, '/aigate.test.Chat/Say'), { dispatcher: dispatcher(mode), method: 'POST', headers: { ...headers, 'content-encoding': 'gzip' }, body: gzipSync(gz({ text: 'ok' })) });
    await wrapped.body.arrayBuffer();
    expect(wrapped.headers['grpc-status']).toBe('12');
    expect(fake.received.length).toBe(before);
  });

  it('Connect GET: a message in the query string (base64, gzip) is decoded and inspected; a secret gets 403 permission_denied', async () => {
    const before = fake.received.length;
    const query = (p: PromptShape) => `?connect=v1&encoding=proto&base64=1&compression=gzip&message=${gzipSync(prompt(p)).toString('base64url')}`;
    const refused = await request(url(mode, `/aigate.test.Chat/Say${query(leaky)}`), { dispatcher: dispatcher(mode) });
    const json = (await refused.body.json()) as { code: string; message: string };
    expect(refused.statusCode).toBe(403);
    expect(json.code).toBe('permission_denied');
    expect(json.message).toContain('github-pat');
    const jsonQuery = `?connect=v1&encoding=json&message=${encodeURIComponent(JSON.stringify({ text: `token=${token}` }))}`;
    const refusedJson = await request(url(mode, `/aigate.test.Chat/Say${jsonQuery}`), { dispatcher: dispatcher(mode) });
    await refusedJson.body.arrayBuffer();
    expect(refusedJson.statusCode).toBe(403);
    expect(fake.received.length).toBe(before);
  });

  // Connect servers decode a GET's `message` whether or not `connect=v1` is there (connect-es and
  // connect-go check it only with requireConnectProtocolHeader): the query string must not be
  // what decides whether the message is decoded and inspected.
  it('Connect GET without a literal connect=v1 (none, another version, percent-encoded): still decoded and inspected', async () => {
    const message = Buffer.from(prompt(leaky)).toString('base64url');
    const clean = Buffer.from(prompt({ text: 'what does this do?' })).toString('base64url');
    const before = fake.received.length;
    for (const query of [`?encoding=proto&base64=1&message=${message}`, `?connect=v2&encoding=proto&base64=1&message=${message}`, `?connect=%761&encoding=proto&base64=1&message=${message}`, `?encoding=proto&base64=1&mess%61ge=${message}`]) {
      const res = await request(url(mode, `/aigate.test.Chat/Peek${query}`), { dispatcher: dispatcher(mode) });
      const json = (await res.body.json()) as { code: string; message: string };
      expect(res.statusCode, query).toBe(403);
      expect(json.code).toBe('permission_denied');
    }
    expect(fake.received.length).toBe(before);
    // The same parameter twice: a Go server drops a pair holding `;` and reads the next one, so
    // which message a server decodes is not certain: refused, nothing forwarded.
    const twice = await request(url(mode, `/aigate.test.Chat/Peek?encoding=proto&base64=1&message=${clean};&message=${message}`), { dispatcher: dispatcher(mode) });
    await twice.body.arrayBuffer();
    expect(twice.statusCode).toBe(400);
    expect(fake.received.length).toBe(before);
    // A clean message still reaches the service, decoded by it.
    const ok = await request(url(mode, `/aigate.test.Chat/Peek?encoding=proto&base64=1&message=${clean}`), { dispatcher: dispatcher(mode) });
    await ok.body.arrayBuffer();
    expect(ok.statusCode).toBe(200);
    expect(fake.received.at(-1)).toEqual({ method: 'Peek', text: 'what does this do?' });
  });
});

describe('an RPC stream silent for timeouts.idle', () => {
  let idle: TestProxy;
  beforeAll(async () => {
    idle = await startTestProxy(vendors, (raw) => {
      (raw['connectTo'] as Record<string, string>)['api.cursor.sh:443'] = `127.0.0.1:${fake.port}`;
      (raw['timeouts'] as Record<string, string>)['idle'] = '300ms';
    });
  });
  afterAll(async () => {
    await idle?.stop();
  });

  it('is ended: the forwarded part stays, the upstream call is cut, the client gets deadline_exceeded, one audit line', async () => {
    const body = new PassThrough();
    const before = fake.received.filter((r) => r.method === 'Upload').length;
    const cutBefore = fake.cut.length;
    const response = request(`${idle.gatewayUrl}/cursor/aigate.test.Chat/Upload`, { dispatcher: idle.client, method: 'POST', headers: { ...STREAM_HEADERS }, body });
    body.write(gz({ text: 'then silence' }));
    await fake.receivedCount('Upload', before + 1);
    const res = await response; // answered once the idle timer fired
    const bytes = Buffer.from(await res.body.arrayBuffer());
    body.destroy();
    expect(endStream(bytes).error!.code).toBe('deadline_exceeded');
    const record = await idle.auditWhere((r) => r.event === 'request');
    expect(record.reason).toBe('request_timeout');
    expect(record.decision).toBe('error');
    await expect.poll(() => fake.cut.length).toBeGreaterThan(cutBefore);
    expect(idle.audit.filter((r) => r.event === 'request')).toHaveLength(1);
  });
});

describe('a refusal after the upstream response started (a bidirectional stream)', () => {
  it('aborts the upstream request and ends the client\'s response with a Connect end-stream permission_denied at a message boundary', async () => {
    const body = new PassThrough();
    const n = aigate.audit.length;
    const response = request(`${aigate.gatewayUrl}/openai/chat.Bidi/Talk`, { dispatcher: aigate.client, method: 'POST', headers: { ...STREAM_HEADERS }, body });
    // aigate calls the upstream with the first clean message.
    const first = gz({ text: 'hello, are you there?' });
    body.write(first);
    const res = await response; // the response is under way before the request stream ends
    expect(res.statusCode).toBe(200);
    const received: Buffer[] = [];
    const reader = res.body[Symbol.asyncIterator]();
    let got = Buffer.alloc(0);
    while (got.length < first.length) {
      const next = await reader.next();
      if (next.done) break;
      got = Buffer.concat([got, next.value as Buffer]);
    }
    expect(got).toEqual(first); // echoed: the upstream's response has started
    body.write(gz({ text: 'x', context: { file: `secret = "${token}"` } }));
    for (let next = await reader.next(); !next.done; next = await reader.next()) received.push(next.value as Buffer);
    body.destroy();
    const rest = Buffer.concat(received);
    const error = endStream(rest).error!;
    expect(error.code).toBe('permission_denied');
    expect(error.message).toContain('github-pat');
    expect(envelopesOf(rest)).toHaveLength(1); // nothing but the end-stream after message 1's echo
    expect(echo.arrived).toEqual([first]);
    await expect.poll(() => echo.cut).toBeGreaterThan(0);
    const record = await auditedAfter(n, 'block');
    expect(record.status).toBe(200);
    expect(record.reason).toBe('sensitive_content');
  });
});

describe('route actions on an RPC stream', () => {
  it('monitor: every message forwarded, one audit line with the findings of all of them', async () => {
    const before = fake.received.filter((r) => r.method === 'Upload').length;
    const n = aigate.audit.length;
    const res = await request(`${aigate.gatewayUrl}/cursor-watch/aigate.test.Chat/Upload`, {
      dispatcher: aigate.client,
      method: 'POST',
      headers: { ...STREAM_HEADERS },
      body: Buffer.concat([gz({ text: `first ${token}` }), gz({ text: 'clean' }), gz({ text: 'x', context: { file: `token = "${githubToken()}"` } })]),
    });
    const bytes = Buffer.from(await res.body.arrayBuffer());
    expect(endStream(bytes).error).toBeUndefined();
    expect(fake.received.filter((r) => r.method === 'Upload').length).toBe(before + 3);
    const record = await auditedAfter(n, 'allow');
    expect(record.route).toBe('cursor-watch');
    expect(record.findings.map((f) => [f.rule, f.action])).toEqual([
      ['github-pat', 'monitor'],
      ['github-pat', 'monitor'],
    ]);
    expect(aigate.audit.slice(n).filter((r) => r.event === 'request')).toHaveLength(1);
  });

  it('redact: a protobuf message cannot be rewritten in place, so it is refused instead', async () => {
    const res = await request(`${aigate.gatewayUrl}/cursor-redact/aigate.test.Chat/Upload`, {
      dispatcher: aigate.client,
      method: 'POST',
      headers: { ...STREAM_HEADERS },
      body: gz({ text: `leak ${token}` }),
    });
    const error = endStream(Buffer.from(await res.body.arrayBuffer())).error!;
    expect(error.code).toBe('permission_denied');
  });
});

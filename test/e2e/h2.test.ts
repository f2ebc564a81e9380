// HTTP/2 end to end (issue #15): ALPN h2 on the gateway and inside intercepted forward-mode
// tunnels, each stream one flow through the same stages as an HTTP/1.1 request, with real clients
// (node:http2, curl --http2, undici with allowH2).
import { execFile } from 'node:child_process';
import { connect as h2connect, constants, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { request as httpRequest } from 'node:http';
import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport, createGrpcTransport } from '@connectrpc/connect-node';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FLAG, FRAME, frame, literal, rawH2, requestBlock } from '../support/h2-frames.js';
import { ChatService, startFakeConnect, type FakeConnect, type PromptShape } from '../support/connect.js';
import { startTestProxy, startVendors, testPki, type TestProxy } from '../support/proxy.js';
import { h2Request, openH2 } from '../support/h2-client.js';
import type { FakeVendors } from '../support/vendors.js';
import { githubToken } from '../support/secrets.js';

const run = promisify(execFile);

let vendors: FakeVendors;
let gw: TestProxy;

beforeAll(async () => {
  vendors = await startVendors();
  // The floods below make the proxy dial the fake vendor hundreds of times at once, and both share
  // this test process: on a loaded 2-core host a fresh upstream handshake then takes longer than
  // the base config's 2 s connect timeout, and "still served" would fail on the test's own
  // congestion, not aigate's. What these tests assert is that the proxy still serves at all.
  gw = await startTestProxy(vendors, (raw) => ((raw['timeouts'] as Record<string, unknown>)['connect'] = '20s'));
});
afterAll(async () => {
  await gw?.stop();
  await vendors?.close();
});

const h2Gateway = () => openH2(gw.gatewayUrl, gw.caPem);

const chat = (text: string) => JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: text }] });

describe('gateway over HTTP/2', () => {
  it('negotiates h2 by ALPN (an h2-only client is served, not refused with no_application_protocol)', async () => {
    const socket = tlsConnect({ host: '127.0.0.1', port: Number(new URL(gw.gatewayUrl).port), servername: 'localhost', ca: gw.caPem, ALPNProtocols: ['h2'] });
    const protocol = await new Promise<string | false>((resolve, reject) => {
      socket.once('secureConnect', () => resolve(socket.alpnProtocol ?? false));
      socket.once('error', reject);
    });
    socket.destroy();
    expect(protocol).toBe('h2');
  });

  it('node:http2: a request is one flow through the pipeline, audited with protocol h2', async () => {
    const session = await h2Gateway();
    try {
      const answer = await h2Request(
        session,
        { ':method': 'POST', ':path': '/openai/v1/chat/completions', 'content-type': 'application/json', authorization: 'Bearer sk-test' },
        chat('hello over h2'),
      );
      expect(answer.headers[':status']).toBe(200);
      expect(JSON.parse(answer.body).choices[0].message.content).toBe('echo: hello over h2');
      for (const name of ['connection', 'keep-alive', 'transfer-encoding', 'upgrade']) expect(answer.headers[name]).toBeUndefined();
      const id = answer.headers['x-aigate-request-id'] as string;
      const line = await gw.auditWhere((r) => r.id === id);
      expect(line).toMatchObject({ protocol: 'h2', status: 200, decision: 'allow', method: 'POST', path: '/openai/v1/chat/completions', route: 'openai' });
      expect(line.aborted).toBeUndefined();
      const seen = [...vendors.requests].reverse().find((r) => r.path.endsWith('/v1/chat/completions'))!;
      expect(seen.host).toBe('api.openai.com');
      expect(Object.keys(seen.headers).filter((h) => h.startsWith(':'))).toEqual([]);
    } finally {
      session.close();
    }
  });

  it('node:http2: a body without content-length is read to END_STREAM and inspected; a secret gets the JSON 403', async () => {
    const session = await h2Gateway();
    try {
      const before = vendors.requests.length;
      const answer = await h2Request(
        session,
        { ':method': 'POST', ':path': '/openai/v1/chat/completions', 'content-type': 'application/json' },
        chat(`my token is ${githubToken()}`),
      );
      expect(answer.headers[':status']).toBe(403);
      expect(answer.headers['content-type']).toBe('application/json');
      expect(JSON.parse(answer.body).error.type).toBe('sensitive_content');
      expect(vendors.requests.length).toBe(before);
      const line = await gw.auditWhere((r) => r.id === answer.headers['x-aigate-request-id']);
      expect(line).toMatchObject({ protocol: 'h2', status: 403, decision: 'block' });
      // The same session goes on serving: a refusal is one stream's answer.
      const next = await h2Request(session, { ':method': 'POST', ':path': '/openai/v1/chat/completions', 'content-type': 'application/json' }, chat('fine'));
      expect(next.headers[':status']).toBe(200);
    } finally {
      session.close();
    }
  });

  it('node:http2: an unknown route is a 404 with the JSON body; many streams on one connection each get their line', async () => {
    const session = await h2Gateway();
    try {
      const answers = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          h2Request(session, { ':method': 'POST', ':path': '/openai/v1/chat/completions', 'content-type': 'application/json' }, chat(`stream ${i}`)),
        ),
      );
      expect(answers.map((a) => JSON.parse(a.body).choices[0].message.content)).toEqual(Array.from({ length: 8 }, (_, i) => `echo: stream ${i}`));
      const ids = answers.map((a) => a.headers['x-aigate-request-id']);
      for (const id of ids) await gw.auditWhere((r) => r.id === id);
      expect(gw.audit.filter((r) => ids.includes(r.id))).toHaveLength(8);
      const missing = await h2Request(session, { ':method': 'GET', ':path': '/nowhere' });
      expect(missing.headers[':status']).toBe(404);
      expect(JSON.parse(missing.body).error.type).toBe('not_found');
    } finally {
      session.close();
    }
  });

  it('node:http2: an SSE stream flows event by event (the first event arrives while the upstream holds the rest)', async () => {
    const session = await h2Gateway();
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/openai/v1/chat/completions', 'content-type': 'application/json', 'x-test-hold': 'h2-sse' });
      stream.end(JSON.stringify({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'sse' }] }));
      const first = await new Promise<string>((resolve, reject) => {
        stream.once('data', (c: Buffer) => resolve(c.toString()));
        stream.once('error', reject);
      });
      expect(first).toContain('data: ');
      vendors.release('h2-sse');
      const rest: Buffer[] = [];
      stream.on('data', (c: Buffer) => rest.push(c));
      await new Promise((resolve) => stream.once('end', resolve));
      expect(Buffer.concat(rest).toString()).toContain('data: [DONE]');
    } finally {
      session.close();
    }
  });

  it('curl --http2 speaks HTTP/2 to the gateway', async () => {
    const { stdout } = await run('curl', [
      '--silent', '--show-error', '--http2', '--cacert', gw.caFile,
      '-H', 'content-type: application/json', '--data', chat('from curl'),
      '-w', '\n%{http_version}', `${gw.gatewayUrl}/openai/v1/chat/completions`,
    ]);
    const [body, version] = stdout.split('\n');
    expect(version).toBe('2');
    expect(JSON.parse(body!).choices[0].message.content).toBe('echo: from curl');
    await gw.auditWhere((r) => r.protocol === 'h2' && r.bytesIn === Buffer.byteLength(chat('from curl')));
  });

  it('curl --http2-prior-knowledge on https:// still negotiates by ALPN, and gets h2', async () => {
    // Prior knowledge only means something in cleartext (h2c), which no aigate listener offers:
    // over TLS curl offers h2 by ALPN anyway, and to an HTTP proxy it speaks HTTP/1.1.
    const { stdout, stderr } = await run('curl', ['-sS', '-v', '--http2-prior-knowledge', '--cacert', gw.caFile, '-w', '\n%{http_version}', `${gw.gatewayUrl}/nowhere`]);
    expect(stderr).toMatch(/ALPN: server accepted h2/);
    const [body, version] = stdout.split('\n');
    expect(version).toBe('2');
    expect(JSON.parse(body!).error.type).toBe('not_found');
  });

  it('undici with allowH2 speaks HTTP/2 to the gateway; HTTP/1.1 clients are unchanged (no protocol field)', async () => {
    const agent = new Agent({ allowH2: true, connect: { ca: gw.caPem } });
    try {
      const res = await request(`${gw.gatewayUrl}/openai/v1/chat/completions`, {
        method: 'POST',
        dispatcher: agent,
        headers: { 'content-type': 'application/json' },
        body: chat('undici h2'),
      });
      expect(res.statusCode).toBe(200);
      expect(((await res.body.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content).toBe('echo: undici h2');
      const line = await gw.auditWhere((r) => r.id === res.headers['x-aigate-request-id']);
      expect(line.protocol).toBe('h2');
    } finally {
      await agent.close();
    }
    const h1 = await request(`${gw.gatewayUrl}/openai/v1/chat/completions`, {
      method: 'POST',
      dispatcher: gw.client,
      headers: { 'content-type': 'application/json' },
      body: chat('undici h1'),
    });
    await h1.body.text();
    const line = await gw.auditWhere((r) => r.id === h1.headers['x-aigate-request-id']);
    expect(line.protocol).toBeUndefined();
  });

  it('a client that resets its stream mid-response is audited once as aborted', async () => {
    const session = await h2Gateway();
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/openai/v1/chat/completions', 'content-type': 'application/json', 'x-test-hold': 'h2-reset' });
      stream.end(JSON.stringify({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'reset me' }] }));
      const headers = await new Promise<IncomingHttpHeaders>((resolve) => stream.once('response', resolve));
      await new Promise((resolve) => stream.once('data', resolve));
      stream.close(constants.NGHTTP2_CANCEL);
      const line = await gw.auditWhere((r) => r.id === headers['x-aigate-request-id']);
      expect(line).toMatchObject({ protocol: 'h2', status: 200, aborted: true });
      vendors.release('h2-reset');
    } finally {
      session.close();
    }
  });
});

describe('drain with HTTP/2 clients', () => {
  it('sends GOAWAY at once, lets the open stream finish, then closes the connection', async () => {
    const own = await startTestProxy(vendors);
    const session = await new Promise<ClientHttp2Session>((resolve, reject) => {
      const s = h2connect(own.gatewayUrl, { ca: own.caPem });
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
    const goaway = new Promise<number>((resolve) => session.once('goaway', (code: number) => resolve(code)));
    const closed = new Promise((resolve) => session.once('close', resolve));
    const stream = session.request({ ':method': 'POST', ':path': '/openai/v1/chat/completions', 'content-type': 'application/json', 'x-test-hold': 'h2-drain' });
    stream.end(JSON.stringify({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'drain' }] }));
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    await vendors.held('h2-drain');
    const headers = await new Promise<IncomingHttpHeaders>((resolve) => stream.once('response', resolve));
    const drained = own.proxy.drain(10_000);
    expect(await goaway).toBe(constants.NGHTTP2_NO_ERROR);
    vendors.release('h2-drain');
    await new Promise((resolve) => stream.once('end', resolve));
    expect(Buffer.concat(chunks).toString()).toContain('data: [DONE]');
    expect((await drained).forced).toBe(0);
    await closed;
    const line = own.audit.find((r) => r.id === headers['x-aigate-request-id']);
    expect(line).toMatchObject({ protocol: 'h2', status: 200 });
    expect(line?.aborted).toBeUndefined();
    await own.client.close();
  });
});

describe('intercepted forward-mode tunnels over HTTP/2', () => {
  let fw: TestProxy;
  let proxyUrl: string;
  beforeAll(async () => {
    fw = await startTestProxy(vendors, (raw) => {
      (raw['listen'] as Record<string, unknown>)['forward'] = { host: '127.0.0.1', port: 0 };
      raw['egress'] = { allow: [{ host: 'api.githubcopilot.com', ports: [443], inspect: true }] };
    });
    proxyUrl = `http://127.0.0.1:${fw.proxy.addresses.forward!.port}`;
  });
  afterAll(async () => {
    await fw?.stop();
  });

  /** CONNECT, then TLS with ALPN h2 only inside the tunnel, then an HTTP/2 session on it. */
  async function h2Tunnel(host: string): Promise<ClientHttp2Session> {
    const raw = await new Promise<Socket>((resolve, reject) => {
      const req = httpRequest(proxyUrl, { method: 'CONNECT', path: `${host}:443` });
      req.once('connect', (res, socket) => (res.statusCode === 200 ? resolve(socket) : reject(new Error(`CONNECT ${res.statusCode}`))));
      req.once('error', reject);
      req.end();
    });
    return new Promise((resolve, reject) => {
      const session = h2connect(`https://${host}`, {
        createConnection: () => tlsConnect({ socket: raw, servername: host, ca: fw.caPem, ALPNProtocols: ['h2'] }),
      });
      session.once('connect', () => resolve(session));
      session.once('error', reject);
    });
  }

  it('node:http2 inside a CONNECT tunnel: minted certificate, ALPN h2, each stream audited with protocol h2', async () => {
    const session = await h2Tunnel('api.githubcopilot.com');
    try {
      const ok = await h2Request(session, { ':method': 'POST', ':path': '/echo', 'content-type': 'application/json' }, '{"prompt":"tunnel h2"}');
      expect(ok.headers[':status']).toBe(200);
      expect(JSON.parse(ok.body)).toMatchObject({ path: '/echo', body: '{"prompt":"tunnel h2"}' });
      const line = await fw.auditWhere((r) => r.id === ok.headers['x-aigate-request-id']);
      expect(line).toMatchObject({ mode: 'forward', protocol: 'h2', status: 200, host: 'api.githubcopilot.com' });
      const blocked = await h2Request(session, { ':method': 'POST', ':path': '/echo', 'content-type': 'application/json' }, JSON.stringify({ prompt: githubToken() }));
      expect(blocked.headers[':status']).toBe(403);
      expect(JSON.parse(blocked.body).error.type).toBe('sensitive_content');
    } finally {
      session.close();
    }
    // The tunnel's own line is written when it closes.
    await fw.auditWhere((r) => r.event === 'connect' && r.host === 'api.githubcopilot.com' && r.status === 200);
  });

  it('curl --http2 -x negotiates h2 inside the tunnel', async () => {
    const { stdout, stderr } = await run('curl', [
      '-sS', '-v', '--http2', '-x', proxyUrl, '--cacert', fw.caFile,
      '-H', 'content-type: application/json', '--data', '{"prompt":"curl tunnel"}',
      'https://api.githubcopilot.com/echo',
    ]);
    expect(stderr).toMatch(/ALPN: server accepted h2/);
    expect(JSON.parse(stdout)).toMatchObject({ path: '/echo', body: '{"prompt":"curl tunnel"}' });
    await fw.auditWhere((r) => r.mode === 'forward' && r.protocol === 'h2' && r.bytesIn === '{"prompt":"curl tunnel"}'.length);
  });
});

/** The client's methods as the test service defines them (built at run time, so not typed). */
interface ChatClient {
  say(p: PromptShape): Promise<{ text: string }>;
  listen(p: PromptShape): AsyncIterable<{ text: string }>;
  converse(input: AsyncIterable<PromptShape>): AsyncIterable<{ text: string; count: number }>;
}

/** An async iterable the test feeds one message at a time (a bidi stream's request side). */
function feed<T>(): { iterable: AsyncIterable<T>; push(v: T): void; end(): void } {
  const queue: T[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  return {
    push(v) {
      queue.push(v);
      wake?.();
    },
    end() {
      ended = true;
      wake?.();
    },
    iterable: {
      async *[Symbol.asyncIterator]() {
        for (;;) {
          if (queue.length > 0) {
            yield queue.shift()!;
            continue;
          }
          if (ended) return;
          await new Promise<void>((r) => (wake = r));
          wake = undefined;
        }
      },
    },
  };
}

describe('HTTP/2 upstreams: Connect and gRPC end to end', () => {
  let fake: FakeConnect;
  let rpcGw: TestProxy;
  let off: TestProxy;
  beforeAll(async () => {
    fake = await startFakeConnect(testPki().vendorCerts['api.cursor.sh']!, { http2: true });
    const toFake = (raw: Record<string, unknown>) => {
      (raw['connectTo'] as Record<string, string>)['api.cursor.sh:443'] = `127.0.0.1:${fake.port}`;
    };
    rpcGw = await startTestProxy(vendors, (raw) => {
      toFake(raw);
      (raw['listen'] as Record<string, unknown>)['forward'] = { host: '127.0.0.1', port: 0 };
      raw['egress'] = { allow: [{ host: 'api.cursor.sh', ports: [443], inspect: true }] };
    });
    off = await startTestProxy(vendors, (raw) => {
      toFake(raw);
      (raw['upstreamTls'] as Record<string, unknown>)['http2'] = 'off';
    });
  });
  afterAll(async () => {
    await rpcGw?.stop();
    await off?.stop();
    await fake?.close();
  });

  const connectClient = (gateway: TestProxy) =>
    createClient(ChatService, createConnectTransport({ baseUrl: `${gateway.gatewayUrl}/cursor`, httpVersion: '2', nodeOptions: { ca: gateway.caPem } })) as unknown as ChatClient;

  it('upstreamTls.http2 auto: an upstream that offers h2 is spoken to in HTTP/2; off: HTTP/1.1', async () => {
    const before = fake.versions.length;
    expect((await connectClient(rpcGw).say({ text: 'hi' })).text).toBe('echo: hi');
    expect(fake.versions.slice(before)).toEqual(['2.0']);
    // An HTTP/1.1 client too: the upstream protocol does not depend on the client's.
    const h1 = createClient(ChatService, createConnectTransport({ baseUrl: `${rpcGw.gatewayUrl}/cursor`, httpVersion: '1.1', nodeOptions: { ca: rpcGw.caPem } })) as unknown as ChatClient;
    expect((await h1.say({ text: 'h1 client' })).text).toBe('echo: h1 client');
    expect(fake.versions.at(-1)).toBe('2.0');
    expect((await connectClient(off).say({ text: 'off' })).text).toBe('echo: off');
    expect(fake.versions.at(-1)).toBe('1.1');
  });

  it('Connect server streaming over h2 both ways', async () => {
    const parts: string[] = [];
    for await (const r of connectClient(rpcGw).listen({ text: 'go' })) parts.push(r.text);
    expect(parts).toEqual(['part 1', 'part 2', 'part 3']);
  });

  it('gRPC over h2: te: trailers reaches the server and grpc-status comes back as HTTP/2 trailers', async () => {
    const grpc = createClient(ChatService, createGrpcTransport({ baseUrl: `${rpcGw.gatewayUrl}/cursor`, nodeOptions: { ca: rpcGw.caPem } })) as unknown as ChatClient;
    expect((await grpc.say({ text: 'grpc' })).text).toBe('echo: grpc');
    const parts: string[] = [];
    for await (const r of grpc.listen({ text: 'go' })) parts.push(r.text);
    expect(parts).toEqual(['part 1', 'part 2', 'part 3']);
  });

  /** A Connect bidi stream: full duplex, and a secret in the third message refused with nothing of it forwarded. */
  async function bidi(chat: ChatClient): Promise<void> {
    const before = fake.received.filter((r) => r.method === 'Converse').length;
    const input = feed<PromptShape>();
    const replies = chat.converse(input.iterable)[Symbol.asyncIterator]();
    input.push({ text: 'one' });
    // The request stream is still open: a reply now proves responses flow while it is.
    expect((await replies.next()).value).toMatchObject({ text: 'echo: one', count: 1 });
    input.push({ text: 'two' });
    expect((await replies.next()).value).toMatchObject({ text: 'echo: two', count: 2 });
    input.push({ text: `deploy with ${githubToken()}` });
    const err = await replies.next().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.PermissionDenied);
    input.end();
    expect(fake.received.filter((r) => r.method === 'Converse').slice(before).map((r) => r.text)).toEqual(['one', 'two']);
  }

  it('Connect bidi through the gateway: full duplex; a secret in the third message is permission_denied, nothing of it forwarded', async () => {
    await bidi(connectClient(rpcGw));
    const line = await rpcGw.auditWhere((r) => r.path === '/cursor/aigate.test.Chat/Converse' && r.decision === 'block');
    expect(line).toMatchObject({ protocol: 'h2', reason: 'sensitive_content' });
  });

  it('Connect bidi through an intercepted forward-mode tunnel, h2 both sides', async () => {
    const raw = await new Promise<Socket>((resolve, reject) => {
      const req = httpRequest(`http://127.0.0.1:${rpcGw.proxy.addresses.forward!.port}`, { method: 'CONNECT', path: 'api.cursor.sh:443' });
      req.once('connect', (res, socket) => (res.statusCode === 200 ? resolve(socket) : reject(new Error(`CONNECT ${res.statusCode}`))));
      req.once('error', reject);
      req.end();
    });
    const transport = createConnectTransport({
      baseUrl: 'https://api.cursor.sh',
      httpVersion: '2',
      nodeOptions: { createConnection: () => tlsConnect({ socket: raw, servername: 'api.cursor.sh', ca: rpcGw.caPem, ALPNProtocols: ['h2'] }) },
    });
    await bidi(createClient(ChatService, transport) as unknown as ChatClient);
    const line = await rpcGw.auditWhere((r) => r.mode === 'forward' && r.path === '/aigate.test.Chat/Converse' && r.decision === 'block');
    expect(line.protocol).toBe('h2');
  });
});

describe('HTTP/2 abuse costs bounded work (each attack on its own connection; another client stays served)', () => {
  const port = () => Number(new URL(gw.gatewayUrl).port);

  /** Another client, on its own connection, still gets its answer. */
  async function stillServed(): Promise<void> {
    const session = await h2Gateway();
    try {
      const answer = await h2Request(session, { ':method': 'POST', ':path': '/openai/v1/chat/completions', 'content-type': 'application/json' }, chat('still here'));
      expect(answer.headers[':status']).toBe(200);
    } finally {
      session.close();
    }
  }

  it('streams past SETTINGS_MAX_CONCURRENT_STREAMS (128) are refused; at most 128 flows run on one connection', async () => {
    const attacker = await rawH2(port(), gw.caPem);
    await attacker.waitFor((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0);
    // 300 uploads that never send their body: each would hold a flow until timeouts.idle.
    const block = requestBlock('POST', '/openai/v1/streams-attack', [literal('content-type', 'application/json')]);
    for (let i = 0; i < 300; i++) attacker.write(frame(FRAME.HEADERS, FLAG.END_HEADERS, 1 + 2 * i, block));
    // Refused streams (REFUSED_STREAM) or the connection ended (GOAWAY): either way a bounded answer.
    await attacker.waitFor((f) => f.type === FRAME.RST_STREAM || f.type === FRAME.GOAWAY);
    await stillServed();
    attacker.socket.destroy();
    await attacker.closed;
    // Every flow that started is audited when its stream ends: at most the advertised limit.
    await new Promise<void>((resolve) => {
      const check = () => (gw.audit.filter((r) => r.path === '/openai/v1/streams-attack').length > 0 ? resolve() : setTimeout(check, 20));
      check();
    });
    const started = gw.audit.filter((r) => r.path === '/openai/v1/streams-attack');
    expect(started.length).toBeLessThanOrEqual(128);
    for (const r of started) expect(r).toMatchObject({ protocol: 'h2', status: 499, aborted: true });
  });

  it('a header list over 16 KiB is refused without a flow; the connection and others go on', async () => {
    const attacker = await rawH2(port(), gw.caPem);
    const big = requestBlock('GET', '/openai/v1/big-headers', [literal('x-big', 'a'.repeat(40 * 1024))]);
    // HEADERS + CONTINUATION, each within the 16 KiB default frame size.
    const parts = [big.subarray(0, 16_000), big.subarray(16_000, 32_000), big.subarray(32_000)];
    attacker.write(frame(FRAME.HEADERS, FLAG.END_STREAM, 1, parts[0]!));
    attacker.write(frame(FRAME.CONTINUATION, 0, 1, parts[1]!));
    attacker.write(frame(FRAME.CONTINUATION, FLAG.END_HEADERS, 1, parts[2]!));
    const answer = await attacker.waitFor((f) => f.stream === 1 || f.type === FRAME.GOAWAY);
    // No 2xx: a reset, a GOAWAY or a 431, never a request upstream.
    if (answer.type === FRAME.HEADERS) expect(answer.payload[0]).not.toBe(0x88); // :status 200 (static index 8)
    await stillServed();
    attacker.socket.destroy();
    expect(gw.audit.some((r) => r.path === '/openai/v1/big-headers' && r.status === 200)).toBe(false);
    expect(vendors.requests.some((r) => r.path.includes('big-headers'))).toBe(false);
  });

  it('a CONTINUATION flood (one header block that never ends) gets GOAWAY long before the flood is sent', async () => {
    const attacker = await rawH2(port(), gw.caPem);
    attacker.write(frame(FRAME.HEADERS, 0, 1, requestBlock('GET', '/openai/v1/continuation')));
    const chunk = frame(FRAME.CONTINUATION, 0, 1, literal('x-flood', 'b'.repeat(16_000)));
    const total = 4096; // 64 MiB if all of it were taken
    let sent = 0;
    let refused = false;
    const goaway = attacker.waitFor((f) => f.type === FRAME.GOAWAY).then(() => (refused = true));
    void attacker.closed.then(() => (refused = true));
    while (sent < total && !refused) {
      sent++;
      if (!attacker.write(chunk)) await new Promise<void>((r) => attacker.socket.once('drain', r).once('close', r));
    }
    await goaway;
    expect(sent).toBeLessThan(total);
    await stillServed();
    attacker.socket.destroy();
    expect(gw.audit.some((r) => r.path === '/openai/v1/continuation')).toBe(false);
  });

  it('rapid reset (CVE-2023-44487): thousands of HEADERS+RST_STREAM pairs end in GOAWAY or cost one short flow each', async () => {
    const attacker = await rawH2(port(), gw.caPem);
    await attacker.waitFor((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0);
    const block = requestBlock('GET', '/openai/v1/rapid-reset');
    const cancel = Buffer.alloc(4);
    cancel.writeUInt32BE(0x8); // CANCEL
    const pairs = 5000;
    let batch: Buffer[] = [];
    // Once the server has said GOAWAY it stops reading: waiting for 'drain' then would never end.
    let goaway = false;
    void attacker.waitFor((f) => f.type === FRAME.GOAWAY).then(() => (goaway = true), () => undefined);
    for (let i = 0; i < pairs && !goaway; i++) {
      const id = 1 + 2 * i;
      batch.push(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, block), frame(FRAME.RST_STREAM, 0, id, cancel));
      if (batch.length >= 200) {
        if (!attacker.write(Buffer.concat(batch))) {
          await Promise.race([
            new Promise<void>((r) => attacker.socket.once('drain', r).once('close', r)),
            attacker.waitFor((f) => f.type === FRAME.GOAWAY).then(() => undefined, () => undefined),
          ]);
        }
        batch = [];
      }
    }
    if (!goaway && batch.length > 0) attacker.write(Buffer.concat(batch));
    await stillServed();
    attacker.socket.destroy();
    await attacker.closed;
    const lines = () => gw.audit.filter((r) => r.path === '/openai/v1/rapid-reset');
    expect(lines().length).toBeLessThanOrEqual(pairs);
    for (const r of lines()) expect(r.protocol).toBe('h2');
    // nghttp2's reset-rate limit (and Node's guard) end the connection well before the flood does.
    expect(attacker.frames.some((f) => f.type === FRAME.GOAWAY)).toBe(true);
    expect(lines().length).toBeLessThan(pairs);
    const upstreamHits = vendors.requests.filter((r) => r.path.includes('rapid-reset')).length;
    expect(upstreamHits).toBeLessThan(pairs);
  });
});

describe('HTTP/2 connections in the connection registry', () => {
  it('limits.connectionsPerClient counts h2 connections (the one over the cap is closed), streams on one connection are not connections', async () => {
    const capped = await startTestProxy(vendors, (raw) => {
      raw['limits'] = { connectionsPerClient: 1 };
    });
    try {
      const first = await new Promise<ClientHttp2Session>((resolve, reject) => {
        const s = h2connect(capped.gatewayUrl, { ca: capped.caPem });
        s.once('connect', () => resolve(s));
        s.once('error', reject);
      });
      // Many streams on the one connection: all served.
      const answers = await Promise.all(
        Array.from({ length: 4 }, () => h2Request(first, { ':method': 'POST', ':path': '/openai/v1/chat/completions', 'content-type': 'application/json' }, chat('capped'))),
      );
      expect(answers.map((a) => a.headers[':status'])).toEqual([200, 200, 200, 200]);
      // A second connection from the same address is over the cap: closed without an answer.
      const second = h2connect(capped.gatewayUrl, { ca: capped.caPem });
      second.on('error', () => undefined);
      await new Promise((resolve) => second.once('close', resolve));
      expect(second.connecting || second.destroyed).toBe(true);
      const refused = await capped.proxy.metrics.registry.getSingleMetric('aigate_connections_refused_total')?.get();
      expect(refused?.values.find((v) => v.labels['listener'] === 'gateway')?.value).toBe(1);
      first.close();
    } finally {
      await capped.stop();
    }
  });
});

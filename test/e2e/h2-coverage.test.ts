// HTTP/2 acceptance points shown here with real clients on their own: the rate limit and
// aigate_requests_total per stream, a gRPC refusal to a real gRPC client, undici's ProxyAgent with
// allowH2 inside an intercepted tunnel, and an upstream dying mid-response (the client's stream is
// reset, never ended cleanly). test/e2e/h2.test.ts has the rest of HTTP/2.
import { constants, type IncomingHttpHeaders } from 'node:http2';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChatService, startFakeConnect, type FakeConnect, type PromptShape } from '../support/connect.js';
import { metricValue } from '../support/metrics.js';
import { startTestProxy, startVendors, testPki, type TestProxy } from '../support/proxy.js';
import { h2Request, openH2 } from '../support/h2-client.js';
import { githubToken } from '../support/secrets.js';
import { FLAG, FRAME, frame, literal, rawH2, requestBlock } from '../support/h2-frames.js';
import type { FakeVendors } from '../support/vendors.js';

let vendors: FakeVendors;
let fake: FakeConnect;
let gw: TestProxy;

beforeAll(async () => {
  vendors = await startVendors();
  fake = await startFakeConnect(testPki().vendorCerts['api.cursor.sh']!, { http2: true });
  gw = await startTestProxy(vendors, (raw) => {
    (raw['connectTo'] as Record<string, string>)['api.cursor.sh:443'] = `127.0.0.1:${fake.port}`;
    (raw['listen'] as Record<string, unknown>)['forward'] = { host: '127.0.0.1', port: 0 };
    raw['egress'] = { allow: [{ host: 'api.githubcopilot.com', ports: [443], inspect: true }] };
    // Its own bucket, refilled at 0.001/s: the counts during the test are exact.
    (raw['routes'] as Array<Record<string, unknown>>).push({
      name: 'limited',
      prefix: '/limited/',
      upstream: 'https://api.githubcopilot.com',
      rateLimit: { rate: 0.001, burst: 2 },
    });
  });
});
afterAll(async () => {
  await gw?.stop();
  await fake?.close();
  await vendors?.close();
});

const h2Session = () => openH2(gw.gatewayUrl, gw.caPem);

const chat = (text: string) => JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: text }] });
const POST_CHAT = { ':method': 'POST', ':path': '/openai/v1/chat/completions', 'content-type': 'application/json' };

describe('rate limit and metrics per HTTP/2 stream', () => {
  it('a stream over the limit gets 429 with the JSON body, Retry-After and RateLimit-*; its line says protocol h2', async () => {
    const session = await h2Session();
    try {
      const get = () => h2Request(session, { ':method': 'GET', ':path': '/limited/echo' });
      // One after the other on the one connection: the bucket holds two.
      const passed = [await get(), await get()];
      expect(passed.map((a) => a.headers[':status'])).toEqual([200, 200]);
      expect(passed[0]!.headers['ratelimit-limit']).toBe('2');
      expect(passed[1]!.headers['ratelimit-remaining']).toBe('0');
      const before = vendors.requests.length;

      const refused = await get();
      expect(refused.headers[':status']).toBe(429);
      expect(refused.headers['content-type']).toBe('application/json');
      expect(JSON.parse(refused.body)).toMatchObject({ type: 'error', error: { type: 'rate_limited', code: 'rate_limited' } });
      const retryAfter = Number(refused.headers['retry-after']);
      expect(Number.isInteger(retryAfter)).toBe(true);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(refused.headers['ratelimit-limit']).toBe('2');
      expect(refused.headers['ratelimit-remaining']).toBe('0');
      expect(Number(refused.headers['ratelimit-reset'])).toBeGreaterThanOrEqual(1);
      expect(vendors.requests.length).toBe(before);
      const line = await gw.auditWhere((r) => r.id === refused.headers['x-aigate-request-id']);
      expect(line).toMatchObject({ protocol: 'h2', status: 429, decision: 'rate_limited', reason: 'rate_limited', route: 'limited' });
      // A refusal is one stream's answer: the connection goes on serving other routes.
      expect((await h2Request(session, POST_CHAT, chat('after 429'))).headers[':status']).toBe(200);
    } finally {
      session.close();
    }
  });

  it('aigate_requests_total counts each stream of one connection, by decision and status', async () => {
    const allowed = { route: 'openai', decision: 'allow', status: '200' };
    const blocked = { route: 'openai', decision: 'block', status: '403' };
    const allowedBefore = await metricValue(gw.proxy.metrics, 'aigate_requests_total', allowed);
    const blockedBefore = await metricValue(gw.proxy.metrics, 'aigate_requests_total', blocked);
    const session = await h2Session();
    try {
      const answers = await Promise.all([
        ...Array.from({ length: 6 }, (_, i) => h2Request(session, POST_CHAT, chat(`counted ${i}`))),
        h2Request(session, POST_CHAT, chat(`my token is ${githubToken()}`)),
      ]);
      expect(answers.map((a) => a.headers[':status'])).toEqual([200, 200, 200, 200, 200, 200, 403]);
      // Counted when each stream's line is written.
      for (const a of answers) expect((await gw.auditWhere((r) => r.id === a.headers['x-aigate-request-id'])).protocol).toBe('h2');
    } finally {
      session.close();
    }
    expect(await metricValue(gw.proxy.metrics, 'aigate_requests_total', allowed)).toBe(allowedBefore + 6);
    expect(await metricValue(gw.proxy.metrics, 'aigate_requests_total', blocked)).toBe(blockedBefore + 1);
  });
});

/** The client's unary method as the test service defines it (built at run time, so not typed). */
interface ChatClient {
  say(p: PromptShape): Promise<{ text: string }>;
}

describe('gRPC over HTTP/2 to the gateway', () => {
  it('a real gRPC client sending a secret gets permission_denied (7) naming the rule; nothing of the message is forwarded', async () => {
    // connect-node's gRPC transport has no httpVersion option: it speaks HTTP/2 only.
    const grpc = createClient(ChatService, createGrpcTransport({ baseUrl: `${gw.gatewayUrl}/cursor`, nodeOptions: { ca: gw.caPem } })) as unknown as ChatClient;
    // The same client and path are served when clean: the refusal below is about the secret.
    expect((await grpc.say({ text: 'clean over grpc' })).text).toBe('echo: clean over grpc');
    const clean = await gw.auditWhere((r) => r.path === '/cursor/aigate.test.Chat/Say' && r.decision === 'allow');
    expect(clean.protocol).toBe('h2');

    const token = githubToken();
    const before = fake.received.length;
    const err = await grpc.say({ text: `deploy with ${token}` }).then(
      () => null,
      (e: unknown) => ConnectError.from(e),
    );
    expect(err).not.toBeNull();
    expect(err!.code).toBe(Code.PermissionDenied);
    expect(Code.PermissionDenied).toBe(7); // grpc-status 7 on the wire
    expect(err!.rawMessage).toContain('github-pat'); // grpc-message, decoded
    expect(err!.rawMessage).not.toContain(token);
    expect(fake.received.length).toBe(before);
    expect(fake.received.some((r) => r.text.includes(token))).toBe(false);
    const line = await gw.auditWhere((r) => r.path === '/cursor/aigate.test.Chat/Say' && r.decision === 'block');
    expect(line).toMatchObject({ protocol: 'h2', reason: 'sensitive_content', route: 'cursor' });
    expect(line.findings.map((f) => f.rule)).toContain('github-pat');
  });
});

describe('undici ProxyAgent with allowH2 in forward mode', () => {
  it('speaks HTTP/2 inside the intercepted tunnel; a secret gets 403', async () => {
    const agent = new ProxyAgent({
      uri: `http://127.0.0.1:${gw.proxy.addresses.forward!.port}`,
      allowH2: true,
      requestTls: { ca: gw.caPem, allowH2: true },
    });
    try {
      const post = (body: string) =>
        request('https://api.githubcopilot.com/echo', { method: 'POST', dispatcher: agent, headers: { 'content-type': 'application/json' }, body });
      const ok = await post('{"prompt":"undici h2 tunnel"}');
      expect(ok.statusCode).toBe(200);
      expect(await ok.body.json()).toMatchObject({ path: '/echo', body: '{"prompt":"undici h2 tunnel"}' });
      const line = await gw.auditWhere((r) => r.id === ok.headers['x-aigate-request-id']);
      expect(line).toMatchObject({ mode: 'forward', protocol: 'h2', status: 200, decision: 'allow', host: 'api.githubcopilot.com' });

      const token = githubToken();
      const before = vendors.requests.length;
      const blocked = await post(JSON.stringify({ prompt: `use ${token}` }));
      expect(blocked.statusCode).toBe(403);
      expect(((await blocked.body.json()) as { error: { type: string } }).error.type).toBe('sensitive_content');
      expect(vendors.requests.length).toBe(before);
      const refused = await gw.auditWhere((r) => r.id === blocked.headers['x-aigate-request-id']);
      expect(refused).toMatchObject({ mode: 'forward', protocol: 'h2', status: 403, decision: 'block', reason: 'sensitive_content' });
    } finally {
      await agent.close();
    }
  });
});

describe('an upstream that dies mid-response', () => {
  it('resets the client stream (RST_STREAM, not a clean end) and the line records the failure; the connection goes on', async () => {
    const session = await h2Session();
    try {
      const stream = session.request({ ':method': 'GET', ':path': '/copilot/die-mid-body', 'x-test-hold': 'h2-die' }, { endStream: true });
      const chunks: Buffer[] = [];
      let ended = false;
      const firstData = new Promise<void>((resolve) => stream.once('data', () => resolve()));
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => (ended = true));
      stream.on('error', () => undefined); // the reset's error: what it means is read from rstCode
      const closed = new Promise<void>((resolve) => stream.once('close', resolve));
      const headers = await new Promise<IncomingHttpHeaders>((resolve) => stream.once('response', resolve));
      expect(headers[':status']).toBe(200);
      await firstData; // the status and part of the body are out: only a reset can say it failed
      vendors.release('h2-die');
      await closed;

      expect(ended).toBe(false);
      // Sent by aigate (the body carries no length the client could check itself).
      expect(stream.rstCode).toBe(constants.NGHTTP2_INTERNAL_ERROR);
      expect(Buffer.concat(chunks).toString()).toBe('the first part of a body that never ends');
      const line = await gw.auditWhere((r) => r.id === headers['x-aigate-request-id']);
      expect(line).toMatchObject({ protocol: 'h2', status: 200, decision: 'error', reason: 'upstream_unavailable', route: 'copilot' });
      expect(line.error).toEqual(expect.any(String));
      expect(line.error).not.toBe('');

      // One stream was reset, not the connection.
      expect((await h2Request(session, POST_CHAT, chat('after the reset'))).headers[':status']).toBe(200);
    } finally {
      session.close();
    }
  });
});

describe('a refusal while the upload is still arriving', () => {
  // A small inspect.maxBodyBytes, so the body found too large fits in the stream's first flow-control window.
  let small: TestProxy;
  beforeAll(async () => {
    small = await startTestProxy(vendors, (raw) => (raw['inspect'] = { maxBodyBytes: '16kb' }));
  });
  afterAll(() => small?.stop());

  for (const declared of [true, false]) {
    it(`413 for a ${declared ? 'declared' : 'streamed'} body over inspect.maxBodyBytes, then RST_STREAM NO_ERROR (RFC 9113 §8.1): the client is told to stop sending`, async () => {
      const client = await rawH2(small.proxy.addresses.gateway!.port, small.caPem);
      try {
        await client.waitFor((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0);
        const headers = [literal('content-type', 'application/json'), ...(declared ? [literal('content-length', String(1024 * 1024))] : [])];
        client.write(frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, requestBlock('POST', '/openai/v1/chat/completions', headers)));
        // 24 KiB of a body that never ends (within the 64 KiB initial window).
        for (let i = 0; i < 3; i++) client.write(frame(FRAME.DATA, 0, 1, Buffer.alloc(8 * 1024, 0x20)));
        const reset = await client.waitFor((f) => f.type === FRAME.RST_STREAM && f.stream === 1);
        expect(reset.payload.readUInt32BE(0)).toBe(0); // NO_ERROR
        // The answer came first, whole: a 413 with its JSON body and END_STREAM.
        const answer = client.frames.filter((f) => f.stream === 1 && (f.type === FRAME.HEADERS || f.type === FRAME.DATA));
        expect(answer[0]!.type).toBe(FRAME.HEADERS);
        expect(answer.at(-1)!.flags & FLAG.END_STREAM).toBe(FLAG.END_STREAM);
        expect(Buffer.concat(answer.filter((f) => f.type === FRAME.DATA).map((f) => f.payload)).toString()).toContain('body_too_large');
        expect(client.frames.indexOf(reset)).toBeGreaterThan(client.frames.indexOf(answer.at(-1)!));
        expect(client.frames.some((f) => f.type === FRAME.GOAWAY)).toBe(false);
      } finally {
        client.socket.destroy();
      }
    });
  }
});

describe('an upload the client cancels half-way', () => {
  for (const declared of [true, false]) {
    it(`a ${declared ? 'declared' : 'streamed'} body reset with CANCEL: one line (499, aborted, no body bytes: as over HTTP/1.1), nothing forwarded`, async () => {
      const before = vendors.requests.length;
      const path = `/openai/v1/cancelled-${declared ? 'declared' : 'streamed'}`;
      const client = await rawH2(gw.proxy.addresses.gateway!.port, gw.caPem);
      try {
        await client.waitFor((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0);
        const headers = [literal('content-type', 'application/json'), ...(declared ? [literal('content-length', '100000')] : [])];
        client.write(frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, requestBlock('POST', path, headers)));
        client.write(frame(FRAME.DATA, 0, 1, Buffer.from('{"model":"gpt-4o","messages":[{"role":"user","content":"half of a prompt')));
        const cancel = Buffer.alloc(4);
        cancel.writeUInt32BE(constants.NGHTTP2_CANCEL);
        client.write(frame(FRAME.RST_STREAM, 0, 1, cancel));
        const line = await gw.auditWhere((r) => r.path === path);
        expect(line).toMatchObject({ protocol: 'h2', status: 499, aborted: true, bytesIn: 0 });
        // The session goes on: a request after it on the same connection is served.
        client.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 3, requestBlock('GET', '/openai/v1/models?after-cancel', [])));
        const answer = await client.waitFor((f) => f.type === FRAME.HEADERS && f.stream === 3);
        expect(answer.stream).toBe(3);
        expect(vendors.requests.filter((r) => r.path.includes('cancelled')).length).toBe(0);
        expect(vendors.requests.length).toBe(before + 1);
      } finally {
        client.socket.destroy();
      }
    });
  }
});

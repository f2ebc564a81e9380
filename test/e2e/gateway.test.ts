// Gateway mode end to end: real TLS, the official vendor clients, SSE timing, WebSockets.
import type { IncomingHttpHeaders } from 'node:http';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { fetch as undiciFetch, request } from 'undici';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsRequest } from '../support/http.js';
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

const clientFetch = (url: string | URL | Request, init?: RequestInit) =>
  undiciFetch(url as string, { ...(init as object), dispatcher: gw.client } as never) as unknown as Promise<Response>;

function lastRequest(pathEnd: string) {
  const found = [...vendors.requests].reverse().find((r) => r.path.endsWith(pathEnd));
  if (!found) throw new Error(`no upstream request ending in ${pathEnd}`);
  return found;
}

/** Opens a WebSocket that the upstream refuses; resolves with the response the client got. */
function refusedUpgrade(path: string) {
  const ws = new WebSocket(`${gw.gatewayUrl.replace('https', 'wss')}${path}`, { ca: gw.caPem });
  return new Promise<{ status: number; headers: IncomingHttpHeaders; body: string }>((resolve, reject) => {
    ws.on('open', () => reject(new Error('the upgrade succeeded')));
    ws.on('error', reject);
    ws.on('unexpected-response', (req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      // 'close', not 'end': a body cut short still resolves with what arrived.
      res.on('close', () => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() });
      });
      res.on('error', () => {});
    });
  });
}

describe('official clients through the gateway', () => {
  it('openai: chat completion, non-streaming', async () => {
    const openai = new OpenAI({ apiKey: 'sk-test', baseURL: `${gw.gatewayUrl}/openai`, fetch: clientFetch });
    const completion = await openai.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi there' }] });
    expect(completion.choices[0]?.message.content).toBe('echo: hi there');
    const seen = lastRequest('/v1/chat/completions');
    expect(seen.sni).toBe('api.openai.com');
    expect(seen.host).toBe('api.openai.com');
    expect(seen.path).toBe('/v1/chat/completions');
    expect(seen.headers['x-forwarded-proto']).toBe('https');
    expect(seen.headers['x-real-ip']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['authorization']).toBe('Bearer sk-test');
  });

  it('openai: streaming completion arrives chunk by chunk and ends at [DONE]', async () => {
    const openai = new OpenAI({ apiKey: 'sk-test', baseURL: `${gw.gatewayUrl}/openai`, fetch: clientFetch });
    const stream = await openai.chat.completions.create({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'stream' }] });
    const parts: string[] = [];
    for await (const chunk of stream) parts.push(chunk.choices[0]?.delta.content ?? '');
    expect(parts.join('')).toBe('Hello from the fake vendor.');
  });

  it('anthropic: message, non-streaming and streaming', async () => {
    const anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: `${gw.gatewayUrl}/claude`, fetch: clientFetch });
    const msg = await anthropic.messages.create({ model: 'claude-test-model', max_tokens: 64, messages: [{ role: 'user', content: 'hello claude' }] });
    expect(msg.content[0]).toMatchObject({ type: 'text', text: 'echo: hello claude' });
    expect(lastRequest('/v1/messages').sni).toBe('api.anthropic.com');

    const stream = anthropic.messages.stream({ model: 'claude-test-model', max_tokens: 64, messages: [{ role: 'user', content: 'x' }] });
    const final = await stream.finalMessage();
    expect(final.content[0]).toMatchObject({ type: 'text', text: 'Hello from the fake vendor.' });
    expect(final.stop_reason).toBe('end_turn');
  });

  it('copilot-style completions stream through /copilot/', async () => {
    const res = await request(`${gw.gatewayUrl}/copilot/v1/engines/copilot-codex/completions`, {
      method: 'POST',
      dispatcher: gw.client,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'def add(a, b):', stream: true }),
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/event-stream');
    const text = await res.body.text();
    expect(text.trim().endsWith('data: [DONE]')).toBe(true);
    expect(lastRequest('/completions').sni).toBe('api.githubcopilot.com');
  });
});

describe('streaming', () => {
  it('the first SSE event reaches the client before the upstream sends the last', async () => {
    const res = await request(`${gw.gatewayUrl}/openai/chat/completions`, {
      method: 'POST',
      dispatcher: gw.client,
      headers: { 'content-type': 'application/json', 'x-test-hold': 'first-event' },
      body: JSON.stringify({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'x' }] }),
    });
    const reader = res.body[Symbol.asyncIterator]();
    // The upstream is paused after its first event until released below: if the proxy buffered
    // anything, this read would never complete and the test would time out.
    const first = await reader.next();
    expect(String(first.value)).toContain('"role":"assistant"');
    vendors.release('first-event');
    let rest = '';
    for (let r = await reader.next(); !r.done; r = await reader.next()) rest += String(r.value);
    expect(rest).toContain('data: [DONE]');
  });

  it('proxies a WebSocket upgrade on a route to the same upstream', async () => {
    const ws = new WebSocket(`${gw.gatewayUrl.replace('https', 'wss')}/copilot/ws`, { ca: gw.caPem });
    const reply = await new Promise<string>((resolve, reject) => {
      ws.on('open', () => ws.send('ping'));
      ws.on('message', (data) => resolve(data.toString()));
      ws.on('error', reject);
    });
    expect(reply).toBe('echo: ping');
    ws.close();
    const record = await gw.auditWhere((r) => r.path === '/copilot/ws');
    expect(record).toMatchObject({ status: 101, route: 'copilot', decision: 'allow' });
    expect(lastRequest('/ws').sni).toBe('api.githubcopilot.com');
  });

  it('relays an upstream refusal of a WebSocket upgrade as the vendor sent it', async () => {
    const res = await refusedUpgrade('/copilot/ws-unauthorized');
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="fake", error="invalid_token"');
    expect(res.headers['content-type']).toBe('application/json');
    expect(JSON.parse(res.body)).toEqual({ error: { type: 'authentication_error', message: 'token expired' } });
    const id = res.headers['x-aigate-request-id'] as string;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const record = await gw.auditWhere((r) => r.id === id);
    expect(record).toMatchObject({ status: 401, route: 'copilot', decision: 'allow', path: '/copilot/ws-unauthorized' });
    expect(gw.audit.filter((r) => r.id === id)).toHaveLength(1);
  });

  it('relays at most 64 KiB of an upgrade refusal body', async () => {
    const res = await refusedUpgrade('/copilot/ws-forbidden-big');
    expect(res.status).toBe(403);
    expect(res.body.length).toBe(64 * 1024); // of 1 MiB: the rest was never read into aigate
    const record = await gw.auditWhere((r) => r.id === res.headers['x-aigate-request-id']);
    expect(record).toMatchObject({ status: 403, decision: 'allow', bytesOut: 64 * 1024 });
  });

  it('passes large responses with backpressure and the exact length', async () => {
    const res = await request(`${gw.gatewayUrl}/copilot/big?bytes=5000000`, { dispatcher: gw.client });
    const body = Buffer.from(await res.body.arrayBuffer());
    expect(body.length).toBe(5_000_000);
    const record = await gw.auditWhere((r) => r.path === '/copilot/big');
    expect(record.bytesOut).toBe(5_000_000);
  });
});

describe('headers', () => {
  it('drops hop-by-hop headers, keeps end-to-end ones both ways, and rewrites Host', async () => {
    // node:https, not undici: undici refuses to send hop-by-hop headers at all.
    const { status, headers, body } = await httpsRequest(`${gw.gatewayUrl}/copilot/echo?x=1&y=%2F`, {
      method: 'POST',
      ca: gw.caPem,
      headers: {
        host: 'evil.example.com',
        'x-custom': 'kept',
        'keep-alive': 'timeout=5',
        'x-hop': 'dropped',
        connection: 'keep-alive, x-hop',
        'x-forwarded-for': '6.6.6.6',
        'proxy-authorization': 'Basic c2VjcmV0',
        te: 'trailers',
        'content-type': 'text/plain',
      },
      body: 'hello',
    });
    expect(status).toBe(200);
    const echoed = JSON.parse(body) as { path: string; headers: Record<string, string>; body: string };
    expect(echoed.path).toBe('/echo?x=1&y=%2F');
    expect(echoed.body).toBe('hello');
    expect(echoed.headers['host']).toBe('api.githubcopilot.com');
    expect(echoed.headers['x-custom']).toBe('kept');
    expect(echoed.headers['x-hop']).toBeUndefined();
    expect(echoed.headers['keep-alive']).toBeUndefined();
    expect(echoed.headers['proxy-authorization']).toBeUndefined();
    expect(echoed.headers['te']).toBeUndefined();
    expect(echoed.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(headers['x-aigate-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('audit', () => {
  it('writes exactly one line per request with every SPEC field', async () => {
    const res = await request(`${gw.gatewayUrl}/claude/v1/messages?beta=true`, {
      method: 'POST',
      dispatcher: gw.client,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', max_tokens: 1, messages: [{ role: 'user', content: 'audit me' }] }),
    });
    const id = res.headers['x-aigate-request-id'] as string;
    const text = await res.body.text();
    const record = await gw.auditWhere((r) => r.id === id);
    expect(record).toMatchObject({
      event: 'request',
      mode: 'gateway',
      client: { ip: '127.0.0.1', user: null },
      route: 'claude',
      method: 'POST',
      host: 'api.anthropic.com',
      path: '/claude/v1/messages',
      status: 200,
      decision: 'allow',
      reason: null,
      bytesOut: Buffer.byteLength(text),
      findings: [],
    });
    expect(record.bytesIn).toBeGreaterThan(0);
    expect(record.durationMs).toBeGreaterThan(0);
    expect(record.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(gw.audit.filter((r) => r.id === id)).toHaveLength(1);
  });
});

// Other readings of a body through the running proxy (issue #19 items 1-3): JSON in UTF-16/UTF-32,
// a multipart part in base64, a token in a gzip header. What the fake vendor received is the proof:
// nothing for a block, the redacted body in the client's own encoding for a redact.
import { gzipSync } from 'node:zlib';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestProxy, startVendors, type TestProxy } from '../support/proxy.js';
import type { FakeVendors } from '../support/vendors.js';
import { githubToken } from '../support/secrets.js';

function utf32be(text: string): Buffer {
  const cps = [...text].map((c) => c.codePointAt(0)!);
  const out = Buffer.alloc(cps.length * 4);
  cps.forEach((cp, i) => out.writeUInt32BE(cp, i * 4));
  return out;
}

let vendors: FakeVendors;
let gw: TestProxy;
const token = githubToken();
const chat = (content: string) => JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content }] });

beforeAll(async () => {
  vendors = await startVendors();
  gw = await startTestProxy(vendors, (raw) => {
    const routes = raw['routes'] as Array<Record<string, unknown>>;
    routes.find((r) => r['name'] === 'cursor')!['action'] = 'redact';
    routes.find((r) => r['name'] === 'claude')!['action'] = 'monitor';
    raw['inspect'] = { action: 'block', maxBodyBytes: '1mb' };
    (raw['listen'] as Record<string, unknown>)['forward'] = { host: '127.0.0.1', port: 0 };
    raw['egress'] = { allow: [{ host: 'api.githubcopilot.com', ports: [443], inspect: true }] };
  });
});
afterAll(async () => {
  await gw?.stop();
  await vendors?.close();
});

async function post(path: string, body: Buffer, headers: Record<string, string>) {
  const res = await request(`${gw.gatewayUrl}${path}`, { method: 'POST', dispatcher: gw.client, headers, body });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

describe('gateway', () => {
  it('JSON in UTF-16LE without a byte-order mark: blocked, nothing forwarded', async () => {
    const before = vendors.requests.length;
    const res = await post('/copilot/chat/completions', Buffer.from(chat(`token ${token}`), 'utf16le'), { 'content-type': 'application/json' });
    expect(res.status).toBe(403);
    expect(res.text).toContain('github-pat');
    expect(res.text).not.toContain(token);
    expect(vendors.requests.length).toBe(before);
    const record = await gw.auditWhere((r) => r.id === res.headers['x-aigate-request-id']);
    expect(record).toMatchObject({ decision: 'block', status: 403 });
  });

  it('gzip-wrapped UTF-32BE JSON with a mark, under redact: the vendor receives it redacted, in UTF-32BE, identity-encoded', async () => {
    const text = `\ufeff${chat(`token ${token} ✓`)}`;
    const res = await post('/cursor/echo', gzipSync(utf32be(text)), {
      'content-type': 'application/json; charset=utf-32',
      'content-encoding': 'gzip',
    });
    expect(res.status).toBe(200);
    const seen = vendors.requests[vendors.requests.length - 1]!;
    expect(seen.headers['content-encoding']).toBeUndefined();
    expect(Number(seen.headers['content-length'])).toBe(seen.body.length);
    expect(seen.headers['content-type']).toBe('application/json; charset=utf-32');
    expect(seen.body).toEqual(utf32be(`\ufeff${chat('token [REDACTED:github-pat] ✓')}`));
  });

  it('a clean UTF-16 body is forwarded byte for byte', async () => {
    const body = Buffer.from(chat('hello ✓'), 'utf16le');
    const res = await post('/claude/echo', body, { 'content-type': 'application/json' });
    expect(res.status).toBe(200);
    expect(vendors.requests[vendors.requests.length - 1]!.body).toEqual(body);
  });

  it('a body that looks like UTF-16 but is not valid in it: 400, nothing forwarded', async () => {
    const before = vendors.requests.length;
    const odd = Buffer.from(chat(`token ${token}`), 'utf16le').subarray(0, -1);
    const res = await post('/claude/chat/completions', odd, { 'content-type': 'application/json' });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text)).toMatchObject({ error: { type: 'bad_request' } });
    expect(vendors.requests.length).toBe(before);
  });

  it('a multipart part in base64: blocked even under redact', async () => {
    const b = 'aigateB0undary';
    const body = Buffer.from(
      `--${b}\r\nContent-Disposition: form-data; name="file"; filename="notes.txt"\r\nContent-Transfer-Encoding: base64\r\n\r\n` +
        `${Buffer.from(`token ${token}\n`).toString('base64')}\r\n--${b}--\r\n`,
    );
    const before = vendors.requests.length;
    const res = await post('/cursor/echo', body, { 'content-type': `multipart/form-data; boundary=${b}` });
    expect(res.status).toBe(403);
    expect(vendors.requests.length).toBe(before);
  });

  it('a token in a gzip FNAME: under monitor audited; under redact the vendor receives the decoded body without it', async () => {
    const clean = Buffer.from(chat('refactor this'));
    const plain = gzipSync(clean);
    const header = Buffer.from(plain.subarray(0, 10));
    header[3] = 8; // FNAME
    const body = Buffer.concat([header, Buffer.from(`${token}\0`, 'latin1'), plain.subarray(10)]);
    const headers = { 'content-type': 'application/json', 'content-encoding': 'gzip' };

    const monitored = await post('/claude/echo', body, headers);
    expect(monitored.status).toBe(200);
    const record = await gw.auditWhere((r) => r.id === monitored.headers['x-aigate-request-id']);
    expect(record.decision).toBe('allow'); // as for any monitored request: forwarded, findings audited
    expect(record.findings.map((f) => [f.rule, f.action])).toEqual([['github-pat', 'monitor']]);
    expect(vendors.requests[vendors.requests.length - 1]!.body).toEqual(body);

    const redacted = await post('/cursor/echo', body, headers);
    expect(redacted.status).toBe(200);
    const seen = vendors.requests[vendors.requests.length - 1]!;
    expect(seen.headers['content-encoding']).toBeUndefined();
    expect(seen.body).toEqual(clean);
  });
});

describe('forward mode (an intercepted tunnel)', () => {
  it.each([
    ['UTF-16BE JSON without a mark', () => Buffer.from(chat(`token ${token}`), 'utf16le').swap16(), {}],
    ['a token in a gzip FCOMMENT', () => {
      const plain = gzipSync(Buffer.from(chat('hi')));
      const header = Buffer.from(plain.subarray(0, 10));
      header[3] = 16; // FCOMMENT
      return Buffer.concat([header, Buffer.from(`${token}\0`, 'latin1'), plain.subarray(10)]);
    }, { 'content-encoding': 'gzip' }],
  ])('%s is blocked, nothing forwarded', async (_name, body, extra) => {
    const agent = new ProxyAgent({ uri: `http://127.0.0.1:${gw.proxy.addresses.forward!.port}`, requestTls: { ca: gw.caPem } });
    const before = vendors.requests.length;
    const res = await request('https://api.githubcopilot.com/chat/completions', {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json', ...extra },
      body: body(),
    });
    expect(res.statusCode).toBe(403);
    expect(((await res.body.json()) as { error: { type: string } }).error.type).toBe('sensitive_content');
    expect(vendors.requests.length).toBe(before);
    await agent.close();
  });
});

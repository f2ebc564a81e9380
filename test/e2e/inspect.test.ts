// Inspection through the proxy: block, redact and monitor; encoded bodies and bombs; per-route
// overrides; the same rules inside an intercepted forward-mode tunnel. The secret never appears
// in a response, the audit file or the operational log.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestProxy, startVendors, type TestProxy } from '../support/proxy.js';
import type { FakeVendors } from '../support/vendors.js';
import { githubToken } from '../support/secrets.js';

/** A GitHub classic token with a valid checksum, made at run time (never a literal in the repo). */
let vendors: FakeVendors;
let gw: TestProxy;
const token = githubToken();
const password = `Pw-${randomBytes(9).toString('base64url')}!`;

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

const code = () => `import os\n\nGITHUB = "${token}"\n\ndef connect():\n    password = "${password}"\n    return os.environ["HOME"]\n`;
const chatBody = () =>
  JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'system', content: 'You are helpful.' }, { role: 'user', content: `Fix this:\n${code()}` }] });

async function post(path: string, body: string | Buffer, headers: Record<string, string> = {}) {
  const res = await request(`${gw.gatewayUrl}${path}`, {
    method: 'POST',
    dispatcher: gw.client,
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

function expectNoSecretsIn(text: string) {
  expect(text).not.toContain(token);
  expect(text).not.toContain(password);
}

describe('block (the default action)', () => {
  it('403 sensitive_content naming rule and line, nothing forwarded, fingerprints audited', async () => {
    const before = vendors.requests.length;
    const res = await post('/copilot/chat/completions', chatBody());
    expect(res.status).toBe(403);
    const body = JSON.parse(res.text) as { type: string; error: { type: string; message: string; code: string } };
    expect(body.error.type).toBe('sensitive_content');
    // the code is line 2.. of the user message: "Fix this:\n" + code → token on line 4, password line 7
    expect(body.error.message).toMatch(/^request blocked: 2 secrets found \(/);
    expect(body.error.message).toMatch(/github-\S+ line 4/);
    expect(body.error.message).toMatch(/generic-password line 7/);
    expectNoSecretsIn(res.text);
    expect(vendors.requests.length).toBe(before);

    const record = await gw.auditWhere((r) => r.id === res.headers['x-aigate-request-id']);
    expect(record).toMatchObject({ status: 403, decision: 'block', reason: 'sensitive_content' });
    expect(record.findings).toHaveLength(2);
    for (const f of record.findings) {
      expect(f.action).toBe('block');
      expect(f.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    }
    expectNoSecretsIn(JSON.stringify(record));
  });

  it('the same secret gets the same fingerprint in different requests', async () => {
    const a = await post('/copilot/x', JSON.stringify({ prompt: `token = "${token}"` }));
    const b = await post('/copilot/y', JSON.stringify({ input: [`const t = '${token}'`] }));
    const ra = await gw.auditWhere((r) => r.id === a.headers['x-aigate-request-id']);
    const rb = await gw.auditWhere((r) => r.id === b.headers['x-aigate-request-id']);
    const fp = (r: typeof ra) => r.findings.find((f) => f.rule.startsWith('github'))!.fingerprint;
    expect(fp(ra)).toBe(fp(rb));
  });

  it('JSON escapes do not hide a secret (\\u0022, \\n)', async () => {
    const escaped = JSON.stringify({ prompt: `password = "${password}"` }).replace(/\\"/g, '\\u0022');
    const res = await post('/copilot/x', escaped);
    expect(res.status).toBe(403);
  });

  it('gzip and br bodies are decoded and inspected', async () => {
    for (const [enc, compress] of [['gzip', gzipSync], ['br', brotliCompressSync]] as const) {
      const res = await post('/copilot/x', compress(Buffer.from(chatBody())), { 'content-encoding': enc });
      expect(res.status, enc).toBe(403);
    }
  });

  it('a compression bomb gets 413 once the decoded size passes maxBodyBytes', async () => {
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x20)); // 64 MiB of spaces, ~64 KiB gzipped
    expect(bomb.length).toBeLessThan(1024 * 1024);
    const res = await post('/copilot/x', bomb, { 'content-encoding': 'gzip', 'content-type': 'text/plain' });
    expect(res.status).toBe(413);
    expect(JSON.parse(res.text)).toMatchObject({ error: { type: 'body_too_large' } });
  });

  it('an undecodable body is refused, never forwarded unscanned', async () => {
    const before = vendors.requests.length;
    const res = await post('/copilot/x', Buffer.from('not gzip at all'), { 'content-encoding': 'gzip' });
    expect(res.status).toBe(400);
    expect(vendors.requests.length).toBe(before);
  });

  it('clean code passes untouched', async () => {
    const clean = JSON.stringify({ messages: [{ role: 'user', content: 'const key = process.env.API_KEY;\npassword = os.environ["DB_PASSWORD"]\n' }] });
    const res = await post('/copilot/echo', clean);
    expect(res.status).toBe(200);
    expect((JSON.parse(res.text) as { body: string }).body).toBe(clean);
  });
});

describe('redact (route override)', () => {
  it('replaces each secret with [REDACTED:<rule>], keeps valid JSON and a correct Content-Length', async () => {
    const res = await post('/cursor/echo', gzipSync(Buffer.from(chatBody())), { 'content-encoding': 'gzip' });
    expect(res.status).toBe(200);
    const seen = vendors.requests[vendors.requests.length - 1]!;
    expect(seen.headers['content-encoding']).toBeUndefined();
    expect(Number(seen.headers['content-length'])).toBe(seen.body.length);
    const forwarded = JSON.parse(seen.body.toString('utf8')) as { messages: Array<{ content: string }> };
    const content = forwarded.messages[1]!.content;
    expect(content).toMatch(/GITHUB = "\[REDACTED:github-[a-z-]+\]"/);
    expect(content).toContain('password = "[REDACTED:generic-password]"');
    expect(content).toContain('os.environ["HOME"]');
    expectNoSecretsIn(seen.body.toString('utf8'));
    const record = await gw.auditWhere((r) => r.id === res.headers['x-aigate-request-id']);
    expect(record).toMatchObject({ decision: 'redact', status: 200 });
    expect(record.findings.map((f) => f.action)).toEqual(['redact', 'redact']);
  });

  it('a secret that shows only once another is redacted blocks the request: nothing forwarded still holding one', async () => {
    // The token's line (40 base64 characters) is read as the first line of the base64 block
    // below it, which then decodes to binary; once the token is replaced, the block decodes to
    // the password. Forwarding the redacted body would send that password.
    const block = Buffer.from(`password = "${password}"\n`).toString('base64').match(/.{1,16}/g)!.join('\n');
    const body = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: `my files:\n${token}\n${block}\nthanks` }] });
    const before = vendors.requests.length;
    const res = await post('/cursor/echo', body);
    expect(res.status).toBe(403);
    expect(JSON.parse(res.text)).toMatchObject({ error: { type: 'sensitive_content', message: expect.stringMatching(/generic-password/) } });
    expect(vendors.requests.length).toBe(before);
    const record = await gw.auditWhere((r) => r.id === res.headers['x-aigate-request-id']);
    expect(record).toMatchObject({ decision: 'block', reason: 'sensitive_content' });
    expect(record.findings.map((f) => [f.rule, f.action])).toEqual([
      ['github-pat', 'redact'],
      ['generic-password', 'block'],
    ]);
  });
});

describe('large bodies (inline when alone, on a scan thread while other requests are open)', () => {
  /** ~400 KiB of harmless code with the secrets near the end: well past the thread threshold. */
  const largeChat = () => {
    const filler = Array.from({ length: 9000 }, (_, i) => `  total += weigh(items[${i}], "row ${i}");`).join('\n');
    return JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: `${filler}\n${code()}` }] });
  };

  async function expectBlockedAndRedacted(body: string) {
    const blocked = await post('/copilot/echo', body);
    expect(blocked.status).toBe(403);
    expect(blocked.text).toContain('line 9003');
    expectNoSecretsIn(blocked.text);

    const redacted = await post('/cursor/echo', body);
    expect(redacted.status).toBe(200);
    const seen = vendors.requests[vendors.requests.length - 1]!;
    expect(Number(seen.headers['content-length'])).toBe(seen.body.length);
    const content = (JSON.parse(seen.body.toString('utf8')) as { messages: Array<{ content: string }> }).messages[0]!.content;
    expect(content).toContain('password = "[REDACTED:generic-password]"');
    expect(content).toContain('row 8999');
    expectNoSecretsIn(seen.body.toString('utf8'));
  }

  /** Runs `fn` while an SSE stream held open upstream keeps another request in flight. */
  async function whileAnotherIsOpen(fn: () => Promise<void>) {
    const stream = request(`${gw.gatewayUrl}/copilot/chat/completions`, {
      method: 'POST',
      dispatcher: gw.client,
      headers: { 'content-type': 'application/json', 'x-test-hold': 'large-body' },
      body: JSON.stringify({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    await vendors.held('large-body');
    try {
      await fn();
    } finally {
      vendors.release('large-body');
    }
    expect((await (await stream).body.text())).toContain('[DONE]');
  }

  it('blocks, naming the line inside the prompt, and redacts exactly as for a small body', async () => {
    const body = largeChat();
    expect(body.length).toBeGreaterThan(256 * 1024);
    await expectBlockedAndRedacted(body);
    await whileAnotherIsOpen(() => expectBlockedAndRedacted(body));
  });

  it('forwards a clean large body byte for byte, scanned inline or on a thread', async () => {
    // Multi-byte characters too: the bytes forwarded are the bytes received, not a re-encoding.
    const filler = Array.from({ length: 9000 }, (_, i) => `  total += weigh(items[${i}], "ligne ${i} — µ±é");`).join('\n');
    const body = Buffer.from(JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: filler }] }));
    expect(body.length).toBeGreaterThan(256 * 1024);
    const forwardsExactly = async () => {
      const res = await post('/copilot/echo', body);
      expect(res.status).toBe(200);
      const seen = vendors.requests[vendors.requests.length - 1]!;
      expect(seen.body.equals(body)).toBe(true);
    };
    await forwardsExactly();
    await whileAnotherIsOpen(forwardsExactly);
  });
});

describe('monitor (route override)', () => {
  it('forwards unchanged and audits the findings', async () => {
    const body = chatBody();
    const res = await post('/claude/echo', body);
    expect(res.status).toBe(200);
    expect(vendors.requests[vendors.requests.length - 1]!.body.toString('utf8')).toBe(body);
    const record = await gw.auditWhere((r) => r.id === res.headers['x-aigate-request-id']);
    expect(record.decision).toBe('allow');
    expect(record.findings.map((f) => f.action)).toEqual(['monitor', 'monitor']);
  });
});

describe('forward mode', () => {
  it('a secret sent through an inspected tunnel is blocked exactly as in gateway mode', async () => {
    const agent = new ProxyAgent({ uri: `http://127.0.0.1:${gw.proxy.addresses.forward!.port}`, requestTls: { ca: gw.caPem } });
    const before = vendors.requests.length;
    const res = await request('https://api.githubcopilot.com/chat/completions', {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json' },
      body: chatBody(),
    });
    expect(res.statusCode).toBe(403);
    const body = (await res.body.json()) as { error: { type: string; message: string } };
    expect(body.error.type).toBe('sensitive_content');
    expect(vendors.requests.length).toBe(before);
    const record = await gw.auditWhere((r) => r.mode === 'forward' && r.decision === 'block');
    expect(record.findings).toHaveLength(2);
    await agent.close();
  });
});

describe('no secret in any log', () => {
  it('the audit file never contains the secret values', async () => {
    await gw.proxy.audit.flush();
    const text = readFileSync(join(gw.dir, 'audit.log'), 'utf8');
    expect(text.length).toBeGreaterThan(0);
    expectNoSecretsIn(text);
  });
});

// Attachments through the proxy with the official clients: a .env attached as an Anthropic
// document (base64 text source) or as an OpenAI file (file_data data URL) or image (image_url data
// URL) is blocked before anything reaches the vendor, or reaches it redacted — still a valid
// attachment of the same shape, decoding to the file without its secrets.
import { randomBytes } from 'node:crypto';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestProxy, startVendors, type TestProxy } from '../support/proxy.js';
import type { FakeVendors, RecordedRequest } from '../support/vendors.js';
import { Rng, githubClassic } from '../corpus/secrets.js';

let vendors: FakeVendors;
let gw: TestProxy;
const token = githubClassic(new Rng(Date.now()));
const password = `Pw-${randomBytes(9).toString('base64url')}`;
/** The .env being attached: the password on line 2, the token on line 4. */
const ENV = `APP_ENV=production\nDB_PASSWORD="${password}"\nDEBUG=false\nGITHUB_TOKEN=${token}\n`;
const REDACTED_ENV = `APP_ENV=production\nDB_PASSWORD="[REDACTED:generic-password]"\nDEBUG=false\nGITHUB_TOKEN=[REDACTED:github-pat]\n`;
const b64 = (s: string) => Buffer.from(s).toString('base64');

beforeAll(async () => {
  vendors = await startVendors();
  gw = await startTestProxy(vendors, (raw) => {
    raw['inspect'] = { action: 'block', maxBodyBytes: '1mb' };
    const routes = raw['routes'] as Array<Record<string, unknown>>;
    routes.push(
      { name: 'claude-redact', prefix: '/claude-redact/', upstream: 'https://api.anthropic.com', action: 'redact' },
      { name: 'openai-redact', prefix: '/openai-redact/', upstream: 'https://api.openai.com/v1', action: 'redact' },
    );
  });
});
afterAll(async () => {
  await gw?.stop();
  await vendors?.close();
});

const clientFetch = (url: string | URL | Request, init?: RequestInit) =>
  undiciFetch(url as string, { ...(init as object), dispatcher: gw.client } as never) as unknown as Promise<Response>;
const anthropic = (prefix: string) => new Anthropic({ apiKey: 'sk-ant-test', baseURL: `${gw.gatewayUrl}${prefix}`, fetch: clientFetch, maxRetries: 0 });
const openai = (prefix: string) => new OpenAI({ apiKey: 'sk-test', baseURL: `${gw.gatewayUrl}${prefix}`, fetch: clientFetch, maxRetries: 0 });

/**
 * `source: {type: "base64", media_type: "text/plain"}`, as clients send it (the SDK's types only
 * list application/pdf for a base64 document, hence the cast).
 */
const textDocument = (data: string) => ({ type: 'document', source: { type: 'base64', media_type: 'text/plain', data } }) as unknown as Anthropic.DocumentBlockParam;

const documentMessage = (): Anthropic.MessageCreateParamsNonStreaming => ({
  model: 'claude-test-model',
  max_tokens: 64,
  messages: [
    {
      role: 'user',
      content: [
        textDocument(b64(ENV)),
        { type: 'text', text: 'What does this config do?' },
      ],
    },
  ],
});

const fileMessage = (): OpenAI.ChatCompletionCreateParamsNonStreaming => ({
  model: 'gpt-4o',
  messages: [
    {
      role: 'user',
      content: [
        { type: 'file', file: { filename: '.env', file_data: `data:text/plain;base64,${b64(ENV)}` } },
        { type: 'text', text: 'What does this config do?' },
      ],
    },
  ],
});

const imageMessage = (): OpenAI.ChatCompletionCreateParamsNonStreaming => ({
  model: 'gpt-4o',
  messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png;base64,${b64(ENV)}` } }] }],
});

function expectNoSecret(text: string) {
  expect(text).not.toContain(token);
  expect(text).not.toContain(password);
  expect(text).not.toContain(b64(ENV));
}

/** Sends with the client, expects the proxy's 403, and checks that nothing reached the vendor. */
async function expectBlocked(send: () => Promise<unknown>) {
  const before = vendors.requests.length;
  const err = await send().then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(Error);
  expect((err as { status?: number }).status).toBe(403);
  const message = String((err as Error).message);
  expect(message).toMatch(/generic-password line 2/);
  expect(message).toMatch(/github-pat line 4/);
  expectNoSecret(message);
  expect(vendors.requests.length).toBe(before);
  // The clients' fetch is undici's: its Headers is not the global class, so no instanceof.
  const headers = (err as { headers?: { get(name: string): string | null } | Record<string, string> }).headers;
  const id = typeof headers?.get === 'function' ? (headers.get as (n: string) => string | null)('x-aigate-request-id') : (headers as Record<string, string> | undefined)?.['x-aigate-request-id'];
  expect(id).toBeTruthy();
  const record = await gw.auditWhere((r) => r.id === id);
  expect(record).toMatchObject({ decision: 'block', reason: 'sensitive_content' });
  expectNoSecret(JSON.stringify(record));
}

function lastRequest(pathEnd: string): RecordedRequest {
  const found = [...vendors.requests].reverse().find((r) => r.path.endsWith(pathEnd));
  if (!found) throw new Error(`no upstream request ending in ${pathEnd}`);
  return found;
}

describe('block', () => {
  it('Anthropic SDK: a document block with a base64 text source', async () => {
    await expectBlocked(() => anthropic('/claude').messages.create(documentMessage()));
  });

  it('Anthropic SDK: a base64 document labelled application/pdf that is text', async () => {
    await expectBlocked(() =>
      anthropic('/claude').messages.create({
        ...documentMessage(),
        messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: b64(ENV) } }] }],
      }),
    );
  });

  it('OpenAI SDK: a file part with a file_data data URL', async () => {
    await expectBlocked(() => openai('/openai').chat.completions.create(fileMessage()));
  });

  it('OpenAI SDK: an image_url data URL that is really text', async () => {
    await expectBlocked(() => openai('/openai').chat.completions.create(imageMessage()));
  });

  // The charset parameter says how the bytes read; without a byte-order mark nothing else does,
  // and UTF-16 bytes are not UTF-8 text (every other byte a NUL).
  it('OpenAI SDK: a file_data data URL whose charset is UTF-16 or UTF-32, without a byte-order mark', async () => {
    for (const [charset, bytes] of [
      ['utf-16le', Buffer.from(ENV, 'utf16le')],
      ['UTF-16BE', Buffer.from(ENV, 'utf16le').swap16()],
      ['utf-16', Buffer.from(ENV, 'utf16le')],
      ['utf-32be', Buffer.from(ENV, 'utf16le').swap16().reduce((out, b, i) => (i % 2 === 0 ? [...out, 0, 0, b] : [...out, b]), [] as number[])],
    ] as const) {
      const file_data = `data:text/plain;charset=${charset};base64,${Buffer.from(bytes).toString('base64')}`;
      await expectBlocked(() =>
        openai('/openai').chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: [{ type: 'file', file: { filename: '.env', file_data } }] }] }),
      );
    }
  });

  // Node's, Python's (b64decode) and Go's (\r\n) base64 decoders skip line breaks wherever they are.
  it('Anthropic SDK: a base64 text source broken by line breaks and tabs at irregular places, under block and redact', async () => {
    const data = b64(ENV).replace(/.{5,23}?/g, (m, at: number) => m + ['\n', '', '\r\n', '\t'][at % 4]);
    for (const prefix of ['/claude', '/claude-redact']) {
      await expectBlocked(() => anthropic(prefix).messages.create({ ...documentMessage(), messages: [{ role: 'user', content: [textDocument(data)] }] }));
    }
  });

  it('OpenAI SDK: a Responses input_file with file_data', async () => {
    await expectBlocked(() =>
      openai('/openai').responses.create({
        model: 'gpt-4o',
        input: [{ role: 'user', content: [{ type: 'input_file', filename: '.env', file_data: `data:text/plain;base64,${b64(ENV)}` }] }],
      }),
    );
  });
});

describe('redact', () => {
  it('Anthropic SDK: the vendor gets a valid base64 document without the secrets', async () => {
    const msg = await anthropic('/claude-redact').messages.create(documentMessage());
    expect(msg.content[0]).toMatchObject({ type: 'text', text: 'echo: What does this config do?' });
    const seen = lastRequest('/v1/messages');
    expectNoSecret(seen.body.toString());
    expect(Number(seen.headers['content-length'])).toBe(seen.body.length);
    const sent = JSON.parse(seen.body.toString()) as { messages: Array<{ content: Array<{ source?: { type: string; media_type: string; data: string } }> }> };
    const source = sent.messages[0]!.content[0]!.source!;
    expect(source).toMatchObject({ type: 'base64', media_type: 'text/plain' });
    expect(source.data).toMatch(/^[A-Za-z0-9+/]+={0,2}$/);
    expect(Buffer.from(source.data, 'base64').toString()).toBe(REDACTED_ENV);
  });

  it('OpenAI SDK: file_data and image_url data URLs keep their header and decode to the redacted file', async () => {
    for (const [message, header, pick] of [
      [fileMessage(), 'data:text/plain;base64,', (c: any) => c.file.file_data],
      [imageMessage(), 'data:image/png;base64,', (c: any) => c.image_url.url],
    ] as const) {
      await openai('/openai-redact').chat.completions.create(message);
      const seen = lastRequest('/chat/completions');
      expectNoSecret(seen.body.toString());
      const sent = JSON.parse(seen.body.toString()) as { messages: Array<{ content: unknown[] }> };
      const url = pick(sent.messages[0]!.content[0]) as string;
      expect(url.startsWith(header)).toBe(true);
      expect(Buffer.from(url.slice(header.length), 'base64').toString()).toBe(REDACTED_ENV);
    }
    const record = await gw.auditWhere((r) => r.route === 'openai-redact' && r.decision === 'redact');
    expect(record.findings.map((f) => [f.rule, f.line, f.action]).sort()).toEqual([
      ['generic-password', 2, 'redact'],
      ['github-pat', 4, 'redact'],
    ]);
  });

  it('a UTF-16LE data URL (charset parameter, no byte-order mark) reaches the vendor redacted, still UTF-16LE', async () => {
    const header = 'data:text/plain;charset=utf-16le;base64,';
    const file_data = header + Buffer.from(ENV, 'utf16le').toString('base64');
    await openai('/openai-redact').chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: [{ type: 'file', file: { filename: '.env', file_data } }] }] });
    const seen = lastRequest('/chat/completions');
    const sent = JSON.parse(seen.body.toString()) as { messages: Array<{ content: Array<{ file: { file_data: string } }> }> };
    const url = sent.messages[0]!.content[0]!.file.file_data;
    expect(url.startsWith(header)).toBe(true);
    expect(Buffer.from(url.slice(header.length), 'base64').toString('utf16le')).toBe(REDACTED_ENV);
  });

  it('a clean attachment reaches the vendor byte for byte', async () => {
    const clean = 'APP_ENV=production\nDB_PASSWORD=${DB_PASSWORD}\n';
    await anthropic('/claude-redact').messages.create({
      ...documentMessage(),
      messages: [{ role: 'user', content: [textDocument(b64(clean))] }],
    });
    const sent = JSON.parse(lastRequest('/v1/messages').body.toString()) as { messages: Array<{ content: Array<{ source: { data: string } }> }> };
    expect(sent.messages[0]!.content[0]!.source.data).toBe(b64(clean));
  });
});

describe('bounded', () => {
  it('decoded attachments count against maxBodyBytes: 413 body_too_large, nothing forwarded', async () => {
    // Two text attachments: ~880 KB of body (under 1mb), ~660 KB more once decoded.
    const text = 'LOG_LEVEL=info\n'.repeat(22_000);
    const body = JSON.stringify({ model: 'gpt-4o', files: [b64(text), b64(text)] });
    expect(body.length).toBeLessThan(1024 * 1024);
    const before = vendors.requests.length;
    const res = await undiciFetch(`${gw.gatewayUrl}/openai/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      dispatcher: gw.client,
    } as never);
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: { type: 'body_too_large' } });
    expect(vendors.requests.length).toBe(before);
  });
});

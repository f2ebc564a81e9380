// inspectBody: Content-Encoding decoding (and bombs), JSON bodies walked as unescaped strings,
// redaction that keeps JSON valid and every other byte as sent.
import { brotliCompressSync, constants, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import { describe, expect, it, vi } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { InspectError, createInspector } from '../../src/inspect/index.js';
import { Rng, make } from '../corpus/secrets.js';
import { withCpuTime } from '../support/cpu.js';

const rng = new Rng(11);
const inspector = createInspector(configSchema.parse({ inspect: { maxBodyBytes: '1mb' } }).inspect, { fingerprintKey: 'k' });
const SECRET_LINE = 'password = "Zq8vLm2pRt7x"';
const json = { contentType: 'application/json' };

async function rejection(p: Promise<unknown>): Promise<InspectError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof InspectError) return err;
    throw err;
  }
  throw new Error('expected an InspectError');
}

describe('Content-Encoding', () => {
  const plain = Buffer.from(`code\n${SECRET_LINE}\n`);
  it.each([
    ['gzip', gzipSync(plain)],
    ['x-gzip', gzipSync(plain)],
    ['deflate', deflateSync(plain)],
    ['deflate', deflateRawSync(plain)],
    ['br', brotliCompressSync(plain)],
    ['identity', plain],
    ['gzip, br', brotliCompressSync(gzipSync(plain))],
    ['GZIP', gzipSync(plain)],
  ])('decodes %s before scanning', async (encoding, data) => {
    const out = await inspector.inspectBody(data, { contentEncoding: encoding, action: 'redact' });
    expect(out.findings.map((f) => [f.rule, f.line])).toEqual([['generic-password', 2]]);
    expect(out.decodedBytes).toBe(plain.length);
    expect(out.redactedBody!.toString()).toBe('code\npassword = "[REDACTED:generic-password]"\n');
  });

  it('rejects an unknown or corrupt encoding as undecodable', async () => {
    expect((await rejection(inspector.inspectBody(plain, { contentEncoding: 'zstd', action: 'block' }))).kind).toBe('undecodable');
    expect((await rejection(inspector.inspectBody(Buffer.from('not gzip'), { contentEncoding: 'gzip', action: 'block' }))).kind).toBe(
      'undecodable',
    );
    const truncated = gzipSync(plain).subarray(0, 20);
    expect((await rejection(inspector.inspectBody(truncated, { contentEncoding: 'gzip', action: 'block' }))).kind).toBe('undecodable');
  });

  it('cuts a compression bomb off at maxBodyBytes, quickly and without holding the output', async () => {
    // 1 GiB of zeros as 64 concatenated gzip members of 16 MiB each: ~1 MiB on the wire.
    const member = gzipSync(Buffer.alloc(16 * 1024 * 1024), { level: 9 });
    const bomb = Buffer.concat(Array.from({ length: 64 }, () => member));
    expect(bomb.length).toBeLessThan(1024 * 1024);
    const before = process.memoryUsage().arrayBuffers;
    const { value: err, ms } = await withCpuTime(() => rejection(inspector.inspectBody(bomb, { contentEncoding: 'gzip', action: 'block' })));
    expect(err.kind).toBe('too_large');
    expect(ms).toBeLessThan(2000);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 1024 * 1024);
    const br = brotliCompressSync(Buffer.alloc(64 * 1024 * 1024), { params: { [constants.BROTLI_PARAM_QUALITY]: 1 } });
    expect((await rejection(inspector.inspectBody(br, { contentEncoding: 'br', action: 'block' }))).kind).toBe('too_large');
  });

  it('refuses a body larger than maxBodyBytes before decoding it', async () => {
    const big = Buffer.alloc(1024 * 1024 + 1, 'a');
    expect((await rejection(inspector.inspectBody(big, { action: 'block' }))).kind).toBe('too_large');
    const exact = Buffer.alloc(1024 * 1024, 'a');
    expect((await inspector.inspectBody(exact, { action: 'block' })).decision).toBe('allow');
  });
});

describe('JSON bodies', () => {
  const chat = (content: string, extra: object = {}): Buffer =>
    Buffer.from(JSON.stringify({ model: 'gpt-4o', max_tokens: 100, messages: [{ role: 'user', content }], ...extra }));

  it('sees code inside string values unescaped, with lines counted inside the string', async () => {
    const code = `import os\n\ndef connect():\n    ${SECRET_LINE}\n    return db(password)\n`;
    const out = await inspector.inspectBody(chat(code), { ...json, action: 'block' });
    expect(out.findings).toHaveLength(1);
    expect(out.findings[0]).toMatchObject({ rule: 'generic-password', line: 4, col: 17 });
  });

  it('is not fooled by \\" \\n or \\u escapes', async () => {
    const raw = Buffer.from('{"messages":[{"content":"x\\n\\u0070assword = \\u0022Zq8vLm2pRt7x\\"\\nmore"}]}');
    const out = await inspector.inspectBody(raw, { ...json, action: 'redact' });
    expect(out.findings.map((f) => [f.rule, f.line])).toEqual([['generic-password', 2]]);
    const parsed = JSON.parse(out.redactedBody!.toString()) as { messages: Array<{ content: string }> };
    expect(parsed.messages[0]!.content).toBe('x\npassword = "[REDACTED:generic-password]"\nmore');
  });

  it('scans a redacted body again exactly once before it is forwarded', async () => {
    const own = createInspector(configSchema.parse({ inspect: {} }).inspect, { fingerprintKey: 'k' });
    const scans = vi.spyOn(own, 'inspectBody');
    // The token's line reads as the first line of the base64 block below it until it is replaced;
    // then the block decodes to a password: the check finds it, and would redact it itself.
    const block = Buffer.from(`${SECRET_LINE}\n`).toString('base64').match(/.{1,16}/g)!.join('\n');
    const out = await own.inspectBody(chat(`my files:\n${make.githubPat(rng)}\n${block}\nthanks`), { ...json, action: 'redact' });
    expect(out.decision).toBe('block');
    expect(out.findings.map((f) => [f.rule, f.action])).toEqual([
      ['github-pat', 'redact'],
      ['generic-password', 'block'],
    ]);
    // The call itself, and the check of what it would forward (never a check of the check).
    expect(scans).toHaveBeenCalledTimes(2);
  });

  it('skips the walk only when no keyword is in the raw text, nor any escape that could hide one', async () => {
    const clean = await inspector.inspectBody(chat('Refactor this loop:\n\tfor (const x of xs) {}\n'), { ...json, action: 'block' });
    expect(clean).toEqual({ findings: [], decision: 'allow', decodedBytes: expect.any(Number) });
    // `://` (url-credentials) written as `:\/\/`: in no keyword of the raw text.
    const slash = Buffer.from('{"content":"DATABASE_URL=postgres:\\/\\/admin:Zq8vLm2pRt7xQ@db.example.com\\/app"}');
    expect(slash.toString()).toContain(':\\/\\/admin');
    expect((await inspector.inspectBody(slash, { ...json, action: 'block' })).findings.map((f) => f.rule)).toEqual(['url-credentials']);
    // Inside a tool call's JSON arguments the escapes are doubled.
    const inner = String.raw`{"url":"mongodb:\/\/root:Zq8vLm2pRt7xQ@mongo:27017"}`;
    const nested = Buffer.from(JSON.stringify({ arguments: inner }));
    expect(nested.toString()).not.toContain('://');
    expect((await inspector.inspectBody(nested, { ...json, action: 'block' })).findings.map((f) => f.rule)).toEqual(['url-credentials']);
  });

  it('always walks JSON when a keyword holds a quote (it can match across a key and its value)', async () => {
    const custom = [{ id: 'pin', pattern: '"pin_key": "(\\d{6})"', keywords: ['"pin_key": "'] }];
    const cfg = configSchema.parse({ inspect: { rules: { builtin: 'none', custom } } });
    const withQuote = createInspector(cfg.inspect, { fingerprintKey: 'k' });
    // The raw body has no space after the colon: the keyword only occurs in the pair as analysed.
    const out = await withQuote.inspectBody(Buffer.from('{"pin_key":"123456"}'), { ...json, action: 'block' });
    expect(out.findings.map((f) => [f.rule, f.start, f.end])).toEqual([['pin', 0, 6]]);
  });

  it('scans object keys, key/value pairs and JSON nested in strings (tool arguments)', async () => {
    const gh = make.githubPat(rng);
    const body = Buffer.from(
      JSON.stringify({
        [gh]: 1,
        config: { password: 'Zq8vLm2pRt7x' },
        tool_calls: [{ function: { arguments: JSON.stringify({ env: { API_TOKEN: 'f8a7b6c5d4e3f2a1b0c9d8e7' } }) } }],
      }),
    );
    const out = await inspector.inspectBody(body, { ...json, action: 'redact' });
    expect(out.findings.map((f) => f.rule).sort()).toEqual(['generic-password', 'generic-token', 'github-pat']);
    const text = out.redactedBody!.toString();
    const parsed = JSON.parse(text) as Record<string, unknown>;
    expect(Object.keys(parsed)[0]).toBe('[REDACTED:github-pat]');
    expect((parsed.config as { password: string }).password).toBe('[REDACTED:generic-password]');
    const args = JSON.parse((parsed.tool_calls as Array<{ function: { arguments: string } }>)[0]!.function.arguments) as {
      env: { API_TOKEN: string };
    };
    expect(args.env.API_TOKEN).toBe('[REDACTED:generic-token]');
  });

  it('redacts into valid JSON and leaves every other byte as sent', async () => {
    const raw = `{\n  "seed": 12345678901234567890,\n  "temperature": 0.10,\n  "messages": [ {"role":"user","content":"${SECRET_LINE.replace(/"/g, '\\"')}"} ]\n}`;
    const out = await inspector.inspectBody(Buffer.from(raw), { ...json, action: 'redact' });
    expect(out.redactedBody!.toString()).toBe(raw.replace('Zq8vLm2pRt7x', '[REDACTED:generic-password]'));
    expect(() => JSON.parse(out.redactedBody!.toString())).not.toThrow();
  });

  it('sniffs JSON without a content type, and scans invalid JSON as text', async () => {
    const sniffed = await inspector.inspectBody(chat(SECRET_LINE), { action: 'block' });
    expect(sniffed.findings.map((f) => f.rule)).toEqual(['generic-password']);
    const broken = Buffer.from(`{"content": "x", ${SECRET_LINE}`);
    const out = await inspector.inspectBody(broken, { ...json, action: 'redact' });
    expect(out.findings.map((f) => f.rule)).toEqual(['generic-password']);
    expect(out.redactedBody!.toString()).toBe('{"content": "x", password = "[REDACTED:generic-password]"');
  });

  it('copes with a million nested brackets', async () => {
    const deep = Buffer.from(`${'['.repeat(1e6)}"${SECRET_LINE.replace(/"/g, '\\"')}"${']'.repeat(1e6)}`);
    const small = createInspector(configSchema.parse({ inspect: { maxBodyBytes: '4mb' } }).inspect, { fingerprintKey: 'k' });
    const { value: out, ms } = await withCpuTime(() => small.inspectBody(deep, { ...json, action: 'redact' }));
    expect(ms).toBeLessThan(2000);
    expect(out.findings.map((f) => f.rule)).toEqual(['generic-password']);
    expect(out.redactedBody!.length).toBe(deep.length - 'Zq8vLm2pRt7x'.length + '[REDACTED:generic-password]'.length);
  });

  it('keeps bytes that are not UTF-8 intact when redacting a text body', async () => {
    // (Not opening with FF FE: that is a UTF-16 byte-order mark, read as such; see inspect-views.)
    const raw = Buffer.concat([Buffer.from([0xff, 0x80, 0xfe]), Buffer.from(`\n${SECRET_LINE}\n`), Buffer.from([0xc3, 0x28])]);
    const out = await inspector.inspectBody(raw, { action: 'redact' });
    const expected = Buffer.concat([
      Buffer.from([0xff, 0x80, 0xfe]),
      Buffer.from('\npassword = "[REDACTED:generic-password]"\n'),
      Buffer.from([0xc3, 0x28]),
    ]);
    expect(out.redactedBody!.equals(expected)).toBe(true);
  });

  it('lists at most MAX_FINDINGS findings but still decides and redacts on all of them', async () => {
    const lines = Array.from({ length: 1500 }, (_, i) => `password${i} = "${make.password(rng)}"`).join('\n');
    const out = await inspector.inspectBody(Buffer.from(lines), { action: 'redact' });
    expect(out.findings.length + (out.omittedFindings ?? 0)).toBeGreaterThanOrEqual(1400);
    expect(out.findings.length).toBeLessThanOrEqual(1000);
    expect(out.redactedBody!.toString().match(/\[REDACTED:generic-password\]/g)!.length).toBe(out.findings.length + (out.omittedFindings ?? 0));
  });
});

// Declared here rather than at the top so this block stays self-contained (imports are hoisted).
import * as decodeModule from '../../src/inspect/decode.js';

describe('Content-Encoding: trailing bytes and concurrent bombs', () => {
  const token = make.githubPat(new Rng(29)); // not the shared rng: other tests' values stay as they were
  const plain = Buffer.from('print("hello")\n'.repeat(20));
  const secret = Buffer.from(`GITHUB_TOKEN=${token}\n`);
  const kindOf = async (data: Buffer, contentEncoding: string): Promise<string> =>
    (await rejection(inspector.inspectBody(data, { contentEncoding, action: 'block' }))).kind;

  it('refuses bytes after the end of a compressed stream, which the scanner would never see', async () => {
    expect(await kindOf(Buffer.concat([deflateSync(plain), secret]), 'deflate')).toBe('undecodable');
    expect(await kindOf(Buffer.concat([deflateRawSync(plain), secret]), 'deflate')).toBe('undecodable');
    // Node's gunzip stops at zero padding; other decoders go on to read the second member.
    expect(await kindOf(Buffer.concat([gzipSync(plain), Buffer.alloc(4), gzipSync(secret)]), 'gzip')).toBe('undecodable');
    expect(await kindOf(Buffer.concat([brotliCompressSync(plain), secret]), 'br')).toBe('undecodable');
    // Every layer of a multi-coding must be consumed whole.
    expect(await kindOf(brotliCompressSync(Buffer.concat([gzipSync(plain), secret])), 'gzip, br')).toBe('undecodable');
    expect(await kindOf(Buffer.concat([brotliCompressSync(gzipSync(plain)), secret]), 'gzip, br')).toBe('undecodable');
  });

  it('still decodes gzip members back to back, and scans every member', async () => {
    const body = Buffer.concat([gzipSync(plain), gzipSync(secret)]);
    const out = await inspector.inspectBody(body, { contentEncoding: 'gzip', action: 'block' });
    expect(out.decodedBytes).toBe(plain.length + secret.length);
    expect(out.findings.map((f) => f.rule)).toEqual(['github-pat']);
    expect(out.decision).toBe('block');
  });

  it('decompresses at most a few bodies at once, so many small bombs cannot exhaust memory', async () => {
    const small = createInspector(configSchema.parse({ inspect: { maxBodyBytes: '64kb' } }).inspect, { fingerprintKey: 'k' });
    const bomb = brotliCompressSync(Buffer.alloc(32 * 1024 * 1024), { params: { [constants.BROTLI_PARAM_QUALITY]: 5 } });
    expect(bomb.length).toBeLessThan(4096);
    decodeModule.resetDecodePeak();
    // Corrupt and trailing-byte bodies in between: their slots must be given back too.
    const results = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) =>
        small.inspectBody(i % 10 === 9 ? Buffer.concat([bomb, Buffer.from('x')]) : i % 10 === 8 ? Buffer.from('not br') : bomb, {
          contentEncoding: 'br',
          action: 'block',
        }),
      ),
    );
    const kinds = results.map((r) => (r.status === 'rejected' && r.reason instanceof InspectError ? r.reason.kind : 'resolved'));
    expect(kinds.filter((k) => k === 'too_large')).toHaveLength(36);
    expect(kinds.filter((k) => k === 'undecodable')).toHaveLength(4);
    const stats = decodeModule.decodeStats();
    expect(stats.peak).toBeGreaterThan(1);
    expect(stats.peak).toBeLessThanOrEqual(decodeModule.DECODE_SLOTS);
    expect(stats).toMatchObject({ decoding: 0, queued: 0 });
    // Every slot is free again.
    const ok = await small.inspectBody(gzipSync(plain), { contentEncoding: 'gzip', action: 'block' });
    expect(ok.decodedBytes).toBe(plain.length);
  });
});

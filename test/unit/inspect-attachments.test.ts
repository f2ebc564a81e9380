// Encoded attachments inside JSON bodies (inspect/attachments.ts): each shape an AI tool sends is
// decoded and scanned, a finding is reported at its line in the decoded text, redaction encodes the
// redacted text back in the attachment's own shape (or blocks where it cannot), binary stays
// binary (not flagged, not decoded whole), and the decoded bytes count against maxBodyBytes.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { AttachmentBudget, findAttachments, mayHoldAttachment, mayHoldAttachmentBytes, sniffInternalsForTest } from '../../src/inspect/attachments.js';
import { Detector } from '../../src/inspect/detector.js';
import { keywordScanner } from '../../src/inspect/keyword-scan.js';
import { BUILTIN_RULES } from '../../src/inspect/rules/index.js';
import { InspectError, createInspector, type InspectOutcome } from '../../src/inspect/index.js';
import { PooledInspector } from '../../src/inspect/pool.js';
import { Rng, githubClassic } from '../corpus/secrets.js';
import { withCpuTime } from '../support/cpu.js';

const detector = new Detector(BUILTIN_RULES, [], new Set());
/** The fast path's scan, for the runs it lists. */
const scanner = keywordScanner(detector.keywords, detector.automaton!);

const rng = new Rng(14);
const token = githubClassic(rng);
const PASSWORD_LINE = 'DB_PASSWORD = "Zq8vLm2pRt7xQ"';
/** A .env file: the password on line 3, the token on line 5. */
const ENV = `# local settings\nHOME=/srv/app\n${PASSWORD_LINE}\nDEBUG=true\nGITHUB_TOKEN=${token}\n`;
const config = configSchema.parse({ inspect: { maxBodyBytes: '16mb' } }).inspect;
const inspector = createInspector(config, { fingerprintKey: 'k' });
const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const b64 = (text: string | Buffer) => Buffer.from(text).toString('base64');

async function inspect(body: Buffer, action: 'block' | 'redact' = 'block', contentType = 'application/json'): Promise<InspectOutcome> {
  return inspector.inspectBody(body, { contentType, action });
}

const rulesAndLines = (out: InspectOutcome) => out.findings.map((f) => [f.rule, f.line]).sort();
const ENV_FINDINGS = [
  ['generic-password', 3],
  ['github-pat', 5],
];

function anthropicDocument(data: string, mediaType = 'text/plain') {
  return {
    model: 'claude-x',
    max_tokens: 64,
    messages: [
      {
        role: 'user',
        content: [
          { type: 'document', source: { type: 'base64', media_type: mediaType, data } },
          { type: 'text', text: 'What is in this file?' },
        ],
      },
    ],
  };
}

function openaiFile(fileData: string) {
  return { model: 'gpt-x', input: [{ role: 'user', content: [{ type: 'input_file', filename: '.env', file_data: fileData }] }] };
}

function openaiImage(url: string) {
  return { model: 'gpt-x', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }] }] };
}

/** Mostly random bytes behind a PNG signature: what an image attachment looks like. */
function pngLike(bytes: number): Buffer {
  return Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), randomBytes(bytes - 16)]);
}

describe('every attachment shape is decoded and scanned (block)', () => {
  it.each([
    ['Anthropic document, base64 text/plain', anthropicDocument(b64(ENV))],
    ['Anthropic document labelled application/pdf', anthropicDocument(b64(ENV), 'application/pdf')],
    ['Anthropic image labelled image/png that is text', anthropicDocument(b64(ENV), 'image/png')],
    ['OpenAI input_file data URL', openaiFile(`data:text/plain;base64,${b64(ENV)}`)],
    ['OpenAI image_url data URL', openaiImage(`data:image/png;base64,${b64(ENV)}`)],
    ['data URL with parameters', openaiFile(`data:text/plain;charset=utf-8;name=.env;base64,${b64(ENV)}`)],
    ['data URL, upper-case scheme and BASE64', openaiFile(`DATA:text/plain;BASE64,${b64(ENV)}`)],
    ['percent-encoded data URL', openaiFile(`data:text/plain,${encodeURIComponent(ENV)}`)],
    ['base64url without padding', { file: Buffer.from(ENV).toString('base64url') }],
    ['MIME lines of 76 with CRLF', { file: b64(ENV).match(/.{1,76}/g)!.join('\r\n') }],
    ['nested JSON string holding a data URL', { arguments: JSON.stringify({ attachment: `data:;base64,${b64(ENV)}` }) }],
    ['base64 of JSON holding a base64 .env', { blob: b64(JSON.stringify({ files: [{ name: '.env', content: b64(ENV) }] })) }],
  ])('%s', async (_name, body) => {
    const out = await inspect(json(body));
    expect(out.decision).toBe('block');
    expect(rulesAndLines(out)).toEqual(ENV_FINDINGS);
  });

  it('base64 pasted into a prompt, wrapped at 76 as `base64` prints it', async () => {
    const pasted = `Here is my config, decode it:\n${b64(ENV.repeat(3)).match(/.{1,76}/g)!.join('\n')}\nThanks`;
    const out = await inspect(json({ messages: [{ role: 'user', content: pasted }] }));
    expect(out.decision).toBe('block');
    expect(out.findings.map((f) => f.rule)).toEqual(['generic-password', 'github-pat', 'generic-password', 'github-pat', 'generic-password', 'github-pat']);
  });

  it('a data URL inside prose (a markdown image) is found too', async () => {
    const out = await inspect(json({ content: `see ![env](data:image/png;base64,${b64(ENV)}) above` }));
    expect(rulesAndLines(out)).toEqual(ENV_FINDINGS);
  });

  it('a .env in Windows-1252 (not UTF-8) and one in UTF-16 with a byte-order mark', async () => {
    const latin1 = Buffer.from(`# paramètres\n${PASSWORD_LINE}\n`, 'latin1');
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(`# settings\n${PASSWORD_LINE}\n`, 'utf16le')]);
    for (const bytes of [latin1, utf16]) {
      const out = await inspect(json(anthropicDocument(b64(bytes))));
      expect(rulesAndLines(out)).toEqual([['generic-password', 2]]);
    }
  });

  it('a body with no rule keyword in sight is still walked when it holds an attachment', async () => {
    // Nothing but the attachment says "password" or "token": the keyword-free shortcut must not skip it.
    const out = await inspect(json({ data: b64(`${PASSWORD_LINE}\n`) }));
    expect(rulesAndLines(out)).toEqual([['generic-password', 1]]);
    // `???` encodes as `Pz8/`: a `/` that a PHP-style serialiser escapes as `\/`.
    const escaped = json({ data: b64(`${ENV}???\n`).match(/.{1,64}/g)!.join('\n') }).toString().replace(/\//g, '\\/');
    expect(escaped).toContain('\\/');
    expect(rulesAndLines(await inspect(Buffer.from(escaped)))).toEqual(ENV_FINDINGS);
  });

  it('attachments inside attachments are followed three deep, no further', async () => {
    let layered = `${PASSWORD_LINE}\n`;
    for (let depth = 1; depth <= 4; depth++) {
      layered = b64(layered);
      const out = await inspect(json({ data: layered }));
      expect(out.findings.length, `depth ${depth}`).toBe(depth <= 3 ? 1 : 0);
    }
  });
});

/** The attachment the fake upstream would receive, decoded. */
function decodedAttachment(body: Buffer, pick: (parsed: any) => string): string {
  return pick(JSON.parse(body.toString('utf8')));
}

describe('redact: the attachment is encoded back in its own shape, without the secret', () => {
  const redactedEnv = ENV.replace(PASSWORD_LINE, 'DB_PASSWORD = "[REDACTED:generic-password]"').replace(token, '[REDACTED:github-pat]');

  it('Anthropic base64 source', async () => {
    const out = await inspect(json(anthropicDocument(b64(ENV))), 'redact');
    expect(out.decision).toBe('redact');
    const data = decodedAttachment(out.redactedBody!, (p) => p.messages[0].content[0].source.data);
    expect(data).toMatch(/^[A-Za-z0-9+/]+={0,2}$/);
    expect(Buffer.from(data, 'base64').toString()).toBe(redactedEnv);
    expect(decodedAttachment(out.redactedBody!, (p) => p.messages[0].content[1].text)).toBe('What is in this file?');
  });

  it('OpenAI file_data: the data-URL header is kept as sent', async () => {
    const header = 'data:text/plain;name=.env;base64,';
    const out = await inspect(json(openaiFile(`${header}${b64(ENV)}`)), 'redact');
    const url = decodedAttachment(out.redactedBody!, (p) => p.input[0].content[0].file_data);
    expect(url.startsWith(header)).toBe(true);
    expect(Buffer.from(url.slice(header.length), 'base64').toString()).toBe(redactedEnv);
  });

  it('base64url without padding stays base64url without padding', async () => {
    // Told apart from standard base64 by a `-` or `_`, or by a length standard base64 would pad.
    for (const env of [`${ENV}??>\n`, ENV.padEnd(Math.ceil(ENV.length / 3) * 3 + 1, '\n')]) {
      const out = await inspect(json({ file: Buffer.from(env).toString('base64url') }), 'redact');
      const data = decodedAttachment(out.redactedBody!, (p) => p.file);
      expect(data).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(Buffer.from(data, 'base64url').toString()).toBe(env.replace(PASSWORD_LINE, 'DB_PASSWORD = "[REDACTED:generic-password]"').replace(token, '[REDACTED:github-pat]'));
    }
  });

  it('MIME lines keep their length and their CRLF', async () => {
    const out = await inspect(json({ file: b64(ENV).match(/.{1,76}/g)!.join('\r\n') }), 'redact');
    const data = decodedAttachment(out.redactedBody!, (p) => p.file);
    const lines = data.split('\r\n');
    expect(lines.slice(0, -1).every((l) => l.length === 76)).toBe(true);
    expect(lines.at(-1)!.length).toBeLessThanOrEqual(76);
    expect(data).not.toMatch(/(?<!\r)\n/);
    expect(Buffer.from(data, 'base64').toString()).toBe(redactedEnv);
  });

  it('a percent-encoded data URL stays percent-encoded', async () => {
    const out = await inspect(json(openaiFile(`data:text/plain,${encodeURIComponent(ENV)}`)), 'redact');
    const url = decodedAttachment(out.redactedBody!, (p) => p.input[0].content[0].file_data);
    expect(url.startsWith('data:text/plain,')).toBe(true);
    expect(url).not.toMatch(/\s/);
    expect(decodeURIComponent(url.slice('data:text/plain,'.length))).toBe(redactedEnv);
  });

  it('base64 pasted in prose: only the block is re-encoded, the prose around it is kept', async () => {
    const block = b64(ENV).match(/.{1,76}/g)!.join('\n');
    const out = await inspect(json({ content: `decode this:\n${block}\nThanks` }), 'redact');
    const content = decodedAttachment(out.redactedBody!, (p) => p.content);
    const m = /^decode this:\n([A-Za-z0-9+/=\n]+)\nThanks$/.exec(content);
    expect(m).not.toBeNull();
    expect(Buffer.from(m![1]!, 'base64').toString()).toBe(redactedEnv);
  });

  it('a Windows-1252 .env keeps its bytes: only the secret changes', async () => {
    const latin1 = Buffer.from(`# paramètres\n${PASSWORD_LINE}\n`, 'latin1');
    const out = await inspect(json(anthropicDocument(b64(latin1))), 'redact');
    const data = decodedAttachment(out.redactedBody!, (p) => p.messages[0].content[0].source.data);
    expect(Buffer.from(data, 'base64')).toEqual(Buffer.from('# paramètres\nDB_PASSWORD = "[REDACTED:generic-password]"\n', 'latin1'));
  });

  it('nested: base64 of JSON holding base64 is rebuilt layer by layer', async () => {
    const body = json({ blob: b64(JSON.stringify({ files: [{ name: '.env', content: b64(ENV) }] })) });
    const out = await inspect(body, 'redact');
    const outer = JSON.parse(Buffer.from(decodedAttachment(out.redactedBody!, (p) => p.blob), 'base64').toString()) as { files: Array<{ content: string }> };
    expect(Buffer.from(outer.files[0]!.content, 'base64').toString()).toBe(redactedEnv);
  });

  it('a shape that cannot be rebuilt exactly blocks instead (spaces inside the base64, mixed alphabets)', async () => {
    const spaced = b64(ENV).replace(/(.{10})/g, '$1 ');
    // A multiple of 3 bytes (base64 without padding), then characters of both alphabets.
    const mixed = `${b64(`${PASSWORD_LINE}\n# ???`.padEnd(36, '?'))}${Buffer.from('??>>??>>').toString('base64url')}`;
    expect(mixed).toMatch(/^[A-Za-z0-9]*\/.*[-_]/);
    for (const fileData of [`data:text/plain;base64,${spaced}`, mixed]) {
      const out = await inspect(json(openaiFile(fileData)), 'redact');
      expect(out.decision, fileData).toBe('block');
      expect(out.findings.find((f) => f.rule === 'generic-password')!.action).toBe('block');
      expect(out.redactedBody).toBeUndefined();
    }
  });

  it('a redacted secret of the string itself that spans the whole attachment needs no re-encoding', async () => {
    // `"api_key": "<base64>"`: the assignment rule takes the whole value; the attachment goes with it.
    const out = await inspect(json({ api_key: b64(ENV) }), 'redact');
    const value = decodedAttachment(out.redactedBody ?? Buffer.from('{}'), (p) => p.api_key);
    expect(out.decision).toBe('redact');
    expect(value).not.toContain(b64(ENV));
    expect(Buffer.from(value, 'base64').toString()).not.toContain(token);
  });

  it('monitor leaves the attachment as sent and reports what is in it', async () => {
    const body = json(anthropicDocument(b64(ENV)));
    const out = await inspector.inspectBody(body, { contentType: 'application/json', action: 'monitor' });
    expect(out.decision).toBe('monitor');
    expect(rulesAndLines(out)).toEqual(ENV_FINDINGS);
    expect(out.redactedBody).toBeUndefined();
  });
});

describe('clean attachments pass, binary is not text', () => {
  it('a clean text attachment is allowed and forwarded as sent', async () => {
    const out = await inspect(json(anthropicDocument(b64('const key = process.env.API_KEY;\nconsole.log("hello");\n'))), 'redact');
    expect(out.decision).toBe('allow');
    expect(out.findings).toEqual([]);
  });

  it('a 4 MB image (base64, data URL, MIME lines) is not flagged, not counted, not slow', async () => {
    const png = pngLike(3 * 1024 * 1024).toString('base64');
    const bodies = [
      json(anthropicDocument(png, 'image/png')),
      json(openaiImage(`data:image/png;base64,${png}`)),
      json({ content: `attached:\n${png.match(/.{1,76}/g)!.join('\r\n')}\n` }),
    ];
    // Decoded binary would count 3 MB against the budget: a limit just above the body proves it does not.
    const tight = createInspector(configSchema.parse({ inspect: { maxBodyBytes: Math.floor(4.3 * 1024 * 1024) } }).inspect, { fingerprintKey: 'k' });
    for (const body of bodies) {
      expect(body.length).toBeLessThan(4.3 * 1024 * 1024);
      const { value: out, ms } = await withCpuTime(() => tight.inspectBody(body, { contentType: 'application/json', action: 'redact' }));
      expect(out.decision).toBe('allow');
      expect(ms).toBeLessThan(2000);
    }
  });

  it('random base64 blobs decoding to binary are never taken for text (10,000 of 12 to 200 characters)', () => {
    const budget = new AttachmentBudget(Infinity);
    let taken = 0;
    for (let i = 0; i < 10_000; i++) {
      const blob = randomBytes(9 + (i % 142)).toString(i % 2 === 0 ? 'base64' : 'base64url');
      taken += findAttachments(blob, budget).length + findAttachments(`prefix ${blob} suffix`, budget).length;
    }
    expect(taken).toBe(0);
  });

  it('identifiers, hashes, model names and words are not attachments', () => {
    const budget = new AttachmentBudget(Infinity);
    for (const s of [
      'claude-3-5-sonnet-20241022',
      'gpt-4o-2024-08-06',
      'AbstractSingletonProxyFactoryBean',
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      'msg_01XFDUDYJgAACzvnptvVoYEL',
      'toolu_01A09q90qw90lq917835lq9',
      'src/components/navigation/SidebarNavigationItem.tsx',
    ]) {
      expect(findAttachments(s, budget), s).toEqual([]);
      expect(mayHoldAttachment(JSON.stringify({ s })), s).toBe(false);
    }
  });
});

describe('the probe of a raw body (mayHoldAttachment)', () => {
  const fast = inspector;
  const full = createInspector(config, { fingerprintKey: 'k', fastPath: false });
  const meta = { contentType: 'application/json', action: 'block' as const };
  /** base64 of `text` in lines of `width` characters. */
  const wrapped = (text: string, width: number) => b64(text).match(new RegExp(`.{1,${width}}`, 'g'))!.join('\n');

  it('code whose strings hold escapes (\\r\\n, \\t, \\x20) is no attachment: the fast path keeps it', () => {
    const code = 'const CRLF = "\\r\\n";\nif (header === "keep-alive\\r\\n") write("\\r\\n0\\r\\n\\r\\n");\nconst re = /[\\t\\x20-\\x7e\\x80-\\xff]/;\n';
    const body = json({ model: 'm', messages: [{ role: 'user', content: code.repeat(50) }] });
    expect(mayHoldAttachment(body.toString('latin1'))).toBe(false);
    expect(mayHoldAttachmentBytes(body)).toBe(false);
  });

  it('an attachment whose lines join only one or two levels of nested JSON down is a maybe, and is found', async () => {
    // Lines of 16 characters: none is long enough alone; joined by line breaks they are a block.
    const attachment = wrapped(ENV, 16);
    const once = json({ messages: [{ content: attachment }] });
    const twice = json({ tools: [{ args: JSON.stringify({ file: attachment }) }] });
    const thrice = json({ tools: [{ args: JSON.stringify({ call: JSON.stringify({ file: attachment }) }) }] });
    for (const body of [once, twice, thrice]) {
      expect(mayHoldAttachmentBytes(body), body.toString()).toBe(true);
      expect(mayHoldAttachment(body.toString('latin1'))).toBe(true);
      const out = await fast.inspectBody(body, meta);
      expect(rulesAndLines(out)).toEqual(ENV_FINDINGS);
      expect(out).toEqual(await full.inspectBody(body, meta));
    }
  });

  it('a base64 string of 24 to 31 characters is an attachment only as a whole string value', () => {
    const short = b64('DB_PASSWORD=Zq8vLm2p'); // 28 characters
    const whole = json({ data: short });
    const inText = json({ content: `see ${short} above` });
    expect(findAttachments(short, new AttachmentBudget(Infinity))).toHaveLength(1);
    expect(findAttachments(`see ${short} above`, new AttachmentBudget(Infinity))).toHaveLength(0);
    expect(mayHoldAttachmentBytes(whole)).toBe(true);
    expect(mayHoldAttachment(whole.toString('latin1'))).toBe(true);
    expect(mayHoldAttachmentBytes(inText)).toBe(false);
    expect(mayHoldAttachment(inText.toString('latin1'))).toBe(false);
    // The same from the runs the fast path's scan lists, for each length (padding included) from 24.
    for (const text of ['DB_PASSWORD=Zq8v', 'DB_PASSWORD=Zq8vL', 'DB_PASSWORD=Zq8vLm', 'DB_PASSWORD=Zq8vLm2p']) {
      const body = json({ data: b64(text) });
      expect(scanner.read(body, 1 << 20, 'u', () => true)).toBe(true);
      expect(mayHoldAttachmentBytes(body, scanner.runs(16)), text).toBe(true);
    }
  });

  it('reads the bytes as the string probe reads their latin1 text (random bodies)', () => {
    const r = new Rng(77);
    const pieces = ['\\', '\\\\', '\\n', '\\r\\n', '\\/', '\\t', '\\u0041', '\\u000a', '"', ' ', '=', 'é', 'data', ':', 'DaTa:', '\n'];
    for (let i = 0; i < 400; i++) {
      let text = '';
      while (text.length < r.int(10, 4000)) {
        text += r.next() < 0.3 ? r.pick(pieces) : r.next() < 0.5 ? b64(randomBytes(r.int(1, 40))) : wrapped(r.pick([ENV, PASSWORD_LINE, 'lorem ipsum dolor sit amet']), r.pick([16, 20, 76]));
      }
      const body = Buffer.from(text, r.next() < 0.5 ? 'utf8' : 'latin1');
      const want = mayHoldAttachment(body.toString('latin1'));
      expect(mayHoldAttachmentBytes(body), text).toBe(want);
      // And from the runs the WebAssembly scan lists (the fast path's way).
      expect(scanner.read(body, 1 << 20, 'u', () => true)).toBe(true);
      expect(mayHoldAttachmentBytes(body, scanner.runs(16)), text).toBe(want);
    }
  });

  it('sniffs with its own base64 decoding and latin1 check: Buffer.from(…, "base64") and the string check, byte for byte', () => {
    const r = new Rng(5150);
    const { decode, mostlyPrintableLatin1, mostlyPrintable } = sniffInternalsForTest;
    for (let i = 0; i < 3000; i++) {
      const b64 = r.str('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_', i < 2900 ? r.int(0, 70) : 4096 - r.below(4));
      expect(decode(b64), b64).toEqual(Buffer.from(b64, 'base64'));
      // Mostly printable ASCII and a few others, about where the ratios decide.
      const bytes = Buffer.from('a'.repeat(r.int(0, 200)), 'latin1');
      for (let k = r.below(12); k > 0 && bytes.length > 0; k--) bytes[r.below(bytes.length)] = r.pick([0, 9, 10, 12, 13, 0x1f, 0x7f, 0x80, 0x9f, 0xa0, 0xe9, 0xff]);
      expect(mostlyPrintableLatin1(bytes), bytes.toString('hex')).toBe(mostlyPrintable(bytes.toString('latin1'), true));
    }
  });
});

describe('bounded', () => {
  it('decoded attachments count against maxBodyBytes: past it, too_large', async () => {
    const text = `${'x'.repeat(60_000)}\n`;
    const body = json({ a: b64(text), b: b64(text) });
    // The body is ~160 KB, its attachments decode to 120 KB more.
    const limit = (n: number) => createInspector(configSchema.parse({ inspect: { maxBodyBytes: n } }).inspect, { fingerprintKey: 'k' });
    await expect(limit(body.length + 130_000).inspectBody(body, { contentType: 'application/json', action: 'block' })).resolves.toMatchObject({ decision: 'allow' });
    const err = await limit(body.length + 100_000)
      .inspectBody(body, { contentType: 'application/json', action: 'block' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InspectError);
    expect((err as InspectError).kind).toBe('too_large');
  });

  it.each([
    ['`data:` repeated without a comma', () => 'data:'.repeat(800_000)],
    ['`data:x` repeated, headers almost 256 long', () => `data:${'x'.repeat(250)}`.repeat(16_000)],
    ['runs of 31 base64 characters', () => `${'QUJD'.repeat(8).slice(0, 31)} `.repeat(125_000)],
    ['lines that almost make a MIME block', () => `${'QUJD'.repeat(19)}\n${'QUJD'.repeat(18)}QUJ\n`.repeat(27_000)],
    ['one 4 MB run of text-looking base64', () => b64('a'.repeat(3 * 1024 * 1024))],
  ])('linear on hostile input: %s', async (_name, make) => {
    const body = json({ content: make() });
    const { ms } = await withCpuTime(() => inspect(body).catch(() => null));
    expect(ms).toBeLessThan(5000);
  });
});

describe('scan threads see the same attachments', () => {
  it('a body over 64 KiB with an attachment: same findings and redaction on a thread as inline', async () => {
    const prompt = Array.from({ length: 2000 }, (_, i) => `  const item${i} = compute(list[${i % 97}], "label ${i}");`).join('\n');
    const body = json({ ...anthropicDocument(b64(ENV)), system: prompt });
    expect(body.length).toBeGreaterThan(64 * 1024);
    const pool = new PooledInspector(inspector, { config, fingerprintKey: Buffer.from('k'), threads: 1, minBytes: 1024 });
    try {
      for (const action of ['block', 'redact'] as const) {
        const inline = await inspector.inspectBody(body, { contentType: 'application/json', action });
        const threaded = await pool.inspectBody(body, { contentType: 'application/json', action });
        expect(pool.size).toBe(1);
        expect(threaded.findings).toEqual(inline.findings);
        expect(rulesAndLines(threaded)).toEqual(ENV_FINDINGS);
        expect(threaded.decision).toBe(action);
        if (action === 'redact') expect(threaded.redactedBody!.equals(inline.redactedBody!)).toBe(true);
      }
    } finally {
      await pool.close();
    }
  });
});

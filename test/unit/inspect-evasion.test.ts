// Bodies built to slip a secret past the scanner or to make redaction forward one: each case was
// first demonstrated against a running proxy (the upstream received the token). The secret must be
// found, or the body re-encoded so that the upstream reads exactly what was scanned.
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { createInspector, type InspectBodyMeta } from '../../src/inspect/index.js';
import { Rng, make } from '../corpus/secrets.js';

const GH = make.githubPat(new Rng(7));
/** The token with its first letter as a JSON escape: `\u0067hp_…`. */
const GH_ESCAPED = `\\u0067${GH.slice(1)}`;
const PASSWORD = 'password = \\"Zq8vLm2pRt7x\\"';

const inspector = createInspector(configSchema.parse({}).inspect, { fingerprintKey: 'k' });
const json: InspectBodyMeta = { contentType: 'application/json', action: 'block' };

describe('redaction of a body that is not UTF-8', () => {
  // One stray byte makes the body latin1 to aigate; a \u escape above U+00FF in the same string
  // used to be written back as its low byte only.
  const body = (value: string) => Buffer.concat([Buffer.from('{"junk":"'), Buffer.from([0xff]), Buffer.from(`","content":"${PASSWORD} ${value}"}`)]);

  it.each([
    ['U+4E5C, whose low byte is a backslash: would unescape the token upstream', `\\u4e5cu0067${GH.slice(1)}`, `\u4e5cu0067${GH.slice(1)}`],
    ['U+4E22, whose low byte is a quote: would end the string and inject JSON', '\\u4e22, \\"injected\\": true', '\u4e22, "injected": true'],
  ])('%s', async (_name, escaped, meant) => {
    const out = await inspector.inspectBody(body(escaped), { ...json, action: 'redact' });
    expect(out.decision).toBe('redact');
    // What the upstream parses (the stray byte kept as it was) is what was scanned, minus the password.
    const sent = JSON.parse(out.redactedBody!.toString('latin1')) as Record<string, string>;
    expect(sent).toEqual({ junk: '\u00ff', content: `password = "[REDACTED:generic-password]" ${meant}` });
    expect(out.redactedBody!.subarray(0, 10)).toEqual(Buffer.from([...Buffer.from('{"junk":"'), 0xff]));
  });
});

describe('JSON the tokenizer used to give up on, with the token behind a \\u escape', () => {
  it.each([
    ['NaN and Infinity literals (Python\'s json accepts them)', `{"temperature":NaN,"top_p":-Infinity,"content":"${GH_ESCAPED}"}`, json],
    ['over 1,024 blanks before the object, no Content-Type', `${' '.repeat(2000)}{"content":"${GH_ESCAPED}"}`, { action: 'block' as const }],
    ['JSON5-style unquoted keys', `{content: "${GH_ESCAPED}"}`, json],
    ['a truncated document', `{"content":"${GH_ESCAPED}`, json],
  ])('%s', async (_name, text, meta) => {
    const out = await inspector.inspectBody(Buffer.from(text), meta);
    expect(out.decision).toBe('block');
    expect(out.findings.map((f) => f.rule)).toEqual(['github-pat']);
  });

  it('outside JSON, a secret that only shows unescaped cannot be redacted in place: it blocks', async () => {
    const out = await inspector.inspectBody(Buffer.from(`{content: "${GH_ESCAPED}"}`), { ...json, action: 'redact' });
    expect(out.decision).toBe('block');
    expect(out.findings).toMatchObject([{ rule: 'github-pat', action: 'block' }]);
    expect(out.redactedBody).toBeUndefined();
  });
});

describe('other encodings of the text', () => {
  it('UTF-16 with a byte-order mark, both byte orders: read as UTF-16; under redact redacted and written back as UTF-16', async () => {
    const other = make.githubPat(new Rng(8));
    const text = `\ufeff{"content":"my token ${GH} and \\u0067${other.slice(1)} é"}`;
    const le = Buffer.from(text, 'utf16le');
    for (const [body, swap] of [[le, false], [Buffer.from(le).swap16(), true]] as const) {
      const found = await inspector.inspectBody(body, json);
      expect(found.decision).toBe('block');
      expect(found.findings.map((f) => f.rule)).toEqual(['github-pat', 'github-pat']);
      const red = await inspector.inspectBody(body, { ...json, action: 'redact' });
      expect(red.decision).toBe('redact');
      const sent = (swap ? Buffer.from(red.redactedBody!).swap16() : red.redactedBody!).toString('utf16le');
      expect(sent).toBe('\ufeff{"content":"my token [REDACTED:github-pat] and [REDACTED:github-pat] é"}');
    }
  });

  it('a form body: percent-encoding undone before scanning', async () => {
    const encoded = `%${GH.charCodeAt(0).toString(16)}${GH.slice(1)}`;
    const out = await inspector.inspectBody(Buffer.from(`prompt=hi&q=${encoded}`), { contentType: 'application/x-www-form-urlencoded', action: 'block' });
    expect(out.findings.map((f) => f.rule)).toEqual(['github-pat']);
    // The same bytes as plain text are not a form: nothing to undo, nothing found.
    expect((await inspector.inspectBody(Buffer.from(`prompt=hi&q=${encoded}`), { contentType: 'text/plain', action: 'block' })).decision).toBe('allow');
  });
});

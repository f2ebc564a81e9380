// The fast path with protected-code indexes configured, against the full scan: a body proved free
// of secrets and attachments is looked up in the indexes by ProtectedCode.inBody (the texts the
// full path would look up, read from the body), and must come out exactly as the full path has it —
// findings, lines, files and line ranges, decisions, redactions — on random bodies that mix copies
// of protected code (verbatim, renamed, re-indented, cut short), other code, secrets, nested JSON,
// JSON escapes, non-ASCII text, attachments and the other readings of a body.
import { isUtf8 } from 'node:buffer';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { DEFAULT_BUILD, IndexBuilder } from '../../src/fingerprint/build.js';
import { encodeIndex } from '../../src/fingerprint/index-file.js';
import { resetWork, work } from '../../src/fingerprint/work.js';
import { CleanProof } from '../../src/inspect/clean.js';
import { Detector } from '../../src/inspect/detector.js';
import { createInspector, type InspectBodyMeta, type Inspector } from '../../src/inspect/index.js';
import { loadProtectedCode, ProtectedCode } from '../../src/inspect/protected.js';
import { BUILTIN_RULES } from '../../src/inspect/rules/index.js';
import { Rng, make, password } from '../corpus/secrets.js';

const NM = resolve(import.meta.dirname, '../../node_modules');
const source = (p: string) => readFileSync(resolve(NM, p), 'utf8');
const PROTECTED = ['ws/lib/receiver.js', 'ws/lib/websocket.js'].map((p) => source(p).split('\n'));
const OTHER = source('undici/lib/core/util.js').split('\n');

const dir = mkdtempSync(join(tmpdir(), 'aigate-fast-protected-'));
const indexFile = join(dir, 'acme.fp');
{
  const builder = new IndexBuilder({ ...DEFAULT_BUILD, label: 'acme' });
  builder.add('src/receiver.js', PROTECTED[0]!.join('\n'));
  builder.add('src/websocket.js', PROTECTED[1]!.join('\n'));
  writeFileSync(indexFile, encodeIndex(builder.build()));
}

async function outcome(inspector: Inspector, body: Buffer, meta: InspectBodyMeta): Promise<unknown> {
  try {
    const o = await inspector.inspectBody(body, meta);
    return { ...o, redactedBody: o.redactedBody?.toString('base64') };
  } catch (err) {
    return { error: String(err) };
  }
}

/** Lines `n` of `lines` from a random place, perhaps renamed and re-indented. */
function code(rng: Rng, lines: string[], n: number): string {
  const from = rng.below(Math.max(1, lines.length - n));
  let text = lines.slice(from, from + n).join('\n');
  if (rng.next() < 0.4) text = text.replace(/\b(data|cb|buf|err|this\._\w+|opts|options)\b/g, (m) => `${m.replace(/\W/g, '')}Renamed`);
  if (rng.next() < 0.3) text = text.replace(/^ +/gm, '\t');
  return text;
}

function piece(rng: Rng): string {
  switch (rng.below(9)) {
    case 0:
    case 1:
    case 2:
      return code(rng, rng.pick(PROTECTED), rng.pick([4, 9, 14, 30, 80]));
    case 3:
      return code(rng, OTHER, rng.pick([10, 40]));
    case 4:
      return rng.pick([`password = "${password(rng)}"`, `token: ${make.githubPat(rng)}`, `API_KEY=${make.openaiProject(rng)}`]);
    case 5:
      return rng.pick(['—é€😀\u00a0', '\u2028', 'naïve café ', '\\u00e9\\n', '\ud83d', '\u0001\u001f', '\\uD83D\\ude00', '\\u0041\\/\\b\\f\\r\\t', '\\x41', '\\u12G4', '\ufeff[', ' {', '\t[']);
    case 6: {
      const text = rng.pick(['nothing to see here, move along\n', `password = "${password(rng)}"\n`]);
      return Buffer.from(text).toString('base64').match(/.{1,16}/g)!.join('\n');
    }
    case 7:
      return '```js\n' + code(rng, rng.pick(PROTECTED), 12) + '\n```';
    default:
      return rng.str('abcdefghijklmnopqrstuvwxyz ABCDEFG{}[]():;,.="\'\n\t\\', rng.int(10, 300));
  }
}

function content(rng: Rng): string {
  const parts: string[] = [];
  for (let i = rng.int(1, 5); i > 0; i--) parts.push(piece(rng));
  return parts.join(rng.pick(['\n', '\n\n', ' ']));
}

function jsonBody(rng: Rng): string {
  const text = content(rng);
  switch (rng.below(8)) {
    case 6: {
      // One short string JSON.parse refuses, or a character outside strings that JSON has not:
      // then the body is not JSON, and is looked up as a whole.
      const bad = rng.pick(['"\\x41"', '"\\u12G4"', '"a\u0001"', '"\\ "', '"ok"\u00a0', '"ok"é', '"ok"\u2028', '"ok"']);
      return `{"model": "m", "x": ${bad}, "messages": [{"role": "user", "content": ${JSON.stringify(text)}}]}`;
    }
    case 7:
      // Escapes of every kind inside the code.
      return JSON.stringify({ model: 'm', messages: [{ role: 'user', content: text.replace(/\n/g, () => rng.pick(['\n', '\b\n', '\n\f', '\r\n', '\u2028\n', '\n\u0000'])) }] }).replace(/[éa]/g, (c) => (rng.next() < 0.2 ? `\\u${c.charCodeAt(0).toString(16).padStart(4, rng.pick(['0']))}` : c));
    case 0:
      // Code in a tool call's arguments, nested once or twice.
      return JSON.stringify({ model: 'm', tools: [{ args: JSON.stringify(rng.next() < 0.5 ? { q: text } : { call: JSON.stringify({ q: text }) }) }] });
    case 1:
      // A string that holds JSON-looking text that is not JSON: looked up itself.
      return JSON.stringify({ model: 'm', messages: [{ role: 'user', content: `{ ${text}` }] });
    case 2:
      return `{"k": "v", ${text}}`; // not JSON: the body is looked up as text
    case 3:
      return JSON.stringify({ model: 'm', messages: [{ role: 'system', content: 'You are a coding assistant.' }, { role: 'user', content: text }, { role: 'user', content: content(rng) }] });
    default:
      return JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: text }] });
  }
}

function randomCase(rng: Rng): { body: Buffer; meta: InspectBodyMeta } {
  const json = jsonBody(rng);
  const action = rng.pick(['block', 'redact', 'monitor'] as const);
  switch (rng.below(9)) {
    case 0:
      return { body: gzipSync(json), meta: { contentType: 'application/json', contentEncoding: 'gzip', action } };
    case 1:
      return { body: Buffer.from(json, 'utf16le'), meta: { contentType: 'application/json; charset=utf-16le', action } };
    case 2:
      return { body: Buffer.from(json, 'latin1'), meta: { contentType: 'application/json', action } };
    case 3:
      return { body: Buffer.from(content(rng)), meta: { contentType: rng.pick(['text/plain', '']), action } };
    default:
      return { body: Buffer.from(json), meta: { contentType: rng.pick(['application/json', '', 'application/vnd.api+json']), action } };
  }
}

describe('inspect fast path with a protected-code index', () => {
  it('reads the body\'s bytes as its text is read: inBodyBytes answers as inBody, or defers to it', () => {
    const cfg = configSchema.parse({ inspect: { fingerprints: [{ file: indexFile }] } }).inspect;
    const code = new ProtectedCode(loadProtectedCode(cfg.fingerprints));
    const rng = new Rng(5);
    const answers = { true: 0, false: 0, null: 0 };
    for (let n = 0; n < 600; n++) {
      const c = randomCase(rng);
      if (c.meta.contentEncoding !== undefined || c.meta.contentType?.includes('utf-16')) continue;
      const utf8 = isUtf8(c.body);
      const json = c.meta.contentType === 'application/json';
      const fromBytes = code.inBodyBytes(c.body, utf8, json);
      answers[String(fromBytes) as keyof typeof answers]++;
      if (fromBytes !== null) expect(fromBytes, `case ${n}: ${c.body.toString('latin1').slice(0, 300)}`).toBe(code.inBody(c.body.toString(utf8 ? 'utf8' : 'latin1'), json));
    }
    expect(answers.true).toBeGreaterThan(30);
    expect(answers.false).toBeGreaterThan(30);
    expect(answers.null).toBeGreaterThan(30);
  });

  it('a body holding protected code is looked up once: the full path reuses what the fast path found', async () => {
    const cfg = configSchema.parse({ inspect: { fingerprints: [{ file: indexFile }] } }).inspect;
    const protectedCode = loadProtectedCode(cfg.fingerprints);
    const fast = createInspector(cfg, { fingerprintKey: 'k', protectedCode });
    const full = createInspector(cfg, { fingerprintKey: 'k', protectedCode, fastPath: false });
    const copy = PROTECTED[0]!.slice(100, 160).join('\n');
    const meta: InspectBodyMeta = { contentType: 'application/json', action: 'block' };
    for (const body of [JSON.stringify({ model: 'm', messages: [{ role: 'user', content: `Why?\n${copy}` }] }), `{"messages": [{"content": "${JSON.stringify(copy).slice(1, -1)}"}], "x": "\u00e9"}`]) {
      const lookups = async (inspector: Inspector) => {
        resetWork();
        const out = await inspector.inspectBody(Buffer.from(body), meta);
        expect(out.findings.map((f) => f.rule)).toEqual(['protected-code:acme']);
        return work.lookups;
      };
      const once = await lookups(full);
      expect(once).toBeGreaterThan(0);
      expect(await lookups(fast)).toBe(once);
    }
  });

  it('finds exactly what the full scan finds, from the text where the bytes cannot tell', async () => {
    const fromBytes = ProtectedCode.prototype.inBodyBytes;
    ProtectedCode.prototype.inBodyBytes = () => null;
    try {
      await differential(20261299, 150);
    } finally {
      ProtectedCode.prototype.inBodyBytes = fromBytes;
    }
  });

  it('finds exactly what the full scan finds on random bodies (differential fuzz)', async () => {
    await differential(Number(process.env.AIGATE_FUZZ_SEED ?? 20261207), 400);
  });
});

async function differential(firstSeed: number, cases: number): Promise<void> {
  for (const [i, inspect] of [
    { fingerprints: [{ file: indexFile, action: 'redact' }] },
    { fingerprints: [{ file: indexFile, minLines: 12 }, { file: indexFile, label: 'again', minLines: 8, action: 'monitor' }] },
  ].entries()) {
    const cfg = configSchema.parse({ inspect }).inspect;
    const protectedCode = loadProtectedCode(cfg.fingerprints);
    const fast = createInspector(cfg, { fingerprintKey: 'k', protectedCode });
    const full = createInspector(cfg, { fingerprintKey: 'k', protectedCode, fastPath: false });
    const noWasm = createInspector(cfg, { fingerprintKey: 'k', protectedCode, wasm: false });
    const proof = new CleanProof(new Detector(BUILTIN_RULES, [], new Set()), ['\\u', '\\/']);
    const seed = firstSeed + i;
    const rng = new Rng(seed);
    let cleanWithCode = 0;
    let cleanWithout = 0;
    for (let n = 0; n < cases; n++) {
      const c = randomCase(rng);
      const a = await outcome(fast, c.body, c.meta);
      const b = (await outcome(full, c.body, c.meta)) as { findings?: Array<{ rule: string }> };
      expect(a, `seed ${seed} case ${n}: ${c.body.toString('latin1').slice(0, 300)}`).toEqual(b);
      // Sent again, its long strings' lookups come from memory (lookup-memo.ts): the same answer.
      expect(await outcome(fast, c.body, c.meta), `seed ${seed} case ${n} sent again`).toEqual(b);
      if (n % 4 === 0) expect(await outcome(noWasm, c.body, c.meta), `JS fallback, case ${n}`).toEqual(b);
      if (c.meta.contentEncoding === undefined && !c.meta.contentType?.includes('utf-16') && proof.provesClean(c.body, false)) {
        if ((b.findings ?? []).some((f) => f.rule.startsWith('protected-code:'))) cleanWithCode++;
        else cleanWithout++;
      }
    }
    // Both answers of the lookup on a body proved clean of secrets occur.
    expect(cleanWithCode, 'bodies free of secrets holding protected code').toBeGreaterThan(cases / 15);
    expect(cleanWithout, 'bodies free of secrets and of protected code').toBeGreaterThan(cases / 15);
  }
}

// The fast path with protected-code indexes configured, against the full scan: a body proved free
// of secrets and attachments is looked up in the indexes by ProtectedCode.inBody (the texts the
// full path would look up, read from the body), and must come out exactly as the full path has it —
// findings, lines, files and line ranges, decisions, redactions — on random bodies that mix copies
// of protected code (verbatim, renamed, re-indented, cut short), other code, secrets, nested JSON,
// JSON escapes, non-ASCII text, attachments and the other readings of a body.
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { DEFAULT_BUILD, IndexBuilder } from '../../src/fingerprint/build.js';
import { encodeIndex } from '../../src/fingerprint/index-file.js';
import { CleanProof } from '../../src/inspect/clean.js';
import { Detector } from '../../src/inspect/detector.js';
import { createInspector, type InspectBodyMeta, type Inspector } from '../../src/inspect/index.js';
import { loadProtectedCode } from '../../src/inspect/protected.js';
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
      return rng.pick(['—é€😀\u00a0', '\u2028', 'naïve café ', '\\u00e9\\n']);
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
  switch (rng.below(6)) {
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
  it('finds exactly what the full scan finds on random bodies (differential fuzz)', async () => {
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
      const seed = Number(process.env.AIGATE_FUZZ_SEED ?? 20261207) + i;
      const rng = new Rng(seed);
      let cleanWithCode = 0;
      let cleanWithout = 0;
      for (let n = 0; n < 400; n++) {
        const c = randomCase(rng);
        const a = await outcome(fast, c.body, c.meta);
        const b = (await outcome(full, c.body, c.meta)) as { findings?: Array<{ rule: string }> };
        expect(a, `seed ${seed} case ${n}: ${c.body.toString('latin1').slice(0, 300)}`).toEqual(b);
        if (n % 4 === 0) expect(await outcome(noWasm, c.body, c.meta), `JS fallback, case ${n}`).toEqual(b);
        if (c.meta.contentEncoding === undefined && !c.meta.contentType?.includes('utf-16') && proof.provesClean(c.body, false)) {
          if ((b.findings ?? []).some((f) => f.rule.startsWith('protected-code:'))) cleanWithCode++;
          else cleanWithout++;
        }
      }
      // Both answers of the lookup on a body proved clean of secrets occur.
      expect(cleanWithCode, 'bodies free of secrets holding protected code').toBeGreaterThan(30);
      expect(cleanWithout, 'bodies free of secrets and of protected code').toBeGreaterThan(30);
    }
  });
});

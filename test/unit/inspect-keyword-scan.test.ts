// The fast path's keyword scan over bytes: the WebAssembly Teddy filter and the JavaScript
// automaton (its fallback) against a plain reference, on random bytes full of keywords in mixed
// case, split across the filter's 16-byte blocks, next to UTF-8 and at both ends.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Detector } from '../../src/inspect/detector.js';
import { keywordScanner, type KeywordScanner } from '../../src/inspect/keyword-scan.js';
import { BUILTIN_RULES } from '../../src/inspect/rules/index.js';
import { Rng } from '../corpus/secrets.js';

const detector = new Detector(BUILTIN_RULES, [], new Set());
const keywords = detector.keywords;

/** Every (start, keyword), by a search for each keyword in the ASCII-lower-cased bytes. */
function reference(bytes: Buffer): string[] {
  const lower = Buffer.from(bytes.map((c) => (c >= 65 && c <= 90 ? c + 32 : c)));
  const out: string[] = [];
  for (const k of keywords) for (let i = lower.indexOf(k); i >= 0; i = lower.indexOf(k, i + 1)) out.push(`${i}:${k}`);
  return out.sort();
}

function scan(scanner: KeywordScanner, bytes: Buffer): string[] | null {
  const out: string[] = [];
  const ok =
    scanner.read(bytes, 1 << 20, 'u', () => true) &&
    scanner.occurrences((start, k) => {
      out.push(`${start}:${k}`);
      return true;
    });
  return ok ? out.sort() : null;
}

function randomBytes(rng: Rng): Buffer {
  const parts: string[] = [];
  const n = rng.int(0, 60);
  for (let i = 0; i < n; i++) {
    const k = rng.pick(keywords);
    const cased = [...k].map((c) => (rng.next() < 0.3 ? c.toUpperCase() : c)).join('');
    parts.push(rng.pick([cased, cased.slice(0, -1), 'x'.repeat(rng.below(20)), 'é—😀', '\\u0070', rng.str('abcdefpqstkyz_-.:/~ ', rng.below(40))]));
  }
  return Buffer.from(parts.join(''));
}

describe('keyword scan over bytes', () => {
  const wasm = keywordScanner(keywords, detector.automaton!);
  const js = keywordScanner(keywords, detector.automaton!, { wasm: false });

  it('loads the WebAssembly scanner (built by npm run build), and the automaton when told not to', () => {
    expect(wasm.kind).toBe('wasm');
    expect(js.kind).toBe('js');
  });

  it('finds exactly the keyword occurrences, in WebAssembly and in JavaScript', () => {
    const rng = new Rng(99);
    for (let i = 0; i < 400; i++) {
      const bytes = randomBytes(rng);
      const want = reference(bytes);
      expect(scan(wasm, bytes), bytes.toString('latin1')).toEqual(want);
      expect(scan(js, bytes), bytes.toString('latin1')).toEqual(want);
    }
    // Keywords at the very start and end, two-character ones last.
    for (const k of keywords) {
      const bytes = Buffer.from(`${k.toUpperCase()}${'.'.repeat(k.length * 7)}${k}`);
      expect(scan(wasm, bytes)).toEqual(reference(bytes));
    }
  });

  it('sizes windows the same way in both', () => {
    const rng = new Rng(5);
    for (let i = 0; i < 600; i++) {
      // Short and long walks (the WebAssembly one goes 16 bytes at a time while it can), \u escapes.
      const bytes = Buffer.from(`${rng.str(rng.pick(['ab\\\\"—', 'abcd\\\\u', 'aaaaaaaaaaaaaa\\u—']), rng.int(0, i < 100 ? 300 : 3000))}`);
      scan(wasm, bytes);
      scan(js, bytes);
      for (let k = 0; k < 5; k++) {
        const at = rng.int(0, bytes.length);
        const count = rng.int(0, i < 100 ? 50 : 1200);
        const weight = rng.pick([0, 5]);
        expect(wasm.back(at, count, weight), `${bytes.toString('latin1')} ${at} ${count} ${weight}`).toBe(js.back(at, count, weight));
        expect(wasm.forward(at, count, weight), `${bytes.toString('latin1')} ${at} ${count} ${weight}`).toBe(js.forward(at, count, weight));
      }
    }
  });

  it('falls back to the automaton where WebAssembly is unavailable (node --jitless), with the same findings', () => {
    const dist = fileURLToPath(new URL('../../dist/inspect/', import.meta.url));
    const script = `
      const { keywordScanner } = await import(${JSON.stringify(`${dist}keyword-scan.js`)});
      const { Detector } = await import(${JSON.stringify(`${dist}detector.js`)});
      const { BUILTIN_RULES } = await import(${JSON.stringify(`${dist}rules/index.js`)});
      const { createInspector } = await import(${JSON.stringify(`${dist}index.js`)});
      const d = new Detector(BUILTIN_RULES, [], new Set());
      const { configSchema } = await import(${JSON.stringify(`${dist}../config/schema.js`)});
      const inspector = createInspector(configSchema.parse({}).inspect, { fingerprintKey: 'k' });
      const meta = { contentType: 'application/json', action: 'block' };
      const clean = await inspector.inspectBody(Buffer.from(JSON.stringify({ m: 'a token here '.repeat(300) })), meta);
      const dirty = await inspector.inspectBody(Buffer.from(JSON.stringify({ m: 'x '.repeat(300) + 'password = "Zq8vLm2pRt7!x"' })), meta);
      console.log(JSON.stringify([typeof WebAssembly, keywordScanner(d.keywords, d.automaton).kind, clean.decision, dirty.decision]));`;
    const r = spawnSync(process.execPath, ['--jitless', '--no-warnings', '--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.stderr).not.toMatch(/Error/);
    expect(JSON.parse(r.stdout.trim())).toEqual(['undefined', 'js', 'allow', 'block']);
  });

  it('lists the runs the attachment probe looks at, exactly (WebAssembly; the automaton leaves them to the probe)', () => {
    const rng = new Rng(31);
    /** Maximal runs of base64 characters and backslashes at least `min` long, by a regular expression. */
    const want = (bytes: Buffer, min: number) => [...bytes.toString('latin1').matchAll(new RegExp(`[A-Za-z0-9+/_\\\\-]{${min},}`, 'g'))].flatMap((m) => [m.index, m.index + m[0].length]);
    for (let i = 0; i < 400; i++) {
      // Every byte value, runs across the filter's 16-byte blocks, at both ends.
      const bytes = Buffer.from(
        Array.from({ length: rng.int(0, 300) }, () => (rng.next() < 0.7 ? rng.str('aZ09+/-_\\', rng.int(1, 40)) : String.fromCharCode(rng.below(256)))).join(''),
        'latin1',
      );
      const min = rng.pick([16, 17, 24, 40]);
      scan(wasm, bytes);
      expect([...(wasm.runs(min) ?? [])], bytes.toString('latin1')).toEqual(want(bytes, min));
    }
    scan(js, Buffer.from('x'));
    expect(js.runs(16)).toBeUndefined();
    expect(wasm.runs(15)).toBeUndefined();
  });

  it('finds the escapes that may spell a keyword character, the same in both', () => {
    const rng = new Rng(8);
    const list = (scanner: KeywordScanner, bytes: Buffer, seconds: string) => {
      const out: number[] = [];
      scanner.read(bytes, 1 << 20, seconds, (at) => out.push(at) > 0);
      return out;
    };
    for (let i = 0; i < 300; i++) {
      const bytes = Buffer.from(rng.str('\\u/nU"x—', rng.int(0, 200)));
      const seconds = rng.pick(['u', 'u/', 'u/n\\"', 'U']);
      const want = [...bytes.keys()].filter((at) => bytes[at] === 0x5c && at + 1 < bytes.length && seconds.includes(String.fromCharCode(bytes[at + 1]!)));
      expect(list(wasm, bytes, seconds), bytes.toString('latin1')).toEqual(want);
      expect(list(js, bytes, seconds), bytes.toString('latin1')).toEqual(want);
    }
  });

  it('reads bodies longer than one call into WebAssembly (64 KiB): keywords, escapes and runs across the seams', () => {
    const rng = new Rng(64);
    const wantRuns = (bytes: Buffer) => [...bytes.toString('latin1').matchAll(/[A-Za-z0-9+/_\\-]{16,}/g)].flatMap((m) => [m.index, m.index + m[0].length]);
    for (let i = 0; i < 12; i++) {
      const bytes = Buffer.from(rng.str('. ,;()', 3 * 65536 + rng.below(100)), 'latin1');
      // Around each seam: a keyword, an escape and a run, each starting a little before or after it.
      for (const seam of [65536, 131072, 196608]) {
        const put = (at: number, text: string): void => void bytes.write(text, Math.max(0, Math.min(bytes.length - text.length, at)), 'latin1');
        put(seam + rng.int(-8, 2), rng.pick(keywords));
        put(seam + rng.int(-40, -20), rng.pick(['\\u0070', '\\/', '\\n']));
        put(seam + rng.int(-30, 10), rng.str('aZ09+/-_\\', rng.int(10, 60)));
      }
      const escapes: number[] = [];
      expect(wasm.read(bytes, 1 << 20, 'u/', (at) => escapes.push(at) > 0)).toBe(true);
      expect(escapes).toEqual([...bytes.keys()].filter((at) => bytes[at] === 0x5c && (bytes[at + 1] === 0x75 || bytes[at + 1] === 0x2f)));
      expect([...(wasm.runs(16) ?? [])]).toEqual(wantRuns(bytes));
      expect(scan(wasm, bytes)).toEqual(reference(bytes));
      expect(scan(js, bytes)).toEqual(reference(bytes));
    }
  });

  it('gives up past the limit of occurrences', () => {
    const bytes = Buffer.from('token '.repeat(100));
    for (const scanner of [wasm, js]) expect(scanner.read(bytes, 10, 'u', () => true) && scanner.occurrences(() => true)).toBe(false);
    for (const scanner of [wasm, js]) expect(scanner.read(bytes, 100, 'u', () => true) && scanner.occurrences(() => true)).toBe(true);
  });
});

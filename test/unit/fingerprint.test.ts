// Protected-code fingerprints: tokens blind to layout, comments and renaming; winnowing's
// guarantee; the index file refusing what it cannot trust; matches named by file and lines; and
// hostile input in linear time.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_BUILD, IndexBuilder } from '../../src/fingerprint/build.js';
import { decodeIndex, encodeIndex } from '../../src/fingerprint/index-file.js';
import { FingerprintMatcher } from '../../src/fingerprint/match.js';
import { tokenize } from '../../src/fingerprint/tokens.js';
import { winnow } from '../../src/fingerprint/winnow.js';
import { Rng } from '../corpus/secrets.js';
import { withCpuTime } from '../support/cpu.js';

const NM = resolve(import.meta.dirname, '../../node_modules');
const source = (p: string) => readFileSync(resolve(NM, p), 'utf8');
const ids = (text: string) => Array.from(tokenize(text).ids);
const exact = (text: string) => Array.from(tokenize(text).exact);

describe('tokens', () => {
  it('ignore layout and comments; the renaming-blind view ignores consistent renaming, the exact one does not', () => {
    const a = 'function total(items) {\n  let sum = 0; // running\n  for (const item of items) sum += item.price;\n  return sum;\n}';
    const b = 'function total( items ){ /* sum the prices */\n\tlet sum=0\n;for(const item of items)\n sum+=item.price;\nreturn sum; }';
    const renamed = 'function amount(xs) { let acc = 0; for (const x of xs) acc += x.price; return acc; }';
    const swapped = 'function total(items) { let sum = 0; for (const item of items) sum += sum.price; return item; }';
    expect(exact(b)).toEqual(exact(a));
    expect(ids(renamed)).toEqual(ids(a));
    expect(exact(renamed)).not.toEqual(exact(a));
    expect(ids(swapped)).not.toEqual(ids(a)); // which name is reused where still counts
  });

  it('a stray quote or a markdown fence ends at the line: it cannot swallow the code after it', () => {
    const code = 'const x = compute(a, b);\nreturn x * 2;';
    const tail = (t: string) => ids(t).slice(-ids(code).length);
    expect(tail("it's broken:\n" + code)).toEqual(ids(code));
    expect(tail('```js\n' + code)).toEqual(ids(code));
  });
});

describe('winnowing', () => {
  it('any shared stretch of w + k − 1 tokens gives a shared fingerprint', () => {
    const rng = new Rng(3);
    const k = 8;
    const w = 4;
    for (let round = 0; round < 200; round++) {
      const word = () => `v${rng.int(0, 39)}`;
      const shared = Array.from({ length: w + k - 1 }, word).join(' + ');
      const left = `${Array.from({ length: rng.int(0, 29) }, word).join(' * ')} ; ${shared} ; ${Array.from({ length: rng.int(0, 29) }, word).join(' - ')}`;
      const right = `${Array.from({ length: rng.int(0, 29) }, word).join(' / ')} ; ${shared}`;
      const a = new Set(winnow(tokenize(left), { k, w }, 'exact').hashes);
      const b = winnow(tokenize(right), { k, w }, 'exact').hashes;
      expect(b.some((h) => a.has(h)), `round ${round}`).toBe(true);
    }
  });
});

describe('index file', () => {
  const builder = new IndexBuilder({ ...DEFAULT_BUILD, label: 'acme' });
  builder.add('lib/ws.js', source('ws/lib/websocket.js'));
  const bytes = encodeIndex(builder.build());

  it('round-trips, and refuses a truncated, altered or other-version file with the reason', () => {
    const index = decodeIndex(bytes);
    expect(index).toMatchObject({ label: 'acme', k: DEFAULT_BUILD.k, w: DEFAULT_BUILD.w, files: [{ path: 'lib/ws.js' }] });
    expect(index.hashes.length).toBeGreaterThan(100);
    expect(() => decodeIndex(bytes.subarray(0, bytes.length - 100))).toThrow(/truncated or was altered/);
    const altered = Buffer.from(bytes);
    altered[altered.length - 200]! ^= 1;
    expect(() => decodeIndex(altered)).toThrow(/checksum mismatch/);
    const other = Buffer.from(bytes);
    other.writeUInt32LE(99, 8);
    expect(() => decodeIndex(other)).toThrow(/version 99/);
    expect(() => decodeIndex(Buffer.from('{"not":"an index"}'))).toThrow(/not an aigate fingerprint index/);
  });
});

describe('matching', () => {
  const builder = new IndexBuilder({ ...DEFAULT_BUILD, label: 'acme' });
  builder.add('src/websocket.js', source('ws/lib/websocket.js'));
  builder.add('src/receiver.js', source('ws/lib/receiver.js'));
  const matcher = new FingerprintMatcher(decodeIndex(encodeIndex(builder.build())), 8);
  const lines = source('ws/lib/receiver.js').split('\n');

  it('finds 20 copied lines, reformatted and renamed, inside a chat message, naming file and lines', () => {
    const start = lines.findIndex((l) => l.includes('getInfo(cb) {'));
    expect(start).toBeGreaterThan(0);
    const snippet = lines.slice(start, start + 20).join('\n');
    const edited = snippet.replace(/\bcb\b/g, 'done').replace(/\bdata\b/g, 'chunk').replace(/^ +/gm, '\t');
    const [m] = matcher.match(`Why does this fail?\n\n\`\`\`js\n${edited}\n\`\`\`\nthanks`);
    expect(m).toMatchObject({ label: 'acme', file: 'src/receiver.js' });
    expect(m!.fileStart).toBeGreaterThanOrEqual(start + 1);
    expect(m!.fileEnd).toBeLessThanOrEqual(start + 20);
    expect(m!.lines).toBeGreaterThanOrEqual(8);
    expect(m!.textStart).toBeGreaterThanOrEqual(4);
  });

  it('other code, and fewer than minLines copied lines, are no match', () => {
    expect(matcher.match(source('undici/lib/core/util.js'))).toEqual([]);
    const start = lines.findIndex((l) => l.includes('getInfo(cb) {'));
    expect(matcher.match(lines.slice(start, start + 4).join('\n'))).toEqual([]);
  });

  it('pathological repetition is linear and matches nothing', async () => {
    const { value, ms } = await withCpuTime(() => matcher.match('a = a; '.repeat(300_000) + '"'.repeat(500_000) + '/*'.repeat(200_000)));
    expect(value).toEqual([]);
    expect(ms).toBeLessThan(5000); // ~0.1 s here; quadratic would take hours
  });
});

describe('runs need more than one chance fingerprint', () => {
  it('one k-gram stretched over many protected lines by comments is no match (renamed: one view hits)', () => {
    const comments = Array.from({ length: 10 }, (_, i) => `// step ${i} of the explanation`).join('\n');
    const builder = new IndexBuilder({ ...DEFAULT_BUILD, label: 'acme' });
    builder.add('src/a.js', `const alpha = compute(beta, gamma);\n${comments}\nreturn alpha + beta * gamma - delta * 2;\n`);
    const matcher = new FingerprintMatcher(decodeIndex(encodeIndex(builder.build())), 8);
    // Same shape, other names: only the renaming-blind view meets it, once.
    expect(matcher.match('const a = compute(b, c);\nreturn a + b * c - d * 2;\n')).toEqual([]);
  });
});

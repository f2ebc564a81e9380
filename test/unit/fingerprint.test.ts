// Protected-code fingerprints: tokens blind to layout, comments and renaming; winnowing's
// guarantee; the index file refusing what it cannot trust; matches named by file and lines; and
// hostile input in linear time.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_BUILD, IndexBuilder } from '../../src/fingerprint/build.js';
import { decodeIndex, encodeIndex } from '../../src/fingerprint/index-file.js';
import { FingerprintMatcher, MAX_TOKENS } from '../../src/fingerprint/match.js';
import { tokenize, tokenizeJs, wasmTokenizer, WASM_MAX_CHARS } from '../../src/fingerprint/tokens.js';
import { gramHashes, gramValues, winnow, winnowJs } from '../../src/fingerprint/winnow.js';
import { resetWork, work } from '../../src/fingerprint/work.js';
import { Rng } from '../corpus/secrets.js';

const NM = resolve(import.meta.dirname, '../../node_modules');
const source = (p: string) => readFileSync(resolve(NM, p), 'utf8');
/** The renaming-blind view of a whole text: each name by the distance back to its previous use. */
const ids = (text: string) => {
  const t = tokenize(text);
  return Array.from(gramValues(t, 0, t.length, 'context', new Int32Array(t.length)));
};
const exact = (text: string) => Array.from(tokenize(text).exact);
/** The hash of every k-gram of one view. */
const grams = (text: string, view: 'ids' | 'exact', k = DEFAULT_BUILD.k) => {
  const t = tokenize(text);
  const out = new Int32Array(Math.max(0, t.length));
  return Array.from(out.subarray(0, gramHashes(t, k, view, out)));
};

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

  it('renaming a local leaves a property of the same name as it was (`this.socket = socket`)', () => {
    const a = 'constructor(socket, opts) {\n  this.socket = socket;\n  this.opts = { socket: socket, timeout: opts.timeout };\n  socket.on("data", this.onData);\n}';
    const b = 'constructor(conn, options) {\n  this.socket = conn;\n  this.opts = { socket: conn, timeout: options.timeout };\n  conn.on("data", this.onData);\n}';
    expect(ids(b)).toEqual(ids(a));
    expect(grams(b, 'ids')).toEqual(grams(a, 'ids'));
  });

  it('a k-gram of the renaming-blind view depends on its own tokens only: a snippet has the k-grams its file has there', () => {
    // A name's previous use before the snippet's first line must not change the snippet's first
    // k-grams: the eval's renamed 8-line snippets were missed for that.
    const text = source('ws/lib/receiver.js');
    const lines = text.split('\n');
    const whole = tokenize(text);
    const all = grams(text, 'ids');
    for (const from of [120, 200, 333, 420]) {
      const snippet = lines.slice(from - 1, from + 29).join('\n');
      const first = whole.lines.findIndex((l) => l >= from);
      const part = grams(snippet, 'ids');
      expect(part.length).toBeGreaterThan(20);
      expect(part, `from line ${from}`).toEqual(all.slice(first, first + part.length));
    }
  });

  it('the WebAssembly tokenizer gives the JavaScript one\'s stream, to the token and the line (its fallback)', () => {
    const wasm = wasmTokenizer();
    expect(wasm, 'dist/fingerprint/wasm/tokens.wasm (npm run build)').not.toBeNull();
    const stream = (t: ReturnType<typeof tokenize>) => ({ shape: Array.from(t.shape), exact: Array.from(t.exact), prev: Array.from(t.prev), lines: Array.from(t.lines), length: t.length, chars: t.chars });
    const same = (text: string, max: number, what: string) => {
      resetWork();
      const js = stream(tokenizeJs(text, max));
      const probes = work.probes;
      expect(stream(wasm!.tokenize(text, max)), what).toEqual(js);
      expect(work.probes - probes, `${what}: name-table probes`).toBe(probes);
      // Winnowed there too: the same fingerprints and k-gram hashes as in JavaScript.
      const fps = (f: ReturnType<typeof winnow>) => ({ hashes: Array.from(f.hashes), starts: Array.from(f.starts), ends: Array.from(f.ends), positions: Array.from(f.positions), length: f.length, grams: Array.from(f.grams) });
      for (const params of [DEFAULT_BUILD, { k: 3, w: 1 }, { k: 5, w: 9 }, { k: 70, w: 4 }]) {
        for (const view of ['ids', 'exact'] as const) {
          const expected = fps(winnowJs(tokenizeJs(text, max), params, view));
          const tokens = wasm!.tokenize(text, max);
          expect(tokens.wasm?.winnow(params.k, params.w, view), 'winnowed in WebAssembly').not.toBeNull();
          expect(fps(winnow(tokens, params, view)), `${what}: ${view} view, k ${params.k}, w ${params.w}`).toEqual(expected);
        }
      }
    };
    for (const file of ['ws/lib/receiver.js', 'ws/lib/websocket.js', 'undici/lib/core/util.js', 'yaml/dist/compose/composer.js']) {
      const text = source(file);
      for (const max of [Number.MAX_SAFE_INTEGER, 1000, 7]) same(text, max, `${file}, ${max} tokens at most`);
    }
    // Every character class, edge, and the name table's reset (more than 8,192 names).
    const rng = new Rng(11);
    const alphabet = ['a', 'Zq', '_$', '0x1f', '1e6.5', ' ', '  ', '\t', '\n', '\r\n', '"', "'", '`', '\\', '\\"', '#', '/', '//', '/*', '*/', '*', '.', ':', '::', '{', '(', ';', 'é', '€', '😀', '\ud800', '\u00a0', 'if', 'return', 'this', 'None', '\u0000', '\u007f'];
    for (let i = 0; i < 300; i++) {
      let text = '';
      for (let j = rng.int(0, 400); j > 0; j--) text += rng.pick(alphabet);
      if (i % 50 === 0) for (let j = 0; j < 9000; j++) text += ` n${j}${rng.pick(['.p', ': ', ' = '])}`;
      same(text, rng.pick([Number.MAX_SAFE_INTEGER, rng.int(0, 50)]), `random text ${i}: ${JSON.stringify(text.slice(0, 200))}`);
    }
    // Longer texts take the JavaScript tokenizer.
    expect(stream(tokenize('x = 1;'.repeat(WASM_MAX_CHARS / 6 + 1)))).toEqual(stream(tokenizeJs('x = 1;'.repeat(WASM_MAX_CHARS / 6 + 1))));
  });

  it('the WebAssembly tokenizer unescapes a JSON string\'s bytes as JSON.parse does, UTF-8 or latin1', () => {
    const wasm = wasmTokenizer()!;
    const rng = new Rng(12);
    const pieces = ['a', ' ', '\\n', '\\"', '\\\\', '\\/', '\\b', '\\f', '\\r', '\\t', '\\u0041', '\\uD83D\\uDE00', '\\udc00', '\\uFFFF', '\\u00e9', 'é', '€', '😀', '\u0080', '\u00ff', '\x7f'];
    const bad = ['\\x41', '\\u12G4', '\\u12', '\u0001', '\n', '\t', '\\ ', '\\'];
    let refused = 0;
    for (let i = 0; i < 2000; i++) {
      let raw = '';
      for (let j = rng.int(0, 30); j > 0; j--) raw += rng.pick(pieces);
      if (i % 5 === 0) raw = raw.slice(0, raw.length >> 1) + rng.pick(bad) + raw.slice(raw.length >> 1);
      for (const encoding of ['utf8', 'latin1'] as const) {
        if (encoding === 'latin1' && /[^\u0000-\u00ff]/.test(raw)) continue;
        const bytes = Buffer.from(`"${raw}"`, encoding);
        // Only contents that a string of JSON can have: no quote that would end it early.
        if (/(^|[^\\])(\\\\)*"/.test(raw)) continue;
        let expected: string | null;
        try {
          expected = JSON.parse(bytes.toString(encoding)) as string;
        } catch {
          expected = null;
        }
        const units = wasm.loadJsonString(bytes, 1, bytes.length - 1, encoding === 'utf8');
        if (expected === null) {
          expect(units, `${encoding} ${JSON.stringify(raw)}`).toBe(-1);
          refused++;
          continue;
        }
        expect(units, `${encoding} ${JSON.stringify(raw)}`).toBe(expected.length);
        expect(wasm.loaded(units), `${encoding} ${JSON.stringify(raw)}`).toBe(expected);
        const tokens = wasm.tokenizeLoaded(units, Number.MAX_SAFE_INTEGER);
        const js = tokenizeJs(expected);
        expect([Array.from(tokens.exact), Array.from(tokens.lines), tokens.chars], `${encoding} ${JSON.stringify(raw)}`).toEqual([Array.from(js.exact), Array.from(js.lines), js.chars]);
      }
    }
    expect(refused).toBeGreaterThan(200);
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
    // Version 1 (aigate before the renaming-blind view was cut to the k-gram) is refused, not misread.
    other.writeUInt32LE(1, 8);
    expect(() => decodeIndex(other)).toThrow('index format version 1; this aigate reads version 2 (rebuild it with `aigate fingerprint build`)');
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

  it('pathological repetition is looked up in linear time and matches nothing', () => {
    // Work units (work.ts), not time: characters, name-table probes, lookups, searches and hits
    // per character stay the same when the input doubles.
    const hostile = (n: number) => 'a = a; '.repeat(30_000 * n) + '"'.repeat(50_000 * n) + '/*'.repeat(20_000 * n) + '\n'.repeat(10_000 * n) + '\tb.c(d, e);'.repeat(10_000 * n);
    const perChar = (n: number) => {
      const text = hostile(n);
      resetWork();
      expect(matcher.match(text)).toEqual([]);
      return (text.length + work.probes + work.lookups + work.steps + work.hits) / text.length;
    };
    const one = perChar(1);
    expect(one).toBeLessThan(3);
    expect(perChar(2)).toBeLessThanOrEqual(one * 1.05);
  });

  it('names crafted to collide in the tokenizer\'s table cost a bounded number of probes each', () => {
    // FNV-1a names sharing one slot of the 16,384-slot table: uncapped, each use would probe past
    // every name already there (quadratic in the number of names).
    const slotOf = (name: string) => {
      let h = 0x811c9dc5 | 0;
      for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
      return (h ^ (h >>> 15)) & 16383;
    };
    const names: string[] = [];
    for (let i = 0; names.length < 200; i++) if (slotOf(`q${i}`) === 77) names.push(`q${i}`);
    const text = Array.from({ length: 20 }, () => names.join(' + ')).join(';\n');
    resetWork();
    const tokens = tokenize(text, MAX_TOKENS);
    const identifiers = names.length * 20;
    expect(tokens.length).toBeGreaterThan(identifiers);
    expect(work.probes).toBeLessThanOrEqual(8 * identifiers);
  });
});

describe('counting lines', () => {
  const doc = Array.from({ length: 10 }, (_, i) => ` * step ${i} of the explanation`).join('\n');
  const code = [
    'const total = items.reduce((sum, item) => sum + item.price * item.quantity, 0);',
    'const discount = customer.tier === "gold" ? total * 0.1 : customer.coupon?.value ?? 0;',
    'const shipping = total - discount > freeShippingThreshold ? 0 : shippingRates[region];',
    'const taxes = Math.round((total - discount) * taxRates[region].standard * 100) / 100;',
    'return { total, discount, shipping, taxes, due: total - discount + shipping + taxes };',
  ];
  const text = `function quote(items, customer, region) {\n${code.slice(0, 3).join('\n')}\n/**\n${doc}\n */\n${code.slice(3).join('\n')}\n}\n`;
  const builder = new IndexBuilder({ ...DEFAULT_BUILD, label: 'acme' });
  builder.add('src/quote.js', text);
  const index = decodeIndex(encodeIndex(builder.build()));

  it('a run counts the lines of code it covers (and small gaps), not a block of documentation in between', () => {
    // 7 lines of code around 12 lines of comment: not 8 lines of protected code, though the
    // k-grams reaching from line 4 to line 17 span 18.
    expect(new FingerprintMatcher(index, 8).match(text)).toEqual([]);
    const [m] = new FingerprintMatcher(index, 6).match(text);
    expect(m).toMatchObject({ file: 'src/quote.js', fileStart: 1 });
    expect(m!.fileEnd).toBeGreaterThanOrEqual(17);
    expect(m!.lines).toBeGreaterThanOrEqual(6);
    expect(m!.lines).toBeLessThanOrEqual(7);
  });

  it('an 8-line copy is counted to its ends: every k-gram around a hit is looked up', () => {
    // The prompt's winnowed fingerprints near a copy's ends are not those the index kept (its
    // windows there reach other code): without the lookups around hits, many counted 6–7 lines.
    const file = source('ws/lib/receiver.js');
    const lines = file.split('\n');
    const b = new IndexBuilder({ ...DEFAULT_BUILD, label: 'acme' });
    b.add('src/receiver.js', file);
    const m = new FingerprintMatcher(decodeIndex(encodeIndex(b.build())), 8);
    let tried = 0;
    let found = 0;
    for (let at = 0; at + 8 <= lines.length; at++) {
      const part = lines.slice(at, at + 8);
      if (!part.every((l) => l.trim().length > 3 && !/^\s*(\/\/|\*|\/\*)/.test(l))) continue;
      tried++;
      if (m.match(`Look:\n\n${part.join('\n')}\n`).length > 0) found++;
    }
    expect(tried).toBeGreaterThan(30);
    expect(found / tried).toBeGreaterThan(0.95); // 0.98 here; 0.88 without line anchors, 0.68 without the lookups around hits
  });
});

describe('line anchors', () => {
  const file = source('ws/lib/receiver.js');
  const lines = file.split('\n');
  const matcher = (lineAnchors: boolean, add = (b: IndexBuilder) => b.add('src/receiver.js', file)) => {
    const b = new IndexBuilder({ ...DEFAULT_BUILD, lineAnchors, label: 'acme' });
    add(b);
    return new FingerprintMatcher(decodeIndex(encodeIndex(b.build())), 8);
  };
  const anchored = matcher(true);
  const plain = matcher(false);
  /** Lines from..from+7 (1-based) of receiver.js, renamed, in a chat message after 3 lines of prose. */
  const copy = (from: number) => `Why does this throw?\n\n\n${lines.slice(from - 1, from + 7).join('\n').replace(/\berror\b/g, 'err')}\n`;

  it('count a copy\'s short first and last lines: an 8-line copy is 8 lines', () => {
    // `const {` (2 tokens) opens one copy, `'WS_ERR_UNEXPECTED_RSV_1'` (1 token) ends the other:
    // winnowing kept no k-gram starting on the first nor ending on the last, so each counted 7.
    const first = lines.indexOf('const {') + 1;
    const last = lines.flatMap((l, i) => (l.includes("'WS_ERR_UNEXPECTED_RSV_1'") ? [i + 1] : []))[1]!;
    expect(lines[first]).toContain('BINARY_TYPES');
    for (const from of [first, last - 7]) {
      expect(plain.match(copy(from)), `lines ${from}–${from + 7}, without anchors`).toEqual([]);
      expect(anchored.match(copy(from)), `lines ${from}–${from + 7}`).toEqual([{ label: 'acme', file: 'src/receiver.js', fileStart: from, fileEnd: from + 7, lines: 8, textStart: 4, textEnd: 11 }]);
    }
  });

  it('a blank line between an anchored line and the next counts, as inside a k-gram', () => {
    // `'use strict'`, a blank, a require, a blank, then code: the anchor covers line 1 alone.
    const text = source('undici/lib/interceptor/redirect.js');
    const m = matcher(true, (b) => b.add('lib/redirect.js', text));
    expect(m.match(text.split('\n').slice(0, 8).join('\n'))).toMatchObject([{ file: 'lib/redirect.js', fileStart: 1, fileEnd: 8, lines: 8 }]);
  });

  it('an anchor stands for its own line: a table of the same shape is no 8-line copy', () => {
    // ioredis's `const SubscriberStatus = {` and zod's `const formatMap = {` each open a table of
    // five `key: "string",` rows. Spanning its k-gram's lines (7–12), the anchor of the opening
    // line made zod's table an 8-line match of ioredis's (bench/fingerprint-eval.mjs, seeds 8, 9).
    const zod = source('zod/v4/core/json-schema-processors.js').split('\n');
    const at = zod.indexOf('const formatMap = {');
    expect(at).toBeGreaterThan(0);
    const m = matcher(true, (b) => b.add('built/ShardedSubscriber.js', source('ioredis/built/cluster/ShardedSubscriber.js')));
    expect(m.match(zod.slice(at - 2, at + 12).join('\n'))).toEqual([]);
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

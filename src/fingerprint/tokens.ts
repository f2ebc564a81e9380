// Source text → a stream of normalised tokens, the same for every language and every layout:
// whitespace and comments vanish, identifiers become one token, numbers another, string literals a
// third; keywords and punctuation stay themselves. Renaming variables, re-indenting, re-wrapping or
// re-commenting a piece of code therefore does not change its tokens, which is what lets a
// fingerprint of protected code survive being pasted into a prompt with cosmetic edits.
//
// One pass over the characters, constant work per character, no regular expressions: hostile
// input (a megabyte of quotes or slashes) costs the same as code.

import { instantiate, loadWasmModule, type WasmMemory, type WasmModule } from '../wasm.js';
import type { Fingerprints } from './winnow.js';
import { work } from './work.js';

/**
 * The tokens, one entry each, and the 1-based line each starts on.
 * `exact` is blind to layout and comments only: an identifier is its name.
 * `shape` is blind to names too: every identifier is IDENT. Alone that would make every
 * `a = b + c` equal to every `x = y + z`; the renaming-blind view (winnow.ts's `ids`) therefore
 * adds `prev`, the distance back to the previous use of the same name (0 for none), and encodes
 * each identifier of a k-gram by that distance *when the previous use lies inside the same k-gram*
 * (Baker's parameterised strings, cut to the window). Renaming every name consistently changes
 * nothing, `a = b + a` and `a = b + c` stay different, and — because a k-gram's encoding depends
 * on its own tokens alone — a snippet cut from a file has exactly the k-grams the file has there
 * (a distance reaching back before the snippet's first line would otherwise change its first ones).
 */
export interface TokenStream {
  shape: Int32Array;
  exact: Int32Array;
  prev: Int32Array;
  lines: Int32Array;
  length: number;
  /** Characters read (all of the text unless `maxTokens` cut it). */
  chars: number;
  /**
   * A stream the WebAssembly tokenizer left in its memory: winnowed there (winnow.ts), while it is
   * the last one it made (null otherwise, or for a k it has no room for: winnow.ts does it then).
   */
  wasm?: { winnow(k: number, w: number, view: 'ids' | 'exact'): Fingerprints | null };
}

export const IDENT = 0x1d3a_4c21 | 0;
const NUMBER = 0x5e9f_0b17 | 0;
const STRING = 0x7c11_86e3 | 0;

/** The renaming-blind id of an identifier whose previous use is `distance` tokens back in its k-gram. */
export function paramId(distance: number): number {
  return (IDENT + Math.imul(distance, 0x9e3779b1)) | 0;
}

/**
 * Words that shape code in the common languages; every other word is an identifier. Only words
 * that no language uses as an ordinary name: `map`, `type` or `match` would make a method call in
 * one language look like syntax, and a rename to or from them change the tokens.
 */
export const KEYWORDS: ReadonlySet<string> = new Set([
  'if', 'else', 'elif', 'for', 'while', 'do', 'switch', 'case', 'default', 'break', 'continue', 'return', 'yield',
  'function', 'def', 'fn', 'func', 'lambda', 'class', 'struct', 'enum', 'interface', 'trait', 'impl',
  'new', 'delete', 'try', 'catch', 'except', 'finally', 'throw', 'throws', 'raise', 'with', 'as', 'in', 'is',
  'not', 'and', 'or', 'import', 'from', 'export', 'const', 'let', 'var', 'static', 'public', 'private',
  'protected', 'final', 'abstract', 'async', 'await', 'void', 'null', 'nil', 'true', 'false', 'this', 'super',
  'extends', 'implements', 'typeof', 'instanceof', 'undefined', 'None', 'True', 'False', 'self',
]);

function fnv(text: string): number {
  let h = 0x811c9dc5 | 0;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h | 0;
}

// Keywords by the hash of their text, in an open-addressed table (identifiers are hashed as they
// are scanned, never sliced, and looked up without a Map).
const KW_MASK = 255;
const kwHashes = new Int32Array(KW_MASK + 1);
const kwUsed = new Uint8Array(KW_MASK + 1);
for (const k of KEYWORDS) {
  const h = fnv(k);
  let slot = (h ^ (h >>> 16)) & KW_MASK;
  while (kwUsed[slot] === 1) slot = (slot + 1) & KW_MASK;
  kwUsed[slot] = 1;
  kwHashes[slot] = h;
}

function isKeyword(h: number): boolean {
  for (let slot = (h ^ (h >>> 16)) & KW_MASK; kwUsed[slot] === 1; slot = (slot + 1) & KW_MASK) if (kwHashes[slot] === h) return true;
  return false;
}

const punctIds = new Int32Array(128);
for (let c = 0; c < 128; c++) punctIds[c] = fnv(`p${String.fromCharCode(c)}`);
const DOT = punctIds[46]!;
const PROPERTY = 0x2c5b_3e71;

// What each ASCII character starts (any other character counts as a letter).
const PUNCT = 0;
const SPACE = 1;
const NEWLINE = 2;
const LETTER = 3;
const DIGIT = 4;
const QUOTE = 5;
const HASH = 6;
const SLASH = 7;
const kind = new Uint8Array(128).fill(PUNCT);
for (let c = 0; c < 128; c++) {
  if (c === 32 || c === 9 || c === 13 || c === 12 || c === 11) kind[c] = SPACE;
  else if (c === 10) kind[c] = NEWLINE;
  else if ((c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c === 36) kind[c] = LETTER;
  else if (c >= 48 && c <= 57) kind[c] = DIGIT;
  else if (c === 34 || c === 39 || c === 96) kind[c] = QUOTE;
  else if (c === 35) kind[c] = HASH;
  else if (c === 47) kind[c] = SLASH;
}

/** 1 for an ASCII character that continues an identifier (or a number: `0x1f`, `1e6`, `10n`). */
const wordPart = new Uint8Array(128);
for (let c = 0; c < 128; c++) wordPart[c] = kind[c] === LETTER || kind[c] === DIGIT ? 1 : 0;

/**
 * Tokenises `text` (at most `maxTokens` tokens; the rest is ignored, so a caller bounds its work).
 * The arrays returned are only valid until the next call.
 * Comments: `//` and `#` to the end of the line, `/* … *\/`. Strings: '…', "…", `…` with backslash
 * escapes, each ending at the end of its line at the latest.
 * The WebAssembly tokenizer (wasm/tokens.ts) does the work where it loads, for texts of up to
 * WASM_MAX_CHARS characters; tokenizeJs otherwise. Both give the same stream.
 */
export function tokenize(text: string, maxTokens = Number.MAX_SAFE_INTEGER): TokenStream {
  const wasm = text.length <= WASM_MAX_CHARS ? wasmTokenizer() : null;
  return wasm !== null ? wasm.tokenize(text, maxTokens) : tokenizeJs(text, maxTokens);
}

/** The JavaScript tokenizer: what tokenize does where WebAssembly is unavailable. */
export function tokenizeJs(text: string, maxTokens = Number.MAX_SAFE_INTEGER): TokenStream {
  const cap = Math.min(maxTokens, text.length);
  if (scratch.shape.length < cap) {
    const size = Math.max(cap, scratch.shape.length * 2);
    scratch = { shape: new Int32Array(size), exact: new Int32Array(size), prev: new Int32Array(size), lines: new Int32Array(size) };
  }
  const { shape, exact, prev, lines } = scratch;
  let n = 0;
  let line = 1;
  const n0 = text.length;
  // Last token index of each identifier name, in an open-addressed table keyed by the name's hash
  // (a Map costs an allocation per new name); `stamp` makes clearing it between calls free.
  useStamp = (useStamp + 1) | 0 || 1;
  const stamp = useStamp;
  let fill = 0;
  let probes = 0;
  let i = 0;
  while (i < n0 && n < cap) {
    const c = text.charCodeAt(i);
    const what = c < 128 ? kind[c]! : LETTER;
    if (what === SPACE) {
      // Indentation comes in runs.
      while (++i < n0 && text.charCodeAt(i) === 32);
      continue;
    }
    if (what === NEWLINE) {
      line++;
      i++;
      continue;
    }
    if (what === LETTER) {
      let h = 0x811c9dc5 | 0;
      for (; i < n0; i++) {
        const d = text.charCodeAt(i);
        if (d < 128 && wordPart[d] === 0) break;
        h = Math.imul(h ^ d, 0x01000193);
      }
      lines[n] = line;
      prev[n] = 0;
      if (isKeyword(h)) {
        shape[n] = h;
        exact[n] = h;
        n++;
        continue;
      }
      // A property (a name after `.`, or before `:` as an object key or a named argument) is
      // linked to earlier uses of the same property only, not to a local of that name: renaming
      // the local `socket` leaves `this.socket = socket` and `{ socket: socket }` as they were.
      let after = i;
      while (after < n0 && (text.charCodeAt(after) === 32 || text.charCodeAt(after) === 9)) after++;
      const property = (n > 0 && shape[n - 1] === DOT) || (text.charCodeAt(after) === 58 && text.charCodeAt(after + 1) !== 58);
      const key = property ? (h ^ PROPERTY) | 0 : h;
      let slot = (key ^ (key >>> 15)) & USE_MASK;
      // Probes are capped: names crafted to share a slot would otherwise cost a probe per name
      // already seen, each (quadratic); past the cap a name takes the slot of another.
      let probe = 0;
      while (useStamps[slot] === stamp && useNames[slot] !== key && probe < MAX_PROBES) {
        slot = (slot + 1) & USE_MASK;
        probe++;
      }
      probes += probe;
      if (useStamps[slot] === stamp && useNames[slot] === key) prev[n] = n - useAt[slot]!;
      else {
        if (useStamps[slot] !== stamp && ++fill > USE_MAX_FILL) {
          // Too many names for the table: start afresh (only reuses across the reset are lost,
          // and the renaming-blind view only looks k tokens back).
          fill = 0;
          slot = (key ^ (key >>> 15)) & USE_MASK;
          useStamps.fill(0);
        }
        useStamps[slot] = stamp;
        useNames[slot] = key;
      }
      useAt[slot] = n;
      shape[n] = IDENT;
      exact[n] = (h ^ IDENT) | 0;
      n++;
      continue;
    }
    if (what === DIGIT) {
      for (; i < n0; i++) {
        const d = text.charCodeAt(i);
        if (d < 128 && wordPart[d] === 0 && d !== 46) break;
      }
      lines[n] = line;
      prev[n] = 0;
      shape[n] = NUMBER;
      exact[n] = NUMBER;
      n++;
      continue;
    }
    if (what === QUOTE) {
      const at = line;
      i++;
      while (i < n0) {
        const d = text.charCodeAt(i);
        if (d === 92) {
          i += 2;
          continue;
        }
        if (d === c) {
          i++;
          break;
        }
        // Every literal ends at its line's end, template literals too: a stray quote or a markdown
        // fence (```) in a prompt must not swallow the code after it.
        if (d === 10) break;
        i++;
      }
      lines[n] = at;
      prev[n] = 0;
      shape[n] = STRING;
      exact[n] = STRING;
      n++;
      continue;
    }
    // Comments.
    if (what === HASH || (what === SLASH && text.charCodeAt(i + 1) === 47)) {
      const nl = text.indexOf('\n', i);
      i = nl === -1 ? n0 : nl;
      continue;
    }
    if (what === SLASH && text.charCodeAt(i + 1) === 42) {
      const close = text.indexOf('*/', i + 2);
      const end = close === -1 ? n0 : close + 2;
      for (let nl = text.indexOf('\n', i + 2); nl !== -1 && nl < end; nl = text.indexOf('\n', nl + 1)) line++;
      i = end;
      continue;
    }
    const id = c < 128 ? punctIds[c]! : IDENT;
    lines[n] = line;
    prev[n] = 0;
    shape[n] = id;
    exact[n] = id;
    n++;
    i++;
  }
  work.probes += probes;
  return { shape: shape.subarray(0, n), exact: exact.subarray(0, n), prev: prev.subarray(0, n), lines: lines.subarray(0, n), length: n, chars: i };
}

// Scratch space reused by every call (tokenising is synchronous, and a stream is consumed before
// the next call): zero-filling fresh arrays cost more than the tokenising itself.
let scratch = { shape: new Int32Array(0), exact: new Int32Array(0), prev: new Int32Array(0), lines: new Int32Array(0) };
const USE_SIZE = 1 << 14;
const USE_MASK = USE_SIZE - 1;
const USE_MAX_FILL = USE_SIZE >> 1;
const MAX_PROBES = 8;
const useStamps = new Int32Array(USE_SIZE);
const useNames = new Int32Array(USE_SIZE);
const useAt = new Int32Array(USE_SIZE);
let useStamp = 0;

// ---- The WebAssembly tokenizer (wasm/tokens.ts, built by `npm run build` with AssemblyScript).

/**
 * Longer texts take the JavaScript tokenizer: the module's memory holds the text (2 bytes a
 * character) and four arrays of up to one entry per character, and never shrinks (a 1 Mi-character
 * text: up to 18 MiB in each thread that tokenises one).
 */
export const WASM_MAX_CHARS = 1 << 20;

// Memory layout (wasm/tokens.ts): tables, the name table, the result, then the text and the output.
const TABLES = 0;
const USE = 4096;
const RESULT = USE + 3 * USE_SIZE * 4;
const TEXT = RESULT + 64;
/** Room for winnowing's powers of the base and its ring (winnow.ts): k + the ring's size. */
const SCRATCH_INTS = 4096;

type TokenizeExport = (tables: number, use: number, text: number, n0: number, cap: number, shape: number, exact: number, prev: number, lines: number, stamp: number, result: number) => number;

export class WasmTokenizer {
  private readonly memory: WasmMemory;
  private readonly run: TokenizeExport;
  private readonly unescape: (src: number, len: number, utf8: number, dst: number) => number;
  private readonly gramHashes: (shape: number, exact: number, prev: number, n: number, k: number, ids: number, ident: number, scratch: number, ringMask: number, out: number) => number;
  private readonly select: (grams: number, count: number, w: number, k: number, lines: number, hashes: number, starts: number, ends: number, positions: number) => number;
  private generation = 0;
  private bytes!: Buffer;
  private stamp = 0;

  constructor(module: WasmModule) {
    const exports = instantiate(module);
    this.memory = exports.memory as WasmMemory;
    this.run = exports.tokenize as TokenizeExport;
    this.unescape = exports.unescapeJson as WasmTokenizer['unescape'];
    this.gramHashes = exports.gramHashes as WasmTokenizer['gramHashes'];
    this.select = exports.select as WasmTokenizer['select'];
    this.grow(TEXT);
    this.bytes = Buffer.from(this.memory.buffer);
    const b = this.bytes;
    b.set(kind, TABLES);
    b.set(wordPart, TABLES + 128);
    new Int32Array(this.memory.buffer, TABLES + 256, 128).set(punctIds);
    new Int32Array(this.memory.buffer, TABLES + 768, KW_MASK + 1).set(kwHashes);
    b.set(kwUsed, TABLES + 1792);
    new Int32Array(this.memory.buffer, TABLES + 2048, 8).set([IDENT, NUMBER, STRING, PROPERTY, USE_MASK, USE_MAX_FILL, MAX_PROBES, KW_MASK]);
  }

  private grow(bytes: number): void {
    const have = this.memory.buffer.byteLength;
    if (bytes > have) this.memory.grow(Math.ceil((bytes - have) / 65536));
    if (this.bytes !== undefined && this.bytes.buffer !== this.memory.buffer) this.bytes = Buffer.from(this.memory.buffer);
  }

  tokenize(text: string, maxTokens: number): TokenStream {
    this.grow(TEXT + text.length * 2);
    // Code units as they are (lone surrogates too): what charCodeAt reads.
    this.bytes.write(text, TEXT, 'utf16le');
    return this.tokenizeLoaded(text.length, maxTokens);
  }

  /**
   * Loads the content of a JSON string, `bytes[start, end)` (between its quotes), unescaped as
   * JSON.parse would: returns its length in UTF-16 code units (what the string's `length` is), or
   * −1 where JSON.parse would refuse it. `utf8`: valid UTF-8, else latin1. tokenizeLoaded then
   * tokenises it as tokenize would the string.
   */
  loadJsonString(bytes: Buffer, start: number, end: number, utf8: boolean): number {
    const len = end - start;
    // The bytes go into the upper half of the text's room and are unescaped down into it.
    this.grow(TEXT + len * 2);
    bytes.copy(this.bytes, TEXT + len, start, end);
    return this.unescape(TEXT + len, len, utf8 ? 1 : 0, TEXT);
  }

  /**
   * False when the `n0` code units loaded surely do not open with `[` or `{` after blanks (what
   * looksLikeJson tells of a string); true when they do, or may (a character from U+0080 first).
   */
  startsJson(n0: number): boolean {
    const units = new Uint16Array(this.memory.buffer, TEXT, n0);
    for (let i = 0; i < n0; i++) {
      const c = units[i]!;
      if (c === 0x5b || c === 0x7b || c >= 0x80) return true;
      if (c !== 32 && (c < 9 || c > 13)) return false;
    }
    return false;
  }

  /** The `n0` code units loaded last, as a string (for tests). */
  loaded(n0: number): string {
    let out = '';
    const units = new Uint16Array(this.memory.buffer, TEXT, n0);
    for (let i = 0; i < n0; i += 4096) out += String.fromCharCode(...units.subarray(i, Math.min(n0, i + 4096)));
    return out;
  }

  /** tokenize of the `n0` code units loaded last (tokenize's or loadJsonString's). */
  tokenizeLoaded(n0: number, maxTokens: number): TokenStream {
    const cap = Math.min(maxTokens, n0);
    const shapeAt = TEXT + ((n0 * 2 + 15) & ~15);
    const exactAt = shapeAt + cap * 4;
    const prevAt = exactAt + cap * 4;
    const linesAt = prevAt + cap * 4;
    // Room for winnowing too, taken now: memory that grows later would leave the stream's arrays
    // (views of the memory before) empty.
    const gramsAt = linesAt + cap * 4;
    const outAt = gramsAt + cap * 4; // 4 arrays of fingerprints for each view
    const scratchAt = outAt + cap * 32;
    this.grow(scratchAt + SCRATCH_INTS * 4);
    this.stamp = (this.stamp + 1) | 0 || 1;
    const n = this.run(TABLES, USE, TEXT, n0, cap, shapeAt, exactAt, prevAt, linesAt, this.stamp, RESULT);
    const buffer = this.memory.buffer;
    const result = new Int32Array(buffer, RESULT, 2);
    work.probes += result[1]!;
    const generation = ++this.generation;
    const winnow = (k: number, w: number, view: 'ids' | 'exact'): Fingerprints | null => {
      let size = 64;
      while (size < k) size *= 2;
      if (generation !== this.generation || k + size > SCRATCH_INTS || k < 1 || w < 1) return null;
      const grams = this.gramHashes(shapeAt, exactAt, prevAt, n, k, view === 'ids' ? 1 : 0, IDENT, scratchAt, size - 1, gramsAt);
      const buf = this.memory.buffer;
      const at = outAt + (view === 'ids' ? 0 : cap * 16);
      const count = grams <= 0 ? 0 : this.select(gramsAt, grams, w, k, linesAt, at, at + cap * 4, at + cap * 8, at + cap * 12);
      return {
        hashes: new Uint32Array(buf, at, count),
        starts: new Int32Array(buf, at + cap * 4, count),
        ends: new Int32Array(buf, at + cap * 8, count),
        positions: new Int32Array(buf, at + cap * 12, count),
        length: count,
        grams: new Int32Array(buf, gramsAt, Math.max(0, grams)),
      };
    };
    return { shape: new Int32Array(buffer, shapeAt, n), exact: new Int32Array(buffer, exactAt, n), prev: new Int32Array(buffer, prevAt, n), lines: new Int32Array(buffer, linesAt, n), length: n, chars: result[0]!, wasm: { winnow } };
  }
}

let wasmState: WasmTokenizer | null | undefined;

/** The WebAssembly tokenizer, or null where it cannot load (no WebAssembly, or not built). */
export function wasmTokenizer(): WasmTokenizer | null {
  if (wasmState !== undefined) return wasmState;
  wasmState = null;
  const module = loadWasmModule('fingerprint/wasm/tokens.wasm');
  try {
    if (module !== null) wasmState = new WasmTokenizer(module);
  } catch {
    // no WebAssembly memory to be had here: tokenizeJs does the work
  }
  return wasmState;
}

// Keyword occurrences in a body's bytes, for the fast path (clean.ts): every (start, keyword) where
// a keyword occurs, case-insensitively as the detector matches them (ASCII letters fold, a byte
// ≥ 128 is never part of one — as in the decoded text, UTF-8 or latin1).
//
// Two implementations with the same answers (test/unit/inspect-keyword-scan.test.ts):
// - WebAssembly with SIMD (wasm/keywords.ts, built by `npm run build` with AssemblyScript from the
//   npm registry): a Teddy filter, then an exact trie walk. The automaton below costs ~3 ns per
//   byte on the bench host (one dependent table load per byte, in JavaScript or WebAssembly
//   alike); the filter has no such chain.
// - The keyword automaton over the bytes (keywords.ts), when WebAssembly, SIMD or the built
//   module is unavailable, or when turned off.
import { instantiate, loadWasmModule, type WasmMemory, type WasmModule } from '../wasm.js';
import type { AutomatonFinder } from './keywords.js';

export interface KeywordScanner {
  /** 'wasm' or 'js': which implementation answers. */
  readonly kind: 'wasm' | 'js';
  /**
   * Takes `bytes` (the other methods answer for them until the next call) and calls
   * `escape(at)` for every backslash in them followed by one of `seconds` (ASCII), in order. The
   * WebAssembly one finds the occurrences and runs in the same pass. Returns false when `escape`
   * stopped it or there are more than `limit` keyword occurrences (or may be: the JS one tells
   * only in `occurrences`).
   */
  read(bytes: Uint8Array, limit: number, seconds: string, escape: (at: number) => boolean): boolean;
  /**
   * Calls `visit(start, keyword)` for every occurrence in the bytes read, every keyword at each
   * start: by start for the WebAssembly one, by end (longest first) for the JS one. Returns false
   * when `visit` stopped it or there were more than `limit` occurrences.
   */
  occurrences(visit: (start: number, keyword: string) => boolean): boolean;
  /**
   * In the bytes read (valid until the next call): from `at`, back over
   * `count` bytes that yield one character in every reading of the text (not a backslash, below
   * 128; each backslash followed by `u` adds `weight` to the count: \uXXXX turns five such bytes
   * into one character, at whatever level it is undone), then past any backslashes. clean.ts sizes its
   * windows with these.
   */
  back(at: number, count: number, weight: number): number;
  /** The same forward. */
  forward(at: number, count: number, weight: number): number;
  /**
   * In the bytes read: the runs of base64 characters and backslashes at least `minLength` (≥ 16)
   * long, as [start, end) pairs in order, for the attachment probe (attachments.ts
   * mayHoldAttachmentBytes); undefined when this scanner leaves that to the probe.
   */
  runs(minLength: number): Int32Array | undefined;
}

function jsBack(bytes: Uint8Array, at: number, count: number, weight: number): number {
  let i = at;
  while (i > 0 && count > 0) {
    const c = bytes[--i]!;
    if (c === 0x5c) {
      if (bytes[i + 1] === 0x75) count += weight;
    } else if (c < 0x80) count--;
  }
  while (i > 0 && bytes[i - 1] === 0x5c) i--;
  return i;
}

function jsForward(bytes: Uint8Array, at: number, count: number, weight: number): number {
  let i = at;
  const n = bytes.length;
  while (i < n && count > 0) {
    const c = bytes[i]!;
    if (c === 0x5c) {
      if (bytes[i + 1] === 0x75) count += weight;
    } else if (c < 0x80) count--;
    i++;
  }
  return i;
}

class AutomatonScanner implements KeywordScanner {
  readonly kind = 'js';
  private bytes: Uint8Array = new Uint8Array(0);
  private limit = 0;
  constructor(private readonly automaton: AutomatonFinder) {}

  read(bytes: Uint8Array, limit: number, seconds: string, escape: (at: number) => boolean): boolean {
    this.bytes = bytes;
    this.limit = limit;
    const want = new Uint8Array(256);
    for (let i = 0; i < seconds.length; i++) want[seconds.charCodeAt(i)] = 1;
    for (let at = bytes.indexOf(0x5c); at >= 0; at = bytes.indexOf(0x5c, at + 1)) {
      if (want[bytes[at + 1] ?? 0] === 1 && !escape(at)) return false;
    }
    return true;
  }

  back(at: number, count: number, weight: number): number {
    return jsBack(this.bytes, at, count, weight);
  }

  forward(at: number, count: number, weight: number): number {
    return jsForward(this.bytes, at, count, weight);
  }

  runs(): undefined {
    return undefined;
  }

  occurrences(visit: (start: number, keyword: string) => boolean): boolean {
    let left = this.limit;
    let ok = true;
    this.automaton.forEachEndInBytes(this.bytes, (end, keywords) => {
      for (const k of keywords) {
        if (--left < 0 || !visit(end - k.length, k)) {
          ok = false;
          return false;
        }
      }
      return true;
    });
    return ok;
  }
}

const BUCKETS = 16;
/** Bytes read per call into WebAssembly (a multiple of the filter's 16): the escapes of one are handed out at a time. */
const SLICE = 64 * 1024;
/** The shortest run the pass lists (wasm/keywords.ts): one that fills or crosses a block. */
const RUN_MIN = 16;
const MASKS = 0;
const TRIE = 256;
/** Characters of a keyword the filter looks at. */
const FILTERED = 4;

let wasmModule: WasmModule | null | undefined;

/** The compiled keyword module, loaded once; null where it cannot be (the automaton does the work). */
function loadModule(): WasmModule | null {
  if (wasmModule === undefined) wasmModule = loadWasmModule('inspect/wasm/keywords.wasm');
  return wasmModule;
}

class TeddyScanner implements KeywordScanner {
  readonly kind = 'wasm';
  private readonly memory: WasmMemory;
  private readonly pass: (
    masks: number,
    trie: number,
    terminal: number,
    text: number,
    from: number,
    to: number,
    len: number,
    maxKeyword: number,
    occOut: number,
    occMax: number,
    tables: number,
    escOut: number,
    runOut: number,
    runMax: number,
    ctx: number,
  ) => number;
  private readonly walkBack: (text: number, at: number, count: number, weight: number) => number;
  private readonly walkForward: (text: number, len: number, at: number, count: number, weight: number) => number;
  private readonly escapeTables: number;
  /** The pass's running counts (int32 × 4, see wasm/keywords.ts read). */
  private readonly ctx: number;
  private length = 0;
  /** Where the last read left its occurrences and runs, and how many (-1: none, the read failed). */
  private occOut = 0;
  private occCount = -1;
  private runOut = 0;
  private runCount = -1;
  private readonly stateKeyword: string[] = [];
  private readonly terminal: number;
  private readonly text: number;
  private readonly maxKeyword: number;

  constructor(module: WasmModule, keywords: readonly string[]) {
    const exports = instantiate(module);
    this.memory = exports.memory as WasmMemory;
    this.pass = exports.read as TeddyScanner['pass'];
    this.walkBack = exports.walkBack as TeddyScanner['walkBack'];
    this.walkForward = exports.walkForward as TeddyScanner['walkForward'];
    // The trie: next state + 1 per (state, character), A–Z folded onto a–z.
    const next: number[][] = [[]];
    const ends: boolean[] = [false];
    this.stateKeyword.push('');
    for (const k of keywords) {
      let s = 0;
      for (let i = 0; i < k.length; i++) {
        const c = k.charCodeAt(i);
        let n = next[s]![c];
        if (n === undefined) {
          n = next.length;
          next.push([]);
          ends.push(false);
          this.stateKeyword.push('');
          next[s]![c] = n;
        }
        s = n;
      }
      ends[s] = true;
      this.stateKeyword[s] = k;
    }
    const states = next.length;
    this.terminal = TRIE + states * 128 * 4;
    this.escapeTables = (this.terminal + states * 4 + 15) & ~15;
    this.ctx = this.escapeTables + 32;
    this.text = this.ctx + 16;
    this.grow(this.text);
    const trie = new Int32Array(this.memory.buffer, TRIE, states * 128);
    const terminal = new Int32Array(this.memory.buffer, this.terminal, states);
    for (let s = 0; s < states; s++) {
      for (let c = 0; c < 128; c++) {
        const lower = c >= 65 && c <= 90 ? c + 32 : c;
        const n = next[s]![lower];
        trie[s * 128 + c] = n === undefined ? 0 : n + 1;
      }
      terminal[s] = ends[s] ? 1 : 0;
    }
    const masks = new Uint8Array(this.memory.buffer, MASKS, 256);
    masks.set(teddyMasks(keywords));
    this.maxKeyword = Math.max(...keywords.map((k) => k.length));
  }

  private grow(bytes: number): void {
    const have = this.memory.buffer.byteLength;
    if (bytes > have) this.memory.grow(Math.ceil((bytes - have) / 65536));
  }

  back(at: number, count: number, weight: number): number {
    return this.walkBack(this.text, at, count, weight);
  }

  forward(at: number, count: number, weight: number): number {
    return this.walkForward(this.text, this.length, at, count, weight);
  }

  read(bytes: Uint8Array, limit: number, seconds: string, escape: (at: number) => boolean): boolean {
    const n = bytes.length;
    this.length = n;
    this.occCount = -1;
    this.runCount = -1;
    // After the text (and the 32 zero bytes the loads read past its end): the occurrences, the
    // runs (apart by a byte at least: this many fit), one slice's escapes.
    const occMax = Math.max(0, Math.min(limit, 1 << 20));
    const occOut = (this.text + n + 32 + 7) & ~7;
    const runMax = Math.floor(n / (RUN_MIN + 1)) + 2;
    const runOut = occOut + (occMax + 1) * 8;
    const escOut = runOut + runMax * 8;
    this.grow(escOut + SLICE * 4);
    const mem = new Uint8Array(this.memory.buffer);
    mem.set(bytes, this.text);
    mem.fill(0, this.text + n, this.text + n + 32);
    mem.fill(0, this.ctx, this.ctx + 16);
    // The characters after the backslash, by nibble: a bit per high nibble (0–7) in the low nibble's entry.
    const tables = mem.subarray(this.escapeTables, this.escapeTables + 32);
    tables.fill(0);
    for (let i = 0; i < seconds.length; i++) {
      const c = seconds.charCodeAt(i);
      tables[c & 15]! |= 1 << (c >> 4);
      tables[16 + (c >> 4)] = 1 << (c >> 4);
    }
    for (let from = 0; from < n; from += SLICE) {
      const to = Math.min(n, from + SLICE);
      const count = this.pass(MASKS, TRIE, this.terminal, this.text, from, to, n, this.maxKeyword, occOut, occMax, this.escapeTables, escOut, runOut, runMax, this.ctx);
      if (count < 0) return false;
      const at = new Int32Array(this.memory.buffer, escOut, count);
      for (let i = 0; i < count; i++) if (!escape(at[i]!)) return false;
    }
    const ctx = new Int32Array(this.memory.buffer, this.ctx, 2);
    this.occOut = occOut;
    this.occCount = ctx[0]!;
    this.runOut = runOut;
    this.runCount = ctx[1]!;
    return true;
  }

  runs(minLength: number): Int32Array | undefined {
    // The pass sees only runs that cross or fill a block.
    if (minLength < RUN_MIN || this.runCount < 0) return undefined;
    const all = new Int32Array(this.memory.buffer, this.runOut, this.runCount * 2);
    if (minLength === RUN_MIN) return all.slice();
    const out: number[] = [];
    for (let i = 0; i < all.length; i += 2) if (all[i + 1]! - all[i]! >= minLength) out.push(all[i]!, all[i + 1]!);
    return Int32Array.from(out);
  }

  occurrences(visit: (start: number, keyword: string) => boolean): boolean {
    if (this.occCount < 0) return false;
    const pairs = new Int32Array(this.memory.buffer, this.occOut, this.occCount * 2);
    for (let i = 0; i < pairs.length; i += 2) {
      if (!visit(pairs[i]!, this.stateKeyword[pairs[i + 1]!]!)) return false;
    }
    return true;
  }
}

/** Per keyword's first FILTERED characters (both cases), at each offset: the low and high nibbles they have. */
function nibbles(k: string): number[] {
  const out: number[] = [];
  for (let o = 0; o < FILTERED; o++) {
    let lo = 0;
    let hi = 0;
    if (o >= k.length) {
      lo = hi = 0xffff; // a shorter keyword: any byte there
    } else {
      const c = k.charCodeAt(o);
      for (const x of c >= 97 && c <= 122 ? [c, c - 32] : [c]) {
        lo |= 1 << (x & 15);
        hi |= 1 << (x >> 4);
      }
    }
    out.push(lo, hi);
  }
  return out;
}

/**
 * Rough frequencies of bytes in prompts, prose and code alike: lower-case letters in English order
 * of frequency, capitals a tenth as often, blanks, digits and punctuation. A bucket passes any mix
 * of its members' nibbles, so which keywords share one decides how often the filter stops on
 * ordinary text: weighed by these, the bench's 256 KiB of code stops it 4× less often (18k → 4k
 * positions) than with every byte equally likely.
 */
const TEXT_FREQUENCY: Float64Array = (() => {
  const f = new Float64Array(256);
  const letters = 'etaoinshrdlcumwfgypbvkjxqz';
  const total = (letters.length * (letters.length + 1)) / 2;
  for (let i = 0; i < letters.length; i++) {
    const share = (letters.length - i) / total;
    f[letters.charCodeAt(i)] = 0.6 * share;
    f[letters.toUpperCase().charCodeAt(i)] = 0.06 * share;
  }
  f[32] = 0.15;
  for (const c of '0123456789.,;:()[]{}"\'=_-/\\\n<>*+!?#$%&|`~@^') f[c.charCodeAt(0)] = 0.003;
  return f;
})();

/** A bucket's chance to pass a position of ordinary text (TEXT_FREQUENCY): what grouping minimises. */
function passRate(n: readonly number[] | null): number {
  if (n === null) return 0;
  let rate = 1;
  for (let o = 0; o < FILTERED; o++) {
    let p = 0;
    for (let c = 0; c < 128; c++) if ((n[2 * o]! >> (c & 15)) & 1 && (n[2 * o + 1]! >> (c >> 4)) & 1) p += TEXT_FREQUENCY[c]!;
    rate *= p;
  }
  return rate;
}

/**
 * The filter's nibble tables: keywords grouped into BUCKETS by their first three characters,
 * greedily (most selective first, each into the bucket its nibbles widen least), since a bucket
 * passes any mix of its members' nibbles. 256 bytes: buckets 0–7 then 8–15, each as lo/hi × 4 offsets.
 */
function teddyMasks(keywords: readonly string[]): Uint8Array {
  const prefixes = [...new Set(keywords.map((k) => k.slice(0, FILTERED)))].sort();
  prefixes.sort((a, b) => passRate(nibbles(a)) - passRate(nibbles(b)) || (a < b ? -1 : 1));
  const buckets: Array<number[] | null> = Array.from({ length: BUCKETS }, () => null);
  for (const p of prefixes) {
    const n = nibbles(p);
    let best = 0;
    let bestCost = Infinity;
    buckets.forEach((cur, i) => {
      const merged = cur ? cur.map((v, j) => v | n[j]!) : n;
      const cost = passRate(merged) - passRate(cur);
      if (cost < bestCost) {
        bestCost = cost;
        best = i;
      }
    });
    const cur = buckets[best];
    buckets[best] = cur ? cur.map((v, j) => v | n[j]!) : n;
  }
  const masks = new Uint8Array(256);
  buckets.forEach((n, b) => {
    if (n === null) return;
    const base = b < 8 ? 0 : 128;
    const bit = 1 << (b & 7);
    for (let o = 0; o < FILTERED; o++) {
      for (let x = 0; x < 16; x++) {
        if ((n[2 * o]! >> x) & 1) masks[base + o * 32 + x]! |= bit;
        if ((n[2 * o + 1]! >> x) & 1) masks[base + o * 32 + 16 + x]! |= bit;
      }
    }
  });
  return masks;
}

/**
 * The scanner for the detector's keywords (lower-case ASCII, as AutomatonFinder takes them): the
 * WebAssembly one unless `wasm` is false or it cannot load (or a keyword is shorter than two
 * characters, which the filter's buckets do not take).
 */
export function keywordScanner(keywords: readonly string[], automaton: AutomatonFinder, opts: { wasm?: boolean } = {}): KeywordScanner {
  if (opts.wasm !== false && keywords.length > 0 && keywords.every((k) => k.length >= 2)) {
    const module = loadModule();
    if (module !== null) {
      try {
        return new TeddyScanner(module, keywords);
      } catch {
        // fall through to the automaton
      }
    }
  }
  return new AutomatonScanner(automaton);
}

// k-gram hashing and winnowing (Schleimer, Wilkerson, Aiken: "Winnowing: local algorithms for
// document fingerprinting", SIGMOD 2003). Every run of k consecutive tokens is hashed; of every
// window of w consecutive k-gram hashes the smallest is kept (the rightmost on ties, and each kept
// once). Guarantee: any stretch of at least w + k − 1 tokens shared by two texts yields at least one
// common fingerprint; nothing shorter than k tokens ever does. O(n) expected (the paper's rescan).
//
// No allocation per call: the results live in scratch arrays, valid until the next call with the
// same `view` (a lookup consumes one view's fingerprints before winnowing the other); `grams`, the
// hash of every k-gram, until the next call whatever its view.
import { IDENT, paramId, type TokenStream } from './tokens.js';

export interface Fingerprints {
  hashes: Uint32Array;
  /** Line of the k-gram's first and last token. */
  starts: Int32Array;
  ends: Int32Array;
  /** Index of the k-gram's first token in the stream. */
  positions: Int32Array;
  length: number;
  /** The hash of every k-gram (not only the fingerprints), by position, as signed integers. */
  grams: Int32Array;
}

export interface WinnowParams {
  /** Tokens per k-gram. */
  k: number;
  /** k-grams per window. */
  w: number;
}

/**
 * `ids`: renaming-blind (tokens.ts: an identifier is the distance back to the previous use of its
 * name inside the same k-gram); `exact`: identifiers by name.
 */
export type View = 'ids' | 'exact';

/** Polynomial rolling hash base (odd, so multiplication is invertible mod 2^32). */
const BASE = 0x01000193;

/**
 * The hash of every k-gram of one view into `out` (h = Σ v[i+j]·BASE^(k−1−j), finalised), rolled
 * in O(1) per k-gram. Returns the number of k-grams.
 */
export function gramHashes(tokens: TokenStream, k: number, view: View, out: Int32Array): number {
  const grams = tokens.length - k + 1;
  if (grams <= 0) return 0;
  const pow = powers(k);
  const top = pow[k - 1]!; // BASE^(k−1)
  if (view === 'exact') {
    const ids = tokens.exact;
    let h = 0;
    for (let j = 0; j < k; j++) h = (Math.imul(h, BASE) + ids[j]!) | 0;
    out[0] = mix(h);
    for (let i = 1; i < grams; i++) {
      h = (Math.imul(h - Math.imul(ids[i - 1]!, top), BASE) + ids[i + k - 1]!) | 0;
      out[i] = mix(h);
    }
    return grams;
  }
  // Renaming-blind: token q of the k-gram starting at s counts its distance prev[q] only when
  // q − prev[q] ≥ s. When the k-gram slides past s, at most one token of it pointed back at s
  // (a name's next use): that one becomes a first use. `next[s & mask]` remembers it.
  const { shape, prev } = tokens;
  const mask = ringMask(k);
  const next = ring;
  const at = (q: number, s: number): number => {
    const d = prev[q]!;
    if (d > 0 && q - d >= s) {
      next[(q - d) & mask] = q;
      return paramId(d);
    }
    return shape[q]!;
  };
  let h = 0;
  for (let j = 0; j < k; j++) h = (Math.imul(h, BASE) + at(j, 0)) | 0;
  out[0] = mix(h);
  for (let s = 0; s + 1 < grams; s++) {
    // The use of a name that pointed back at token s (if it is in this k-gram) loses its distance.
    const q = next[s & mask]!;
    if (q > s && q < s + k && q - prev[q]! === s) h = (h - Math.imul(paramId(q - s) - IDENT, pow[k - 1 - (q - s)]!)) | 0;
    // Token s is the first of its k-gram: never a distance, its shape.
    h = (Math.imul(h - Math.imul(shape[s]!, top), BASE) + at(s + k, s + 1)) | 0;
    out[s + 1] = mix(h);
  }
  return grams;
}

/**
 * The values of the k-gram at `start`, for the index builder's filters: `exact`, or `context`, the
 * renaming-blind view with distances reaching before the k-gram kept (up to k back) — what the
 * code there looks like in its file: a table's rows are alike from the first one on.
 */
export function gramValues(tokens: TokenStream, start: number, k: number, view: 'exact' | 'context', out: Int32Array): Int32Array {
  for (let j = 0; j < k; j++) {
    const q = start + j;
    const d = tokens.prev[q]!;
    out[j] = view === 'exact' ? tokens.exact[q]! : d > 0 && d < k ? paramId(d) : tokens.shape[q]!;
  }
  return out;
}

/** Winnows one view of the tokens. */
export function winnow(tokens: TokenStream, { k, w }: WinnowParams, view: View = 'ids'): Fingerprints {
  // Where the WebAssembly tokenizer left the stream, the same steps run there (wasm/tokens.ts).
  const done = tokens.wasm?.winnow(k, w, view);
  if (done) return done;
  return winnowJs(tokens, { k, w }, view);
}

/** winnow in JavaScript: for streams of the JavaScript tokenizer, and the WebAssembly one's fallback. */
export function winnowJs(tokens: TokenStream, { k, w }: WinnowParams, view: View = 'ids'): Fingerprints {
  const grams = Math.max(0, tokens.length - k + 1);
  if (scratchHashes.length < grams) scratchHashes = new Int32Array(Math.max(grams, scratchHashes.length * 2));
  const out = view === 'ids' ? outIds : outExact;
  if (grams === 0) return empty(out);
  const gramHash = scratchHashes;
  gramHashes(tokens, k, view, gramHash);
  // At most one fingerprint per window start past the first, and at most 2/(w+1) of the k-grams
  // on average: the bound below is the worst case (w = 1 keeps them all).
  const capacity = grams;
  if (out.hashes.length < capacity) {
    const size = Math.max(capacity, out.hashes.length * 2);
    out.hashes = new Uint32Array(size);
    out.starts = new Int32Array(size);
    out.ends = new Int32Array(size);
    out.positions = new Int32Array(size);
  }
  const { hashes, starts, ends, positions } = out;
  const lines = tokens.lines;
  let n = 0;
  const window = Math.min(w, grams);
  // The window's minimum, rescanned only when it leaves the window (1 step in w on average): a
  // deque of increasing hashes costs a mispredicted branch per k-gram, this mostly one compare.
  let min = -1;
  let last = -1;
  for (let i = window - 1; i < grams; i++) {
    const left = i - window + 1;
    if (min < left) {
      min = left;
      for (let j = left + 1; j <= i; j++) if (gramHash[j]! <= gramHash[min]!) min = j;
    } else if (gramHash[i]! <= gramHash[min]!) min = i;
    if (min !== last) {
      last = min;
      hashes[n] = gramHash[min]! >>> 0;
      starts[n] = lines[min]!;
      ends[n] = lines[min + k - 1]!;
      positions[n] = min;
      n++;
    }
  }
  return { hashes: hashes.subarray(0, n), starts: starts.subarray(0, n), ends: ends.subarray(0, n), positions: positions.subarray(0, n), length: n, grams: gramHash.subarray(0, grams) };
}

interface Out {
  hashes: Uint32Array;
  starts: Int32Array;
  ends: Int32Array;
  positions: Int32Array;
}

function empty(out: Out): Fingerprints {
  return { hashes: out.hashes.subarray(0, 0), starts: out.starts.subarray(0, 0), ends: out.ends.subarray(0, 0), positions: out.positions.subarray(0, 0), length: 0, grams: new Int32Array(0) };
}

// Scratch space for the k-gram hashes and each view's fingerprints, reused by every call
// (synchronous).
let scratchHashes = new Int32Array(0);
const outIds: Out = { hashes: new Uint32Array(0), starts: new Int32Array(0), ends: new Int32Array(0), positions: new Int32Array(0) };
const outExact: Out = { hashes: new Uint32Array(0), starts: new Int32Array(0), ends: new Int32Array(0), positions: new Int32Array(0) };
let ring = new Int32Array(64);

function ringMask(k: number): number {
  let size = 64;
  while (size < k) size *= 2;
  if (ring.length < size) ring = new Int32Array(size);
  return size - 1;
}

const powerTables = new Map<number, Int32Array>();
/** BASE^0 … BASE^(k−1), mod 2^32. */
function powers(k: number): Int32Array {
  let p = powerTables.get(k);
  if (!p) {
    p = new Int32Array(k);
    p[0] = 1;
    for (let j = 1; j < k; j++) p[j] = Math.imul(p[j - 1]!, BASE);
    powerTables.set(k, p);
  }
  return p;
}

/**
 * Finaliser (murmur3's): rolling hashes of similar k-grams differ in few bits; minima must not
 * cluster. Kept as a signed 32-bit integer, which V8 compares without converting to a double (the
 * minimum is taken in that order; the index and the fingerprints hold the same bits unsigned).
 */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}

// k-gram hashing and winnowing (Schleimer, Wilkerson, Aiken: "Winnowing: local algorithms for
// document fingerprinting", SIGMOD 2003). Every run of k consecutive tokens is hashed; of every
// window of w consecutive k-gram hashes the smallest is kept (the rightmost on ties, and each kept
// once). Guarantee: any stretch of at least w + k − 1 tokens shared by two texts yields at least one
// common fingerprint; nothing shorter than k tokens ever does. O(n) with a monotone deque.
import type { TokenStream } from './tokens.js';

export interface Fingerprints {
  hashes: Uint32Array;
  /** Line of the k-gram's first and last token. */
  starts: Int32Array;
  ends: Int32Array;
  /** Index of the k-gram's first token in the stream. */
  positions: Int32Array;
  length: number;
}

export interface WinnowParams {
  /** Tokens per k-gram. */
  k: number;
  /** k-grams per window. */
  w: number;
}

/** Polynomial rolling hash base (odd, so multiplication is invertible mod 2^32). */
const BASE = 0x01000193;

/** Winnows one view of the tokens (`ids`, the default, or `exact`). */
export function winnow(tokens: TokenStream, { k, w }: WinnowParams, view: 'ids' | 'exact' = 'ids'): Fingerprints {
  const ids = tokens[view];
  const grams = tokens.length - k + 1;
  const out: Fingerprints = { hashes: new Uint32Array(0), starts: new Int32Array(0), ends: new Int32Array(0), positions: new Int32Array(0), length: 0 };
  if (grams <= 0) return out;
  // Hash of every k-gram, rolled: h = Σ id[i+j]·BASE^(k−1−j).
  if (scratchHashes.length < grams) {
    scratchHashes = new Uint32Array(grams);
    scratchDeque = new Int32Array(grams);
  }
  const gramHash = scratchHashes;
  let top = 1; // BASE^(k−1)
  for (let j = 1; j < k; j++) top = Math.imul(top, BASE);
  let h = 0;
  for (let j = 0; j < k; j++) h = (Math.imul(h, BASE) + ids[j]!) | 0;
  gramHash[0] = mix(h);
  for (let i = 1; i < grams; i++) {
    h = (Math.imul(h - Math.imul(ids[i - 1]!, top), BASE) + ids[i + k - 1]!) | 0;
    gramHash[i] = mix(h);
  }
  const capacity = Math.ceil((2 * grams) / (w + 1)) + 2;
  const hashes = new Uint32Array(capacity);
  const starts = new Int32Array(capacity);
  const ends = new Int32Array(capacity);
  const positions = new Int32Array(capacity);
  let n = 0;
  const keep = (i: number) => {
    if (n === hashes.length) return; // cannot happen past the density bound; a guard, not a path
    hashes[n] = gramHash[i]!;
    starts[n] = tokens.lines[i]!;
    ends[n] = tokens.lines[i + k - 1]!;
    positions[n] = i;
    n++;
  };
  const window = Math.min(w, grams);
  // Deque of k-gram indexes with increasing hashes (ties: the later index replaces the earlier).
  const deque = scratchDeque;
  let head = 0;
  let tail = 0;
  let last = -1;
  for (let i = 0; i < grams; i++) {
    while (tail > head && gramHash[deque[tail - 1]!]! >= gramHash[i]!) tail--;
    deque[tail++] = i;
    if (deque[head]! <= i - window) head++;
    if (i >= window - 1 && deque[head] !== last) {
      last = deque[head]!;
      keep(last);
    }
  }
  out.hashes = hashes.subarray(0, n);
  out.starts = starts.subarray(0, n);
  out.ends = ends.subarray(0, n);
  out.positions = positions.subarray(0, n);
  out.length = n;
  return out;
}

// Scratch space for the k-gram hashes and the deque, reused by every call (synchronous).
let scratchHashes = new Uint32Array(0);
let scratchDeque = new Int32Array(0);

/** Finaliser (murmur3's): rolling hashes of similar k-grams differ in few bits; minima must not cluster. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

// The tokenizer of ../tokens.ts, in AssemblyScript (compiled by `npm run build`; ../tokens.ts loads
// it and keeps its JavaScript tokenizer as the fallback). The very same algorithm over the same
// UTF-16 code units, step by step, so the token stream is identical (test/unit/fingerprint.test.ts
// compares the two on source files and random text); only the loads are from linear memory.
//
// Memory, laid out by the loader:
//   tables: kind u8[128] @0, wordPart u8[128] @128, punctIds i32[128] @256, kwHashes i32[256] @768,
//           kwUsed u8[256] @1792, then i32 IDENT, NUMBER, STRING, PROPERTY, USE_MASK,
//           USE_MAX_FILL, MAX_PROBES, KW_MASK @2048
//   use:    stamps i32[USE_MASK + 1], names i32[…], at i32[…] (the name table)
//   text:   the code units (u16), `n0` of them
//   shape, exact, prev, lines: i32[cap] each (the output)
//   result: i32 chars read, i32 probes

const PUNCT: u8 = 0;
const SPACE: u8 = 1;
const NEWLINE: u8 = 2;
const LETTER: u8 = 3;
const DIGIT: u8 = 4;
const QUOTE: u8 = 5;
const HASH: u8 = 6;
const SLASH: u8 = 7;

// @ts-ignore: decorator
@inline function unit(text: usize, i: i32): i32 {
  return <i32>load<u16>(text + (<usize>i << 1));
}

/** Returns the number of tokens; chars read and probes made at `result`. */
export function tokenize(tables: usize, use: usize, text: usize, n0: i32, cap: i32, shape: usize, exact: usize, prev: usize, lines: usize, stamp: i32, result: usize): i32 {
  const kind = tables;
  const wordPart = tables + 128;
  const punctIds = tables + 256;
  const kwHashes = tables + 768;
  const kwUsed = tables + 1792;
  const IDENT = load<i32>(tables + 2048);
  const NUMBER = load<i32>(tables + 2052);
  const STRING = load<i32>(tables + 2056);
  const PROPERTY = load<i32>(tables + 2060);
  const USE_MASK = load<i32>(tables + 2064);
  const USE_MAX_FILL = load<i32>(tables + 2068);
  const MAX_PROBES = load<i32>(tables + 2072);
  const KW_MASK = load<i32>(tables + 2076);
  const DOT = load<i32>(punctIds + (46 << 2));
  const useStamps = use;
  const useNames = use + ((<usize>USE_MASK + 1) << 2);
  const useAt = use + ((<usize>USE_MASK + 1) << 3);
  let n: i32 = 0;
  let line: i32 = 1;
  let fill: i32 = 0;
  let probes: i32 = 0;
  let i: i32 = 0;
  while (i < n0 && n < cap) {
    const c = unit(text, i);
    const what: u8 = c < 128 ? load<u8>(kind + <usize>c) : LETTER;
    if (what == SPACE) {
      while (++i < n0 && unit(text, i) == 32);
      continue;
    }
    if (what == NEWLINE) {
      line++;
      i++;
      continue;
    }
    const o = <usize>n << 2;
    if (what == LETTER) {
      let h: i32 = <i32>0x811c9dc5;
      for (; i < n0; i++) {
        const d = unit(text, i);
        if (d < 128 && load<u8>(wordPart + <usize>d) == 0) break;
        h = (h ^ d) * 0x01000193;
      }
      store<i32>(lines + o, line);
      store<i32>(prev + o, 0);
      // isKeyword
      let keyword = false;
      for (let slot = (h ^ <i32>(<u32>h >> 16)) & KW_MASK; load<u8>(kwUsed + <usize>slot) == 1; slot = (slot + 1) & KW_MASK) {
        if (load<i32>(kwHashes + (<usize>slot << 2)) == h) {
          keyword = true;
          break;
        }
      }
      if (keyword) {
        store<i32>(shape + o, h);
        store<i32>(exact + o, h);
        n++;
        continue;
      }
      let after = i;
      while (after < n0) {
        const a = unit(text, after);
        if (a != 32 && a != 9) break;
        after++;
      }
      const property = (n > 0 && load<i32>(shape + o - 4) == DOT) || (after < n0 && unit(text, after) == 58 && !(after + 1 < n0 && unit(text, after + 1) == 58));
      const key = property ? h ^ PROPERTY : h;
      let slot = (key ^ <i32>(<u32>key >> 15)) & USE_MASK;
      let probe: i32 = 0;
      while (load<i32>(useStamps + (<usize>slot << 2)) == stamp && load<i32>(useNames + (<usize>slot << 2)) != key && probe < MAX_PROBES) {
        slot = (slot + 1) & USE_MASK;
        probe++;
      }
      probes += probe;
      if (load<i32>(useStamps + (<usize>slot << 2)) == stamp && load<i32>(useNames + (<usize>slot << 2)) == key) {
        store<i32>(prev + o, n - load<i32>(useAt + (<usize>slot << 2)));
      } else {
        if (load<i32>(useStamps + (<usize>slot << 2)) != stamp && ++fill > USE_MAX_FILL) {
          fill = 0;
          slot = (key ^ <i32>(<u32>key >> 15)) & USE_MASK;
          memory.fill(useStamps, 0, (<usize>USE_MASK + 1) << 2);
        }
        store<i32>(useStamps + (<usize>slot << 2), stamp);
        store<i32>(useNames + (<usize>slot << 2), key);
      }
      store<i32>(useAt + (<usize>slot << 2), n);
      store<i32>(shape + o, IDENT);
      store<i32>(exact + o, h ^ IDENT);
      n++;
      continue;
    }
    if (what == DIGIT) {
      for (; i < n0; i++) {
        const d = unit(text, i);
        if (d < 128 && load<u8>(wordPart + <usize>d) == 0 && d != 46) break;
      }
      store<i32>(lines + o, line);
      store<i32>(prev + o, 0);
      store<i32>(shape + o, NUMBER);
      store<i32>(exact + o, NUMBER);
      n++;
      continue;
    }
    if (what == QUOTE) {
      const at = line;
      i++;
      while (i < n0) {
        const d = unit(text, i);
        if (d == 92) {
          i += 2;
          continue;
        }
        if (d == c) {
          i++;
          break;
        }
        if (d == 10) break;
        i++;
      }
      store<i32>(lines + o, at);
      store<i32>(prev + o, 0);
      store<i32>(shape + o, STRING);
      store<i32>(exact + o, STRING);
      n++;
      continue;
    }
    if (what == HASH || (what == SLASH && i + 1 < n0 && unit(text, i + 1) == 47)) {
      while (i < n0 && unit(text, i) != 10) i++;
      continue;
    }
    if (what == SLASH && i + 1 < n0 && unit(text, i + 1) == 42) {
      // To the closing `*/` (searched from i + 2), or the end; its newlines counted.
      let end = n0;
      for (let j = i + 2; j + 1 < n0; j++) {
        if (unit(text, j) == 42 && unit(text, j + 1) == 47) {
          end = j + 2;
          break;
        }
      }
      for (let j = i + 2; j < end; j++) if (unit(text, j) == 10) line++;
      i = end;
      continue;
    }
    const id = load<i32>(punctIds + (<usize>c << 2));
    store<i32>(lines + o, line);
    store<i32>(prev + o, 0);
    store<i32>(shape + o, id);
    store<i32>(exact + o, id);
    n++;
    i++;
  }
  store<i32>(result, i);
  store<i32>(result + 4, probes);
  return n;
}

// @ts-ignore: decorator
@inline function hex(b: i32): i32 {
  if (b >= 48 && b <= 57) return b - 48;
  if (b >= 97 && b <= 102) return b - 87;
  if (b >= 65 && b <= 70) return b - 55;
  return -1;
}

/**
 * The content of a JSON string (the bytes between its quotes, `len` of them at `src`) unescaped
 * into UTF-16 code units at `dst`, as JSON.parse reads it: returns their number, or -1 where
 * JSON.parse would throw (a control character, a bad escape). `utf8`: the bytes are UTF-8 (valid:
 * the caller checked), else latin1 (one character a byte). `dst` may be `src - len`: a unit is
 * written only where the bytes it came from were read.
 */
export function unescapeJson(src: usize, len: i32, utf8: i32, dst: usize): i32 {
  let p: i32 = 0;
  let u: i32 = 0;
  while (p < len) {
    const b = <i32>load<u8>(src + <usize>p);
    if (b == 92) {
      if (p + 1 >= len) return -1;
      const e = <i32>load<u8>(src + <usize>p + 1);
      let c: i32 = -1;
      if (e == 34 || e == 92 || e == 47) c = e;
      else if (e == 98) c = 8;
      else if (e == 102) c = 12;
      else if (e == 110) c = 10;
      else if (e == 114) c = 13;
      else if (e == 116) c = 9;
      else if (e == 117) {
        if (p + 6 > len) return -1;
        const h0 = hex(<i32>load<u8>(src + <usize>p + 2));
        const h1 = hex(<i32>load<u8>(src + <usize>p + 3));
        const h2 = hex(<i32>load<u8>(src + <usize>p + 4));
        const h3 = hex(<i32>load<u8>(src + <usize>p + 5));
        if ((h0 | h1 | h2 | h3) < 0) return -1;
        store<u16>(dst + (<usize>u << 1), <u16>((h0 << 12) | (h1 << 8) | (h2 << 4) | h3));
        u++;
        p += 6;
        continue;
      }
      if (c < 0) return -1;
      store<u16>(dst + (<usize>u << 1), <u16>c);
      u++;
      p += 2;
      continue;
    }
    if (b < 32) return -1;
    if (b < 128 || utf8 == 0) {
      store<u16>(dst + (<usize>u << 1), <u16>b);
      u++;
      p++;
      continue;
    }
    if (b < 0xe0) {
      store<u16>(dst + (<usize>u << 1), <u16>(((b & 0x1f) << 6) | (<i32>load<u8>(src + <usize>p + 1) & 0x3f)));
      u++;
      p += 2;
    } else if (b < 0xf0) {
      store<u16>(dst + (<usize>u << 1), <u16>(((b & 0x0f) << 12) | ((<i32>load<u8>(src + <usize>p + 1) & 0x3f) << 6) | (<i32>load<u8>(src + <usize>p + 2) & 0x3f)));
      u++;
      p += 3;
    } else {
      const cp = (((b & 0x07) << 18) | ((<i32>load<u8>(src + <usize>p + 1) & 0x3f) << 12) | ((<i32>load<u8>(src + <usize>p + 2) & 0x3f) << 6) | (<i32>load<u8>(src + <usize>p + 3) & 0x3f)) - 0x10000;
      store<u16>(dst + (<usize>u << 1), <u16>(0xd800 + (cp >> 10)));
      store<u16>(dst + (<usize>u << 1) + 2, <u16>(0xdc00 + (cp & 0x3ff)));
      u += 2;
      p += 4;
    }
  }
  return u;
}

// ---- k-gram hashes and winnowing of ../winnow.ts, the same arithmetic step by step, over a stream
// tokenize left in memory. `scratch`: i32[k] of powers, then the ring (i32[ringSize]).

const BASE: i32 = 0x01000193;

// @ts-ignore: decorator
@inline function mix(h: i32): i32 {
  h ^= <i32>(<u32>h >> 16);
  h = h * <i32>0x85ebca6b;
  h ^= <i32>(<u32>h >> 13);
  h = h * <i32>0xc2b2ae35;
  h ^= <i32>(<u32>h >> 16);
  return h;
}

// @ts-ignore: decorator
@inline function ld(base: usize, i: i32): i32 {
  return load<i32>(base + (<usize>i << 2));
}

// @ts-ignore: decorator
@inline function st(base: usize, i: i32, v: i32): void {
  store<i32>(base + (<usize>i << 2), v);
}

/** gramHashes: the hash of every k-gram of one view (`ids` 1: renaming-blind; 0: exact) into `out`. */
export function gramHashes(shape: usize, exact: usize, prev: usize, n: i32, k: i32, ids: i32, ident: i32, scratch: usize, ringMask: i32, out: usize): i32 {
  const grams = n - k + 1;
  if (grams <= 0) return 0;
  const pow = scratch;
  st(pow, 0, 1);
  for (let j = 1; j < k; j++) st(pow, j, ld(pow, j - 1) * BASE);
  const top = ld(pow, k - 1);
  if (ids == 0) {
    let h: i32 = 0;
    for (let j = 0; j < k; j++) h = h * BASE + ld(exact, j);
    st(out, 0, mix(h));
    for (let i = 1; i < grams; i++) {
      h = (h - ld(exact, i - 1) * top) * BASE + ld(exact, i + k - 1);
      st(out, i, mix(h));
    }
    return grams;
  }
  const ring = scratch + (<usize>k << 2);
  let h: i32 = 0;
  for (let j = 0; j < k; j++) h = h * BASE + at(shape, prev, ring, ringMask, ident, j, 0);
  st(out, 0, mix(h));
  for (let s = 0; s + 1 < grams; s++) {
    const q = ld(ring, s & ringMask);
    if (q > s && q < s + k && q - ld(prev, q) == s) h = h - (ident + (q - s) * <i32>0x9e3779b1 - ident) * ld(pow, k - 1 - (q - s));
    h = (h - ld(shape, s) * top) * BASE + at(shape, prev, ring, ringMask, ident, s + k, s + 1);
    st(out, s + 1, mix(h));
  }
  return grams;
}

// @ts-ignore: decorator
@inline function at(shape: usize, prev: usize, ring: usize, ringMask: i32, ident: i32, q: i32, s: i32): i32 {
  const d = ld(prev, q);
  if (d > 0 && q - d >= s) {
    st(ring, (q - d) & ringMask, q);
    return ident + d * <i32>0x9e3779b1;
  }
  return ld(shape, q);
}

/** winnow's selection: of every window of w k-gram hashes the smallest (rightmost on ties), each once. */
export function select(gramHash: usize, grams: i32, w: i32, k: i32, lines: usize, hashes: usize, starts: usize, ends: usize, positions: usize): i32 {
  let n: i32 = 0;
  const window = w < grams ? w : grams;
  let min: i32 = -1;
  let last: i32 = -1;
  for (let i = window - 1; i < grams; i++) {
    const left = i - window + 1;
    if (min < left) {
      min = left;
      for (let j = left + 1; j <= i; j++) if (ld(gramHash, j) <= ld(gramHash, min)) min = j;
    } else if (ld(gramHash, i) <= ld(gramHash, min)) min = i;
    if (min != last) {
      last = min;
      st(hashes, n, ld(gramHash, min));
      st(starts, n, ld(lines, min));
      st(ends, n, ld(lines, min + k - 1));
      st(positions, n, min);
      n++;
    }
  }
  return n;
}

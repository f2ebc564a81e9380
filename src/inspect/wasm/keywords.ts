// Keyword occurrences in a body's bytes, for the fast path (../keyword-scan.ts loads this module;
// AssemblyScript, compiled by `npm run build` with wasm SIMD). A "Teddy" filter (Hyperscan's):
// per 16 bytes, each of the four first characters of every keyword is looked up by its low and
// high nibble in 16-entry tables of bucket bits (one bucket = a group of keywords); positions where
// all four agree on a bucket are candidates, checked exactly by walking the keywords' trie. No
// per-byte dependency chain, unlike an automaton: ~16 bytes per few instructions.
//
// Memory, laid out by the loader: nibble tables (2 × 8 × 16 bytes) at `masks`, the trie at `trie`
// (int32 per state × 128: next state + 1, 0 for none, A–Z folded), `terminal` (int32 per state:
// 1 when a keyword ends there), the text at `text` followed by 32 zero bytes, and the output at
// `out` (int32 pairs: start, state).

/** Occurrences starting in [from, to) of text[0, len); returns their count, or -1 past outMax. */
export function scan(masks: usize, trie: usize, terminal: usize, text: usize, from: i32, to: i32, len: i32, out: usize, outMax: i32, maxKeyword: i32): i32 {
  const lo0 = v128.load(masks);
  const hi0 = v128.load(masks + 16);
  const lo1 = v128.load(masks + 32);
  const hi1 = v128.load(masks + 48);
  const lo2 = v128.load(masks + 64);
  const hi2 = v128.load(masks + 80);
  const lo3 = v128.load(masks + 96);
  const hi3 = v128.load(masks + 112);
  const lo0b = v128.load(masks + 128);
  const hi0b = v128.load(masks + 144);
  const lo1b = v128.load(masks + 160);
  const hi1b = v128.load(masks + 176);
  const lo2b = v128.load(masks + 192);
  const hi2b = v128.load(masks + 208);
  const lo3b = v128.load(masks + 224);
  const hi3b = v128.load(masks + 240);
  const nibble = i8x16.splat(15);
  const zero = i8x16.splat(0);
  let count: i32 = 0;
  for (let i: i32 = from; i < to; i += 16) {
    const p = text + <usize>i;
    const v0 = v128.load(p);
    const v1 = v128.load(p + 1);
    const v2 = v128.load(p + 2);
    const v3 = v128.load(p + 3);
    const l0 = v128.and(v0, nibble);
    const h0 = i8x16.shr_u(v0, 4);
    const l1 = v128.and(v1, nibble);
    const h1 = i8x16.shr_u(v1, 4);
    const l2 = v128.and(v2, nibble);
    const h2 = i8x16.shr_u(v2, 4);
    const l3 = v128.and(v3, nibble);
    const h3 = i8x16.shr_u(v3, 4);
    // Buckets 0–7, then 8–15: sixteen groups of keywords in two bytes of masks.
    const a = v128.and(
      v128.and(v128.and(i8x16.swizzle(lo0, l0), i8x16.swizzle(hi0, h0)), v128.and(i8x16.swizzle(lo1, l1), i8x16.swizzle(hi1, h1))),
      v128.and(v128.and(i8x16.swizzle(lo2, l2), i8x16.swizzle(hi2, h2)), v128.and(i8x16.swizzle(lo3, l3), i8x16.swizzle(hi3, h3))),
    );
    const b = v128.and(
      v128.and(v128.and(i8x16.swizzle(lo0b, l0), i8x16.swizzle(hi0b, h0)), v128.and(i8x16.swizzle(lo1b, l1), i8x16.swizzle(hi1b, h1))),
      v128.and(v128.and(i8x16.swizzle(lo2b, l2), i8x16.swizzle(hi2b, h2)), v128.and(i8x16.swizzle(lo3b, l3), i8x16.swizzle(hi3b, h3))),
    );
    const m = v128.or(a, b);
    if (!v128.any_true(m)) continue;
    let bits = i8x16.bitmask(i8x16.ne(m, zero));
    while (bits != 0) {
      const at = i + ctz(bits);
      bits &= bits - 1;
      if (at >= to) break;
      // Exact: walk the trie from `at`.
      let state: i32 = 0;
      const end = min(len, at + maxKeyword);
      for (let j = at; j < end; j++) {
        const c = <i32>load<u8>(text + <usize>j);
        if (c >= 128) break;
        const next = load<i32>(trie + ((<usize>state << 7) + <usize>c << 2));
        if (next == 0) break;
        state = next - 1;
        if (load<i32>(terminal + (<usize>state << 2)) != 0) {
          if (count >= outMax) return -1;
          store<i32>(out + (<usize>count << 3), at);
          store<i32>(out + (<usize>count << 3) + 4, state);
          count++;
        }
      }
    }
  }
  return count;
}

/**
 * Window sizing for the fast path (clean.ts): from `at`, back over `count` bytes that yield a
 * character in every reading of the text (not a backslash, below 128; a backslash followed by `u`
 * adds `weight` to the count: a \uXXXX escape turns five such bytes into one character), then
 * past any backslashes; returns the index reached.
 */
export function walkBack(text: usize, at: i32, count: i32, weight: i32): i32 {
  let i = at;
  while (i > 0 && count > 0) {
    i--;
    const c = <i32>load<u8>(text + <usize>i);
    if (c == 92) {
      if (load<u8>(text + <usize>(i + 1)) == 117) count += weight;
    } else if (c < 128) count--;
  }
  while (i > 0 && load<u8>(text + <usize>(i - 1)) == 92) i--;
  return i;
}

/** The same forward, up to `len`. */
export function walkForward(text: usize, len: i32, at: i32, count: i32, weight: i32): i32 {
  let i = at;
  while (i < len && count > 0) {
    const c = <i32>load<u8>(text + <usize>i);
    if (c == 92) {
      if (load<u8>(text + <usize>(i + 1)) == 117) count += weight;
    } else if (c < 128) count--;
    i++;
  }
  return i;
}

/**
 * Runs of base64 characters and backslashes (A–Z a–z 0–9 + / - _ \, what the attachment probe
 * looks at: ../attachments.ts RAW_RUN_CHAR) at least `minLength` (≥ 16) bytes long in
 * text[0, len), as [start, end) int32 pairs at `out`; returns their count, or -1 past outMax. Per
 * 16 bytes, each byte is classified by its low and high nibble (a bit per high nibble 2–7, tables
 * below). A run that long either fills a block or crosses from one block into the next, so only
 * the ones at each end of a block are counted: no work per run inside a block.
 */
export function runs(text: usize, len: i32, minLength: i32, out: usize, outMax: i32): i32 {
  const lo = i8x16(42, 62, 62, 62, 62, 62, 62, 62, 62, 62, 60, 21, 28, 21, 20, 29);
  const hi = i8x16(0, 0, 1, 2, 4, 8, 16, 32, 0, 0, 0, 0, 0, 0, 0, 0);
  const nibble = i8x16.splat(15);
  const zero = i8x16.splat(0);
  let count: i32 = 0;
  let start: i32 = 0; // where the run reaching the current block began
  let carried: i32 = 0; // its length so far (0: no run reaches the block)
  for (let i: i32 = 0; i < len; i += 16) {
    const v = v128.load(text + <usize>i);
    const m = v128.and(i8x16.swizzle(lo, v128.and(v, nibble)), i8x16.swizzle(hi, i8x16.shr_u(v, 4)));
    let bits = i8x16.bitmask(i8x16.ne(m, zero));
    if (len - i < 16) bits &= (1 << (len - i)) - 1;
    if (bits == 0xffff) {
      if (carried == 0) start = i;
      carried += 16;
      continue;
    }
    // The run from before ends at the block's first byte outside it.
    const lead = <i32>ctz(~bits);
    if (carried + lead >= minLength) {
      if (count >= outMax) return -1;
      store<i32>(out + (<usize>count << 3), start); // i itself when nothing was carried
      store<i32>(out + (<usize>count << 3) + 4, i + lead);
      count++;
    }
    // The ones at the block's end start the next run (runs inside the block are under 16).
    carried = <i32>clz(~(bits << 16));
    start = i + 16 - carried;
  }
  if (carried >= minLength) {
    if (count >= outMax) return -1;
    store<i32>(out + (<usize>count << 3), start);
    store<i32>(out + (<usize>count << 3) + 4, min(len, start + carried));
    count++;
  }
  return count;
}

/**
 * Escapes in text[from, to): every backslash followed by a character of a set given as nibble
 * tables at `tables` (16 bytes by low nibble, each a bit per high nibble 0–7; 16 bytes by high
 * nibble, its bit), written as int32 positions at `out`; returns their count (at most to - from).
 */
export function escapes(text: usize, from: i32, to: i32, tables: usize, out: usize): i32 {
  const lo = v128.load(tables);
  const hi = v128.load(tables + 16);
  const nibble = i8x16.splat(15);
  const backslash = i8x16.splat(92);
  const zero = i8x16.splat(0);
  let count: i32 = 0;
  for (let i: i32 = from; i < to; i += 16) {
    const p = text + <usize>i;
    const v1 = v128.load(p + 1);
    const second = v128.and(i8x16.swizzle(lo, v128.and(v1, nibble)), i8x16.swizzle(hi, i8x16.shr_u(v1, 4)));
    const m = v128.and(i8x16.eq(v128.load(p), backslash), i8x16.ne(second, zero));
    if (!v128.any_true(m)) continue;
    let bits = i8x16.bitmask(m);
    while (bits != 0) {
      const at = i + ctz(bits);
      bits &= bits - 1;
      if (at >= to) break;
      store<i32>(out + (<usize>count << 2), at);
      count++;
    }
  }
  return count;
}

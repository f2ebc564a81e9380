// What the fast path needs of a body's bytes, in one pass (../keyword-scan.ts loads this module;
// AssemblyScript, compiled by `npm run build` with wasm SIMD): keyword occurrences, the escapes
// that may spell a keyword character, and the runs of base64 characters the attachment probe
// looks at. Per 16 bytes:
// - keywords: a "Teddy" filter (Hyperscan's): each of the four first characters of every keyword
//   is looked up by its low and high nibble in 16-entry tables of bucket bits (one bucket = a
//   group of keywords); positions where all four agree on a bucket are candidates, checked exactly
//   by walking the keywords' trie. No per-byte dependency chain, unlike an automaton.
// - escapes: a backslash followed by a character of a set given as nibble tables (16 bytes by low
//   nibble, each a bit per high nibble 0–7; 16 bytes by high nibble, its bit).
// - runs of base64 characters and backslashes (A–Z a–z 0–9 + / - _ \, ../attachments.ts
//   RAW_RUN_CHAR) at least 16 bytes long: each byte classified by its nibbles (a bit per high
//   nibble 2–7, tables below). A run that long either fills a block or crosses from one block into
//   the next, so only the ones at each end of a block are counted: no work per run inside a block.
//
// Memory, laid out by the loader: nibble tables (2 × 8 × 16 bytes) at `masks`, the trie at `trie`
// (int32 per state × 128: next state + 1, 0 for none, A–Z folded), `terminal` (int32 per state:
// 1 when a keyword ends there), the escape tables, the text at `text` followed by 32 zero bytes
// (the loads read past the end), and the outputs.

/**
 * The pass over text[from, to) of text[0, len) (`from` a multiple of 16; slices in order):
 * - keyword occurrences starting there appended at `occOut` (int32 pairs: start, trie state);
 * - escapes (the backslash's position, int32) written at `escOut`: this slice's only;
 * - runs of at least 16 bytes appended at `runOut` (int32 pairs: start, end), in order.
 * ctx (int32 × 4, zero before the first slice): occurrences so far, runs so far, and the start and
 * length so far of the run that reaches the slice's end. Returns the slice's escape count (at most
 * to - from), or -1 past `occMax` occurrences or `runMax` runs.
 */
export function read(masks: usize, trie: usize, terminal: usize, text: usize, from: i32, to: i32, len: i32, maxKeyword: i32, occOut: usize, occMax: i32, tables: usize, escOut: usize, runOut: usize, runMax: i32, ctx: usize): i32 {
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
  const escLo = v128.load(tables);
  const escHi = v128.load(tables + 16);
  const runLo = i8x16(42, 62, 62, 62, 62, 62, 62, 62, 62, 62, 60, 21, 28, 21, 20, 29);
  const runHi = i8x16(0, 0, 1, 2, 4, 8, 16, 32, 0, 0, 0, 0, 0, 0, 0, 0);
  const nibble = i8x16.splat(15);
  const backslash = i8x16.splat(92);
  const zero = i8x16.splat(0);
  let count = load<i32>(ctx);
  let runs = load<i32>(ctx + 4);
  let start = load<i32>(ctx + 8);
  let carried = load<i32>(ctx + 12);
  let escapes: i32 = 0;
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
    // Escapes: a backslash, then a character of the set.
    const second = v128.and(i8x16.swizzle(escLo, l1), i8x16.swizzle(escHi, h1));
    const e = v128.and(i8x16.eq(v0, backslash), i8x16.ne(second, zero));
    if (v128.any_true(e)) {
      let bits = i8x16.bitmask(e);
      while (bits != 0) {
        const at = i + ctz(bits);
        bits &= bits - 1;
        if (at >= to) break;
        store<i32>(escOut + (<usize>escapes << 2), at);
        escapes++;
      }
    }
    // Runs: only those at each end of a block can reach 16 bytes (see `runs`).
    let rb = i8x16.bitmask(i8x16.ne(v128.and(i8x16.swizzle(runLo, l0), i8x16.swizzle(runHi, h0)), zero));
    if (len - i < 16) rb &= (1 << (len - i)) - 1;
    if (rb == 0xffff) {
      if (carried == 0) start = i;
      carried += 16;
    } else {
      const lead = <i32>ctz(~rb);
      if (carried + lead >= 16) {
        if (runs >= runMax) return -1;
        store<i32>(runOut + (<usize>runs << 3), start);
        store<i32>(runOut + (<usize>runs << 3) + 4, i + lead);
        runs++;
      }
      carried = <i32>clz(~(rb << 16));
      start = i + 16 - carried;
    }
    // Keywords: the Teddy filter, then the trie (see `scan`).
    const l2 = v128.and(v2, nibble);
    const h2 = i8x16.shr_u(v2, 4);
    const l3 = v128.and(v3, nibble);
    const h3 = i8x16.shr_u(v3, 4);
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
      let state: i32 = 0;
      const end = min(len, at + maxKeyword);
      for (let j = at; j < end; j++) {
        const c = <i32>load<u8>(text + <usize>j);
        if (c >= 128) break;
        const next = load<i32>(trie + ((<usize>state << 7) + <usize>c << 2));
        if (next == 0) break;
        state = next - 1;
        if (load<i32>(terminal + (<usize>state << 2)) != 0) {
          if (count >= occMax) return -1;
          store<i32>(occOut + (<usize>count << 3), at);
          store<i32>(occOut + (<usize>count << 3) + 4, state);
          count++;
        }
      }
    }
  }
  if (to == len && carried >= 16) {
    if (runs >= runMax) return -1;
    store<i32>(runOut + (<usize>runs << 3), start);
    store<i32>(runOut + (<usize>runs << 3) + 4, min(len, start + carried));
    runs++;
    carried = 0;
  }
  store<i32>(ctx, count);
  store<i32>(ctx + 4, runs);
  store<i32>(ctx + 8, start);
  store<i32>(ctx + 12, carried);
  return escapes;
}

/**
 * Window sizing for the fast path (clean.ts): from `at`, back over `count` bytes that yield a
 * character in every reading of the text (not a backslash, below 128; a backslash followed by `u`
 * adds `weight` to the count: a \uXXXX escape turns five such bytes into one character), then
 * past any backslashes; returns the index reached. Whole blocks of 16 first, while the count
 * cannot reach zero inside one (it falls by at most the block's counted bytes: the byte-by-byte
 * walk would go through the whole block), then byte by byte.
 */
export function walkBack(text: usize, at: i32, count: i32, weight: i32): i32 {
  let i = at;
  const backslash = i8x16.splat(92);
  const u = i8x16.splat(117);
  while (i >= 16 && count > 16) {
    const v = v128.load(text + <usize>(i - 16));
    const b = i8x16.eq(v, backslash);
    const bits = i8x16.bitmask(b);
    const counted = <i32>popcnt(~(i8x16.bitmask(v) | bits) & 0xffff);
    if (count - counted <= 0) break;
    const escapes = bits == 0 ? 0 : <i32>popcnt(i8x16.bitmask(v128.and(b, i8x16.eq(v128.load(text + <usize>(i - 15)), u))));
    count += escapes * weight - counted;
    i -= 16;
  }
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

/** The same forward, up to `len` (the text is followed by 32 zero bytes). */
export function walkForward(text: usize, len: i32, at: i32, count: i32, weight: i32): i32 {
  let i = at;
  const backslash = i8x16.splat(92);
  const u = i8x16.splat(117);
  while (i + 16 <= len && count > 16) {
    const v = v128.load(text + <usize>i);
    const b = i8x16.eq(v, backslash);
    const bits = i8x16.bitmask(b);
    const counted = <i32>popcnt(~(i8x16.bitmask(v) | bits) & 0xffff);
    if (count - counted <= 0) break;
    const escapes = bits == 0 ? 0 : <i32>popcnt(i8x16.bitmask(v128.and(b, i8x16.eq(v128.load(text + <usize>(i + 1)), u))));
    count += escapes * weight - counted;
    i += 16;
  }
  while (i < len && count > 0) {
    const c = <i32>load<u8>(text + <usize>i);
    if (c == 92) {
      if (load<u8>(text + <usize>(i + 1)) == 117) count += weight;
    } else if (c < 128) count--;
    i++;
  }
  return i;
}

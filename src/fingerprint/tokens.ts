// Source text → a stream of normalised tokens, the same for every language and every layout:
// whitespace and comments vanish, identifiers become one token, numbers another, string literals a
// third; keywords and punctuation stay themselves. Renaming variables, re-indenting, re-wrapping or
// re-commenting a piece of code therefore does not change its tokens, which is what lets a
// fingerprint of protected code survive being pasted into a prompt with cosmetic edits.
//
// One pass over the characters, constant work per character, no regular expressions: hostile
// input (a megabyte of quotes or slashes) costs the same as code.

/**
 * Two views of the same tokens, each a 32-bit id per token, and the 1-based line each starts on.
 * `ids` is the renaming-blind view: an identifier becomes the distance back to the previous use
 * of the same name (0 for a name not seen in the last REUSE_WINDOW tokens) — Baker's parameterised
 * strings. Renaming every variable consistently changes nothing, yet `a = b + a` and `a = b + c`
 * stay different, which keeps common shapes of code from matching one another by accident.
 * `exact` keeps each identifier's name (still blind to layout and comments): it tells apart code
 * whose shape is common (tables, assignments, argument lists) by its names.
 */
export interface TokenStream {
  ids: Int32Array;
  exact: Int32Array;
  lines: Int32Array;
  length: number;
}

const IDENT = 0x1d3a_4c21 | 0;
/** How far back a reuse of a name is encoded; older uses count as a new name. */
const REUSE_WINDOW = 20;
const NUMBER = 0x5e9f_0b17 | 0;
const STRING = 0x7c11_86e3 | 0;

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

/** Keywords by the hash of their text (identifiers are hashed as they are scanned, not sliced). */
const keywordByHash = new Map<number, number>();
for (const k of KEYWORDS) keywordByHash.set(fnv(k), fnv(k));

function fnv(text: string): number {
  let h = 0x811c9dc5 | 0;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h | 0;
}

const punctIds = new Int32Array(128);
for (let c = 0; c < 128; c++) punctIds[c] = fnv(`p${String.fromCharCode(c)}`);

function isIdentStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c === 36 || c > 127;
}

function isIdentPart(c: number): boolean {
  return isIdentStart(c) || (c >= 48 && c <= 57);
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/**
 * Tokenises `text` (at most `maxTokens` tokens; the rest is ignored, so a caller bounds its work).
 * The arrays returned are only valid until the next call.
 * Comments: `//` and `#` to the end of the line, `/* … *\/`. Strings: '…', "…", `…` with backslash
 * escapes, each ending at the end of its line at the latest.
 */
export function tokenize(text: string, maxTokens = Number.MAX_SAFE_INTEGER): TokenStream {
  const cap = Math.min(maxTokens, text.length);
  if (scratch.ids.length < cap) scratch = { ids: new Int32Array(cap), exact: new Int32Array(cap), lines: new Int32Array(cap) };
  const { ids, exact, lines } = scratch;
  let n = 0;
  let line = 1;
  const n0 = text.length;
  // Last token index of each identifier name, in an open-addressed table keyed by the name's hash
  // (a Map costs an allocation per new name); `stamp` makes clearing it between calls free.
  const stamp = ++useStamp;
  let i = 0;
  const push = (id: number, at: number, exactId = id) => {
    ids[n] = id;
    exact[n] = exactId;
    lines[n] = at;
    n++;
  };
  while (i < n0 && n < cap) {
    const c = text.charCodeAt(i);
    if (c === 10) {
      line++;
      i++;
      continue;
    }
    if (c === 32 || c === 9 || c === 13 || c === 12 || c === 11) {
      i++;
      continue;
    }
    // Comments.
    if (c === 35 || (c === 47 && text.charCodeAt(i + 1) === 47)) {
      while (i < n0 && text.charCodeAt(i) !== 10) i++;
      continue;
    }
    if (c === 47 && text.charCodeAt(i + 1) === 42) {
      i += 2;
      while (i < n0 && !(text.charCodeAt(i) === 42 && text.charCodeAt(i + 1) === 47)) {
        if (text.charCodeAt(i) === 10) line++;
        i++;
      }
      i += 2;
      continue;
    }
    if (isIdentStart(c)) {
      let h = 0x811c9dc5 | 0;
      for (let d = c; i < n0 && isIdentPart((d = text.charCodeAt(i))); i++) h = Math.imul(h ^ d, 0x01000193);
      const keyword = keywordByHash.get(h | 0);
      if (keyword !== undefined) {
        push(keyword, line);
        continue;
      }
      let slot = (h ^ (h >>> 15)) & USE_MASK;
      while (useStamps[slot] === stamp && useNames[slot] !== h) slot = (slot + 1) & USE_MASK;
      const prev = useStamps[slot] === stamp ? useAt[slot]! : -1;
      const distance = prev < 0 || n - prev > REUSE_WINDOW ? 0 : n - prev;
      if (useStamps[slot] !== stamp) {
        if (++useFill > USE_MAX_FILL) {
          // Too many names for the table: start afresh (only distances over that many names are lost).
          useFill = 0;
          slot = (h ^ (h >>> 15)) & USE_MASK;
          useStamps.fill(0);
        }
        useStamps[slot] = stamp;
        useNames[slot] = h;
      }
      useAt[slot] = n;
      push((IDENT + Math.imul(distance, 0x9e3779b1)) | 0, line, (h ^ IDENT) | 0);
      continue;
    }
    if (isDigit(c)) {
      while (i < n0 && (isIdentPart(text.charCodeAt(i)) || text.charCodeAt(i) === 46)) i++;
      push(NUMBER, line);
      continue;
    }
    if (c === 34 || c === 39 || c === 96) {
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
      push(STRING, at);
      continue;
    }
    push(c < 128 ? punctIds[c]! : IDENT, line);
    i++;
  }
  useFill = 0;
  return { ids: ids.subarray(0, n), exact: exact.subarray(0, n), lines: lines.subarray(0, n), length: n };
}

// Scratch space reused by every call (tokenising is synchronous, and a stream is consumed before
// the next call): zero-filling fresh arrays cost more than the tokenising itself.
let scratch = { ids: new Int32Array(0), exact: new Int32Array(0), lines: new Int32Array(0) };
const USE_SIZE = 1 << 14;
const USE_MASK = USE_SIZE - 1;
const USE_MAX_FILL = USE_SIZE >> 1;
const useStamps = new Int32Array(USE_SIZE);
const useNames = new Int32Array(USE_SIZE);
const useAt = new Int32Array(USE_SIZE);
let useStamp = 0;
let useFill = 0;

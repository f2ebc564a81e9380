// Finds the string tokens of a JSON document without building it: the detector must see every
// string value and key unescaped (so `\"`, `\n` and `\u0022` hide nothing), and redaction must
// change those strings and nothing else (numbers keep their digits, formatting stays byte-for-byte).
// No recursion and no tree, so nesting depth costs nothing; indexOf/sticky regexps do the scanning.

export interface JsonString {
  /** Offsets of the raw token, quotes included, in the JSON text. */
  start: number;
  end: number;
  /** The unescaped string. */
  value: string;
  /** An object key (followed by `:`). */
  isKey: boolean;
}

/**
 * Everything that may appear between strings: structure, numbers, true/false/null, whitespace.
 * NaN and Infinity too: JSON.parse refuses them, but Python's json (many vendors' backends) takes
 * them. protected.ts reads a body's bytes by the same class.
 */
export const BETWEEN_CHAR = /[\s[\]{}:,0-9.eE+\-truefalsnNaIiy]/;
const BETWEEN = new RegExp(`${BETWEEN_CHAR.source}*`, 'y');
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f]/;

/**
 * The string tokens of `text` in order, or null when `text` is not JSON (something other than
 * structure, numbers, literals and strings between strings, an unterminated string or a bad escape).
 */
export function jsonStrings(text: string): JsonString[] | null {
  const out: JsonString[] = [];
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  for (;;) {
    BETWEEN.lastIndex = i;
    BETWEEN.test(text); // always matches (possibly nothing); test() skips building a match array
    i = BETWEEN.lastIndex;
    if (i >= text.length) break;
    if (text.charCodeAt(i) !== 34 /* " */) return null;
    let from = i + 1;
    let end = -1;
    let escaped = false;
    while (end < 0) {
      const q = text.indexOf('"', from);
      if (q < 0) return null;
      let k = q - 1;
      while (k > i && text.charCodeAt(k) === 92 /* \ */) k--;
      if ((q - 1 - k) % 2 === 0) end = q + 1;
      else {
        escaped = true;
        from = q + 1;
      }
    }
    const raw = text.slice(i, end);
    let value: string;
    if (escaped || raw.includes('\\')) {
      try {
        value = JSON.parse(raw) as string;
      } catch {
        return null;
      }
    } else {
      if (CONTROL.test(raw)) return null;
      value = raw.slice(1, -1);
    }
    let j = end;
    while (j < text.length && (text.charCodeAt(j) === 32 || text.charCodeAt(j) === 10 || text.charCodeAt(j) === 13 || text.charCodeAt(j) === 9)) j++;
    out.push({ start: i, end, value, isKey: text.charCodeAt(j) === 58 /* : */ });
    i = end;
  }
  return out;
}

const OPENS_JSON = /^\uFEFF?\s*[[{]/;

/** True when the first non-blank character opens an object or array. */
export function looksLikeJson(text: string): boolean {
  // Anchored: one pass over the leading blanks, however many (a JSON parser skips them all, so a
  // bound here would let 1,025 spaces turn a JSON body into text scanned without unescaping).
  return OPENS_JSON.test(text);
}

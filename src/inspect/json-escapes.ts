// JSON escapes undone the way the scanner's readings undo them: JSON.parse for a string's value,
// escapedViews for a text's (`\'` too, a superset), one level at a time.

/** The JSON escapes other than \u, by the character after the backslash. */
export const SHORT_UNESCAPES: Readonly<Record<string, string | undefined>> = { '"': '"', '\\': '\\', '/': '/', "'": "'", b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

/**
 * `text` with its escapes undone once, as `text.replace(/\\(?:u([0-9a-fA-F]{4})|(["\\/'bfnrt]))/g, …)`
 * would (a loop: 3× faster on code); a backslash starting no escape is kept.
 */
export function unescapeJson(text: string): string {
  let b = text.indexOf('\\');
  if (b < 0) return text;
  let out = '';
  let last = 0;
  for (; b >= 0; b = text.indexOf('\\', b)) {
    const c = text[b + 1];
    if (c === 'u') {
      const hex = text.slice(b + 2, b + 6);
      if (/^[0-9a-fA-F]{4}$/.test(hex)) {
        out += text.slice(last, b) + String.fromCharCode(parseInt(hex, 16));
        last = b += 6;
        continue;
      }
      b++;
      continue;
    }
    const short = c === undefined ? undefined : SHORT_UNESCAPES[c];
    if (short === undefined) {
      b++;
      continue;
    }
    out += text.slice(last, b) + short;
    last = b += 2;
  }
  return out + text.slice(last);
}

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

/** The JSON escapes other than \uXXXX, by the character they stand for. */
const SHORT_ESCAPES: ReadonlyMap<string, string> = new Map([
  ['\\', '\\\\'],
  ['/', '\\/'],
  ['\b', '\\b'],
  ['\f', '\\f'],
  ['\n', '\\n'],
  ['\r', '\\r'],
  ['\t', '\\t'],
]);
/** The other way: the character after the backslash → the character it stands for. */
const SHORT_UNESCAPE: Readonly<Record<string, string>> = Object.fromEntries([...SHORT_ESCAPES].map(([c, e]) => [e[1]!, c]));

/**
 * The escapes a JSON walk must look for to be sure no keyword hides behind one: `\\u` always, and
 * the short escape of each keyword character that has one; null when a keyword holds `"` (a
 * keyword could then span a key and its value).
 */
export function escapesToWalk(keywords: readonly string[]): string[] | null {
  const escapes = new Set(['\\u']);
  for (const k of keywords) {
    for (const c of k) {
      if (c === '"') return null;
      const e = SHORT_ESCAPES.get(c);
      if (e) escapes.add(e);
    }
  }
  return [...escapes];
}

/**
 * JSON.stringify with the characters above U+00FF escaped. A body that is not UTF-8 is read and
 * written back as latin1, one byte per character; a wider character (from a \u escape the
 * redaction re-serialises) would lose its high byte: U+4E5C would reach the upstream as `\`,
 * turning the next characters into an escape the scanner never saw.
 */
export function latin1Json(value: string): string {
  return JSON.stringify(value).replace(/[\u0100-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const JSON_ESCAPE = /\\(?:u([0-9a-fA-F]{4})|([\\/"'bfnrt]))/g;
const PERCENT = /%([0-9a-fA-F]{2})/g;

/** `%XX` sequences read as the bytes (characters) they stand for. */
export function percentDecoded(text: string): string {
  return text.replace(PERCENT, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** The text as a parser that undoes JSON escapes (and, for a form, percent-encoding) would read it. */
export function escapedViews(text: string, form: boolean): string[] {
  const views: string[] = [];
  if (text.includes('\\')) {
    const view = text.replace(JSON_ESCAPE, (_m, hex: string | undefined, c: string) => (hex ? String.fromCharCode(parseInt(hex, 16)) : (SHORT_UNESCAPE[c] ?? c)));
    if (view !== text) views.push(view);
  }
  if (form && text.includes('%')) views.push(percentDecoded(text.replace(/\+/g, ' ')));
  return views;
}

// The fast path of inspectBody: proves, from small windows of the raw bytes, that the full scan
// would find nothing — most large prompts: then the body is never decoded into one big string,
// tokenized or unescaped. When it cannot prove it, the full path runs, so findings, lines,
// fingerprints and redactions are the full path's by construction (test/unit/inspect-fast-path.test.ts
// runs both side by side on the corpus and on random bodies).
//
// Why a window decides a keyword occurrence. Every text the full path scans around a place of the
// body is one of these readings of the bytes there:
// - the bytes as text (a body that is not JSON), and that text with its JSON escapes undone
//   (escapedViews);
// - JSON string values: the text between two delimiting quotes (a `"` after an even run of
//   backslashes), unescaped; in a string that holds JSON itself, its strings again, unescaped
//   again, up to MAX_NESTED_JSON levels deep;
// - key/value pairs, `"<key>": "<value>"`, built from a string and the next string (analyseJson).
// A window produces each of them for the place, exactly where it is not cut by the window's edge
// (extended so that no escape is cut at its start: the character before it is never a backslash).
// A rule reads at most its declared reach around the keyword (rules/reach.ts), so an attempt whose
// reach stays inside the window reads what it would read in the whole text; the detector's probe
// tries every occurrence (no skipping inside earlier matches), so a candidate the full path finds
// is found in the window of its keyword — sized so that its reach fits, counting only the bytes that
// yield one character in every reading (not a backslash, not part of a multi-byte character).
// A keyword can also appear only once escapes are undone: a `\u` escape that may spell a keyword's
// character, and the other escapes that can produce one (`\/` for `://`), get a window of their
// own. Pairs need both strings in the window: a short string holding a keyword whose neighbours
// the window cuts sends the body to the full path.
//
// Bounded like the full path: at most MAX_OCCURRENCES keyword occurrences per byte budget, and
// windows that overlap are merged, so the work is linear in the body's length.
import type { Detector, KeywordOccurrences } from './detector.js';
import { keywordScanner, type KeywordScanner } from './keyword-scan.js';
import { SHORT_UNESCAPES as SHORT } from './json-escapes.js';
import type { Reach } from './reach.js';

/** Strings nested in strings are read this many levels deep (index.ts MAX_NESTED_JSON, plus the outer level). */
const LEVELS = 4;
/** A pair is `"<key ≤ 64>": "<value ≤ 256>"` (index.ts analyseJson). */
const PAIR_VALUE_MAX = 256;
const PAIR_KEY_MAX = 64;
/** Neither string of a pair holds these (index.ts analyseJson). */
const PAIR_EXCLUDED = /["\\\n]/;
/** A character jsonStrings does not accept between two strings (json.ts BETWEEN). */
const NOT_BETWEEN = /[^\s[\]{}:,0-9.eE+\-truefalsnNaIiy]/;
/** What jsonStrings skips between a key and its `:`. */
const LEADING_BLANKS = /^[ \n\r\t]*/;
/** Occurrences beyond this (plus one per 256 bytes) mean a hostile or odd body: the full path it is. */
const MAX_OCCURRENCES = 2048;
/** Bytes around a window to see a pair whole: a key, a value and what separates them. */
const PAIR_ROOM = PAIR_KEY_MAX + PAIR_VALUE_MAX + 64;
const WIDEN = Symbol('widen');
const BACKSLASH = 0x5c;

/** Bytes that may belong to an escape spelling a character: a backslash, `u`, hex digits. */
const ESCAPE_BYTE = /^[\\uU0-9a-fA-F]$/;

function widest(a: Reach | undefined, b: Reach): Reach {
  if (!a) return b;
  const run = a.run === undefined ? b.run : b.run === undefined ? a.run : a.run + b.run;
  return { before: Math.max(a.before, b.before), after: Math.max(a.after, b.after), ...(run === undefined ? {} : { run }) };
}

interface Piece {
  text: string;
  clipStart: boolean;
  clipEnd: boolean;
  /** Its keyword occurrences, or null when not known (the detector's finder reads it). */
  occ: KeywordOccurrences | null;
}

/** The occurrences in [from, to) of `occ`, whole, shifted to start at `from`. */
function occurrencesIn(occ: KeywordOccurrences, from: number, to: number): KeywordOccurrences {
  const at: number[] = [];
  const keyword: string[] = [];
  let lo = 0;
  let hi = occ.at.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (occ.at[mid]! < from) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < occ.at.length && occ.at[i]! < to; i++) {
    const k = occ.keyword[i]!;
    if (occ.at[i]! + k.length <= to) {
      at.push(occ.at[i]! - from);
      keyword.push(k);
    }
  }
  return { at, keyword };
}

/**
 * `text` cut at its delimiting quotes (not escaped: after an even run of backslashes), the quotes
 * left out; `occ`, text's occurrences, shared out among the pieces (no keyword holds `"`).
 */
function splitAtQuotes(text: string, clipStart: boolean, clipEnd: boolean, occ: KeywordOccurrences | null): Piece[] {
  const out: Piece[] = [];
  let from = 0;
  for (let q = text.indexOf('"'); q >= 0; q = text.indexOf('"', q + 1)) {
    let k = q - 1;
    while (k >= from && text.charCodeAt(k) === BACKSLASH) k--;
    if ((q - 1 - k) % 2 !== 0) continue;
    out.push({ text: text.slice(from, q), clipStart: from === 0 && clipStart, clipEnd: false, occ: occ && occurrencesIn(occ, from, q) });
    from = q + 1;
  }
  out.push({ text: text.slice(from), clipStart: from === 0 && clipStart, clipEnd, occ: occ && (from === 0 ? occ : occurrencesIn(occ, from, text.length)) });
  return out;
}

/** What a short escape stands for (SHORT_UNESCAPES), by the char code after the backslash; -1 for none. */
const SHORT_CODE = new Int32Array(128).fill(-1);
for (const [c, v] of Object.entries(SHORT)) SHORT_CODE[c.charCodeAt(0)] = v!.charCodeAt(0);

/** The value of the four hex digits at text[at, at + 4), or -1 when they are not four hex digits. */
function hex4(text: string, at: number): number {
  if (at + 4 > text.length) return -1;
  let v = 0;
  for (let i = at; i < at + 4; i++) {
    const c = text.charCodeAt(i);
    let d: number;
    if (c >= 48 && c <= 57) d = c - 48;
    else if (c >= 97 && c <= 102) d = c - 87;
    else if (c >= 65 && c <= 70) d = c - 55;
    else return -1;
    v = (v << 4) | d;
  }
  return v;
}

/** A reading of a text: the text, and its keyword occurrences when known (null: the finder reads it). */
export interface Reading {
  text: string;
  occ: KeywordOccurrences | null;
}

/**
 * `text` unescaped once, exactly as unescapeJson does it, and, when `occ` (those of `text`) is
 * given, the keyword occurrences of the result: each moved back by what the escapes before it take
 * out. Null when that is not all of them: an escape that spells a keyword character (`\/`,
 * `\u0070`: `keywordChar`, by char code, A–Z as their lower case) may complete a new one, and one
 * that overlaps an escape is gone. Otherwise a keyword in the unescaped text is made of characters
 * copied from `text`, next to each other there too: one of `occ`.
 */
export function unescapeReading(text: string, occ: KeywordOccurrences | null, keywordChar: Uint8Array): Reading {
  let b = text.indexOf('\\');
  if (b < 0) return { text, occ };
  let out = '';
  let last = 0;
  let at: number[] | null = occ && [];
  let keyword: string[] | null = occ && [];
  const n = occ ? occ.at.length : 0;
  let k = 0;
  let removed = 0;
  for (; b >= 0; b = text.indexOf('\\', b)) {
    const c = text.charCodeAt(b + 1);
    let length = 2;
    let made: number;
    if (c === 0x75) {
      made = hex4(text, b + 2);
      if (made < 0) {
        b++;
        continue;
      }
      length = 6;
    } else {
      made = c < 128 ? SHORT_CODE[c]! : -1; // NaN past the end: none
      if (made < 0) {
        b++;
        continue;
      }
    }
    if (at !== null) {
      if (made < 128 && keywordChar[made] === 1) at = keyword = null;
      else {
        for (; k < n && occ!.at[k]! < b + length; k++) {
          const kw = occ!.keyword[k]!;
          if (occ!.at[k]! + kw.length > b) {
            at = keyword = null;
            break;
          }
          at.push(occ!.at[k]! - removed);
          keyword!.push(kw);
        }
      }
    }
    out += text.slice(last, b) + String.fromCharCode(made);
    last = b += length;
    removed += length - 1;
  }
  if (at !== null) {
    for (; k < n; k++) {
      at.push(occ!.at[k]! - removed);
      keyword!.push(occ!.keyword[k]!);
    }
  }
  return { text: out + text.slice(last), occ: at && { at, keyword: keyword! } };
}

/** Per char code below 128: 1 when a keyword holds it (A–Z when their lower case is), as the finder matches them. */
export function keywordChars(keywords: readonly string[]): Uint8Array {
  const out = new Uint8Array(128);
  for (const k of keywords) {
    for (let i = 0; i < k.length; i++) {
      const c = k.charCodeAt(i);
      if (c >= 128) continue;
      out[c] = 1;
      if (c >= 97 && c <= 122) out[c - 32] = 1;
    }
  }
  return out;
}

export class CleanProof {
  /** Escapes other than \u that can produce a keyword character, with the reach of those keywords. */
  private readonly escapes: Array<{ seq: string; reach: Reach }> = [];
  /** The characters after a backslash that make an escape worth a window: `u` and those of `escapes`. */
  private readonly escapeSeconds: string;
  /** The reach of `escapes`, by the char code after the backslash. */
  private readonly escapeReach: Array<Reach | undefined> = [];
  /** Per ASCII character: the reach of the keywords holding it (widened by a keyword's length), or undefined. */
  private readonly byChar: Array<Reach | undefined> = [];
  private readonly anyChar: Reach;
  private readonly maxKeyword: number;
  private readonly usable: boolean;

  private readonly scanner: KeywordScanner | null;
  /** Characters of keywords (keywordChars). */
  private readonly keywordChar: Uint8Array;

  constructor(
    private readonly detector: Detector,
    walkEscapes: readonly string[] | null,
    opts: { wasm?: boolean } = {},
  ) {
    const kws = detector.keywords;
    this.scanner = detector.automaton ? keywordScanner(kws, detector.automaton, opts) : null;
    this.keywordChar = keywordChars(kws);
    this.maxKeyword = Math.max(1, ...kws.map((k) => k.length));
    // A keyword with `"` could span a string's end; one with `: ` or a leading blank could span the
    // `": "` a pair puts between key and value where the body has none.
    this.usable =
      detector.automaton !== null && walkEscapes !== null && kws.length > 0 && !kws.some((k) => k.includes('"') || k.includes(': ') || k.startsWith(' '));
    const reachOfKeywords = (holding: (k: string) => boolean): Reach | undefined => {
      let r: Reach | undefined;
      for (const k of kws) if (holding(k)) r = widest(r, detector.reachOf(k));
      return r && { ...r, before: r.before + this.maxKeyword, after: r.after + this.maxKeyword };
    };
    for (let c = 0; c < 128; c++) this.byChar.push(reachOfKeywords((k) => k.includes(String.fromCharCode(c))));
    this.anyChar = reachOfKeywords(() => true) ?? { before: 0, after: 0 };
    for (const seq of walkEscapes ?? []) {
      if (seq === '\\u') continue;
      const reach = this.byChar[SHORT[seq[1]!]!.charCodeAt(0)];
      if (reach) {
        this.escapes.push({ seq, reach });
        this.escapeReach[seq.charCodeAt(1)] = reach;
      }
    }
    this.escapeSeconds = `u${this.escapes.map((e) => e.seq[1]!).join('')}`;
  }

  /**
   * True when the full scan of `bytes` (the decoded body, read as UTF-8 or, when `latin1`, one
   * character per byte) is certain to find nothing in it; false when it might (or cannot tell).
   */
  provesClean(bytes: Buffer, latin1: boolean): boolean {
    const scanner = this.scanner;
    if (!this.usable || scanner === null) return false;
    const n = bytes.length;
    const windows: number[] = []; // start, end pairs
    // At most this many keyword occurrences, and as many escapes with a window.
    const limit = MAX_OCCURRENCES + (n >> 8);
    let occurrences = limit;
    // The escapes that may spell a keyword's character, first: `\/` for `://`, and `\uXXXX`, which
    // can spell any character — a window where it spells a keyword's (case folded), sized for the
    // keywords holding that character; one whose digits are not all there (they may come from
    // escapes a level down) could be anything. With \uXXXX about, one character of a reading can
    // take six bytes: a `\u` then weighs five of the bytes counted around it (every \u escape, at
    // any nesting level, has its own `\u` in the bytes: `\\u0070` is `\u0070` once unescaped).
    let weight = 0;
    const escaped: Array<{ at: number; end: number; reach: Reach }> = [];
    if (!scanner.read(bytes, limit, this.escapeSeconds, (at) => {
      let reach: Reach | undefined;
      let end = at + 2;
      if (bytes[at + 1] === 0x75) {
        weight = 5;
        end = at + 6;
        reach = this.anyChar;
        const hex = bytes.toString('latin1', at + 2, Math.min(n, at + 6));
        if (/^[0-9a-fA-F]{4}$/.test(hex)) {
          const code = parseInt(hex, 16);
          reach = code < 128 ? this.byChar[code >= 65 && code <= 90 ? code + 32 : code] : undefined;
        }
        if (reach === undefined) return true;
      } else reach = this.escapeReach[bytes[at + 1]!]!;
      if (--occurrences < 0) return false;
      escaped.push({ at, end, reach });
      return true;
    })) return false;
    let budget = 4 * n + (1 << 20); // bytes walked to size windows
    let ok = true;
    /** Bytes under windows so far (an upper bound once windows come out of order). */
    let covered = 0;
    const back = (at: number, count: number): number => {
      const i = scanner.back(at, count, weight);
      budget -= at - i;
      return i;
    };
    const forward = (at: number, count: number): number => {
      const i = scanner.forward(at, count, weight);
      budget -= i - at;
      return i;
    };
    const window = (from: number, to: number, reach: Reach): void => {
      if (reach.before === Infinity) {
        ok = false;
        return;
      }
      const start = back(from, reach.before + 2);
      let end = reach.after === Infinity ? n : forward(to, reach.after + 2);
      if (reach.run !== undefined && end < n) {
        // An unbounded run of these characters may follow (rules/reach.ts): the window takes it
        // whole, and whatever bytes could spell one of them through an escape.
        const i = end;
        while (end < n && (reach.run.includes(String.fromCharCode(bytes[end]!)) || ESCAPE_BYTE.test(String.fromCharCode(bytes[end]!)))) end++;
        budget -= end - i;
        end = forward(end, 2);
      }
      if (budget < 0) ok = false;
      const last = windows.length - 2;
      // Occurrences come in order of their start: merge with the previous window when they touch.
      if (last >= 0 && start <= windows[last + 1]! && start >= windows[last]!) {
        if (end > windows[last + 1]!) {
          covered += end - windows[last + 1]!;
          windows[last + 1] = end;
        }
      } else {
        windows.push(start, end);
        covered += end - start;
      }
      // Windows over most of the body: reading them costs more than the full scan.
      if (covered > n / 2) ok = false;
    };
    // Every occurrence, kept: a window's readings get theirs from these, not from reading them again.
    const found: KeywordOccurrences = { at: [], keyword: [] };
    let sorted = true;
    if (!scanner.occurrences((start, k) => {
      if (found.at.length > 0 && start < found.at[found.at.length - 1]!) sorted = false;
      found.at.push(start);
      found.keyword.push(k);
      window(start, start, this.detector.reachOf(k));
      // Give up early on a body dense with keywords: windows over most of what was seen so far.
      return ok && covered <= start / 2 + 65536;
    })) return false;
    for (const e of escaped) {
      if (!ok) break;
      window(e.at, e.end, e.reach);
    }
    if (!ok) return false;
    if (windows.length === 0) return true;
    if (!sorted) {
      const order = found.at.map((_, i) => i).sort((a, b) => found.at[a]! - found.at[b]!);
      found.at = order.map((i) => found.at[i]!);
      found.keyword = order.map((i) => found.keyword[i]!);
    }
    /** The window's text; its occurrences are the bytes' when each byte is a character (ASCII, latin1). */
    const mayFind = (from: number, to: number, widened: boolean): boolean | typeof WIDEN => {
      const raw = bytes.toString(latin1 ? 'latin1' : 'utf8', from, to);
      return this.mayFind(raw, raw.length === to - from ? occurrencesIn(found, from, to) : null, from > 0, to < n, widened);
    };
    for (const [start, end] of mergeWindows(windows)) {
      const verdict = mayFind(start, end, false);
      if (verdict === true) return false;
      if (verdict === WIDEN) {
        // A short string with a keyword whose pair neighbours the window cuts: once more with room
        // for a pair around it (a key and a value, and what separates them).
        const from = back(start, PAIR_ROOM);
        const to = forward(end, PAIR_ROOM);
        if (budget < 0 || mayFind(from, to, true) !== false) return false;
      }
    }
    return true;
  }

  /**
   * After provesClean(bytes) said true: the runs of base64 characters and backslashes in those
   * bytes at least `minLength` long, found by the WebAssembly scanner while it has them (see
   * KeywordScanner.runs), or undefined.
   */
  runsOfLastBody(minLength: number): Int32Array | undefined {
    return this.scanner?.runs(minLength);
  }

  /**
   * Whether any reading of this window (see the head of this file) may hold a finding: true, false,
   * or WIDEN when only a pair cut by the window's edge is in doubt (and `widened` is false).
   */
  private mayFind(raw: string, occ: KeywordOccurrences | null, clipStart: boolean, clipEnd: boolean, widened: boolean): boolean | typeof WIDEN {
    const d = this.detector;
    if (d.probe(raw, clipStart, clipEnd, occ)) return true;
    const unescaped = this.unescape(raw, occ);
    if (unescaped.text !== raw && d.probe(unescaped.text, clipStart, clipEnd, unescaped.occ)) return true;
    this.pairCut = false;
    if (this.piecesMayFind(raw, occ, clipStart, clipEnd, 1)) return true;
    return this.pairCut ? (widened ? true : WIDEN) : false;
  }

  /** The last unescape's text and answer: a window's one piece is the window (mayFind, then piecesMayFind). */
  private unescapedFrom = '';
  private unescapedOcc: KeywordOccurrences | null = null;
  private unescaped: Reading = { text: '', occ: null };

  /** `text` unescaped once, with its keyword occurrences when those of `text` are known. */
  private unescape(text: string, occ: KeywordOccurrences | null): Reading {
    if (text === this.unescapedFrom && occ === this.unescapedOcc) return this.unescaped;
    const out = unescapeReading(text, occ, this.keywordChar);
    this.unescapedFrom = text;
    this.unescapedOcc = occ;
    this.unescaped = out;
    return out;
  }

  /** Set by pairMayFind when a neighbour it needed was cut by the window. */
  private pairCut = false;

  /**
   * Piece i (whole, short, with a keyword) as a pair's key or value (index.ts analyseJson: a key —
   * a string followed by `:` — and the next string, neither holding `"`, `\\` or a newline). What
   * the window cannot tell (a neighbour cut by its edge) is null.
   */
  private pairMayFind(pieces: readonly Piece[], i: number): boolean | null {
    const d = this.detector;
    const p = pieces[i]!;
    const opensWithColon = (between: Piece | undefined): boolean | null => {
      // What is not JSON structure between two strings: if this is what lies between two strings,
      // jsonStrings gives up on this level (no pairs); if not, piece i is no string (no pair either).
      if (between && NOT_BETWEEN.test(between.text)) return false;
      if (!between || between.clipStart) return null;
      const m = LEADING_BLANKS.exec(between.text)!;
      if (m[0].length === between.text.length) return between.clipEnd ? null : false;
      return between.text.charCodeAt(m[0].length) === 58; // :
    };
    const whole = (q: Piece | undefined): q is Piece => q !== undefined && !q.clipStart && !q.clipEnd;
    if (p.text.length <= PAIR_KEY_MAX) {
      const isKey = opensWithColon(pieces[i + 1]);
      if (isKey === null) return null;
      if (isKey) {
        const v = pieces[i + 2];
        if (!whole(v)) return null;
        if (v.text.length <= PAIR_VALUE_MAX && d.probe(`"${p.text}": "${v.text}"`, false, false)) return true;
      }
    }
    const afterKey = opensWithColon(pieces[i - 1]);
    if (afterKey === null) return null;
    if (afterKey) {
      const k = pieces[i - 2];
      if (!whole(k)) return null;
      if (k.text.length <= PAIR_KEY_MAX && d.probe(`"${k.text}": "${p.text}"`, false, false)) return true;
    }
    return false;
  }

  /** The strings of `text` (at nesting `level`), unescaped: each, their pairs, and the strings inside them. */
  private piecesMayFind(text: string, occ: KeywordOccurrences | null, clipStart: boolean, clipEnd: boolean, level: number): boolean {
    const d = this.detector;
    const pieces = splitAtQuotes(text, clipStart, clipEnd, occ).map((p) => ({ ...p, ...this.unescape(p.text, p.occ) }));
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i]!;
      // Without a keyword nothing is found in it, nor in the pieces cut from it, unless an escape
      // spells one; a pair it belongs to is checked from the piece that holds the keyword.
      const backslash = p.text.includes('\\');
      const keyword = p.occ ? p.occ.at.length > 0 : d.hasKeyword(p.text);
      if (!backslash && !keyword) continue;
      if (pieces.length > 1 || level > 1) {
        if (d.probe(p.text, p.clipStart, p.clipEnd, p.occ)) return true;
      }
      if (keyword && !p.clipStart && !p.clipEnd && p.text.length <= PAIR_VALUE_MAX && !PAIR_EXCLUDED.test(p.text)) {
        const pair = this.pairMayFind(pieces, i);
        if (pair === true) return true;
        if (pair === null) this.pairCut = true;
      }
      if (level < LEVELS && (backslash || p.text.includes('"'))) {
        if (this.piecesMayFind(p.text, p.occ, p.clipStart, p.clipEnd, level + 1)) return true;
      }
    }
    return false;
  }
}

/** Sorted, overlapping [start, end) pairs merged. */
function mergeWindows(flat: number[]): Array<[number, number]> {
  const list: Array<[number, number]> = [];
  for (let i = 0; i < flat.length; i += 2) list.push([flat[i]!, flat[i + 1]!]);
  list.sort((a, b) => a[0] - b[0]);
  const out: Array<[number, number]> = [];
  for (const w of list) {
    const last = out[out.length - 1];
    if (last && w[0] <= last[1]) last[1] = Math.max(last[1], w[1]);
    else out.push([w[0], w[1]]);
  }
  return out;
}


// Step 1 of the detector (detector.ts): every position where a rule keyword starts, in one pass.
//
// Keywords are matched as a case-insensitive JavaScript regular expression would (flag `i`, no
// `u`): ASCII letters fold to each other and nothing else folds to ASCII. For each position where
// at least one keyword starts, in increasing order, the finder reports the longest one there —
// what a leftmost search over the keywords' trie finds, retried from the next character.
//
// Two implementations with the same answers (test/unit/inspect-keywords.test.ts checks them
// against each other):
// - `AutomatonFinder`, for keywords of lower-case ASCII (all builtin ones; custom ones usually):
//   an Aho-Corasick automaton compiled to a dense table, one lookup per character. Against V8's
//   regex over the trie it halves the keyword pass on a 256 KiB prompt (bench/scanner.mjs) and
//   needs 40% fewer instructions on a 1 KiB chat request (bench/instructions.mjs: 74k → 44k
//   per request; bench/ab.mjs: 165 → 157 µs CPU per request under S1 load).
// - `RegexFinder`: the trie as one case-insensitive regular expression, for keyword sets the
//   automaton does not take (a custom keyword with non-ASCII letters, tens of thousands of
//   keywords) — and for none at all, where it returns at once.

export interface KeywordFinder {
  /** Calls `visit(at, keyword)` for each position where a keyword starts, in increasing order. */
  forEachStart(text: string, visit: (at: number, keyword: string) => void): void;
  /** True when a keyword occurs in `text`; reads no further than the end of the first one. */
  hasAny(text: string): boolean;
}

/** The finder for `keywords` (lower-case, as the detector stores them). */
export function keywordFinder(keywords: readonly string[]): KeywordFinder {
  // No keywords (every rule disabled): an automaton would still read every character.
  return keywords.length > 0 && AutomatonFinder.supports(keywords) ? new AutomatonFinder(keywords) : new RegexFinder(keywords);
}

const ALPHABET = 128;
/**
 * Keyword characters (an upper bound on states) the automaton is built for: 4 bytes × 128 per
 * state, so at most ~10 MiB of table. The builtin rules need ~550 states; a config with more
 * custom keywords than this gets the regex.
 */
const MAX_AUTOMATON_CHARS = 20_000;

export class AutomatonFinder implements KeywordFinder {
  /** Keywords the automaton can take: non-empty, lower-case ASCII, not too many. */
  static supports(keywords: readonly string[]): boolean {
    let chars = 0;
    for (const k of keywords) chars += k.length;
    return chars <= MAX_AUTOMATON_CHARS && keywords.every((k) => k.length > 0 && /^[\x00-\x40\x5b-\x7f]*$/.test(k));
  }

  private readonly keywords: readonly string[];
  private readonly lengths: Int32Array;
  /** next state = delta[state * 128 + char], A–Z already folded onto a–z. */
  private readonly delta: Int32Array;
  /** Per state: 0, or 1 + index into `outputs` of the keywords that end there, longest first. */
  private readonly ends: Int32Array;
  private readonly outputs: number[][] = [];
  /** Longest keyword: a start is final once the scan is that far past it. */
  private readonly maxLength: number;
  /**
   * Per start position, modulo its size (a power of two above maxLength): 1 + index of the
   * longest keyword found starting there so far, or 0. Shared by scans: not reentrant.
   */
  private readonly window: Int32Array;

  constructor(keywords: readonly string[]) {
    if (!AutomatonFinder.supports(keywords)) throw new Error('AutomatonFinder takes non-empty lower-case ASCII keywords');
    this.keywords = [...new Set(keywords)];
    this.lengths = Int32Array.from(this.keywords, (k) => k.length);
    const children: Map<number, number>[] = [new Map()];
    const own: number[][] = [[]];
    this.keywords.forEach((k, ki) => {
      let s = 0;
      for (let i = 0; i < k.length; i++) {
        const c = k.charCodeAt(i);
        let next = children[s]!.get(c);
        if (next === undefined) {
          next = children.length;
          children.push(new Map());
          own.push([]);
          children[s]!.set(c, next);
        }
        s = next;
      }
      own[s]!.push(ki);
    });

    // Breadth-first: a state's failure link (its longest proper suffix that is a trie state) is
    // complete before its children's are computed, and so is the row of the delta table it copies.
    const states = children.length;
    const delta = new Int32Array(states * ALPHABET);
    const fail = new Int32Array(states);
    const outputs: number[][] = new Array<number[]>(states);
    const queue: number[] = [];
    outputs[0] = own[0]!;
    for (let c = 0; c < ALPHABET; c++) {
      const next = children[0]!.get(c);
      if (next !== undefined) {
        delta[c] = next;
        queue.push(next);
      }
    }
    for (let head = 0; head < queue.length; head++) {
      const s = queue[head]!;
      // Own keywords are longer than any that end at the failure state: longest first.
      outputs[s] = [...own[s]!, ...outputs[fail[s]!]!];
      for (let c = 0; c < ALPHABET; c++) {
        const next = children[s]!.get(c);
        if (next !== undefined) {
          fail[next] = delta[fail[s]! * ALPHABET + c]!;
          delta[s * ALPHABET + c] = next;
          queue.push(next);
        } else {
          delta[s * ALPHABET + c] = delta[fail[s]! * ALPHABET + c]!;
        }
      }
    }
    for (let s = 0; s < states; s++) {
      for (let c = 65; c <= 90; c++) delta[s * ALPHABET + c] = delta[s * ALPHABET + c + 32]!;
    }
    this.delta = delta;
    this.ends = new Int32Array(states);
    for (let s = 0; s < states; s++) {
      if (outputs[s]!.length > 0) {
        this.ends[s] = this.outputs.length + 1;
        this.outputs.push(outputs[s]!);
      }
    }
    this.outputWords = this.outputs.map((o) => o.map((k) => this.keywords[k]!));
    this.maxLength = 1;
    for (const k of this.keywords) if (k.length > this.maxLength) this.maxLength = k.length;
    let size = 1;
    while (size <= this.maxLength) size *= 2;
    this.window = new Int32Array(size);
  }

  /**
   * Every keyword occurrence in `bytes` (ASCII, UTF-8 or latin1: a byte ≥ 128 is never part of a
   * keyword and sends the automaton to its root, as a character ≥ 128 does in a string, so the
   * occurrences are those of the decoded text): `visit(end, keywords)` with the keywords ending just
   * before `end`, all of them, longest first. Stops when `visit` returns false.
   */
  forEachEndInBytes(bytes: Uint8Array, visit: (end: number, keywords: readonly string[]) => boolean): void {
    const { delta, ends } = this;
    const words = this.outputWords;
    let state = 0;
    for (let i = 0, n = bytes.length; i < n; i++) {
      const c = bytes[i]!;
      state = c < ALPHABET ? delta[(state << 7) | c]! : 0;
      if (ends[state] !== 0 && !visit(i + 1, words[ends[state]! - 1]!)) return;
    }
  }

  private readonly outputWords: string[][];

  hasAny(text: string): boolean {
    run(text, 0, text.length, 0, this.delta, this.ends);
    return this.ends[ranTo] !== 0;
  }

  forEachStart(text: string, visit: (at: number, keyword: string) => void): void {
    const { delta, ends, maxLength } = this;
    this.window.fill(0); // a scan cut short by a throwing visitor leaves it dirty
    // Starts in [pending, …] may still get a keyword; those below `pending` have been reported.
    let pending = -1;
    let state = 0;
    const n = text.length;
    for (let i = 0; i < n; ) {
      // Up to where the earliest pending start becomes final, or the end of the text.
      const to = pending >= 0 && pending + maxLength < n ? pending + maxLength : n;
      i = run(text, i, to, state, delta, ends);
      state = ranTo;
      if (ends[state] !== 0) {
        const first = this.record(ends[state]! - 1, i - 1);
        if (pending < 0 || first < pending) pending = first;
      }
      // Every keyword starting at or before i - maxLength has ended by now.
      if (pending >= 0 && pending <= i - maxLength) pending = this.report(pending, i + 1 - maxLength, visit);
    }
    if (pending >= 0) this.report(pending, n, visit);
  }

  /** Notes the keywords ending at `end`; returns the earliest start among them. */
  private record(output: number, end: number): number {
    const mask = this.window.length - 1;
    let first = end;
    for (const k of this.outputs[output]!) {
      const start = end + 1 - this.lengths[k]!;
      const slot = start & mask;
      const held = this.window[slot]!;
      if (held === 0 || this.lengths[held - 1]! < this.lengths[k]!) this.window[slot] = k + 1;
      if (start < first) first = start;
    }
    return first;
  }

  /** Reports the starts in [from, to) that hold a keyword; returns the next pending start or -1. */
  private report(from: number, to: number, visit: (at: number, keyword: string) => void): number {
    const mask = this.window.length - 1;
    for (let at = from; at < to; at++) {
      const held = this.window[at & mask]!;
      if (held === 0) continue;
      this.window[at & mask] = 0;
      visit(at, this.keywords[held - 1]!);
    }
    // Anything recorded at or after `to` is still in the window.
    for (let at = to; at < to + this.maxLength; at++) if (this.window[at & mask] !== 0) return at;
    return -1;
  }
}

/** The state `run` stopped in (a second return value without an allocation). */
let ranTo = 0;

/**
 * The automaton over text[from, to) from `state`: stops after the first character that leads to
 * a state where keywords end. Returns the index after the last character read; `ranTo` is the
 * state. Relies on V8 inlining charCodeAt, which a dependency subclassing String would undo for
 * the whole process (~4× slower; see ratelimit/connection.ts).
 */
function run(text: string, from: number, to: number, state: number, delta: Int32Array, ends: Int32Array): number {
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    // No keyword has a character ≥ 128, and none of those folds to ASCII: back to the root.
    state = c < ALPHABET ? delta[(state << 7) | c]! : 0; // state * ALPHABET + c
    if (ends[state] !== 0) {
      ranTo = state;
      return i + 1;
    }
  }
  ranTo = state;
  return to;
}

export class RegexFinder implements KeywordFinder {
  private readonly re: RegExp | null;

  constructor(keywords: readonly string[]) {
    const words = [...new Set(keywords)].sort();
    this.re = words.length > 0 ? new RegExp(trieSource(words), 'gi') : null;
  }

  forEachStart(text: string, visit: (at: number, keyword: string) => void): void {
    const re = this.re;
    if (re === null) return;
    re.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(text)) !== null) {
      const at = m.index;
      visit(at, m[0].toLowerCase());
      // Next search from the following character, so overlapping keywords are all seen
      // (`dd_api_key` holds both `dd_api` and `api_key`).
      re.lastIndex = at + 1;
    }
  }

  hasAny(text: string): boolean {
    const re = this.re;
    if (re === null) return false;
    re.lastIndex = 0;
    const found = re.test(text);
    re.lastIndex = 0;
    return found;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/** `(?:p(?:ass|wd)|tok(?:en))`: V8 matches a factored alternation faster than a flat one. */
function trieSource(words: readonly string[]): string {
  interface Node {
    end: boolean;
    next: Map<string, Node>;
  }
  const root: Node = { end: false, next: new Map() };
  for (const w of words) {
    let n = root;
    for (const ch of w) {
      let child = n.next.get(ch);
      if (!child) {
        child = { end: false, next: new Map() };
        n.next.set(ch, child);
      }
      n = child;
    }
    n.end = true;
  }
  const emit = (n: Node): string => {
    const alts = [...n.next].map(([ch, child]) => escapeRegExp(ch) + emit(child));
    if (alts.length === 0) return '';
    if (alts.length === 1 && !n.end) return alts[0]!;
    return `(?:${alts.join('|')}${n.end ? '|' : ''})`;
  };
  return emit(root);
}

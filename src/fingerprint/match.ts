// Looks a text up in a protected-code index: winnow it with the index's own k and w, find each
// fingerprint by binary search, and group the hits by protected file into runs of nearby lines. A
// run covering at least `minLines` lines of one protected file is a match, named by file and lines.
import type { FingerprintIndex } from './index-file.js';
import { tokenize, type TokenStream } from './tokens.js';
import { winnow, type Fingerprints, type View } from './winnow.js';
import { work } from './work.js';

export interface ProtectedCodeMatch {
  label: string;
  /** The protected file (as indexed) and the lines of it the run covers. */
  file: string;
  fileStart: number;
  fileEnd: number;
  /** Lines of the protected file covered by matching k-grams. */
  lines: number;
  /** Lines of the text that matched (1-based). */
  textStart: number;
  textEnd: number;
}

/** Hits of one fingerprint looked at, at most: a hash in many places says little about any one. */
const MAX_POSTINGS = 16;
/** Lines of the protected file that may separate two hits of one run (a comment, a blank). */
const RUN_GAP = 4;
/**
 * Fingerprints a run needs, at least. One k-gram can span many lines of the protected file (a long
 * comment between two statements), so one hit alone could cover minLines: a 32-bit hash meeting
 * a big index by chance, or one common shape, would be a finding. Measured with
 * bench/fingerprint-inspect.mjs: the S2 body (undici) against a 1M-line index of other code gave
 * 3 such findings, 1 with 2 hits required (recall of bench/fingerprint-eval.mjs unchanged but for
 * renamed 8–14-line snippets, 0.627 → 0.618; 3 hits cost 0.03 there), and none once a run must also
 * be compact in the text (TEXT_SPREAD). With line anchors (build.ts) 3 hits would cost 0.001–0.003
 * and end no more false positives in bench/fingerprint-eval.mjs: 2 stays.
 */
const MIN_RUN_HITS = 2;
/** Blank or comment lines in a row inside code that still count as lines of it. */
const SPACING = 2;
/** Lines of a prompt without a hit that end the stretch a copy stands on (textExtent). */
const TEXT_GAP = 50;
/** Text lines a run may spread over, per protected line it covers. */
const TEXT_SPREAD = 4;
/** Tokens of a text looked at, at most (linear bound for a huge body; ~1.5 MB of code). */
export const MAX_TOKENS = 400_000;

export interface Hit {
  fStart: number;
  fEnd: number;
  tStart: number;
  tEnd: number;
}

/** Bits of a hash that pick its bucket (65,536 buckets: a binary search of a handful of entries). */
const BUCKET_BITS = 16;
/**
 * Bits of the presence filter per index entry (rounded up to a power of two): nearly every
 * fingerprint of a prompt is in no index, and one bit test (4 MiB for the 1.4 M entries of a
 * million-line index) rules out all but ~1/25 of them without the binary search's cache misses.
 */
const FILTER_BITS_PER_ENTRY = 16;

export class FingerprintMatcher {
  /** Index of the first entry of each bucket of hashes (by their top bits), and the end. */
  private readonly buckets: Uint32Array;
  /** One bit per value of the hash's low bits: set when some entry has them. */
  private readonly filter: Int32Array;
  private readonly filterMask: number;
  /** Bit of each file's line 0 in `index.code`. */
  private readonly lineBase: Uint32Array;

  constructor(
    private readonly index: FingerprintIndex,
    private readonly minLines: number,
  ) {
    const n = 1 << BUCKET_BITS;
    this.buckets = new Uint32Array(n + 1);
    let at = 0;
    for (let b = 0; b <= n; b++) {
      while (at < index.hashes.length && index.hashes[at]! >>> (32 - BUCKET_BITS) < b) at++;
      this.buckets[b] = at;
    }
    let bits = 1 << 10;
    while (bits < index.hashes.length * FILTER_BITS_PER_ENTRY && bits < 1 << 30) bits *= 2;
    this.filter = new Int32Array(bits >>> 5);
    this.filterMask = bits - 1;
    const { hashes } = index;
    const filter = this.filter;
    const mask = this.filterMask;
    for (let e = 0; e < hashes.length; e++) {
      const h = hashes[e]! | 0;
      filter[(h & mask) >>> 5]! |= 1 << (h & 31);
    }
    this.lineBase = new Uint32Array(index.files.length);
    for (let f = 0, at = -1; f < index.files.length; at += index.files[f]!.lines, f++) this.lineBase[f] = at;
  }

  get label(): string {
    return this.index.label;
  }

  get k(): number {
    return this.index.k;
  }

  get w(): number {
    return this.index.w;
  }

  /** The best run in each protected file that reaches minLines, longest first. */
  match(input: string | TokenStream): ProtectedCodeMatch[] {
    return matchAll([this], typeof input === 'string' ? tokenize(input, MAX_TOKENS) : input)[0]!;
  }

  /**
   * Adds the index entries of `fp`'s fingerprints to `byFile`, and those of every k-gram near one
   * that is in the index. Winnowing keeps the same fingerprints of two copies only where a whole
   * window of k-grams is shared: near the ends of a copied stretch the index kept k-grams the
   * prompt did not (the prompt's windows there reach other code). Looked up whole, the k-grams
   * around a hit find every fingerprint the index has of the stretch, so an 8-line copy counts its
   * 8 lines, not the 6 in the middle. (Looking every k-gram of the prompt up instead meets
   * stretches of 20 shared tokens, not w + k − 1, everywhere: in bench/fingerprint-eval.mjs it
   * raised the false positives eightfold and lowered recall, chance hits spreading the runs.
   * Looking up only the k-grams with the smallest quarter of hashes, which winnowing mostly kept,
   * saved 0.5 ms per 256 KiB but cost 0.01 of recall of renamed 8–14-line snippets.)
   */
  lookup(fp: Fingerprints, lines: Int32Array, byFile: Map<number, Hit[]>): void {
    const { filter, filterMask } = this;
    const reach = 2 * this.index.w;
    const grams = fp.grams.length;
    let denseTo = 0; // k-grams before this one were looked up whole already
    let lookups = 0;
    for (let i = 0; i < fp.length; i++) {
      const p = fp.positions[i]!;
      if (p < denseTo) continue;
      lookups++;
      // The k-gram's hash as a signed integer (`grams`): V8 keeps it unboxed, where the unsigned
      // value above 2^31 of `hashes` became a double and made this test ten times slower.
      const h = fp.grams[p]!;
      if ((filter[(h & filterMask) >>> 5]! & (1 << (h & 31))) === 0) continue;
      const e = this.find(h >>> 0);
      if (e < 0) continue;
      this.add(e, p, lines, byFile);
      // A hit: every other k-gram from `reach` before it to `reach` after the last hit, each once.
      let to = Math.min(grams, p + reach + 1);
      for (let at = Math.max(p - reach, denseTo); at < to; at++) {
        if (at === p) continue;
        const g = fp.grams[at]!;
        lookups++;
        if ((filter[(g & filterMask) >>> 5]! & (1 << (g & 31))) === 0) continue;
        const f = this.find(g >>> 0);
        if (f < 0) continue;
        this.add(f, at, lines, byFile);
        to = Math.min(grams, Math.max(to, at + reach + 1));
      }
      denseTo = to;
    }
    work.lookups += lookups;
  }

  /** The first index entry of hash `h`, or −1. */
  private find(h: number): number {
    const { buckets } = this;
    const { hashes } = this.index;
    const bucket = h >>> (32 - BUCKET_BITS);
    const e = lowerBound(hashes, h, buckets[bucket]!, buckets[bucket + 1]!);
    work.steps++;
    return e < hashes.length && hashes[e] === h ? e : -1;
  }

  /** The entries from `e` on (all of one hash), hit by the k-gram at `at` of the text. */
  private add(e: number, at: number, lines: Int32Array, byFile: Map<number, Hit[]>): void {
    const { index } = this;
    const { hashes } = index;
    const h = hashes[e]!;
    const tStart = lines[at]!;
    const tEnd = lines[at + index.k - 1]!;
    for (let seen = 0; e < hashes.length && hashes[e] === h && seen < MAX_POSTINGS; e++, seen++) {
      const file = index.fileIds[e]!;
      let hits = byFile.get(file);
      if (!hits) byFile.set(file, (hits = []));
      // A hit counts no more protected lines than its k-gram spans in the text. A k-gram stretched
      // over many protected lines by a comment between two statements, met by two statements of
      // a prompt that follow each other, is a common shape met by chance, not a 14-line copy
      // (bench/fingerprint-eval.mjs, seeds 7–9: 11–15 false positives in 2,012 without this, 1
      // with, recall the same): a copy keeps its comments, or its lines when re-indented.
      const fStart = index.starts[e]!;
      hits.push({ fStart, fEnd: Math.min(index.ends[e]!, fStart + (tEnd - tStart)), tStart, tEnd });
      work.hits++;
    }
  }

  /** The matches among the hits of `lookup`. */
  matches(byFile: Map<number, Hit[]>): ProtectedCodeMatch[] {
    const out: ProtectedCodeMatch[] = [];
    for (const [file, hits] of byFile) {
      const best = bestRun(hits, this.minLines, this.index.code, this.lineBase[file]!);
      if (best) out.push({ label: this.index.label, file: this.index.files[file]!.path, ...best });
    }
    return out.sort((a, b) => b.lines - a.lines);
  }
}

/**
 * Each matcher's matches in one tokenised text: the text is tokenised once for all the indexes,
 * and winnowed once per view for all those built with the same k and w.
 */
export function matchAll(matchers: readonly FingerprintMatcher[], tokens: TokenStream): ProtectedCodeMatch[][] {
  const hits = matchers.map(() => new Map<number, Hit[]>());
  const done = new Set<string>();
  matchers.forEach((m, i) => {
    const key = `${m.k}/${m.w}`;
    // A run needs MIN_RUN_HITS k-grams: at least one more than the first.
    if (done.has(key) || tokens.length < m.k + MIN_RUN_HITS - 1) return;
    done.add(key);
    for (const view of VIEWS) {
      const fp = winnow(tokens, m, view);
      for (let j = i; j < matchers.length; j++) if (matchers[j]!.k === m.k && matchers[j]!.w === m.w) matchers[j]!.lookup(fp, tokens.lines, hits[j]!);
    }
  });
  return matchers.map((m, i) => (hits[i]!.size === 0 ? [] : m.matches(hits[i]!)));
}

const VIEWS: readonly View[] = ['ids', 'exact'];

/**
 * The run of hits covering the most lines of code of one protected file (`code`: its line bits
 * from bit `base` + 1), if it reaches minLines.
 */
function bestRun(hits: Hit[], minLines: number, code: Uint32Array, base: number): Omit<ProtectedCodeMatch, 'label' | 'file'> | null {
  hits.sort((a, b) => a.fStart - b.fStart || a.fEnd - b.fEnd);
  let best: Omit<ProtectedCodeMatch, 'label' | 'file'> | null = null;
  let i = 0;
  while (i < hits.length) {
    const run = { fileStart: hits[i]!.fStart, fileEnd: hits[i]!.fEnd, lines: 0, textStart: hits[i]!.tStart, textEnd: hits[i]!.tEnd };
    // The union of the hits' line ranges, as intervals [from, to].
    let from = run.fileStart;
    let to = run.fileEnd;
    const first = i;
    for (; i < hits.length && hits[i]!.fStart <= run.fileEnd + RUN_GAP; i++) {
      const h = hits[i]!;
      // Lines between two covered stretches count only when blank or comments (a line anchor
      // covers its own line only: build.ts), at most SPACING of them, as inside one stretch.
      if (h.fStart > to + 1 && !onlySpacing(code, base, to, h.fStart)) {
        run.lines += codeLines(code, base, from, to);
        from = h.fStart;
      }
      to = Math.max(to, h.fEnd);
      run.fileEnd = Math.max(run.fileEnd, h.fEnd);
      run.textStart = Math.min(run.textStart, h.tStart);
      run.textEnd = Math.max(run.textEnd, h.tEnd);
    }
    run.lines += codeLines(code, base, from, to);
    if (run.lines < minLines || i - first < MIN_RUN_HITS || (best && run.lines <= best.lines)) continue;
    textExtent(hits, first, i, run);
    // A copy holds at least as many lines of the prompt as the protected lines it is credited
    // with: more are several protected places met by the same few lines (bench/fingerprint-
    // inspect.mjs: one import line of the prompt credited with lines 3–12 of another file's
    // import block).
    run.lines = Math.min(run.lines, run.textEnd - run.textStart + 1);
    if (run.lines < minLines || (best && run.lines <= best.lines)) continue;
    // Hits of nearby protected lines scattered over the text are common shapes met by chance, not
    // a copy: a copy, even re-wrapped, spans a few times its protected lines at most.
    if (run.textEnd - run.textStart > TEXT_SPREAD * (run.fileEnd - run.fileStart + 1) + RUN_GAP) continue;
    best = run;
  }
  return best;
}

/**
 * The lines of the text a run of hits[from..to) stands on: its largest cluster of hits no more
 * than TEXT_GAP lines apart. In a long prompt, common k-grams of the protected file also turn up
 * far from the copy (bench/fingerprint-inspect.mjs: undici's client-h1.js, 1,766 lines pasted at
 * line 6,097 of a 9,300-line prompt, had hits from line 584 on, so the copy failed the
 * TEXT_SPREAD check); a redaction must not reach that far either.
 */
function textExtent(hits: Hit[], from: number, to: number, run: { textStart: number; textEnd: number }): void {
  const spans = hits.slice(from, to).sort((a, b) => a.tStart - b.tStart);
  let bestCount = 0;
  for (let j = 0; j < spans.length; ) {
    const start = spans[j]!.tStart;
    let end = spans[j]!.tEnd;
    let count = 0;
    for (; j < spans.length && spans[j]!.tStart <= end + TEXT_GAP; j++, count++) end = Math.max(end, spans[j]!.tEnd);
    if (count > bestCount) {
      bestCount = count;
      run.textStart = start;
      run.textEnd = end;
    }
  }
}

/**
 * Lines `from`–`to` of a protected file that count: those holding code, and the blank or comment
 * lines between two of them when at most SPACING in a row. A k-gram reaching over a block of
 * documentation covers that block's lines, but a prompt holding its two ends (a common shape: the
 * end of a constructor, then a getter) holds only a few lines of the protected code.
 */
function codeLines(code: Uint32Array, base: number, from: number, to: number): number {
  let count = 0;
  let gap = -1; // non-code lines since the last code line (−1: none yet)
  for (let line = from; line <= to; line++) {
    const bit = base + line;
    if ((code[bit >>> 5]! & (1 << (bit & 31))) !== 0) {
      count += 1 + (gap > 0 && gap <= SPACING ? gap : 0);
      gap = 0;
    } else if (gap >= 0) gap++;
  }
  return count;
}

/** True when the lines strictly between `from` and `to` are at most SPACING, none holding code. */
function onlySpacing(code: Uint32Array, base: number, from: number, to: number): boolean {
  if (to - from - 1 > SPACING) return false;
  for (let line = from + 1; line < to; line++) {
    const bit = base + line;
    if ((code[bit >>> 5]! & (1 << (bit & 31))) !== 0) return false;
  }
  return true;
}

function lowerBound(sorted: Uint32Array, value: number, lo: number, hi: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

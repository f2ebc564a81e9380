// Looks a text up in a protected-code index: winnow it with the index's own k and w, find each
// fingerprint by binary search, and group the hits by protected file into runs of nearby lines. A
// run covering at least `minLines` lines of one protected file is a match, named by file and lines.
import type { FingerprintIndex } from './index-file.js';
import { tokenize } from './tokens.js';
import { winnow } from './winnow.js';

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
 * be compact in the text (TEXT_SPREAD).
 */
const MIN_RUN_HITS = 2;
/** Text lines a run may spread over, per protected line it covers. */
const TEXT_SPREAD = 4;
/** Tokens of a text looked at, at most (linear bound for a huge body; ~1.5 MB of code). */
export const MAX_TOKENS = 400_000;

interface Hit {
  fStart: number;
  fEnd: number;
  tStart: number;
  tEnd: number;
}

/** Bits of a hash that pick its bucket (65,536 buckets: a binary search of a handful of entries). */
const BUCKET_BITS = 16;

export class FingerprintMatcher {
  /** Index of the first entry of each bucket of hashes (by their top bits), and the end. */
  private readonly buckets: Uint32Array;

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
  }

  get label(): string {
    return this.index.label;
  }

  /** The best run in each protected file that reaches minLines, longest first. */
  match(text: string): ProtectedCodeMatch[] {
    const { index } = this;
    const tokens = tokenize(text, MAX_TOKENS);
    const byFile = new Map<number, Hit[]>();
    for (const view of ['ids', 'exact'] as const) {
    const fp = winnow(tokens, index, view);
    for (let i = 0; i < fp.length; i++) {
      const h = fp.hashes[i]!;
      const bucket = h >>> (32 - BUCKET_BITS);
      let at = lowerBound(index.hashes, h, this.buckets[bucket]!, this.buckets[bucket + 1]!);
      for (let seen = 0; at < index.hashes.length && index.hashes[at] === fp.hashes[i] && seen < MAX_POSTINGS; at++, seen++) {
        const file = index.fileIds[at]!;
        let hits = byFile.get(file);
        if (!hits) byFile.set(file, (hits = []));
        hits.push({ fStart: index.starts[at]!, fEnd: index.ends[at]!, tStart: fp.starts[i]!, tEnd: fp.ends[i]! });
      }
    }
    }
    const out: ProtectedCodeMatch[] = [];
    for (const [file, hits] of byFile) {
      const best = bestRun(hits);
      if (best && best.lines >= this.minLines) out.push({ label: index.label, file: index.files[file]!.path, ...best });
    }
    return out.sort((a, b) => b.lines - a.lines);
  }
}

function bestRun(hits: Hit[]): Omit<ProtectedCodeMatch, 'label' | 'file'> | null {
  hits.sort((a, b) => a.fStart - b.fStart || a.fEnd - b.fEnd);
  let best: Omit<ProtectedCodeMatch, 'label' | 'file'> | null = null;
  let i = 0;
  while (i < hits.length) {
    const run = { fileStart: hits[i]!.fStart, fileEnd: hits[i]!.fEnd, lines: 0, textStart: hits[i]!.tStart, textEnd: hits[i]!.tEnd };
    let coveredTo = run.fileStart - 1; // union of the hits' line ranges, counted as they come
    const first = i;
    for (; i < hits.length && hits[i]!.fStart <= run.fileEnd + RUN_GAP; i++) {
      const h = hits[i]!;
      if (h.fEnd > coveredTo) {
        run.lines += h.fEnd - Math.max(h.fStart, coveredTo + 1) + 1;
        coveredTo = h.fEnd;
      }
      run.fileEnd = Math.max(run.fileEnd, h.fEnd);
      run.textStart = Math.min(run.textStart, h.tStart);
      run.textEnd = Math.max(run.textEnd, h.tEnd);
    }
    // Hits of nearby protected lines scattered over the text are common shapes met by chance, not
    // a copy: a copy, even re-wrapped, spans a few times its protected lines at most.
    const compact = run.textEnd - run.textStart <= TEXT_SPREAD * (run.fileEnd - run.fileStart + 1) + RUN_GAP;
    if (i - first >= MIN_RUN_HITS && compact && (!best || run.lines > best.lines)) best = run;
  }
  return best;
}

function lowerBound(sorted: Uint32Array, value: number, lo: number, hi: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

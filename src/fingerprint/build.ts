// Builds a protected-code index from source texts: tokenise, winnow, then drop what is common.
// A k-gram found in many protected files is boilerplate (licence-free import blocks, getters, test
// scaffolding) that also turns up in everybody else's code: keeping it would flag innocent prompts.
import type { FingerprintIndex, ProtectedFile } from './index-file.js';
import { tokenize, type TokenStream } from './tokens.js';
import { gramValues, winnow, type WinnowParams } from './winnow.js';

export interface BuildParams extends WinnowParams {
  label: string;
  /** A k-gram in more protected files than this is boilerplate and left out. */
  maxFiles: number;
  /** Occurrences of one k-gram kept per file (repetitive code: tables, switch arms). */
  maxPerFile: number;
  /**
   * A k-gram with fewer distinct tokens than this is repetitive (`this.a = a; this.b = b; …`,
   * argument lists, tables): code of that shape is everywhere, so it identifies nothing.
   */
  minDistinct: number;
  /**
   * Line anchors (IndexBuilder.anchor): besides the winnowed k-grams, one starting on and one
   * ending on each line of code where winnowing kept none, each standing for its own line only.
   */
  lineAnchors: boolean;
}

const EXACT_MIN_DISTINCT = 6;

/**
 * Measured with bench/fingerprint-eval.mjs (docs/inspection.md has the table): k = 20 tokens
 * (~2 lines) keeps common code shapes from matching across codebases (k = 12–15 tripled the false
 * positives). w = 5 keeps enough fingerprints that a short snippet is seen to its ends (recall of
 * renamed 8–14-line snippets, mean of 3 seeds × 1,000: w = 8 0.78, w = 6 0.78, w = 5 0.80, w = 4
 * 0.81) at 45 MiB for a million lines of node_modules (w = 8: 31 MiB, w = 4: 54 MiB) — measured
 * before line anchors, which raised w = 5's 0.80 to 0.86 for 48 MiB (IndexBuilder.anchor). A k-gram
 * in more than 8 protected files is boilerplate (4 cost 0.03 of recall for no fewer false positives).
 */
export const DEFAULT_BUILD: Omit<BuildParams, 'label'> = { k: 20, w: 5, maxFiles: 8, maxPerFile: 2, minDistinct: 6, lineAnchors: true };

class Column {
  data = new Uint32Array(1 << 16);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const bigger = new Uint32Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = v;
  }
}

/**
 * True when all of the k values but two at most repeat with a period of at most half of k: a
 * table's rows, or its first or last rows with what opens or closes it (`{ a: o.a, b: o.b, …`),
 * whose shape every table of that kind has (bench/fingerprint-eval.mjs: 3 false positives in
 * 2,012 when the whole k-gram had to repeat, none so; with three quarters, recall fell 0.01).
 */
function periodic(values: Int32Array, k: number): boolean {
  const enough = k - 2;
  for (let p = 1; p <= k >> 1; p++) {
    let run = 0;
    for (let t = 0; t + p < k; t++) {
      if (values[t] === values[t + p]) run++;
      else {
        run = 0;
        // A run after t is k − p − t − 1 long at most: too short, this period is done (most
        // k-grams are not periodic, and the build tests every one it keeps).
        if (p < enough && k - t - 1 < enough) break;
      }
      if (run + p >= enough) return true;
    }
  }
  return false;
}

/** True when `values` hold at least `min` distinct values (stops counting there). */
function distinctAtLeast(values: Int32Array, min: number): boolean {
  let count = 0;
  for (let i = 0; i < values.length && count < min; i++) {
    const v = values[i];
    let j = 0;
    while (j < i && values[j] !== v) j++;
    if (j === i) count++;
  }
  return count >= min;
}

export class IndexBuilder {
  private readonly files: ProtectedFile[] = [];
  private readonly hashes = new Column();
  private readonly fileIds = new Column();
  private readonly starts = new Column();
  private readonly ends = new Column();
  /** Every k-gram of the excluded (public) code: never in the index. */
  private readonly excluded = new Column();
  /** Lines holding code, one bit each (index-file.ts), and the lines of the files so far. */
  private readonly code = new Column();
  private lines = 0;
  tokens = 0;

  constructor(private readonly params: BuildParams) {}

  add(path: string, text: string): void {
    const fileId = this.files.length;
    let lines = 1;
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lines++;
    this.files.push({ path, lines });
    const tokens = tokenize(text);
    const base = this.lines - 1;
    this.lines += lines;
    while (this.code.length < Math.ceil(this.lines / 32)) this.code.push(0);
    for (let t = 0; t < tokens.length; t++) {
      const bit = base + tokens.lines[t]!;
      this.code.data[bit >>> 5]! |= 1 << (bit & 31);
    }
    this.tokens += tokens.length;
    const seen = new Map<number, number>();
    const { k } = this.params;
    const values = new Int32Array(k);
    /** Lines (1-based) on which a kept k-gram of the view starts, and on which one ends. */
    const started = new Uint8Array(lines + 1);
    const ended = new Uint8Array(lines + 1);
    /** k-grams of the view the filters dropped: line anchors offer many of them again. */
    const dropped = new Uint8Array(tokens.length);
    // Both views go into one table (their hashes cannot meet: identifiers hash differently).
    for (const view of ['ids', 'exact'] as const) {
      started.fill(0);
      ended.fill(0);
      dropped.fill(0);
      /** Adds the k-gram at `p` unless a filter drops it, as covering lines `from`–`to`. */
      const keep = (p: number, h: number, from: number, to: number): boolean => {
        if (dropped[p] === 1) return false;
        dropped[p] = 1;
        // The cheap test first: about a sixth of the k-grams offered repeat one kept already.
        const count = seen.get(h) ?? 0;
        if (count >= this.params.maxPerFile) return false;
        gramValues(tokens, p, k, view === 'ids' ? 'context' : 'exact', values);
        // Names make even a table specific: the exact view only drops plain repetition.
        if (!distinctAtLeast(values, view === 'ids' ? this.params.minDistinct : EXACT_MIN_DISTINCT)) return false;
        // Without names, a run of same-shaped lines (`this.a = opts.a; this.b = opts.b; …`) is
        // the same in every codebase.
        if (view === 'ids' && periodic(values, k)) return false;
        dropped[p] = 0;
        seen.set(h, count + 1);
        this.hashes.push(h);
        this.fileIds.push(fileId);
        this.starts.push(from);
        this.ends.push(to);
        return true;
      };
      const fp = winnow(tokens, this.params, view);
      for (let i = 0; i < fp.length; i++) {
        const from = fp.starts[i]!;
        const to = fp.ends[i]!;
        if (!keep(fp.positions[i]!, fp.hashes[i]!, from, to)) continue;
        started[from] = 1;
        ended[to] = 1;
      }
      if (view === 'ids' && this.params.lineAnchors) this.anchor(tokens, fp.grams, started, ended, keep);
    }
  }

  /**
   * Line anchors. A copy's first line counts only if the index holds a k-gram starting on it, its
   * last line only if one ends on it; winnowing keeps about one k-gram in three, so a short line
   * (`}`, `return x`) at either end of a snippet was often left out, and an 8-line copy counted 7
   * (bench/fingerprint-eval.mjs, seed 9: 95 of the 231 renamed 8–14-line snippets missed). So each
   * line holding code that no kept k-gram starts on gets the first k-gram starting on it that the
   * filters let through, and each that none ends on the last one ending on it. The prompt finds
   * them with the k-grams it looks up around a hit (match.ts). An anchor stands for its own line
   * only (start = end): spanning its k-gram's lines, the anchors of an import block's or a table's
   * first line extended chance runs of common shapes to 8 lines (1–2 false positives in 2,012 per
   * seed). Renaming-blind view only: it meets verbatim copies too (exact-view anchors: +0.005
   * verbatim recall for 8% more entries). Measured (bench/fingerprint-eval.mjs --seed 7|8|9, and
   * --no-anchors): renamed 8–14-line recall 0.823/0.801/0.769 → 0.879/0.869/0.842, 15–40 lines
   * 0.948/0.955/0.957 → 0.963/0.971/0.968, no false positive (with --samples 4000, 8,012
   * negatives: 1 on seed 7 and none on seed 9, as before); +9% entries (--big-distinct's index
   * 45.1 → 48.3 MiB).
   */
  private anchor(tokens: TokenStream, grams: Int32Array, started: Uint8Array, ended: Uint8Array, keep: (p: number, h: number, from: number, to: number) => boolean): void {
    const { k } = this.params;
    const n = grams.length; // k-grams: the one at p holds tokens p … p + k − 1
    for (let first = 0; first < tokens.length; ) {
      const line = tokens.lines[first]!;
      let last = first;
      while (last + 1 < tokens.length && tokens.lines[last + 1] === line) last++;
      if (!started[line]) for (let p = first; p <= last && p < n; p++) if (keep(p, grams[p]! >>> 0, line, line)) break;
      if (!ended[line]) for (let p = last - k + 1; p >= 0 && p + k - 1 >= first; p--) if (keep(p, grams[p]! >>> 0, line, line)) break;
      first = last + 1;
    }
  }

  /**
   * Code that is not protected but may share k-grams with protected code (the open-source
   * dependencies it vendors or copies, generated helpers such as TypeScript's __createBinding): its
   * k-grams are left out of the index, so a prompt holding that public code is not a finding.
   * Every k-gram counts here (window 1), not a winnowed sample.
   */
  exclude(text: string): void {
    const tokens = tokenize(text);
    for (const view of ['ids', 'exact'] as const) {
      const all = winnow(tokens, { k: this.params.k, w: 1 }, view);
      for (let i = 0; i < all.length; i++) this.excluded.push(all.hashes[i]!);
    }
  }

  build(): FingerprintIndex {
    const excluded = this.excluded.data.subarray(0, this.excluded.length).sort();
    const isExcluded = (h: number) => {
      let lo = 0;
      let hi = excluded.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (excluded[mid]! < h) lo = mid + 1;
        else hi = mid;
      }
      return lo < excluded.length && excluded[lo] === h;
    };
    const n = this.hashes.length;
    // Sort entry numbers by hash: (hash << 32 | entry) sorts natively as 64-bit integers.
    const keys = new BigUint64Array(n);
    for (let i = 0; i < n; i++) keys[i] = (BigInt(this.hashes.data[i]!) << 32n) | BigInt(i);
    keys.sort();
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = Number(keys[i]! & 0xffffffffn);
    const out = { hashes: new Column(), fileIds: new Column(), starts: new Column(), ends: new Column() };
    for (let runStart = 0; runStart < n; ) {
      const h = this.hashes.data[order[runStart]!]!;
      let runEnd = runStart;
      const filesWithIt = new Set<number>();
      while (runEnd < n && this.hashes.data[order[runEnd]!] === h) filesWithIt.add(this.fileIds.data[order[runEnd++]!]!);
      if (filesWithIt.size <= this.params.maxFiles && !isExcluded(h)) {
        for (let j = runStart; j < runEnd; j++) {
          const e = order[j]!;
          out.hashes.push(h);
          out.fileIds.push(this.fileIds.data[e]!);
          out.starts.push(this.starts.data[e]!);
          out.ends.push(this.ends.data[e]!);
        }
      }
      runStart = runEnd;
    }
    const slice = (c: Column) => c.data.slice(0, c.length);
    const { label, k, w } = this.params;
    return { label, k, w, files: this.files, code: slice(this.code), hashes: slice(out.hashes), fileIds: slice(out.fileIds), starts: slice(out.starts), ends: slice(out.ends) };
  }
}

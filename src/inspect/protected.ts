// Protected code in prompts (`inspect.fingerprints`, SPEC §11 "Sensitive code"): the indexes built
// by `aigate fingerprint build` are loaded once at start, and every text the inspector reads (each
// JSON string value, each decoded attachment, a non-JSON body) is looked up in them. A run of
// matches covering at least `minLines` lines of one protected file is a finding
// `protected-code:<label>`, located by whole lines of the text and naming the protected file and
// its line range (never code).
//
// Unlike a secret rule, nothing gates this on keywords: protected code has none. The inspector's
// "no keyword, nothing to find" shortcuts must therefore never skip it (see mayHold).
import { readFileSync } from 'node:fs';
import type { Action, InspectConfig } from '../config/schema.js';
import { decodeIndex, IndexFileError, type FingerprintIndex } from '../fingerprint/index-file.js';
import { FingerprintMatcher, matchAll, MAX_TOKENS, type ProtectedCodeMatch } from '../fingerprint/match.js';
import { tokenize, wasmTokenizer, WASM_MAX_CHARS } from '../fingerprint/tokens.js';
import { MAX_NESTED_JSON, MIN_SCAN_LENGTH } from './json-walk.js';
import { BETWEEN_CHAR, jsonStrings, looksLikeJson, type JsonString } from './json.js';
import { LookupMemo, MEMO_MIN_BYTES } from './lookup-memo.js';

export const PROTECTED_PREFIX = 'protected-code:';

/** One loaded `inspect.fingerprints` entry: what the main thread hands the scan threads too. */
export interface ProtectedCodeSource {
  /** The rule label (config `label`, else the index's own). */
  label: string;
  action?: Action | undefined;
  minLines: number;
  index: FingerprintIndex;
}

export interface ProtectedHit {
  /** Index into the sources (one rule per source). */
  source: number;
  /** Offsets of the matched lines in the text: from the first line's start to the last line's end. */
  start: number;
  end: number;
  /** `<protected file>:<first line>-<last line>`: what the audit line and `aigate scan` show. */
  where: string;
}

/** A Uint32Array in shared memory: the scan threads read the same index without a copy each. */
function shared(column: Uint32Array): Uint32Array {
  const out = new Uint32Array(new SharedArrayBuffer(column.byteLength));
  out.set(column);
  return out;
}

/**
 * Reads and checks every index of `inspect.fingerprints`. Throws an Error whose message starts
 * with the key path: `inspect.fingerprints[0].file: idx/acme.fp: checksum mismatch: …`.
 * `share`: columns in shared memory (the proxy, whose scan threads get the same index).
 */
export function loadProtectedCode(fingerprints: InspectConfig['fingerprints'], opts: { share?: boolean } = {}): ProtectedCodeSource[] {
  return fingerprints.map((f, i) => {
    const key = `inspect.fingerprints[${i}].file`;
    let bytes: Buffer;
    try {
      bytes = readFileSync(f.file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new Error(`${key}: ${f.file}: ${code === 'ENOENT' ? 'no such file (build one with `aigate fingerprint build`)' : (err as Error).message}`);
    }
    let index: FingerprintIndex;
    try {
      index = decodeIndex(bytes);
    } catch (err) {
      if (err instanceof IndexFileError) throw new Error(`${key}: ${f.file}: ${err.message}`);
      throw err;
    }
    if (opts.share) {
      index = { ...index, code: shared(index.code), hashes: shared(index.hashes), fileIds: shared(index.fileIds), starts: shared(index.starts), ends: shared(index.ends) };
    }
    return { label: f.label ?? index.label, action: f.action, minLines: f.minLines, index };
  });
}

export class ProtectedCode {
  private readonly matchers: FingerprintMatcher[];
  /** Texts shorter than this cannot hold minLines lines of code (~8 characters a line at least). */
  private readonly minChars: number;

  constructor(readonly sources: readonly ProtectedCodeSource[]) {
    this.matchers = sources.map((s) => new FingerprintMatcher(s.index, s.minLines));
    // Characters, not newlines: code joined onto one line still covers its protected lines.
    this.minChars = Math.min(...sources.map((s) => s.minLines * 8));
  }

  /**
   * What inBody found, by text, for the full path's lookups of the same texts that follow it
   * (find is a function of the text alone: an entry can only ever give the answer it would have).
   */
  private readonly found = new Map<string, ProtectedHit[]>();

  /**
   * Lookups of earlier requests, by content (lookup-memo.ts): whether a JSON string read from a
   * body's bytes holds protected code, and what find answered for a text. A reload builds a new
   * ProtectedCode, so nothing remembered outlives the indexes it was looked up in.
   */
  private readonly heldInBytes = new LookupMemo<boolean>();
  private readonly foundInText = new LookupMemo<ProtectedHit[]>();

  /** False when `text` is too short to hold protected code (the cheap gate for JSON strings). */
  mayHold(text: string): boolean {
    return text.length >= this.minChars;
  }

  /**
   * True when the full path of the inspector would find protected code in a body that holds no
   * secret and no attachment (its fast path proved that much): `text` is the body read as text,
   * `json` its media type's say. Looks up exactly the texts the full path looks up — the whole
   * text when it is not JSON; else each JSON string value unescaped, or the strings inside one
   * that holds JSON (json-walk.ts analyseString, as deep) — and only those long enough to hold
   * minLines lines (a string nested in another is shorter than it). The full path, which runs on
   * a hit, finds the same again (from `found`, not looked up twice).
   */
  inBody(text: string, json: boolean): boolean {
    this.found.clear();
    const tokens = json || looksLikeJson(text) ? jsonStrings(text) : null;
    return tokens === null ? this.holds(text) : this.inStrings(tokens, 0);
  }

  /**
   * inBody read from the body's bytes, without the body (or its strings) made into JavaScript
   * strings: a JSON body's strings are found as jsonStrings finds them, and each long enough to
   * hold minLines lines is unescaped by the WebAssembly tokenizer into its own memory and
   * tokenised there. `utf8`: the bytes are valid UTF-8 (else latin1, a character a byte). Null
   * where this cannot answer as inBody would (no WebAssembly; a body that is not plainly JSON:
   * not JSON at all, a byte-order mark, a non-ASCII byte between strings, a string the JSON
   * reading refuses; a string that holds JSON, or one too long for the WebAssembly tokenizer),
   * and inBody must (true is an answer: the full path runs and finds what there is itself).
   */
  inBodyBytes(bytes: Buffer, utf8: boolean, json: boolean): boolean | null {
    const wasm = wasmTokenizer();
    if (wasm === null) return null;
    this.found.clear();
    const n = bytes.length;
    let i = 0;
    if (!json) {
      // looksLikeJson: blanks, then `[` or `{`.
      while (i < n && BETWEEN_BYTE[bytes[i]!] === 2) i++;
      if (i === n || (bytes[i] !== 0x5b && bytes[i] !== 0x7b)) return null;
      i = 0;
    }
    if (n >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return null;
    const minBytes = Math.max(this.minChars, MIN_SCAN_LENGTH);
    for (;;) {
      // What jsonStrings accepts between strings.
      while (i < n && BETWEEN_BYTE[bytes[i]!] !== 0) i++;
      if (i >= n) return false;
      if (bytes[i] !== 0x22) return null;
      // The closing quote: one after an even run of backslashes.
      let end = -1;
      for (let from = i + 1; end < 0; ) {
        const q = bytes.indexOf(0x22, from);
        if (q < 0) return null;
        let k = q - 1;
        while (bytes[k] === 0x5c) k--;
        if ((q - 1 - k) % 2 === 0) end = q + 1;
        else from = q + 1;
      }
      // A string has no more characters than bytes: a shorter one cannot hold protected code,
      // but must still be one JSON.parse accepts.
      if (end - i - 2 < minBytes) {
        if (!validJsonString(bytes, i + 1, end - 1)) return null;
      } else {
        if (end - i - 2 > WASM_MAX_CHARS) return null;
        // The same bytes read the same way are the same string: an earlier request's answer holds
        // (only strings this loop went through whole are remembered, so every check below passed).
        const digest = end - i - 2 >= MEMO_MIN_BYTES ? this.heldInBytes.digest(utf8 ? 'u' : 'l', bytes.subarray(i + 1, end - 1)) : undefined;
        const held = digest === undefined ? undefined : this.heldInBytes.get(digest);
        // Held: the full path runs and finds it (its find() remembers the string's hits too).
        if (held === true) return true;
        if (held === undefined) {
          const units = wasm.loadJsonString(bytes, i + 1, end - 1, utf8);
          if (units < 0) return null;
          let holds = false;
          if (units >= MIN_SCAN_LENGTH && units >= this.minChars) {
            if (wasm.startsJson(units)) return null;
            const results = matchAll(this.matchers, wasm.tokenizeLoaded(units, MAX_TOKENS));
            if (results.some((m) => m.length > 0)) {
              // The full path runs next and looks this string up again: its answer is known.
              const raw = bytes.toString(utf8 ? 'utf8' : 'latin1', i, end);
              const value = raw.includes('\\') ? (JSON.parse(raw) as string) : raw.slice(1, -1);
              this.found.set(value, hitsIn(value, results));
              holds = true;
            }
          }
          if (digest !== undefined) this.heldInBytes.set(digest, holds);
          if (holds) return true;
        }
      }
      i = end;
    }
  }

  private inStrings(tokens: readonly JsonString[], depth: number): boolean {
    for (const { value } of tokens) {
      if (value.length < MIN_SCAN_LENGTH || !this.mayHold(value)) continue;
      if (depth < MAX_NESTED_JSON && looksLikeJson(value)) {
        const inner = jsonStrings(value);
        if (inner !== null) {
          if (this.inStrings(inner, depth + 1)) return true;
          continue;
        }
      }
      if (this.holds(value)) return true;
    }
    return false;
  }

  private holds(text: string): boolean {
    const hits = this.find(text);
    if (hits.length === 0) return false;
    this.found.set(text, hits);
    return true;
  }

  /**
   * Protected code in `text`, sorted by start. Where two matches share lines of the text (the same
   * code in two protected files, or in two indexes) the longer is kept: one finding per stretch.
   */
  find(text: string): ProtectedHit[] {
    if (!this.mayHold(text)) return [];
    // UTF-16 code units: what the text is, whatever characters it holds.
    const digest = text.length * 2 >= MEMO_MIN_BYTES ? this.foundInText.digest('t', Buffer.from(text, 'utf16le')) : undefined;
    const remembered = digest === undefined ? undefined : this.foundInText.get(digest);
    if (remembered !== undefined) return remembered;
    let hits = this.found.size === 0 ? undefined : this.found.get(text);
    if (hits !== undefined) this.found.delete(text);
    // Tokenised once for every index.
    else hits = hitsIn(text, matchAll(this.matchers, tokenize(text, MAX_TOKENS)));
    if (digest !== undefined) this.foundInText.set(digest, hits);
    return hits;
  }
}

/** find's answer for `text` from its matches in each index. */
function hitsIn(text: string, results: ProtectedCodeMatch[][]): ProtectedHit[] {
  const found: Array<ProtectedHit & { lines: number; first: number; last: number }> = [];
  results.forEach((matches, source) => {
    for (const match of matches) {
      found.push({ source, start: 0, end: 0, where: `${match.file}:${match.fileStart}-${match.fileEnd}`, lines: match.lines, first: match.textStart, last: match.textEnd });
    }
  });
  if (found.length === 0) return [];
  found.sort((a, b) => b.lines - a.lines);
  const kept: typeof found = [];
  for (const h of found) if (kept.every((k) => h.last < k.first || h.first > k.last)) kept.push(h);
  kept.sort((a, b) => a.first - b.first);
  // Line numbers → offsets, in one pass over the text.
  let line = 1;
  let at = 0;
  const offsetOfLine = (n: number): number => {
    while (line < n) {
      const nl = text.indexOf('\n', at);
      if (nl === -1) return text.length;
      at = nl + 1;
      line++;
    }
    return at;
  };
  return kept.map((h) => {
    const start = offsetOfLine(h.first);
    const nl = text.indexOf('\n', start);
    // The end of the last line (its newline kept): the redaction replaces whole lines.
    let end = start;
    if (h.last === h.first) end = nl === -1 ? text.length : nl;
    else {
      const lastStart = offsetOfLine(h.last);
      const lastNl = text.indexOf('\n', lastStart);
      end = lastNl === -1 ? text.length : lastNl;
    }
    return { source: h.source, start, end, where: h.where };
  });
}

/**
 * By byte: 0 for what jsonStrings' BETWEEN does not accept (json.ts; every byte from 0x80 too: it
 * may be part of a character \s accepts), 1 for what it does, 2 for the blanks (ASCII \s) too.
 */
const BETWEEN_BYTE = new Uint8Array(256);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  if (/\s/.test(ch)) BETWEEN_BYTE[c] = 2;
  else if (BETWEEN_CHAR.test(ch)) BETWEEN_BYTE[c] = 1;
}

/** 1 for the characters a JSON escape may name after its backslash (`u` apart). */
const SHORT_ESCAPE = new Uint8Array(128);
for (const c of '"\\/bfnrt') SHORT_ESCAPE[c.charCodeAt(0)] = 1;

function isHex(b: number | undefined): boolean {
  return b !== undefined && ((b >= 0x30 && b <= 0x39) || ((b | 0x20) >= 0x61 && (b | 0x20) <= 0x66));
}

/** True when JSON.parse takes the string whose content is bytes[from, to): no control character, no bad escape. */
function validJsonString(bytes: Buffer, from: number, to: number): boolean {
  for (let p = from; p < to; p++) {
    const b = bytes[p]!;
    if (b < 0x20) return false;
    if (b !== 0x5c) continue;
    const e = bytes[p + 1]!;
    if (e === 0x75) {
      if (p + 6 > to || !isHex(bytes[p + 2]) || !isHex(bytes[p + 3]) || !isHex(bytes[p + 4]) || !isHex(bytes[p + 5])) return false;
      p += 5;
    } else if (p + 1 < to && e < 128 && SHORT_ESCAPE[e] === 1) p++;
    else return false;
  }
  return true;
}

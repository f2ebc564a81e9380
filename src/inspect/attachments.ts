// Encoded attachments inside a text (a JSON string value, or the decoded text of another
// attachment): `data:` URLs (base64 or percent-encoded) and bare base64 — an Anthropic
// `source: {type: "base64", data}`, an OpenAI `file_data`/`image_url` data URL, a `base64 .env`
// pasted into a prompt. The upstream (a model reading a document, or a person) sees the decoded
// text, so the scanner must too: each one is decoded, bounded, and kept when it is text.
//
// Text or not is decided on the bytes, not on the client's label: a payload labelled image/png
// that decodes to UTF-8 text is text to whoever reads it. A `data:` URL whose media type says text
// is read as text even when it is not UTF-8 (latin1, byte for byte). Binary (an image, a PDF's
// compressed streams) is recognised from its first few kilobytes and never decoded whole.
//
// Each attachment remembers its exact encoding (alphabet, padding, line length and break,
// data-URL header, text encoding), so a redacted text can be encoded back into the same shape;
// where that cannot be exact (mixed alphabets, irregular whitespace, junk characters) it says so,
// and the caller blocks instead of forwarding something it cannot rewrite.
import { isUtf8 } from 'node:buffer';
import { unescapeJson } from './json-escapes.js';
import { charsetEncoding, declaredWideEncoding, decodeWide, encodeWide, type WideCharset } from './views.js';

/** An attachment found in a text. */
export interface Attachment {
  /** Offsets of the encoded form (data-URL header included) in the containing text. */
  start: number;
  end: number;
  /** The decoded text, as the upstream would read it. */
  text: string;
  /** Whether `encodeAttachment` gives back an attachment of the same shape. */
  rewritable: boolean;
  /** How the text was encoded: what encodeAttachment rebuilds (the inspector reads only `charset`). */
  form: AttachmentForm;
}

export interface AttachmentForm {
  /** `data:…,` or '' for bare base64. */
  header: string;
  kind: 'base64' | 'percent';
  alphabet: 'base64' | 'base64url';
  padded: boolean;
  /** Characters per line (0: one line) and what ends a line. */
  lineLength: number;
  lineBreak: string;
  charset: 'utf8' | 'latin1' | 'utf16le' | 'utf16be' | 'utf32le' | 'utf32be';
}

/** Thrown when decoded attachments pass the byte budget (inspect.maxBodyBytes). */
export class AttachmentLimitError extends Error {
  constructor(readonly limit: number) {
    super(`decoded attachments exceed the ${limit} bytes left of inspect.maxBodyBytes`);
    this.name = 'AttachmentLimitError';
  }
}

/** Decoded bytes left for one body's attachments. */
export class AttachmentBudget {
  constructor(private remaining: number) {}

  take(bytes: number): void {
    if (bytes > this.remaining) throw new AttachmentLimitError(this.remaining);
    this.remaining -= bytes;
  }
}

/**
 * A base64 block's first line is at least this long (MIME wraps at 76, PEM at 64); runs of
 * RAW_RUN_CHAR this long are what mayHoldAttachmentBytes looks at.
 */
export const MIN_LINE = 16;
/**
 * A bare base64 run shorter than this inside other text is not an attachment: shorter runs are
 * identifiers, hashes, words. A string that is base64 from end to end may be shorter (MIN_WHOLE).
 */
const MIN_RUN = 32;
/**
 * 24 base64 characters are 18 bytes: a token alone (an AWS key id is 20) or a short assignment.
 * Shorter random strings (ids, model names) are too often printable by chance: 9 random bytes
 * are printable UTF-8 about once in 10^5, 18 about once in 10^8.
 */
const MIN_WHOLE = 24;
/** Binary is recognised from this many leading base64 characters (3 KiB decoded). */
const SNIFF_CHARS = 4096;

/** 1 for the characters of base64 and base64url (A–Z a–z 0–9 + / - _), by char code. */
const BASE64_CHAR = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_') BASE64_CHAR[c.charCodeAt(0)] = 1;
// Runs are found with loops over char codes, not regexps: a regexp char-class loop costs ~2 ns
// a character here (10 ms for a 4 MB image), a `[…]{12,}` overflows V8's regexp stack on a 5 MB
// run, and a look-behind variant costs 12 µs per KiB of prose.

/** End of the run of base64 characters from `i`. */
function runEnd(text: string, i: number): number {
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c >= 128 || BASE64_CHAR[c] === 0) break;
    i++;
  }
  return i;
}

/** After the run ending at `end`, its padding (at most two `=`). */
function paddingEnd(text: string, end: number): number {
  if (text.charCodeAt(end) === 61) end++;
  if (text.charCodeAt(end) === 61) end++;
  return end;
}

/** Media type and parameters of a data URL: at most this many characters. */
const MAX_DATA_HEADER = 256;

/**
 * Finds the `,` that ends a data-URL header: printable ASCII without spaces up to it, at most
 * MAX_DATA_HEADER characters. Both searches only move forward (the scan asks in text order), so
 * `data:data:data:…` costs one pass, not 256 characters per `data:`.
 */
class HeaderEnds {
  private comma = -1;
  private bad = -1;

  constructor(private readonly text: string) {}

  /** The offset of the header's `,` for a header starting at `from`, or -1. */
  at(from: number): number {
    const t = this.text;
    if (this.comma < from) {
      this.comma = t.indexOf(',', from);
      if (this.comma < 0) this.comma = t.length; // none: remembered, so the next `data:` does not search again
    }
    const comma = this.comma;
    if (comma === t.length || comma - from > MAX_DATA_HEADER) return -1;
    // `bad`: the first character not allowed in a header at or after the last search's start, or
    // the comma it stopped at (none before it). Never searched past a comma: the payload of a
    // 5 MB data URL is not read here.
    if (this.bad < from) {
      let k = from;
      for (; k < comma; k++) {
        const c = t.charCodeAt(k);
        if (c <= 0x20 || c >= 0x7f) break;
      }
      this.bad = k;
    }
    return this.bad >= comma ? comma : -1;
  }
}
const EMBEDDED_PERCENT = /[^\s"'<>`]*/y;
const TEXT_MEDIA = /^text\/|[/+](?:json|xml|yaml|x-yaml|toml|javascript|ecmascript|x-sh|x-shellscript|x-python|x-php|sql|csv|x-ndjson|graphql|x-www-form-urlencoded)$/;

/** As BASE64_CHAR, and `\\`: a run in a raw JSON text, where `\\/` and `\\n` may sit inside base64. */
const RAW_RUN_CHAR = BASE64_CHAR.slice();
RAW_RUN_CHAR[92] = 1;

/** `data:` in any case (a literal: V8 searches for it without a per-character loop). */
const DATA_SCHEME = /data:/gi;

/**
 * Calls `visit(start, end)` for each maximal run of `chars` at least MIN_LINE long, in order,
 * outside the `skip` spans (sorted, not overlapping); `visit` returns where to go on from (at least `end`), or -1 to stop.
 * A run that long holds one of every MIN_LINE-th position, so only those are looked at until one
 * is in a run, which is then followed both ways: prose and code (words, identifiers) cost about
 * a quarter of a character-by-character loop, and a long base64 run is read once.
 */
function forEachRun(text: string, chars: Uint8Array, skip: ReadonlyArray<readonly [number, number]>, visit: (start: number, end: number) => number): void {
  const n = text.length;
  let done = 0;
  let p = MIN_LINE - 1;
  let s = 0;
  while (p < n) {
    while (s < skip.length && skip[s]![1] <= p) s++;
    if (s < skip.length && skip[s]![0] <= p) {
      // Inside a span already handled (a data URL's 5 MB payload): not read again.
      done = skip[s]![1];
      p = done + MIN_LINE - 1;
      continue;
    }
    const c = text.charCodeAt(p);
    if (c >= 128 || chars[c] === 0) {
      p += MIN_LINE;
      continue;
    }
    let i = p;
    while (i > done) {
      const d = text.charCodeAt(i - 1);
      if (d >= 128 || chars[d] === 0) break;
      i--;
    }
    let j = p + 1;
    while (j < n) {
      const d = text.charCodeAt(j);
      if (d >= 128 || chars[d] === 0) break;
      j++;
    }
    if (j - i >= MIN_LINE) {
      done = visit(i, j);
      if (done < 0) return;
    } else done = j;
    p = done + MIN_LINE - 1;
  }
}

/**
 * False when `raw` (a body as sent, JSON escapes included) surely holds no attachment that
 * findAttachments would decode in one of its JSON strings: then a body without a rule keyword is
 * not walked at all. So it must be cheap and must not miss: any `data:` URL is a maybe, and each
 * run of base64 characters and JSON escapes is probed (runMayHold) exactly as findAttachments
 * probes a string.
 */
export function mayHoldAttachment(raw: string): boolean {
  DATA_SCHEME.lastIndex = 0;
  if (DATA_SCHEME.test(raw)) return true;
  let maybe = false;
  forEachRun(raw, RAW_RUN_CHAR, [], (i, j) => {
    const end = paddingEnd(raw, j);
    if (!worthReading(end - i, raw.charCodeAt(i - 1), raw.charCodeAt(end), () => raw.slice(i, end).includes('\\'))) return end;
    maybe = runMayHold(raw.slice(i, end));
    return maybe ? -1 : end;
  });
  return maybe;
}

/**
 * mayHoldAttachment(bytes.toString('latin1')), read from the bytes: no copy of the whole body as
 * a string (a 256 KiB body: ~0.2 ms), only of the runs worth a look. `runs`, when given, lists the
 * runs of RAW_RUN_CHAR at least MIN_LINE long as [start, end) pairs, in order (the WebAssembly
 * scanner finds them where it holds the body: keyword-scan.ts); otherwise they are found here.
 */
export function mayHoldAttachmentBytes(bytes: Buffer, runs?: Int32Array): boolean {
  // `data:` in any case: at each colon (rare in base64 and prose), the four bytes before it.
  for (let c = bytes.indexOf(0x3a, 4); c >= 0; c = bytes.indexOf(0x3a, c + 1)) {
    if ((bytes[c - 4]! | 0x20) === 0x64 && (bytes[c - 3]! | 0x20) === 0x61 && (bytes[c - 2]! | 0x20) === 0x74 && (bytes[c - 1]! | 0x20) === 0x61) return true;
  }
  const visit = (i: number, j: number): number => {
    const end = paddingEndIn(bytes, j);
    if (!worthReading(end - i, bytes[i - 1], bytes[end], () => hasByte(bytes, 0x5c, i, end))) return end;
    return runMayHold(bytes.toString('latin1', i, end)) ? -1 : end;
  };
  if (runs !== undefined) {
    let done = 0;
    for (let k = 0; k < runs.length; k += 2) {
      // A run that starts inside the padding after the last one: the rest of it, as forEachRun would.
      const i = Math.max(runs[k]!, done);
      const j = runs[k + 1]!;
      if (j - i < MIN_LINE) continue;
      // Most runs (identifiers, words) are too short for any attachment: visit's first test, inline.
      if (j + 2 - i < MIN_WHOLE) {
        done = paddingEndIn(bytes, j);
        continue;
      }
      done = visit(i, j);
      if (done < 0) return true;
    }
    return false;
  }
  let maybe = false;
  forEachRunIn(bytes, RAW_RUN_CHAR, (i, j) => {
    const done = visit(i, j);
    maybe = done < 0;
    return done;
  });
  return maybe;
}

/** After the run of `bytes` ending at `end`, its padding (at most two `=`). */
function paddingEndIn(bytes: Uint8Array, end: number): number {
  if (bytes[end] === 61) end++;
  if (bytes[end] === 61) end++;
  return end;
}

/**
 * Whether a run of `length` characters (padding included) between the characters `before` and
 * `after` may hold an attachment in some reading (runMayHold). No reading of a run is longer than
 * the run (undoing escapes only shortens), and no attachment is shorter than MIN_WHOLE: most runs
 * (identifiers, words) need no string at all. Nor MIN_RUN unless it is a string's whole value,
 * which a run without escapes (it reads as itself everywhere) can only be between two quotes.
 */
function worthReading(length: number, before: number | undefined, after: number | undefined, escaped: () => boolean): boolean {
  if (length < MIN_WHOLE) return false;
  return length >= MIN_RUN || (before === 0x22 && after === 0x22) || escaped();
}

function hasByte(bytes: Uint8Array, byte: number, from: number, to: number): boolean {
  for (let k = from; k < to; k++) if (bytes[k] === byte) return true;
  return false;
}

/** forEachRun over bytes (one character per byte, as latin1), with nothing to skip. */
function forEachRunIn(bytes: Uint8Array, chars: Uint8Array, visit: (start: number, end: number) => number): void {
  const n = bytes.length;
  let done = 0;
  let p = MIN_LINE - 1;
  while (p < n) {
    const c = bytes[p]!;
    if (c >= 128 || chars[c] === 0) {
      p += MIN_LINE;
      continue;
    }
    let i = p;
    while (i > done) {
      const d = bytes[i - 1]!;
      if (d >= 128 || chars[d] === 0) break;
      i--;
    }
    let j = p + 1;
    while (j < n) {
      const d = bytes[j]!;
      if (d >= 128 || chars[d] === 0) break;
      j++;
    }
    if (j - i >= MIN_LINE) {
      done = visit(i, j);
      if (done < 0) return;
    } else done = j;
    p = done + MIN_LINE - 1;
  }
}

/** Readings of a raw run: the outer JSON string's and those of strings nested in it (index.ts MAX_NESTED_JSON). */
const RUN_READINGS = 4;

/**
 * Whether a run of base64 characters and backslashes from a raw body (padding included) may hold
 * an attachment in some reading of it: unescaped once for a JSON string value, and once more per
 * level of JSON nested in strings (`\\n` is a line break two levels down). Each reading is probed
 * as findAttachments probes a string (the same blocks, the same sniff of the same bytes); a
 * backslash left in a reading is a character there, which no run of base64 crosses. The run's
 * edges are edges in every reading: the bytes around it are neither base64 nor a backslash, and
 * undoing escapes neither moves them nor makes one base64.
 */
function runMayHold(raw: string): boolean {
  let run = raw;
  for (let level = 1; level <= RUN_READINGS; level++) {
    const read = run.includes('\\') ? unescapeJson(run) : run;
    if (read.length >= MIN_WHOLE && scan(read, null, true) === 'text') return true;
    // Nothing left to undo, or nothing undone: every deeper reading is this one.
    if (read === run || !read.includes('\\')) return false;
    run = read;
  }
  return false;
}

/**
 * The attachments in `text` that decode to text, in order, not overlapping. Decoded bytes are
 * taken from `budget` (throws AttachmentLimitError past it).
 */
export function findAttachments(text: string, budget: AttachmentBudget): Attachment[] {
  return scan(text, budget, false) as Attachment[];
}

/**
 * The attachments in `text`; or, as a probe (`budget` null), 'text' at the first base64 block
 * whose leading bytes are text (nothing decoded beyond them), else an empty list. Data URLs
 * first (a probe has none: mayHoldAttachment answers for them), then bare base64 between them.
 */
function scan(text: string, budget: AttachmentBudget | null, anyLength: boolean): Attachment[] | 'text' {
  const found: Attachment[] = [];
  const taken: Array<[number, number]> = [];
  if (budget !== null) {
    const headers = new HeaderEnds(text);
    DATA_SCHEME.lastIndex = 0;
    for (let m = DATA_SCHEME.exec(text); m !== null; m = DATA_SCHEME.exec(text)) {
      const before = m.index > 0 ? text.charCodeAt(m.index - 1) : 0;
      if (before < 128 && BASE64_CHAR[before] === 1) continue; // `metadata:`
      const span = dataUrl(text, m.index, headers, budget);
      if (span === null) continue;
      if (span.attachment) found.push(span.attachment);
      // A percent-encoded payload that decoded to nothing new is text as written: its base64 runs
      // are still looked at below.
      if (span.attachment || span.base64) taken.push([m.index, span.end]);
      DATA_SCHEME.lastIndex = Math.max(DATA_SCHEME.lastIndex, span.end);
    }
  }
  const n = text.length;
  let hit = false;
  const bare = (i: number, j: number): number => {
    const shape = blockShape(text, i, paddingEnd(text, j));
    const whole = anyLength || (i === 0 && shape.end === n);
    if (shape.end - i >= (whole ? MIN_WHOLE : MIN_RUN)) {
      if (budget === null) {
        if (sniffText(text.slice(i, shape.end))) {
          hit = true;
          return -1;
        }
      } else {
        const a = decodeBase64(text, i, shape.end, '', shape, false, budget);
        if (a) found.push(a);
      }
    }
    return shape.end;
  };
  forEachRun(text, BASE64_CHAR, taken, bare);
  if (hit) return 'text';
  // Base64 from end to end but for line breaks and tabs at irregular places: decoders skip them
  // (Node's, Python's b64decode, Go's for \r\n), so the whole string is one payload, read as
  // they read it. Its shape cannot be rebuilt (redaction blocks). Probed the same way: in a raw
  // body those breaks are escapes (`\n`), inside one run of RAW_RUN_CHAR.
  if ((anyLength || budget !== null) && taken.length === 0 && !(found.length === 1 && found[0]!.start === 0 && found[0]!.end === n) && brokenWhole(text)) {
    if (budget === null) return sniffText(text) ? 'text' : found;
    const a = decodeBase64(text, 0, n, '', null, false, budget);
    if (a) return [a];
  }
  if (taken.length > 0) found.sort((x, y) => x.start - y.start);
  return found;
}

/** True when `text` is base64 characters and padding broken by at least one line break or tab, with at least MIN_WHOLE base64 characters. */
function brokenWhole(text: string): boolean {
  let chars = 0;
  let breaks = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10 || c === 13 || c === 9) breaks++;
    else if (c < 128 && BASE64_CHAR[c] === 1) chars++;
    else if (c !== 61) return false;
  }
  return breaks > 0 && chars >= MIN_WHOLE;
}

interface BlockShape {
  end: number;
  /** Characters per line, 0 for one line. */
  lineLength: number;
  lineBreak: string;
}

/**
 * Where the base64 block whose first line is text[start, firstEnd) ends: lines of one length (a
 * multiple of 4) with one kind of break, each a whole line, and a last line no longer whose
 * length (padding included) is also a multiple of 4 — every MIME/PEM encoder pads, and so a
 * short line of prose after a block ("Thanks") is not taken for its end.
 */
function blockShape(text: string, start: number, firstEnd: number): BlockShape {
  const single = { end: firstEnd, lineLength: 0, lineBreak: '' };
  const width = firstEnd - start;
  if (width % 4 !== 0 || text.charCodeAt(firstEnd - 1) === 61 /* = */) return single;
  const lineBreak = text.startsWith('\r\n', firstEnd) ? '\r\n' : text.charCodeAt(firstEnd) === 10 ? '\n' : '';
  if (lineBreak === '') return single;
  let end = firstEnd;
  while (text.startsWith(lineBreak, end)) {
    const at = end + lineBreak.length;
    const lineEnd = paddingEnd(text, runEnd(text, at));
    const next = text.charCodeAt(lineEnd);
    const length = lineEnd - at;
    if ((lineEnd < text.length && next !== 10 && next !== 13) || length > width || length % 4 !== 0) break;
    end = lineEnd;
    if (length < width || text.charCodeAt(lineEnd - 1) === 61) break;
  }
  return end === firstEnd ? single : { end, lineLength: width, lineBreak };
}

/** The shape of `payload` when it is one base64 block from end to end, else null. */
function payloadShape(payload: string): BlockShape | null {
  const shape = blockShape(payload, 0, paddingEnd(payload, runEnd(payload, 0)));
  return shape.end === payload.length ? shape : null;
}

interface DataSpan {
  end: number;
  attachment: Attachment | null;
  base64: boolean;
}

/** The data URL whose `data` is at `start`, or null when no header follows. */
function dataUrl(text: string, start: number, headers: HeaderEnds, budget: AttachmentBudget): DataSpan | null {
  const comma = headers.at(start + 5);
  if (comma < 0) return null;
  const params = text.slice(start + 5, comma);
  const header = text.slice(start, comma + 1);
  const parts = params.split(';');
  const base64 = parts.length > 1 && parts[parts.length - 1]!.trim().toLowerCase() === 'base64';
  const mediaType = parts[0]!.trim().toLowerCase();
  // A UTF-16/32 charset parameter says how the payload reads (`data:text/plain;charset=utf-16le;base64,…`):
  // without a byte-order mark nothing else would tell, and the bytes are not UTF-8 text.
  const wide = wideDeclared(parts);
  const declaredText = wide !== null || mediaType === '' || TEXT_MEDIA.test(mediaType);
  const from = start + header.length;
  // A data URL that is the whole string (file_data, image_url.url) runs to its end; one inside
  // prose ends where its characters do.
  let end = text.length;
  if (start !== 0) {
    if (base64) end = paddingEnd(text, runEnd(text, from));
    else {
      EMBEDDED_PERCENT.lastIndex = from;
      EMBEDDED_PERCENT.test(text);
      end = EMBEDDED_PERCENT.lastIndex;
    }
  }
  const payload = text.slice(from, end);
  if (base64) return { end, base64, attachment: decodeBase64(text, start, end, header, null, declaredText, budget, wide) };
  // Percent-encoded: the text as written is already scanned; only escapes can hide something
  // (or a wide charset, which makes other characters of the same bytes).
  if (!payload.includes('%') && wide === null) return { end, base64, attachment: null };
  const bytes = percentBytes(payload);
  const charset = wide ? wideCharset(bytes, wide) : textCharset(bytes, declaredText, false);
  if (charset === null) return { end, base64, attachment: null };
  budget.take(bytes.length);
  const form: AttachmentForm = { header, kind: 'percent', alphabet: 'base64', padded: false, lineLength: 0, lineBreak: '', charset };
  return { end, base64, attachment: { start, end, text: readText(bytes, charset), rewritable: wholeUnits(bytes, wide), form } };
}

function decodeBase64(
  text: string,
  start: number,
  end: number,
  header: string,
  known: BlockShape | null,
  declaredText: boolean,
  budget: AttachmentBudget,
  wide: WideCharset | null = null,
): Attachment | null {
  const payload = text.slice(start + header.length, end);
  // Binary is told from its first kilobytes, before anything else reads all of it.
  if (!declaredText && !sniffText(payload)) return null;
  const shape = known ?? payloadShape(payload);
  let clean = payload;
  let rewritable = true;
  if (shape === null || shape.lineLength > 0) {
    if (shape !== null) clean = payload.split(shape.lineBreak).join('');
    else {
      // Whitespace anywhere, or characters outside the alphabet: decoders skip them (forgiving
      // base64, Python's b64decode), so the scanner does too; the shape cannot be rebuilt.
      clean = payload.replace(/[^A-Za-z0-9+/_-]/g, '');
      rewritable = false;
    }
  }
  const unpadded = withoutPadding(clean);
  if (unpadded.length % 4 === 1 || unpadded.length === 0) return null;
  const std = /[+/]/.test(unpadded);
  // Without a character of either alphabet, no padding where standard base64 would have some
  // says base64url (RFC 4648 §5 usage: JWTs, URLs), whose redacted form must not gain `+` or `/`.
  const url = /[-_]/.test(unpadded) || (!std && clean.length === unpadded.length && unpadded.length % 4 !== 0);
  if (std && url) rewritable = false;
  const bytes = Buffer.from(unpadded, url ? 'base64url' : 'base64');
  const charset = wide ? wideCharset(bytes, wide) : textCharset(bytes, declaredText, false);
  if (charset === null) return null;
  if (!wholeUnits(bytes, wide)) rewritable = false;
  budget.take(bytes.length);
  const form: AttachmentForm = {
    header,
    kind: 'base64',
    alphabet: url && !std ? 'base64url' : 'base64',
    padded: clean.length !== unpadded.length || unpadded.length % 4 === 0,
    lineLength: shape?.lineLength ?? 0,
    lineBreak: shape?.lineBreak ?? '',
    charset,
  };
  return { start, end, text: readText(bytes, charset), rewritable, form };
}

/** `b64` without the `=` at its end (a loop: a `/=+$/` regexp tries every position of 5 MB). */
function withoutPadding(b64: string): string {
  let end = b64.length;
  while (end > 0 && b64.charCodeAt(end - 1) === 61) end--;
  return end === b64.length ? b64 : b64.slice(0, end);
}

/**
 * Whether the first SNIFF_CHARS characters of a base64 payload (line breaks, whitespace and junk
 * dropped) decode to text: an image is recognised as binary without reading the rest of it.
 */
function sniffText(payload: string): boolean {
  const whole = payload.length <= SNIFF_CHARS;
  let b64 = withoutPadding(whole ? payload : payload.slice(0, SNIFF_CHARS));
  if (runEnd(b64, 0) < b64.length) b64 = b64.replace(/[^A-Za-z0-9+/_-]/g, '');
  if (!whole) b64 = b64.slice(0, b64.length - (b64.length % 4));
  const length = decodeSniffed(b64);
  return textCharset(Buffer.from(SNIFFED.buffer, SNIFFED.byteOffset, length), false, !whole) !== null;
}

/** What sniffText decodes, reused (bodies hold many runs to sniff): SNIFF_CHARS base64 characters are at most this many bytes. */
const SNIFFED = new Uint8Array((SNIFF_CHARS / 4) * 3);
/** The 6 bits of each base64 or base64url character, by char code. */
const BASE64_VALUE = new Uint8Array(128);
for (let i = 0; i < 64; i++) {
  BASE64_VALUE['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.charCodeAt(i)] = i;
}
BASE64_VALUE[45] = 62; // -
BASE64_VALUE[95] = 63; // _

/**
 * Buffer.from(b64, 'base64') into SNIFFED, without a buffer per call, for `b64` of at most
 * SNIFF_CHARS base64 and base64url characters (nothing else): 3 bytes per 4 characters, then 1
 * for 2 left over, 2 for 3, none for 1. Returns the byte count.
 */
function decodeSniffed(b64: string): number {
  const n = b64.length;
  let o = 0;
  let i = 0;
  const v = (k: number): number => BASE64_VALUE[b64.charCodeAt(k)]!;
  for (; i + 4 <= n; i += 4) {
    const bits = (v(i) << 18) | (v(i + 1) << 12) | (v(i + 2) << 6) | v(i + 3);
    SNIFFED[o++] = bits >> 16;
    SNIFFED[o++] = (bits >> 8) & 255;
    SNIFFED[o++] = bits & 255;
  }
  if (n - i >= 2) {
    const bits = (v(i) << 18) | (v(i + 1) << 12) | (n - i === 3 ? v(i + 2) << 6 : 0);
    SNIFFED[o++] = bits >> 16;
    if (n - i === 3) SNIFFED[o++] = (bits >> 8) & 255;
  }
  return o;
}

/**
 * How `bytes` read as text, or null when they are not text: UTF-16 with a byte-order mark, UTF-8
 * with hardly any control characters, or (not UTF-8) bytes nearly all printable ASCII, read as
 * latin1 — a .env saved in Windows-1252 with an accented comment. `declared`: the sender said
 * text; then whatever it is, it is read (UTF-8 where valid, else latin1). `cut`: a prefix, whose
 * last character may be cut in the middle of its bytes.
 */
function textCharset(bytes: Buffer, declared: boolean, cut: boolean): AttachmentForm['charset'] | null {
  if (bytes.length >= 2 && bytes.length % 2 === 0) {
    if (bytes[0] === 0xff && bytes[1] === 0xfe) return utf16Text(bytes.toString('utf16le')) ? 'utf16le' : null;
    if (bytes[0] === 0xfe && bytes[1] === 0xff) return utf16Text(Buffer.from(bytes).swap16().toString('utf16le')) ? 'utf16be' : null;
  }
  let utf8 = isUtf8(bytes);
  for (let k = 1; !utf8 && cut && k <= 3 && k < bytes.length; k++) utf8 = isUtf8(bytes.subarray(0, bytes.length - k));
  if (utf8) return declared || mostlyPrintable(bytes.toString('utf8')) ? 'utf8' : null;
  return declared || mostlyPrintableLatin1(bytes) ? 'latin1' : null;
}

/** mostlyPrintable(bytes.toString('latin1'), true), from the bytes: one character per byte. */
function mostlyPrintableLatin1(bytes: Uint8Array): boolean {
  let control = 0;
  let high = 0;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (c < 0x20) {
      if (c !== 9 && c !== 10 && c !== 13 && c !== 12) control++;
    } else if (c === 0x7f || (c >= 0x80 && c < 0xa0)) control++;
    else if (c >= 0x80) high++;
  }
  if (control * 50 > bytes.length) return false;
  return (control + high) * 20 <= bytes.length;
}

/**
 * At most 1 in 50 characters a control character (tab, line and page breaks are text), and for
 * a non-UTF-8 reading at most 1 in 20 outside printable ASCII. Random bytes are ~60% outside, and
 * 24 random bytes are valid UTF-8 without a control character about once in 10^9.
 */
function mostlyPrintable(text: string, latin1 = false): boolean {
  let control = 0;
  let high = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20) {
      if (c !== 9 && c !== 10 && c !== 13 && c !== 12) control++;
    } else if (c === 0x7f || c === 0xfffd || (c >= 0x80 && c < 0xa0)) control++;
    else if (c >= 0x80) high++;
  }
  if (control * 50 > text.length) return false;
  return !latin1 || (control + high) * 20 <= text.length;
}

/**
 * Random bytes behind a byte-order mark read as UTF-16 are CJK-looking "printable" characters, so
 * UTF-16 text must also be mostly ASCII (a .env, code, config): random code units are ASCII one
 * time in 512.
 */
function utf16Text(text: string): boolean {
  let ascii = 0;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) < 0x80) ascii++;
  return ascii * 2 >= text.length && mostlyPrintable(text);
}

/** A data URL's UTF-16/32 charset parameter. */
function wideDeclared(params: readonly string[]): WideCharset | null {
  for (let i = 1; i < params.length; i++) {
    const m = /^\s*charset\s*=\s*"?([^"]*)"?\s*$/i.exec(params[i]!);
    if (m) return charsetEncoding(m[1]!);
  }
  return null;
}

/** The charset a declared wide payload is read in, as a body declared so is (views.ts). */
function wideCharset(bytes: Buffer, wide: WideCharset): AttachmentForm['charset'] {
  return declaredWideEncoding(bytes, wide).replace('-', '') as AttachmentForm['charset'];
}

/** False when a declared wide payload ends inside a code unit: read without its tail, it cannot be written back the same. */
function wholeUnits(bytes: Buffer, wide: WideCharset | null): boolean {
  return wide === null || bytes.length % wide.width === 0;
}

function readText(bytes: Buffer, charset: AttachmentForm['charset']): string {
  if (charset === 'utf16be') return Buffer.from(bytes).swap16().toString('utf16le');
  if (charset === 'utf32le' || charset === 'utf32be') return decodeWide(bytes, charset === 'utf32le' ? 'utf-32le' : 'utf-32be', false)!;
  if (charset === 'utf16le') return bytes.subarray(0, bytes.length - (bytes.length % 2)).toString('utf16le');
  return bytes.toString(charset);
}

function writeText(text: string, charset: AttachmentForm['charset']): Buffer {
  if (charset === 'utf16be') return Buffer.from(text, 'utf16le').swap16();
  if (charset === 'utf32le' || charset === 'utf32be') return encodeWide(text, charset === 'utf32le' ? 'utf-32le' : 'utf-32be');
  return Buffer.from(text, charset);
}

/** `%XX` as the byte it stands for; every other character as its UTF-8 bytes. */
function percentBytes(payload: string): Buffer {
  // `%` and hex digits are ASCII, so the UTF-8 bytes can be decoded in place.
  const src = Buffer.from(payload, 'utf8');
  let o = 0;
  for (let i = 0; i < src.length; i++) {
    const hi = i + 2 < src.length && src[i] === 37 ? hexValue(src[i + 1]!) : -1;
    const lo = hi >= 0 ? hexValue(src[i + 2]!) : -1;
    if (lo >= 0) {
      src[o++] = hi * 16 + lo;
      i += 2;
    } else src[o++] = src[i]!;
  }
  return src.subarray(0, o);
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  return l >= 97 && l <= 102 ? l - 87 : -1;
}

/** Characters a percent-encoded data URL keeps as they are (RFC 3986 unreserved and a few safe sub-delims). */
const PERCENT_KEEP = /[A-Za-z0-9\-_.~!*'(),;=:@/?]/;

/**
 * `text` encoded as the attachment was: the same data-URL header, alphabet, padding, line length
 * and break, text encoding. Only for a rewritable attachment.
 */
export function encodeAttachment(a: Attachment, text: string): string {
  const f = a.form;
  const bytes = writeText(text, f.charset);
  if (f.kind === 'percent') {
    let out = '';
    for (const b of bytes) {
      const c = String.fromCharCode(b);
      out += b < 0x80 && PERCENT_KEEP.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
    }
    return f.header + out;
  }
  let b64 = withoutPadding(bytes.toString(f.alphabet));
  if (f.padded) b64 += '='.repeat((4 - (b64.length % 4)) % 4);
  if (f.lineLength > 0) {
    const lines: string[] = [];
    for (let i = 0; i < b64.length; i += f.lineLength) lines.push(b64.slice(i, i + f.lineLength));
    b64 = lines.join(f.lineBreak);
  }
  return f.header + b64;
}

/** Tests: the sniff's own base64 decoding and latin1 check, against Buffer's and the string one. */
export const sniffInternalsForTest = {
  decode: (b64: string): Buffer => Buffer.from(SNIFFED.subarray(0, decodeSniffed(b64))),
  mostlyPrintableLatin1,
  mostlyPrintable,
};

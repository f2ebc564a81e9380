// Other readings of a request body: what an upstream may decode from the same bytes that the plain
// byte reading does not show. Each one is text for the detector; index.ts decides what a finding
// in it means (redacted where the body can be rewritten exactly, else blocked).
//
// - UTF-16/UTF-32 (wideText): Python's json.loads(bytes) — what FastAPI and Flask call — detects
//   the encoding from the NUL pattern of the first four bytes (RFC 4627 §3), BOM or not; Node's
//   body-parser decodes by the Content-Type charset. ASCII text in UTF-16 is also valid UTF-8 (NUL
//   is ASCII), so nothing else would read it as UTF-16.
// - Multipart parts with Content-Transfer-Encoding base64 or quoted-printable (multipartViews),
//   which python-multipart decodes before the application sees them.
// - The still-encoded layers of a Content-Encoding (undone by decode.ts): gzip FNAME, FCOMMENT and
//   FEXTRA, brotli metadata blocks and deflate stored blocks carry bytes verbatim, and reach the
//   upstream as sent when the body is forwarded unchanged.
import { isUtf8 } from 'node:buffer';
import { DecodeError } from './decode.js';

export type WideEncoding = 'utf-16le' | 'utf-16be' | 'utf-32le' | 'utf-32be';

export interface WideText {
  encoding: WideEncoding;
  /** The body decoded (a byte-order mark kept as U+FEFF, as jsonStrings expects). */
  text: string;
  /** `text` written back in `encoding`: byte for byte the body when nothing was changed. */
  encode(text: string): Buffer;
}

export interface WideReading {
  /**
   * The reading to inspect and redact in place of the byte reading: the charset declares it, a
   * byte-order mark opens a text body, or the NUL pattern says so and a JSON parser would read the
   * body (JSON media type or none). Strictly valid, or a DecodeError was thrown. A binary body
   * (an upload, protobuf) that merely starts with such bytes gets lenient `others` readings only.
   */
  primary: WideText | null;
  /** Other UTF-16/32 readings an upstream might make (the other byte order, a NUL pattern on a non-JSON body). */
  others: string[];
}

/** name=token or name="quoted string" (RFC 9110 §5.6.6); the quoted form may hold `;`. */
const MEDIA_PARAM = /;\s*([^\s=;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))/g;

/**
 * The parameters of a Content-Type value, names lower-case, quotes removed. A name given twice
 * keeps its first value here; the pipeline refuses such a value (repeatedParameter) before a
 * body is read, since parsers that keep the last one read another boundary or charset.
 */
export function mediaParams(contentType: string | undefined): Map<string, string> {
  const params = new Map<string, string>();
  if (!contentType) return params;
  const re = new RegExp(MEDIA_PARAM);
  for (let m = re.exec(contentType); m !== null; m = re.exec(contentType)) {
    const name = m[1]!.toLowerCase();
    if (!params.has(name)) params.set(name, m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3]!.trim());
  }
  return params;
}

/** The first parameter name (lower-case) a Content-Type value gives more than once, read as mediaParams reads it; undefined when none. */
export function repeatedParameter(contentType: string): string | undefined {
  const seen = new Set<string>();
  const re = new RegExp(MEDIA_PARAM);
  for (let m = re.exec(contentType); m !== null; m = re.exec(contentType)) {
    const name = m[1]!.toLowerCase();
    if (seen.has(name)) return name;
    seen.add(name);
  }
  return undefined;
}

/** A UTF-16/32 charset: its code unit's width, and its byte order when its name gives one. */
export interface WideCharset {
  width: 2 | 4;
  order: 'le' | 'be' | null;
}

/** The wide encoding a charset names: exact ('utf-16le'), or generic ('utf-16': byte order from the BOM). */
export function charsetEncoding(charset: string): WideCharset | null {
  const c = charset.toLowerCase().replace(/[-_\s]/g, '');
  switch (c) {
    case 'utf16le':
    case 'ucs2':
    case 'unicodelittleunmarked':
      return { width: 2, order: 'le' };
    case 'utf16be':
    case 'unicodebigunmarked':
      return { width: 2, order: 'be' };
    case 'utf16':
    case 'unicode':
      return { width: 2, order: null };
    case 'utf32le':
      return { width: 4, order: 'le' };
    case 'utf32be':
      return { width: 4, order: 'be' };
    case 'utf32':
    case 'ucs4':
      return { width: 4, order: null };
    default:
      return null;
  }
}

/** The encoding a byte-order mark announces (UTF-32 first: its LE mark starts with UTF-16's). */
function bomEncoding(b: Buffer): WideEncoding | null {
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0xfe && b[2] === 0 && b[3] === 0) return 'utf-32le';
  if (b.length >= 4 && b[0] === 0 && b[1] === 0 && b[2] === 0xfe && b[3] === 0xff) return 'utf-32be';
  if (b.length >= 2 && b[0] === 0xff && b[1] === 0xfe) return 'utf-16le';
  if (b.length >= 2 && b[0] === 0xfe && b[1] === 0xff) return 'utf-16be';
  return null;
}

/**
 * The encoding of bytes declared `declared`: its named byte order, else the byte-order mark of its
 * width, else the NUL pattern of its width, else little-endian (what Python assumes).
 */
export function declaredWideEncoding(bytes: Buffer, declared: WideCharset): WideEncoding {
  if (declared.order) return withOrder(declared.width, declared.order);
  const unit = `utf-${declared.width * 8}`;
  const bom = bomEncoding(bytes);
  if (bom?.startsWith(unit)) return bom;
  const nul = nulPatternEncoding(bytes);
  return nul?.startsWith(unit) ? nul : withOrder(declared.width, 'le');
}

/** Python's json.detect_encoding without the BOM cases: the NUL pattern of the first bytes. */
function nulPatternEncoding(b: Buffer): WideEncoding | null {
  if (b.length >= 4) {
    if (b[0] === 0) return b[1] ? 'utf-16be' : 'utf-32be';
    if (b[1] === 0) return b[2] || b[3] ? 'utf-16le' : 'utf-32le';
  } else if (b.length === 2) {
    if (b[0] === 0) return 'utf-16be';
    if (b[1] === 0) return 'utf-16le';
  }
  return null;
}

function undecodable(encoding: string, why: string): DecodeError {
  return new DecodeError('undecodable', `body is not valid ${encoding.toUpperCase()}: ${why}`);
}

/**
 * True when `bytes` read in `encoding` open like a JSON text (`{`, `[` or `"` after blanks): what a
 * parser that ignores the media type (Flask's get_json(force=True)) could take. The NUL pattern on
 * a binary body (a gRPC envelope, an MP4 file: 00 00 00 …) is not that, and is not read as text.
 */
function opensJson(bytes: Buffer, encoding: WideEncoding): boolean {
  const head = decodeWide(bytes.subarray(0, 256), encoding, false)!;
  return /^\ufeff?[ \t\r\n]*[[{"]/.test(head);
}

/** Decodes strictly (null when not valid) or leniently (U+FFFD for what is not). */
export function decodeWide(b: Buffer, encoding: WideEncoding, strict: boolean): string | null {
  const width = encoding.startsWith('utf-16') ? 2 : 4;
  const le = encoding.endsWith('le');
  if (b.length % width !== 0 && strict) return null;
  const n = b.length - (b.length % width);
  if (width === 2) {
    const units = le ? b.subarray(0, n) : Buffer.from(b.subarray(0, n)).swap16();
    const text = units.toString('utf16le');
    // Lone surrogates: JavaScript strings hold them, Python's strict decoder refuses them.
    if (strict && /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(text)) return null;
    return text;
  }
  let out = '';
  const chunk: number[] = [];
  for (let i = 0; i < n; i += 4) {
    let cp = le ? b.readUInt32LE(i) : b.readUInt32BE(i);
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      if (strict) return null;
      cp = 0xfffd;
    }
    chunk.push(cp);
    if (chunk.length === 4096) {
      out += String.fromCodePoint(...chunk);
      chunk.length = 0;
    }
  }
  return out + String.fromCodePoint(...chunk);
}

export function encodeWide(text: string, encoding: WideEncoding): Buffer {
  if (encoding === 'utf-16le') return Buffer.from(text, 'utf16le');
  if (encoding === 'utf-16be') return Buffer.from(text, 'utf16le').swap16();
  const out = Buffer.alloc(text.length * 4);
  let o = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (encoding === 'utf-32le') out.writeUInt32LE(cp, o);
    else out.writeUInt32BE(cp, o);
    o += 4;
  }
  return out.subarray(0, o);
}

function withOrder(width: 2 | 4, order: 'le' | 'be'): WideEncoding {
  return `utf-${width === 2 ? 16 : 32}${order}` as WideEncoding;
}

/**
 * How the body may be read as UTF-16 or UTF-32. Throws DecodeError('undecodable') when the body
 * declares or (as JSON) looks like such an encoding but is not valid in it: never forwarded half-read.
 */
export function wideReading(body: Buffer, contentType: string | undefined, reader: 'json' | 'text' | 'other'): WideReading {
  const charset = mediaParams(contentType).get('charset') ?? '';
  // UTF-7 spells any character in base64 runs (`+AGc-` is `g`); Node's body-parser decodes it for
  // an `application/json; charset=utf-7` body. Refused rather than half understood.
  if (/^(?:utf-?7|unicode-1-1-utf-7)/i.test(charset)) throw new DecodeError('undecodable', `unsupported charset "${charset}"`);
  const declared = charsetEncoding(charset);
  const bom = bomEncoding(body);
  const nul = nulPatternEncoding(body);
  let primary: WideEncoding | null = null;
  const others = new Set<WideEncoding>();
  if (declared) {
    primary = declaredWideEncoding(body, declared);
    // Neither named nor marked: Python assumes little-endian, iconv-lite guesses from the NULs: read both ways.
    if (declared.order === null && primary !== bom) others.add(withOrder(declared.width, primary.endsWith('le') ? 'be' : 'le'));
  } else if (bom && reader !== 'other') primary = bom;
  else if (nul && reader === 'json') primary = nul;
  if (nul && nul !== primary && (reader !== 'other' || opensJson(body, nul))) others.add(nul);
  if (bom && bom !== primary) others.add(bom);
  others.delete(primary!);

  let wide: WideText | null = null;
  if (primary) {
    const text = decodeWide(body, primary, true);
    if (text === null) throw undecodable(primary, 'truncated or invalid code units');
    const encoding = primary;
    wide = { encoding, text, encode: (t) => encodeWide(t, encoding) };
  }
  return { primary: wide, others: [...others].map((e) => decodeWide(body, e, false)!) };
}

/**
 * The text of a file that opens with a UTF-16 or UTF-32 byte-order mark (Windows tools write
 * UTF-16LE with one), decoded leniently, mark dropped; null without a mark.
 */
export function markedWideText(bytes: Buffer): string | null {
  const bom = bomEncoding(bytes);
  return bom ? decodeWide(bytes.subarray(bom.startsWith('utf-16') ? 2 : 4), bom, false) : null;
}

/** The byte reading aigate uses for text: UTF-8 when valid, else latin1 (one character per byte). */
export function bytesText(bytes: Buffer): string {
  return bytes.toString(isUtf8(bytes) ? 'utf8' : 'latin1');
}

const CRLF_CRLF = Buffer.from('\r\n\r\n');
const LF_LF = Buffer.from('\n\n');

/** The end of a part's header block (offset of its body) within [from, to), or -1. */
function headerEnd(body: Buffer, from: number, to: number): number {
  // Searched within the part only: a search running on to the end of the body for each of a
  // million header-less parts would be quadratic.
  const part = body.subarray(from, to);
  const a = part.indexOf(CRLF_CRLF);
  const b = part.indexOf(LF_LF);
  if (a < 0 && b < 0) return -1;
  return from + (a < 0 ? b + 2 : b < 0 ? a + 4 : Math.min(a + 4, b + 2));
}

/**
 * Calls `part(headers, data)` for each part of a multipart body (`data`: the part's content as
 * sent). Lenient on purpose, so that it reads at least what a strict parser reads: LF or CRLF line
 * ends, header names and values in any case, a missing close delimiter (the last part runs to the
 * end). One forward pass of indexOf, header search bounded to the part: linear however many parts.
 */
function forEachPart(body: Buffer, contentType: string | undefined, part: (headers: string, data: Buffer) => void): void {
  const boundary = mediaParams(contentType).get('boundary');
  if (!boundary || boundary.length > 200) return;
  const delimiter = Buffer.from(`--${boundary}`, 'latin1');
  // Delimiters are found at line starts only; `at` is where the current part's content starts.
  let at = -1;
  for (let from = 0; from <= body.length; ) {
    let d = body.indexOf(delimiter, from);
    while (d > 0 && body[d - 1] !== 0x0a) d = body.indexOf(delimiter, d + 1);
    const end = d < 0 ? body.length : d;
    if (at >= 0) {
      // The line break before the delimiter belongs to it.
      let partEnd = end;
      if (d >= 0) partEnd -= body[end - 2] === 0x0d ? 2 : 1;
      const bodyStart = partEnd > at ? headerEnd(body, at, partEnd + 2) : -1;
      if (bodyStart >= 0) {
        const dataStart = Math.min(bodyStart, partEnd);
        part(body.toString('latin1', at, dataStart), body.subarray(dataStart, partEnd));
      }
    }
    if (d < 0) break;
    const afterDelimiter = d + delimiter.length;
    if (body[afterDelimiter] === 0x2d && body[afterDelimiter + 1] === 0x2d) break; // close delimiter
    const nl = body.indexOf(0x0a, afterDelimiter);
    if (nl < 0) break;
    at = nl + 1;
    from = at;
  }
}

function partHeader(headers: string, name: string): string | undefined {
  return new RegExp(`(?:^|\\n)[ \\t]*${name}[ \\t]*:[ \\t]*([^\\r\\n]*)`, 'i').exec(headers)?.[1]?.trim();
}

/** A part's content as the application gets it: base64 and quoted-printable undone (python-multipart does), else as sent. */
function partContent(headers: string, data: Buffer): { bytes: Buffer; decoded: boolean } {
  const cte = partHeader(headers, 'content-transfer-encoding')?.split(';')[0]!.trim().toLowerCase();
  if (cte === 'base64') return { bytes: base64Lenient(data.toString('latin1')), decoded: true };
  if (cte === 'quoted-printable') return { bytes: quotedPrintable(data.toString('latin1')), decoded: true };
  return { bytes: data, decoded: false };
}

/** The decoded contents of the parts whose Content-Transfer-Encoding is base64 or quoted-printable. */
export function multipartEncodedParts(body: Buffer, contentType: string | undefined): Buffer[] {
  const out: Buffer[] = [];
  forEachPart(body, contentType, (headers, data) => {
    const c = partContent(headers, data);
    if (c.decoded) out.push(c.bytes);
  });
  return out;
}

/**
 * What the parts of a multipart body hold that the body as sent does not show: the content of
 * base64 and quoted-printable parts, and the UTF-16/32 readings of any part (its charset, a
 * byte-order mark, the NUL pattern), decoded leniently: a part is never refused for its content.
 * The bytes read this way count against `maxBytes` (DecodeError 'too_large' past it).
 */
export function multipartViews(body: Buffer, contentType: string | undefined, maxBytes: number): string[] {
  const out: string[] = [];
  let total = 0;
  const add = (text: string, bytes: number): void => {
    if ((total += bytes) > maxBytes) throw new DecodeError('too_large', `multipart parts decode to more than ${maxBytes} bytes`);
    out.push(text);
  };
  forEachPart(body, contentType, (headers, data) => {
    const c = partContent(headers, data);
    if (c.decoded) add(bytesText(c.bytes), c.bytes.length);
    for (const t of lenientWideTexts(c.bytes, partHeader(headers, 'content-type'))) add(t, c.bytes.length);
  });
  // One view, not a million: each view costs a detector pass of its own.
  return out.length === 0 ? [] : [out.join('\n\n')];
}

/** Every UTF-16/32 reading the charset, a byte-order mark or the NUL pattern suggests, decoded leniently. */
function lenientWideTexts(bytes: Buffer, contentType: string | undefined): string[] {
  const declared = charsetEncoding(mediaParams(contentType).get('charset') ?? '');
  const encodings = new Set<WideEncoding>();
  if (declared) {
    if (declared.order) encodings.add(withOrder(declared.width, declared.order));
    else for (const order of ['le', 'be'] as const) encodings.add(withOrder(declared.width, order));
  }
  const bom = bomEncoding(bytes);
  const nul = nulPatternEncoding(bytes);
  if (bom) encodings.add(bom);
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  const textual = type === '' || type.startsWith('text/') || type.endsWith('json');
  if (nul && (textual || opensJson(bytes, nul))) encodings.add(nul);
  return [...encodings].map((e) => decodeWide(bytes, e, false)!);
}

/**
 * Base64 as lenient decoders read it: characters outside the alphabet skipped (line breaks,
 * spaces), both alphabets, and data after padding decoded too (Node stops at the first `=`).
 */
export function base64Lenient(text: string): Buffer {
  const clean = text.replace(/[^A-Za-z0-9+/\-_=]/g, '');
  const chunks = clean.split(/=+/).filter((c) => c.length > 0);
  return Buffer.concat(chunks.map((c) => Buffer.from(c, 'base64')));
}

/** Quoted-printable (RFC 2045 §6.7): `=XX` is a byte, `=` at a line end is a soft break. */
export function quotedPrintable(text: string): Buffer {
  const out = Buffer.alloc(text.length);
  let o = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x3d /* = */) {
      if (text.startsWith('\r\n', i + 1)) {
        i += 2;
        continue;
      }
      if (text.charCodeAt(i + 1) === 0x0a) {
        i += 1;
        continue;
      }
      const hex = text.slice(i + 1, i + 3);
      if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
        out[o++] = parseInt(hex, 16);
        i += 2;
        continue;
      }
    }
    out[o++] = c;
  }
  return out.subarray(0, o);
}

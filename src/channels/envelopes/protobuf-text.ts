// The text inside a protobuf message, for the detector: every length-delimited field that is
// UTF-8 text, found by walking the wire format (a length-delimited field may itself be a nested
// message, walked in turn). Scanning the raw bytes alone is not enough: a string's length prefix
// sits right before its first character (a length of 65–90 is a letter glued to the token), so a
// pattern anchored at a word boundary would not see it.
//
// Bounded: nesting is followed MAX_DEPTH deep, so each byte is looked at a bounded number of
// times (linear in the message size whatever it holds); a field that does not parse as a message
// costs at most its own length per level.
import { isUtf8 } from 'node:buffer';

const MAX_DEPTH = 8;
/** No rule matches fewer characters (as for JSON strings in inspect/index.ts). */
const MIN_TEXT = 8;

/** C0 controls other than tab, newline and carriage return: tags and lengths, not prose. */
function hasControl(buf: Buffer): boolean {
  for (let i = 0; i < buf.length; i++) {
    const b = buf[i]!;
    if (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) return true;
  }
  return false;
}

/** The texts of `message`, in wire order. A message that is not protobuf yields what parsed. */
export function protobufTexts(message: Buffer): string[] {
  const texts: string[] = [];
  walk(message, 0, texts);
  return texts;
}

/** Reads a varint at `pos`; returns [value, next] or null when malformed or past the end. */
function varint(buf: Buffer, pos: number): [number, number] | null {
  let value = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) return null;
    const b = buf[pos++]!;
    value += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) return [value, pos];
    mul *= 128;
  }
  return null;
}

/** Walks `buf` as a message; true when all of it parsed. Texts found are appended to `out`. */
function walk(buf: Buffer, depth: number, out: string[]): boolean {
  let pos = 0;
  while (pos < buf.length) {
    const tag = varint(buf, pos);
    if (tag === null) return false;
    pos = tag[1];
    const wireType = tag[0] % 8;
    if (tag[0] < 8) return false; // field number 0 is invalid
    switch (wireType) {
      case 0: {
        const v = varint(buf, pos);
        if (v === null) return false;
        pos = v[1];
        break;
      }
      case 1:
        pos += 8;
        break;
      case 5:
        pos += 4;
        break;
      case 3:
      case 4:
        break; // group start/end (deprecated): their fields are read in line
      case 2: {
        const len = varint(buf, pos);
        if (len === null || len[1] + len[0] > buf.length) return false;
        const field = buf.subarray(len[1], len[1] + len[0]);
        pos = len[1] + len[0];
        field2(field, depth, out);
        break;
      }
      default:
        return false;
    }
    if (pos > buf.length) return false;
  }
  return true;
}

function field2(field: Buffer, depth: number, out: string[]): void {
  const mark = out.length;
  const message = depth + 1 < MAX_DEPTH && field.length >= 2 && walk(field, depth + 1, out);
  if (!message) out.length = mark; // a failed attempt's texts were parts of bytes or text, not fields
  if (field.length >= MIN_TEXT && isUtf8(field) && (!message || !hasControl(field))) out.push(field.toString('utf8'));
}

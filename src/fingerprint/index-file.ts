// The protected-code index file: what `aigate fingerprint build` writes and the proxy loads.
//
//   "AIGATEFP" · u32 version · u32 k · u32 w · u32 label bytes · label
//   u32 files · per file: u32 path bytes · path · u32 lines
//   u32 words · u32 code[words]: one bit per line of every file, in file order, set for a line
//     holding code (not blank, not only a comment)
//   u32 entries · u32 hashes[entries] · u32 files[entries] · u32 starts[entries] · u32 ends[entries]
//   SHA-256 of everything above (32 bytes)
//
// Little-endian, entries sorted by hash (looked up by binary search on the typed array, no
// per-entry objects: a million-line index is ~1.6 M entries, 26 MB, loaded in milliseconds).
// A file that is truncated, of another version or altered is refused with the reason.
import { createHash } from 'node:crypto';

export const INDEX_MAGIC = 'AIGATEFP';
/**
 * 2: the renaming-blind view encodes a name's reuse only within its k-gram, and a property apart
 * from a local of the same name (tokens.ts), so the hashes of version 1 no longer meet a prompt's;
 * and the lines holding code are recorded (a match counts those, not a block of comments).
 */
export const INDEX_VERSION = 2;

export class IndexFileError extends Error {
  override name = 'IndexFileError';
}

export interface ProtectedFile {
  path: string;
  lines: number;
}

export interface FingerprintIndex {
  label: string;
  k: number;
  w: number;
  files: ProtectedFile[];
  /** Bit (Σ lines of the files before) + line − 1: set when that line of that file holds code. */
  code: Uint32Array;
  hashes: Uint32Array;
  fileIds: Uint32Array;
  starts: Uint32Array;
  ends: Uint32Array;
}

export function encodeIndex(index: FingerprintIndex): Buffer {
  const n = index.hashes.length;
  const parts: Buffer[] = [Buffer.from(INDEX_MAGIC, 'latin1'), u32s(INDEX_VERSION, index.k, index.w), str(index.label), u32s(index.files.length)];
  for (const f of index.files) parts.push(str(f.path), u32s(f.lines));
  parts.push(u32s(index.code.length), Buffer.from(index.code.buffer, index.code.byteOffset, index.code.byteLength));
  parts.push(u32s(n));
  for (const column of [index.hashes, index.fileIds, index.starts, index.ends]) parts.push(Buffer.from(column.buffer, column.byteOffset, n * 4));
  const body = Buffer.concat(parts);
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

export function decodeIndex(buf: Buffer): FingerprintIndex {
  if (buf.length < INDEX_MAGIC.length + 32 || buf.toString('latin1', 0, INDEX_MAGIC.length) !== INDEX_MAGIC) {
    throw new IndexFileError('not an aigate fingerprint index (made by `aigate fingerprint build`)');
  }
  const body = buf.subarray(0, buf.length - 32);
  const reader = new Reader(body, INDEX_MAGIC.length);
  const version = reader.u32();
  if (version !== INDEX_VERSION) throw new IndexFileError(`index format version ${version}; this aigate reads version ${INDEX_VERSION} (rebuild it with \`aigate fingerprint build\`)`);
  if (!createHash('sha256').update(body).digest().equals(buf.subarray(buf.length - 32))) {
    throw new IndexFileError('checksum mismatch: the file is truncated or was altered (rebuild it)');
  }
  const k = reader.u32();
  const w = reader.u32();
  const label = reader.str();
  const fileCount = reader.u32();
  const files: ProtectedFile[] = [];
  let lines = 0;
  for (let i = 0; i < fileCount; i++) {
    files.push({ path: reader.str(), lines: reader.u32() });
    lines += files[i]!.lines;
  }
  const words = reader.u32();
  if (words !== Math.ceil(lines / 32)) throw new IndexFileError(`${words} words of line bits for ${lines} lines`);
  const code = reader.u32Array(words);
  const n = reader.u32();
  const column = () => reader.u32Array(n);
  const index: FingerprintIndex = { label, k, w, files, code, hashes: column(), fileIds: column(), starts: column(), ends: column() };
  if (!reader.atEnd()) throw new IndexFileError('trailing bytes after the entries');
  if (k < 1 || w < 1) throw new IndexFileError(`invalid parameters k=${k} w=${w}`);
  for (let i = 0; i < n; i++) {
    if (index.fileIds[i]! >= fileCount) throw new IndexFileError(`entry ${i} names file ${index.fileIds[i]} of ${fileCount}`);
    if (i > 0 && index.hashes[i]! < index.hashes[i - 1]!) throw new IndexFileError('entries are not sorted');
  }
  return index;
}

function u32s(...values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeUInt32LE(v, i * 4));
  return b;
}

function str(s: string): Buffer {
  const bytes = Buffer.from(s, 'utf8');
  return Buffer.concat([u32s(bytes.length), bytes]);
}

class Reader {
  constructor(
    private readonly buf: Buffer,
    private pos: number,
  ) {}

  private need(bytes: number): void {
    if (this.pos + bytes > this.buf.length) throw new IndexFileError('file ends early (truncated)');
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  str(): string {
    const len = this.u32();
    this.need(len);
    const s = this.buf.toString('utf8', this.pos, this.pos + len);
    this.pos += len;
    return s;
  }

  /** A copy, so the typed array is aligned whatever the offset in the file. */
  u32Array(n: number): Uint32Array {
    this.need(n * 4);
    const out = new Uint32Array(n);
    Buffer.from(out.buffer).set(this.buf.subarray(this.pos, this.pos + n * 4));
    this.pos += n * 4;
    return out;
  }

  atEnd(): boolean {
    return this.pos === this.buf.length;
  }
}

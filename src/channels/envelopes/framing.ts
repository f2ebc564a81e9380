// The 5-byte envelope shared by gRPC, gRPC-Web and Connect streaming: one flags byte, a 4-byte
// big-endian length, then the message. The parser is fed the request body in whatever chunks the
// transport delivers (node:http, an h2 stream, a test) and hands back whole envelopes, holding at
// most one message in memory: a length over the limit is refused from the prefix alone, before a
// byte of the message is buffered.

export const PREFIX_BYTES = 5;

export interface Envelope {
  flags: number;
  /** The message as sent (possibly compressed). */
  data: Buffer;
  /** Prefix and message exactly as they arrived: what is forwarded when the message is clean. */
  raw: Buffer;
}

export class FramingError extends Error {
  constructor(
    readonly kind: 'truncated' | 'too_large' | 'bad_text',
    message: string,
  ) {
    super(message);
    this.name = 'FramingError';
  }
}

export class EnvelopeParser {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Length of the envelope being assembled (prefix included), once its prefix is in. */
  private need = 0;

  constructor(private readonly maxMessageBytes: number) {}

  /** Envelopes completed by this chunk, in order. Throws FramingError('too_large'). */
  push(chunk: Buffer): Envelope[] {
    if (chunk.length === 0) return [];
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const out: Envelope[] = [];
    for (;;) {
      if (this.need === 0) {
        if (this.pendingBytes < PREFIX_BYTES) break;
        const prefix = this.peek(PREFIX_BYTES);
        const length = prefix.readUInt32BE(1);
        if (length > this.maxMessageBytes) {
          throw new FramingError('too_large', `message of ${length} bytes exceeds the ${this.maxMessageBytes}-byte limit (inspect.maxBodyBytes)`);
        }
        this.need = PREFIX_BYTES + length;
      }
      if (this.pendingBytes < this.need) break;
      const raw = this.take(this.need);
      this.need = 0;
      out.push({ flags: raw[0]!, data: raw.subarray(PREFIX_BYTES), raw });
    }
    return out;
  }

  /** The body ended: anything left over is an envelope cut short. */
  end(): void {
    if (this.pendingBytes === 0) return;
    const declared = this.need > 0 ? `${this.need - PREFIX_BYTES}-byte message` : 'envelope prefix';
    throw new FramingError('truncated', `body ends inside a ${declared} (${this.pendingBytes} bytes of it received)`);
  }

  /** Bytes held for an envelope not yet complete. */
  get buffered(): number {
    return this.pendingBytes;
  }

  private peek(n: number): Buffer {
    if (this.pending[0]!.length >= n) return this.pending[0]!.subarray(0, n);
    const joined = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [joined];
    return joined.subarray(0, n);
  }

  private take(n: number): Buffer {
    const first = this.pending[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.pending.shift();
      else this.pending[0] = first.subarray(n);
    } else {
      const joined = Buffer.concat(this.pending, this.pendingBytes);
      out = joined.subarray(0, n);
      this.pending = joined.length > n ? [joined.subarray(n)] : [];
    }
    this.pendingBytes -= n;
    return out;
  }
}

const BASE64_CHAR = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * `application/grpc-web-text`: the body is base64, each message possibly encoded on its own, so
 * padding may appear mid-stream (PROTOCOL-WEB.md). Decoded four characters at a time, a padded
 * group ending a segment; a partial group waits for the next chunk.
 */
export class Base64TextDecoder {
  private carry = '';

  push(chunk: Buffer): Buffer {
    const text = this.carry + chunk.toString('latin1').replace(/[\r\n]/g, '');
    const whole = text.length - (text.length % 4);
    this.carry = text.slice(whole);
    if (whole === 0) return Buffer.alloc(0);
    const parts: Buffer[] = [];
    let start = 0;
    // Each padded group closes a segment that is decoded alone.
    for (let pad = text.indexOf('=', start); pad !== -1 && pad < whole; pad = text.indexOf('=', start)) {
      const end = pad + 4 - (pad % 4);
      parts.push(decodeSegment(text.slice(start, end)));
      start = end;
    }
    if (start < whole) parts.push(decodeSegment(text.slice(start, whole)));
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  end(): void {
    if (this.carry.length > 0) throw new FramingError('bad_text', `base64 body ends with ${this.carry.length} stray characters`);
  }
}

function decodeSegment(segment: string): Buffer {
  if (!BASE64_CHAR.test(segment)) throw new FramingError('bad_text', 'grpc-web-text body is not valid base64');
  return Buffer.from(segment, 'base64');
}

/**
 * Follows the envelopes of a response as it streams to the client, without holding any of it,
 * so a refusal arriving mid-stream can end the response at a message boundary with the protocol's
 * own last message instead of cutting it.
 */
export class ResponseFraming {
  private remaining = 0;
  private prefix = Buffer.alloc(PREFIX_BYTES);
  private prefixBytes = 0;
  /** The upstream already sent its last message (end-stream or trailers): nothing may follow. */
  private ended = false;

  /** `lastFlags`: the flag bits that mark a protocol's final envelope (Connect 0x02, gRPC-Web 0x80). */
  constructor(private readonly lastFlags: number) {}

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - at);
        this.remaining -= n;
        at += n;
        continue;
      }
      const n = Math.min(PREFIX_BYTES - this.prefixBytes, chunk.length - at);
      chunk.copy(this.prefix, this.prefixBytes, at, at + n);
      this.prefixBytes += n;
      at += n;
      if (this.prefixBytes === PREFIX_BYTES) {
        this.prefixBytes = 0;
        this.remaining = this.prefix.readUInt32BE(1);
        if ((this.prefix[0]! & this.lastFlags) !== 0) this.ended = true;
      }
    }
  }

  /** True between two envelopes of a response still open: a final envelope may be written now. */
  get atBoundary(): boolean {
    return !this.ended && this.remaining === 0 && this.prefixBytes === 0;
  }
}

// Content-Encoding decoding with the decoded size capped: a compression bomb is cut off as soon as
// its output passes the limit (zlib's maxOutputLength stops the stream; memory stays ~ the limit),
// and the work happens on the libuv thread pool, not the event loop.
import { promisify } from 'node:util';
import zlib from 'node:zlib';

export class DecodeError extends Error {
  constructor(
    readonly kind: 'too_large' | 'undecodable',
    message: string,
  ) {
    super(message);
    this.name = 'DecodeError';
  }
}

type Decoder = (buf: Buffer, opts: zlib.ZlibOptions | zlib.BrotliOptions) => Promise<Buffer>;
const gunzip = promisify(zlib.gunzip) as Decoder;
const inflate = promisify(zlib.inflate) as Decoder;
const inflateRaw = promisify(zlib.inflateRaw) as Decoder;
const brotli = promisify(zlib.brotliDecompress) as Decoder;

async function run(decoder: Decoder, buf: Buffer, maxBytes: number, name: string): Promise<Buffer> {
  try {
    return await decoder(buf, { maxOutputLength: Math.max(1, maxBytes) });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ERR_BUFFER_TOO_LARGE') {
      throw new DecodeError('too_large', `decoded body exceeds ${maxBytes} bytes`);
    }
    throw new DecodeError('undecodable', `body is not valid ${name}: ${(err as Error).message}`);
  }
}

/**
 * Undoes `Content-Encoding` (a comma list, applied in order, so undone in reverse). Supports
 * gzip, x-gzip, deflate (zlib-wrapped, or raw as some clients send it), br and identity.
 * The result is at most `maxBytes` long, or a DecodeError('too_large') is thrown.
 */
export async function decodeContent(body: Buffer, contentEncoding: string | undefined, maxBytes: number): Promise<Buffer> {
  const codings = (contentEncoding ?? '')
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
  let buf = body;
  for (const coding of codings.reverse()) {
    switch (coding) {
      case 'gzip':
      case 'x-gzip':
        buf = await run(gunzip, buf, maxBytes, 'gzip');
        break;
      case 'deflate':
        try {
          buf = await run(inflate, buf, maxBytes, 'deflate');
        } catch (err) {
          if ((err as DecodeError).kind === 'too_large') throw err;
          buf = await run(inflateRaw, buf, maxBytes, 'deflate');
        }
        break;
      case 'br':
        buf = await run(brotli, buf, maxBytes, 'brotli');
        break;
      default:
        throw new DecodeError('undecodable', `unsupported Content-Encoding "${coding}"`);
    }
  }
  if (buf.length > maxBytes) throw new DecodeError('too_large', `body exceeds ${maxBytes} bytes`);
  return buf;
}

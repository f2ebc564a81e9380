// Content-Encoding decoding with the decoded size capped: a compression bomb is cut off as soon as
// its output passes the limit (the engine is destroyed, its output dropped; memory stays ~ the
// limit), and the work happens on the libuv thread pool, not the event loop.
//
// Two more guards:
// - Few decodes at once (DECODE_SLOTS): each one in flight may hold up to the limit of output plus
//   the engine's window (brotli: up to 16 MiB), so hundreds of concurrent tiny bombs, each cut off
//   correctly, would still add up to gigabytes. The rest wait their turn, in order.
// - Every input byte must be consumed: Node's decoders stop at the end of a stream (gunzip at zero
//   padding after a member) and ignore what follows, which the scanner would then never see but
//   the upstream would receive, and might decode differently. Such a body is undecodable.
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

/**
 * Decodes in flight at once, per thread (every scan thread of pool.ts has its own instance of this
 * module). Zlib and brotli jobs run on libuv's thread pool, which has 4 threads by default
 * (UV_THREADPOOL_SIZE) shared by the whole process, scan threads included: a fifth concurrent
 * decode would not run any sooner, it would only sit in libuv's queue holding its window and
 * output buffers. So waiting here costs no throughput and bounds memory to about
 * DECODE_SLOTS × (maxBodyBytes + window) per thread. A waiting request holds only its compressed
 * body, which it holds anyway.
 */
export const DECODE_SLOTS = 4;

let held = 0;
/** FIFO of waiters; `head` is the next one (shift() would make a long queue quadratic). */
let waiters: Array<() => void> = [];
let head = 0;
/** Engines actually decompressing, and their peak (tests). */
let decoding = 0;
let peakDecoding = 0;

function acquire(): Promise<void> {
  if (held < DECODE_SLOTS) {
    held++;
    return Promise.resolve();
  }
  return new Promise((resolve) => waiters.push(resolve));
}

function release(): void {
  if (head < waiters.length) {
    // Handed straight to the next waiter: `held` stays, so nobody can jump the queue.
    const next = waiters[head]!;
    waiters[head++] = noop;
    if (head > 1024 && head * 2 > waiters.length) {
      waiters = waiters.slice(head);
      head = 0;
    }
    next();
  } else {
    held--;
  }
}

function noop(): void {}

/** For tests and diagnostics: decodes running now, their peak since the last reset, and those waiting. */
export function decodeStats(): { decoding: number; peak: number; queued: number } {
  return { decoding, peak: peakDecoding, queued: waiters.length - head };
}

export function resetDecodePeak(): void {
  peakDecoding = decoding;
}

type Engine = zlib.Gunzip | zlib.Inflate | zlib.InflateRaw | zlib.BrotliDecompress;

/** Marks a stream that decoded but left input unread: not to be retried as another format. */
class TrailingBytesError extends DecodeError {}

/**
 * One layer: `input` through a fresh engine. Output past `maxBytes` destroys the engine at once
 * (no further chunks are produced) and drops what was collected. Resolves only when the engine
 * consumed every byte of `input` (engine.bytesWritten counts the input bytes the engine consumed;
 * concatenated gzip members are all consumed, zero padding or trailing junk is not).
 */
function run(makeEngine: () => Engine, input: Buffer, maxBytes: number, name: string): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    let engine: Engine;
    try {
      engine = makeEngine();
    } catch (err) {
      reject(new DecodeError('undecodable', `cannot decode ${name}: ${(err as Error).message}`));
      return;
    }
    decoding++;
    if (decoding > peakDecoding) peakDecoding = decoding;
    let chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const fail = (err: DecodeError): void => {
      if (settled) return;
      settled = true;
      decoding--;
      chunks = [];
      engine.destroy();
      reject(err);
    };
    // The listeners stay attached after settling (guarded by `settled`), so a late event from a
    // destroyed engine can never become an unhandled 'error'.
    engine.on('data', (chunk: Buffer) => {
      if (settled) return;
      size += chunk.length;
      if (size > maxBytes) fail(new DecodeError('too_large', `decoded body exceeds ${maxBytes} bytes`));
      else chunks.push(chunk);
    });
    engine.on('error', (err: Error) => fail(new DecodeError('undecodable', `body is not valid ${name}: ${err.message}`)));
    engine.on('end', () => {
      if (settled) return;
      if (engine.bytesWritten !== input.length) {
        const extra = input.length - engine.bytesWritten;
        fail(new TrailingBytesError('undecodable', `body is not valid ${name}: ${extra} bytes after the end of the compressed data`));
        return;
      }
      settled = true;
      decoding--;
      const out = Buffer.concat(chunks, size);
      chunks = [];
      resolve(out);
    });
    try {
      engine.end(input);
    } catch (err) {
      fail(new DecodeError('undecodable', `body is not valid ${name}: ${(err as Error).message}`));
    }
  });
}

const SUPPORTED = new Set(['gzip', 'x-gzip', 'deflate', 'br']);

/**
 * Undoes `Content-Encoding` (a comma list, applied in order, so undone in reverse). Supports
 * gzip, x-gzip, deflate (zlib-wrapped, or raw as some clients send it), br and identity.
 * The result is at most `maxBytes` long, or a DecodeError('too_large') is thrown. Every layer must
 * be consumed whole, or a DecodeError('undecodable') is thrown. `layers`, when given, receives
 * each encoded layer, outermost (the body) first.
 */
export async function decodeContent(body: Buffer, contentEncoding: string | undefined, maxBytes: number, layers?: Buffer[]): Promise<Buffer> {
  const codings = (contentEncoding ?? '')
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
  // Refused before queueing for a slot.
  for (const coding of codings) {
    if (!SUPPORTED.has(coding)) throw new DecodeError('undecodable', `unsupported Content-Encoding "${coding}"`);
  }
  let buf = body;
  if (codings.length > 0) {
    // One slot for all the layers: an intermediate layer's output is not held while waiting.
    await acquire();
    try {
      let held = 0;
      for (const coding of codings.reverse()) {
        if (layers) {
          // The encoded layers are kept for their plaintext carriers (views.ts); intermediate ones
          // (two or more codings, which no real client sends) count against the limit together.
          if (buf !== body && (held += buf.length) > maxBytes) throw new DecodeError('too_large', `encoded layers exceed ${maxBytes} bytes`);
          layers.push(buf);
        }
        buf = await decodeLayer(coding, buf, maxBytes);
      }
    } finally {
      release();
    }
  }
  if (buf.length > maxBytes) throw new DecodeError('too_large', `body exceeds ${maxBytes} bytes`);
  return buf;
}

async function decodeLayer(coding: string, buf: Buffer, maxBytes: number): Promise<Buffer> {
  switch (coding) {
    case 'gzip':
    case 'x-gzip':
      return run(() => zlib.createGunzip(), buf, maxBytes, 'gzip');
    case 'deflate':
      try {
        return await run(() => zlib.createInflate(), buf, maxBytes, 'deflate');
      } catch (err) {
        // A zlib stream that decoded but has bytes after it is refused, not re-read as raw deflate.
        if ((err as DecodeError).kind === 'too_large' || err instanceof TrailingBytesError) throw err;
        return run(() => zlib.createInflateRaw(), buf, maxBytes, 'deflate');
      }
    case 'br':
      return run(() => zlib.createBrotliDecompress(), buf, maxBytes, 'brotli');
    default:
      throw new DecodeError('undecodable', `unsupported Content-Encoding "${coding}"`);
  }
}

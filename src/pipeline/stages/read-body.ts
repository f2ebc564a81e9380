// Reads the whole request body before anything goes upstream: inspection needs all of it, and a
// body over the limit is refused (413) rather than forwarded unscanned (SPEC §5).
import type { IncomingMessage } from 'node:http';
import { ProxyError } from '../errors.js';
import type { Exchange, Stage } from '../exchange.js';

export class ClientAbortedError extends Error {
  constructor() {
    super('client closed the connection while sending the request');
  }
}

function tooLarge(limit: number): ProxyError {
  // Connection: close, so the rest of an oversized upload is not read just to be thrown away.
  return new ProxyError('body_too_large', `request body exceeds the ${formatBytes(limit)} limit (inspect.maxBodyBytes)`, {
    connection: 'close',
  });
}

export function formatBytes(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}

export interface ReadBodyOptions {
  maxBodyBytes: number;
  /**
   * Bodies from this size are assembled in shared memory (a SharedArrayBuffer): a scan thread then
   * reads the very bytes that are forwarded, instead of a copy of them. The default, Infinity,
   * keeps every body in ordinary memory.
   */
  sharedFromBytes?: number;
}

export function readBodyStage(opts: ReadBodyOptions): Stage {
  const { maxBodyBytes } = opts;
  const sharedFrom = opts.sharedFromBytes ?? Infinity;
  return (ex) => {
    const declared = ex.req.headers['content-length'];
    const declaredBytes = declared === undefined ? undefined : Number(declared);
    if (declaredBytes !== undefined && declaredBytes > maxBodyBytes) throw tooLarge(maxBodyBytes);
    // A small body usually arrives with its headers: all of it buffered by now (the end of the
    // message may not have been signalled yet, but Content-Length says no more is coming), it is
    // taken as is, without four listeners and a promise.
    if (ex.req.complete || declaredBytes === ex.req.readableLength) {
      const body = readBuffered(ex.req, maxBodyBytes, sharedFrom);
      if (body === null) throw tooLarge(maxBodyBytes);
      return setBody(ex, body);
    }
    return readLimited(ex.req, maxBodyBytes, sharedFrom, () => tooLarge(maxBodyBytes)).then((body) => setBody(ex, body));
  };
}

function setBody(ex: Exchange, body: Buffer): void {
  ex.body = body;
  ex.flow.bytesIn = body.length;
}

/** The body of a request that is all in the stream's buffer (parsed to its end, or its declared length in); null: too large. */
function readBuffered(req: IncomingMessage, limit: number, sharedFrom: number): Buffer | null {
  const chunks: Buffer[] = [];
  let size = 0;
  for (let chunk = req.read() as Buffer | null; chunk !== null; chunk = req.read() as Buffer | null) {
    size += chunk.length;
    if (size > limit) return null;
    chunks.push(chunk);
  }
  return assemble(chunks, size, sharedFrom);
}

/** The chunks in one buffer: the only copy a body gets, in shared memory from `sharedFrom` bytes. */
function assemble(chunks: Buffer[], size: number, sharedFrom: number): Buffer {
  if (size < sharedFrom) return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
  const body = Buffer.from(new SharedArrayBuffer(size));
  let at = 0;
  for (const c of chunks) at += c.copy(body, at);
  return body;
}

function readLimited(req: IncomingMessage, limit: number, sharedFrom: number, onTooLarge: () => Error): Promise<Buffer> {
  if (req.readableEnded) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.pause();
        reject(onTooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(assemble(chunks, size, sharedFrom));
    };
    const onError = () => {
      cleanup();
      reject(new ClientAbortedError());
    };
    const onClose = () => {
      if (!req.complete) onError();
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

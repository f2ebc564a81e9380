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

/**
 * The client went silent mid-body. Connection: close, because the rest of the body will never come
 * (and if it did, it would be read as the next request).
 */
function stalled(idleMs: number): ProxyError {
  return new ProxyError('request_timeout', `request body stalled: no bytes for ${formatDuration(idleMs)} (timeouts.idle)`, {
    connection: 'close',
  });
}

function formatDuration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
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
  /**
   * `timeouts.idle`: this long without a byte from the client while its body is still coming ends
   * the request (408 `request_timeout`). The servers have no request timeout (slow uploads, long
   * streams), so this is what stops a stalled upload from being held forever. Only silence counts:
   * every chunk restarts it. Not armed for a body already buffered when the stage runs. Default:
   * no limit.
   */
  idleTimeoutMs?: number;
}

export function readBodyStage(opts: ReadBodyOptions): Stage {
  const { maxBodyBytes } = opts;
  const sharedFrom = opts.sharedFromBytes ?? Infinity;
  const idleMs = opts.idleTimeoutMs !== undefined && opts.idleTimeoutMs > 0 && Number.isFinite(opts.idleTimeoutMs) ? opts.idleTimeoutMs : 0;
  return (ex) => {
    const declared = ex.req.headers['content-length'];
    const declaredBytes = declared === undefined ? undefined : Number(declared);
    if (declaredBytes !== undefined && declaredBytes > maxBodyBytes) throw tooLarge(maxBodyBytes);
    // A small body usually arrives with its headers: all of it buffered by now (the end of the
    // message may not have been signalled yet, but Content-Length says no more is coming), it is
    // taken as is, without four listeners, a timer and a promise. So is a request that declares no
    // body at all (neither Content-Length nor Transfer-Encoding: HTTP/1.1 says it has none), even
    // when this stage runs before the parser has signalled its end.
    if (
      ex.req.complete ||
      declaredBytes === ex.req.readableLength ||
      (declared === undefined && ex.req.headers['transfer-encoding'] === undefined)
    ) {
      const body = readBuffered(ex.req, maxBodyBytes, sharedFrom);
      if (body === null) throw tooLarge(maxBodyBytes);
      return setBody(ex, body);
    }
    return readLimited(ex.req, maxBodyBytes, sharedFrom, idleMs, () => tooLarge(maxBodyBytes)).then((body) => setBody(ex, body));
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

/** The body as it streams in, bounded in size and, with `idleMs` > 0, in silence between chunks. */
function readLimited(req: IncomingMessage, limit: number, sharedFrom: number, idleMs: number, onTooLarge: () => Error): Promise<Buffer> {
  if (req.readableEnded) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // One timer per streamed body, restarted (not replaced) by each chunk; cleared with the
    // listeners, so waiting for the upstream once the body is in is not bounded by it.
    const idle = idleMs > 0 ? setTimeout(() => {
      cleanup();
      req.pause();
      reject(stalled(idleMs));
    }, idleMs) : undefined;
    const cleanup = () => {
      if (idle) clearTimeout(idle);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      idle?.refresh();
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

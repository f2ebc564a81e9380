// Reads the whole request body before anything goes upstream: inspection needs all of it, and a
// body over the limit is refused (413) rather than forwarded unscanned (SPEC §5).
import type { IncomingMessage } from 'node:http';
import { BUDGET_RETRY_AFTER_SECONDS, budgetKey, type BodyBudget, type BodyReservation, type BudgetScope } from '../body-budget.js';
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

/**
 * How long a client whose body was refused over budget may go on sending it (read and dropped, never
 * held) before its connection is cut. Closing at once with its bytes unread would make the kernel
 * answer them with a reset, and a client still uploading would lose the 429/503 and its Retry-After
 * (nginx's lingering close, same reason). Exported (and mutable) only so a test need not wait.
 */
export const refusedBodyLinger = { ms: 5_000 };

/**
 * Taking the body would pass a limits.bufferedBodyBytes* bound: 429 when it is the client's own
 * (it holds enough already), 503 when the whole process is full (not the client's doing). When the
 * body was not all read, the rest of it is dropped as it comes (`unread`), so the client gets the
 * answer and may reuse its connection if it finishes within refusedBodyLinger.
 */
/** The refusal for a body (or a message of a stream) that would pass a budget. */
export function overBudget(scope: BudgetScope, budget: BodyBudget, unread: IncomingMessage | null): ProxyError {
  if (unread) discardRest(unread, refusedBodyLinger.ms);
  const headers = { 'retry-after': String(BUDGET_RETRY_AFTER_SECONDS) };
  const { perClientBytes, totalBytes } = budget.limits;
  return scope === 'client'
    ? new ProxyError(
        'rate_limited',
        `too many request bodies held for this client at once (limits.bufferedBodyBytesPerClient, ${formatBytes(perClientBytes)}); retry in ${BUDGET_RETRY_AFTER_SECONDS}s`,
        headers,
      )
    : new ProxyError(
        'overloaded',
        `aigate holds too many request bodies at once (limits.bufferedBodyBytes, ${formatBytes(totalBytes)}); retry in ${BUDGET_RETRY_AFTER_SECONDS}s`,
        headers,
      );
}

/** Reads the rest of `req` into nothing; cuts the connection if it has not ended within `lingerMs`. */
function discardRest(req: IncomingMessage, lingerMs: number): void {
  const cut = setTimeout(() => req.socket.destroy(), lingerMs);
  const done = () => clearTimeout(cut);
  req.once('end', done);
  req.once('close', done);
  req.on('data', () => undefined);
  req.resume();
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
  /**
   * limits.bufferedBodyBytes and .bufferedBodyBytesPerClient: a body holds budget from its first
   * byte (all of a declared Content-Length at once) until its response is over; a body that would
   * pass a bound is refused (429 / 503 with Retry-After). Default: no bound.
   */
  budget?: BodyBudget;
}

export function readBodyStage(opts: ReadBodyOptions): Stage {
  const { maxBodyBytes, budget } = opts;
  const sharedFrom = opts.sharedFromBytes ?? Infinity;
  const idleMs = opts.idleTimeoutMs !== undefined && opts.idleTimeoutMs > 0 && Number.isFinite(opts.idleTimeoutMs) ? opts.idleTimeoutMs : 0;
  const read = (ex: Exchange, retry: boolean): void | Promise<void> => {
    const declared = ex.req.headers['content-length'];
    const declaredBytes = declared === undefined ? undefined : Number(declared);
    if (declaredBytes !== undefined && declaredBytes > maxBodyBytes) throw tooLarge(maxBodyBytes);
    // A small body usually arrives with its headers: all of it buffered by now (the end of the
    // message may not have been signalled yet, but Content-Length says no more is coming), it is
    // taken as is, without four listeners, a timer and a promise. So is a request that declares no
    // body at all (neither Content-Length nor Transfer-Encoding: HTTP/1.1 says it has none), even
    // when this stage runs before the parser has signalled its end.
    const buffered =
      ex.req.complete ||
      declaredBytes === ex.req.readableLength ||
      // (HTTP/2 frames its body by END_STREAM: no Content-Length says nothing there.)
      (declared === undefined && ex.req.headers['transfer-encoding'] === undefined && ex.req.httpVersionMajor < 2);
    // When every stage before this one finished synchronously, this runs in the request event,
    // before the parser has handed over the bytes of the same read that follow the headers; they
    // are pushed before the next microtask runs (as they were when the limiter always awaited).
    if (!buffered && retry && !ex.req.readableEnded) return Promise.resolve(ex).then((again) => read(again, false));
    if (buffered) {
      const body = readBuffered(ex.req, maxBodyBytes, sharedFrom);
      if (body === null) throw tooLarge(maxBodyBytes);
      if (budget && body.length > 0) {
        const reservation = holdUntilClosed(ex, budget);
        const refused = reservation.growTo(body.length);
        if (refused !== null) {
          reservation.release();
          throw overBudget(refused, budget, null);
        }
      }
      return setBody(ex, body);
    }
    let reservation: BodyReservation | undefined;
    let grow: ((size: number) => Error | null) | undefined;
    if (budget) {
      const r = (reservation = holdUntilClosed(ex, budget));
      // A declared length is held before a byte of it is read: a refusal then costs the client no upload.
      const refused = declaredBytes !== undefined ? r.growTo(declaredBytes) : null;
      if (refused !== null) {
        r.release();
        throw overBudget(refused, budget, ex.req);
      }
      grow = (size) => {
        const scope = r.growTo(size);
        return scope === null ? null : overBudget(scope, budget, ex.req);
      };
    }
    return readLimited(ex.req, maxBodyBytes, sharedFrom, idleMs, () => tooLarge(maxBodyBytes), grow).then(
      (body) => setBody(ex, body),
      (err: unknown) => {
        reservation?.release(); // the chunks read so far are garbage now: their budget is free at once
        throw err;
      },
    );
  };
  return (ex) => read(ex, true);
}

/** A reservation for this request's body, given back when its response is over, however it ends. */
function holdUntilClosed(ex: Exchange, budget: BodyBudget): BodyReservation {
  const reservation = budget.open(budgetKey(ex.flow.client));
  // The pipeline stops before this stage once the response is destroyed, so 'close' is still to
  // come; were it not, a reservation never given back would slowly refuse everything.
  if (ex.res.destroyed) reservation.release();
  else ex.res.once('close', () => reservation.release());
  return reservation;
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

/**
 * The body as it streams in, bounded in size and, with `idleMs` > 0, in silence between chunks;
 * `grow` is told the size so far after each chunk and refuses it with an error (the body budget).
 */
function readLimited(
  req: IncomingMessage,
  limit: number,
  sharedFrom: number,
  idleMs: number,
  onTooLarge: () => Error,
  grow?: (size: number) => Error | null,
): Promise<Buffer> {
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
      // Refused: the refusal owns the rest of the stream (it is read into nothing), so no pause.
      const refused = grow?.(size) ?? null;
      if (refused !== null) {
        cleanup();
        reject(refused);
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

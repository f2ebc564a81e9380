// The RPC channel stage: for gRPC, gRPC-Web and Connect requests it replaces read-body + inspect.
// - Envelope streams: each message is inspected as it arrives and forwarded as soon as it is clean
//   (a bidi stream stays open for minutes; nothing waits for the end of the body). The upstream
//   request starts with the first clean message, so a refusal before it forwards nothing; a
//   refusal later aborts the upstream request, and the client gets the protocol's error if its
//   response has not started, else a cut stream.
// - Connect unary, protobuf: the body read whole, inspected as one message, forwarded.
// - Connect unary, JSON: the ordinary body path (JSON inspection, redaction), Connect's error shape.
// - Connect GET: the message in the query string is decoded and inspected before forwarding.
// Every other request passes through untouched, synchronously.
import { PassThrough } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import type { Inspector, ScanFinding } from '../../inspect/index.js';
import { ProxyError } from '../../pipeline/errors.js';
import type { Exchange, Stage } from '../../pipeline/exchange.js';
import { decisionFor, sendError } from '../../pipeline/respond.js';
import { budgetKey, type BodyBudget } from '../../pipeline/body-budget.js';
import { ClientAbortedError, overBudget } from '../../pipeline/stages/read-body.js';
import { auditFinding, blockMessage } from '../../pipeline/stages/inspect.js';
import { forward, type ForwardOptions } from '../../upstream/forward.js';
import { EnvelopeAdapter } from './adapter.js';
import { inspectMessage, MessageError } from './message.js';
import { ConnectGetError, MESSAGE_ENCODINGS, rpcChannel, type ConnectGetChannel, type ConnectUnaryChannel, type EnvelopeChannel } from './protocol.js';
import { ResponseFraming } from './framing.js';
import { finalEnvelope, refusalResponse, RpcRefusal } from './refusal.js';

export interface RpcStageOptions {
  inspector: Inspector;
  maxBodyBytes: number;
  /** timeouts.idle: a stream silent both ways this long is ended. 0: no limit. */
  idleTimeoutMs: number;
  /** Reads a unary body whole (the ordinary read-body stage). */
  readBody: Stage;
  forward: ForwardOptions;
  /** limits.bufferedBodyBytes*: the message being assembled or inspected counts, as a body does. */
  budget?: BodyBudget;
}

export function rpcStage(opts: RpcStageOptions): Stage {
  return (ex) => {
    let channel;
    try {
      channel = rpcChannel(ex.req.method, ex.req.headers, ex.query);
    } catch (err) {
      if (!(err instanceof ConnectGetError)) throw err;
      ex.errorShape = (e) => refusalResponse({ protocol: 'connect', streaming: false, codec: 'proto', contentType: 'application/json' }, e);
      throw new ProxyError('bad_request', err.message);
    }
    if (channel === null) return;
    switch (channel.kind) {
      case 'envelopes':
        ex.errorShape = (err) => refusalResponse({ protocol: channel.protocol, streaming: true, codec: channel.codec === 'json' ? 'json' : 'proto', contentType: channel.contentType }, err);
        return streamEnvelopes(ex, channel, opts);
      case 'connect-unary':
        ex.errorShape = (err) => refusalResponse({ protocol: 'connect', streaming: false, codec: channel.codec, contentType: 'application/json' }, err);
        checkUnaryEncoding(ex.req.headers['content-encoding']);
        // JSON keeps the ordinary path, which can redact it in place.
        return channel.codec === 'json' ? undefined : unaryProto(ex, channel, opts);
      case 'connect-get':
        ex.errorShape = (err) => refusalResponse({ protocol: 'connect', streaming: false, codec: channel.codec, contentType: 'application/json' }, err);
        return connectGet(ex, channel, opts);
    }
  };
}

function recordFindings(ex: Exchange, findings: readonly ScanFinding[]): void {
  for (const f of findings) ex.flow.findings.push(auditFinding(f));
}

async function inspectOne(ex: Exchange, data: Buffer, codec: ConnectUnaryChannel['codec'], encoding: string, opts: RpcStageOptions): Promise<void> {
  let verdict;
  try {
    verdict = await inspectMessage(opts.inspector, data, { codec, encoding, action: ex.target!.action, maxBytes: opts.maxBodyBytes });
  } catch (err) {
    if (err instanceof MessageError) {
      if (err.kind === 'too_large') throw new ProxyError('body_too_large', err.message);
      throw new ProxyError('bad_request', `request message cannot be inspected: ${err.message}`);
    }
    throw err;
  }
  recordFindings(ex, verdict.findings);
  if (verdict.decision === 'block') throw new ProxyError('sensitive_content', blockMessage(verdict.findings.filter((f) => f.action === 'block')));
}

/** Content-Encodings the body decoder undoes (inspect/decode.ts). */
const BODY_ENCODINGS: ReadonlySet<string> = new Set(['identity', 'gzip', 'x-gzip', 'deflate', 'br']);

/** Connect answers a compression it does not support with unimplemented (and what it accepts). */
function checkUnaryEncoding(value: string | undefined): void {
  for (const coding of (value ?? '').split(',')) {
    const c = coding.trim().toLowerCase();
    if (c !== '' && !BODY_ENCODINGS.has(c)) {
      throw new RpcRefusal('bad_request', 'unimplemented', `unsupported Content-Encoding "${c}": aigate inspects gzip, deflate, br and identity`, {
        'accept-encoding': 'gzip, deflate, br',
      });
    }
  }
}

async function unaryProto(ex: Exchange, channel: ConnectUnaryChannel, opts: RpcStageOptions): Promise<void> {
  await opts.readBody(ex);
  if (ex.res.writableEnded || ex.res.destroyed) return;
  // Content-Encoding compresses a unary body whole; decodeContent refuses what it cannot undo.
  const encoding = ex.req.headers['content-encoding'] ?? 'identity';
  if (ex.body.length > 0) await inspectOne(ex, ex.body, channel.codec, encoding, opts);
  await forward(ex, opts.forward);
}

const BASE64URL = /^[A-Za-z0-9_\-+/]*={0,2}$/;

function connectGet(ex: Exchange, channel: ConnectGetChannel, opts: RpcStageOptions): Promise<void> | void {
  if (!MESSAGE_ENCODINGS.has(channel.compression)) {
    throw new RpcRefusal('bad_request', 'unimplemented', `unsupported message compression "${channel.compression}" (compression parameter): aigate inspects gzip, deflate and identity`);
  }
  let data: Buffer;
  if (channel.base64) {
    // URLSearchParams turned an unescaped '+' into a space; the server reads it back as '+'.
    const text = channel.message.replace(/ /g, '+');
    if (!BASE64URL.test(text)) throw new ProxyError('bad_request', 'the message parameter is not valid base64');
    data = Buffer.from(text, 'base64url');
  } else {
    data = Buffer.from(channel.message, 'utf8');
  }
  if (data.length === 0) return;
  // Nothing to read: the ordinary stages forward the (empty-bodied) GET once this resolves.
  return inspectOne(ex, data, channel.codec, channel.compression, opts);
}

/** Restartable timer whose expiry rejects `expired`; restarting is cheap (one per chunk). */
class IdleTimer {
  readonly expired: Promise<never>;
  private timer: NodeJS.Timeout | undefined;

  constructor(ms: number, error: () => Error) {
    let fire!: (err: Error) => void;
    this.expired = new Promise<never>((_resolve, reject) => (fire = reject));
    this.expired.catch(() => undefined);
    if (ms > 0) this.timer = setTimeout(() => fire(error()), ms);
  }

  refresh(): void {
    this.timer?.refresh();
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
  }
}

/** The request body's chunks, counted into bytesIn; a client gone mid-body is ClientAbortedError. */
async function* requestChunks(ex: Exchange, idle: IdleTimer): AsyncGenerator<Buffer, void, undefined> {
  const req: IncomingMessage = ex.req;
  const it = req[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  for (;;) {
    let next: IteratorResult<Buffer>;
    try {
      next = await Promise.race([it.next(), idle.expired]);
    } catch (err) {
      if (err instanceof ProxyError) {
        req.pause();
        throw err;
      }
      throw new ClientAbortedError();
    }
    if (next.done) {
      if (!req.complete) throw new ClientAbortedError();
      return;
    }
    idle.refresh();
    ex.flow.bytesIn += next.value.length;
    yield next.value;
  }
}

async function streamEnvelopes(ex: Exchange, channel: EnvelopeChannel, opts: RpcStageOptions): Promise<void> {
  const { res } = ex;
  const adapter = new EnvelopeAdapter(opts.inspector, channel, {
    action: ex.target!.action,
    maxMessageBytes: opts.maxBodyBytes,
    onFindings: (findings) => recordFindings(ex, findings),
    ...(opts.budget ? { budget: streamBudget(opts.budget, budgetKey(ex.flow.client)) } : {}),
  });
  adapter.checkEncoding();
  // Envelopes carry their own compression; a whole-body Content-Encoding on top would make the
  // upstream read other envelopes than the ones inspected here.
  const bodyEncoding = (ex.req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (bodyEncoding !== 'identity' && bodyEncoding !== '') {
    throw new RpcRefusal('bad_request', 'unimplemented', `Content-Encoding "${bodyEncoding}" on an RPC stream is not supported: compress each message instead`);
  }
  const idleMs = opts.idleTimeoutMs;
  const idle = new IdleTimer(idleMs, () => new ProxyError('request_timeout', `RPC stream idle: no bytes either way for ${idleMs} ms (timeouts.idle)`, { connection: 'close' }));
  const upstreamBody = new PassThrough();
  upstreamBody.on('error', () => undefined); // destroyed on purpose to abort the upstream request
  let forwarding: Promise<void> | undefined;
  let forwardEnd: Promise<'forward-ended'> | undefined;
  // Where the upstream's response stands, so a refusal after it started can still end it in the
  // protocol's terms at a message boundary (Connect end-stream, gRPC-Web trailers).
  const final = channel.protocol === 'connect' ? 0x02 : channel.protocol === 'grpc-web' ? 0x80 : 0;
  let framing: ResponseFraming | null | undefined;
  let refusal: ProxyError | undefined;
  const responseFraming = () => {
    // A 200 answer to a Connect streaming or gRPC-Web call is envelopes by both specs (their
    // errors come as a final envelope); anything else is not followed, and is cut on refusal.
    framing ??= final !== 0 && res.statusCode === 200 ? new ResponseFraming(final) : null;
    return framing;
  };
  const onResponseData = (chunk: Buffer) => {
    idle.refresh();
    responseFraming()?.push(chunk);
  };
  const endResponse = () => (refusal && responseFraming()?.atBoundary ? finalEnvelope(channel.protocol, refusal) : null);
  const startForward = () => {
    forwarding = forward(ex, opts.forward, { body: upstreamBody, onResponseData, endResponse });
    forwardEnd = forwarding.then(
      () => 'forward-ended' as const,
      () => 'forward-ended' as const,
    );
  };

  const messages = adapter.clean(requestChunks(ex, idle));
  try {
    for (;;) {
      // The upstream may finish or fail while the client is still sending: stop reading then.
      const next = forwardEnd ? await Promise.race([messages.next(), forwardEnd]) : await messages.next();
      if (next === 'forward-ended') break;
      if (next.done) {
        if (!forwarding) startForward(); // a stream of no messages is still a call
        upstreamBody.end();
        break;
      }
      if (upstreamBody.destroyed) break;
      const writable = upstreamBody.write(next.value);
      if (!forwarding) startForward();
      if (!writable) await Promise.race([new Promise((r) => upstreamBody.once('drain', r)), forwardEnd]);
    }
  } catch (err) {
    if (!forwarding) throw err; // nothing went upstream: the pipeline answers in the protocol's shape
    if (err instanceof ProxyError) refusal = err;
    await refuseMidStream(ex, err, upstreamBody, forwarding);
    return;
  } finally {
    idle.clear();
  }
  await forwarding;
  // Whatever ended the exchange, the pipeline must find its response over.
  if (!res.writableEnded && !res.destroyed) res.destroy();
}

/** Messages were already forwarded: abort the upstream request, then answer or cut the client. */
async function refuseMidStream(ex: Exchange, err: unknown, upstreamBody: PassThrough, forwarding: Promise<void>): Promise<void> {
  const { res, flow } = ex;
  if (err instanceof ClientAbortedError) {
    flow.aborted = true;
    upstreamBody.destroy(err);
    await forwarding.catch(() => undefined);
    res.destroy();
    return;
  }
  const refusal = err instanceof ProxyError ? err : new ProxyError('internal_error', `internal error in aigate (request id ${flow.id})`);
  flow.decision = decisionFor(refusal.type);
  flow.reason = refusal.type;
  upstreamBody.destroy(err instanceof Error ? err : new Error('refused'));
  await forwarding.catch(() => undefined);
  if (!res.headersSent && !res.destroyed) sendError(ex, refusal);
  else if (!res.writableEnded) res.destroy();
}

/** A stream's share of the body budget: taking past a bound throws its 429/503 refusal. */
function streamBudget(budget: BodyBudget, client: string): { take(bytes: number): void; release(bytes: number): void } {
  return {
    take(bytes) {
      const refused = budget.take(client, bytes);
      if (refused !== null) throw overBudget(refused, budget, null);
    },
    release: (bytes) => budget.give(client, bytes),
  };
}

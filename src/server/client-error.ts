// Requests Node's HTTP parser rejects (oversized headers, malformed syntax) never reach a stage;
// they still get the SPEC §7 body and their audit line here.
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AuditLog } from '../audit/log.js';
import type { Metrics } from '../metrics.js';
import { errorBody, ProxyError } from '../pipeline/errors.js';
import { Flow, type Mode } from '../pipeline/flow.js';
import type { Exchange } from '../pipeline/exchange.js';
import { decisionFor, proxyStatusOf, sendError } from '../pipeline/respond.js';

/**
 * Answers on a raw socket (no ServerResponse exists: parser errors, refused CONNECTs) with the
 * SPEC §7 body, records the answer in the flow, and closes the connection.
 */
export function writeRawError(socket: Duplex, flow: Flow, err: ProxyError): void {
  const body = errorBody(err.type, err.message);
  flow.status = err.status;
  flow.decision = decisionFor(err.type);
  flow.reason = err.type;
  if (err.errorCode !== undefined) flow.error = err.errorCode;
  flow.bytesOut = Buffer.byteLength(body);
  const extra = Object.entries(err.headers)
    .filter(([k]) => k.toLowerCase() !== 'connection')
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(
    `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? 'Error'}\r\n` +
      'Content-Type: application/json\r\n' +
      `X-Aigate-Request-Id: ${flow.id}\r\n` +
      `Proxy-Status: ${proxyStatusOf(err)}\r\n` +
      extra +
      `Content-Length: ${flow.bytesOut}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}

const MESSAGES: Record<string, string> = {
  HPE_HEADER_OVERFLOW: 'request headers are too large (limit 16 KiB)',
  HPE_INVALID_METHOD: 'malformed request: invalid method',
  HPE_INVALID_URL: 'malformed request: invalid request target',
  HPE_INVALID_HEADER_TOKEN: 'malformed request: invalid header',
  HPE_INVALID_CONTENT_LENGTH: 'malformed request: invalid Content-Length',
  // llhttp's only use of this code: Content-Length given twice (with or without the same value).
  HPE_UNEXPECTED_CONTENT_LENGTH: 'malformed request: Content-Length given more than once',
  HPE_INVALID_CHUNK_SIZE: 'malformed request: invalid chunk size in a chunked body',
  HPE_INVALID_EOF_STATE: 'malformed request: the connection ended in the middle of a request',
};

function messageFor(err: Error & { code?: string; reason?: string }): string {
  const code = err.code ?? '';
  if (code === 'HPE_INVALID_TRANSFER_ENCODING') {
    // llhttp's reasons are fixed strings (never client input).
    return /Content-Length/.test(err.reason ?? '')
      ? 'malformed request: both Content-Length and Transfer-Encoding'
      : 'malformed request: Transfer-Encoding must end with chunked, applied once (RFC 9112 §6.1)';
  }
  return MESSAGES[code] ?? `malformed request (${code})`;
}

/** Connections whose parser error was handled: llhttp reports the same error again on every later read. */
const handled = new WeakSet<Duplex>();

export interface ClientErrorDeps {
  audit: AuditLog;
  metrics: Metrics;
  mode: Mode;
  clientIp: (socket: Duplex) => string;
  /** The pipeline whose flows the listener's requests are (its latest flow on a connection). */
  flows?: { latestOn(socket: object): Exchange | undefined };
}

export function handleClientError(err: Error & { code?: string; reason?: string; rawPacket?: Buffer }, socket: Duplex, deps: ClientErrorDeps): void {
  const code = err.code ?? '';
  // Timeouts and resets: the client is gone or idle; there is nobody to answer.
  if (!code.startsWith('HPE_') || !socket.writable) {
    socket.destroy();
    return;
  }
  if (handled.has(socket)) return;
  handled.add(socket);
  const error = new ProxyError('bad_request', messageFor(err));
  const current = deps.flows?.latestOn(socket);
  if (current && !current.req.complete) {
    // The request this flow is reading is the broken one: the flow answers and audits it (method,
    // path, request id), never a second, anonymous line beside it.
    answerInFlow(current, socket, error, code === 'HPE_INVALID_EOF_STATE');
    return;
  }
  const answer = () => {
    // Gone while the earlier response was out: nobody to answer, and no request was ever read.
    if (!socket.writable) return void socket.destroy();
    const flow = new Flow(deps.mode, { ip: deps.clientIp(socket), user: null }, null, null);
    writeRawError(socket, flow, error);
    deps.audit.writeFlow(flow);
    deps.metrics.countRequest('', flow.decision, flow.status);
  };
  // A broken request pipelined behind one still being answered: its answer waits its turn, or the
  // client would read it as the answer to the earlier request.
  if (current && !current.res.writableFinished && !current.res.destroyed) current.res.once('close', answer);
  else answer();
}

function answerInFlow(ex: Exchange, socket: Duplex, error: ProxyError, clientEnded: boolean): void {
  if (ex.res.headersSent) {
    // Already answered (aigate refused it before reading its body): the connection cannot carry
    // another request, so it ends once that answer is out.
    if (ex.res.writableFinished) socket.end();
    else ex.res.once('finish', () => socket.end());
    return;
  }
  if (clientEnded) {
    // The client closed its side half-way through the request: an abandoned upload, audited by its
    // flow as 499 when the connection closes.
    socket.destroy();
    return;
  }
  ex.res.shouldKeepAlive = false;
  sendError(ex, error);
}

/**
 * A CONNECT where aigate tunnels nothing (the gateway, inside an intercepted tunnel): Node would
 * drop the socket without a word; this answers 400 and audits it like any refused CONNECT.
 */
export function refuseConnect(
  req: { url?: string | undefined },
  socket: Duplex,
  why: string,
  deps: ClientErrorDeps,
): void {
  socket.on('error', () => socket.destroy());
  const flow = new Flow(deps.mode, { ip: deps.clientIp(socket), user: null }, 'CONNECT', null);
  flow.event = 'connect';
  writeRawError(socket, flow, new ProxyError('bad_request', `CONNECT ${req.url ?? ''} refused: ${why}`));
  deps.audit.writeFlow(flow);
  deps.metrics.countTunnel('', flow.decision, flow.status);
}

/** The client's address as audited: IPv4-mapped IPv6 shown as plain IPv4. */
export function socketIp(socket: { remoteAddress?: string | undefined }): string {
  const a = socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

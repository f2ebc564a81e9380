// Requests Node's HTTP parser rejects (oversized headers, malformed syntax) never reach a stage;
// they still get the SPEC §7 body and their audit line here.
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AuditLog } from '../audit/log.js';
import type { Metrics } from '../metrics.js';
import { errorBody, ProxyError } from '../pipeline/errors.js';
import { Flow, type Mode } from '../pipeline/flow.js';
import { decisionFor } from '../pipeline/respond.js';

/**
 * Answers on a raw socket (no ServerResponse exists: parser errors, refused CONNECTs) with the
 * SPEC §7 body, records the answer in the flow, and closes the connection.
 */
export function writeRawError(socket: Duplex, flow: Flow, err: ProxyError): void {
  const body = errorBody(err.type, err.message);
  flow.status = err.status;
  flow.decision = decisionFor(err.type);
  flow.reason = err.type;
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
  HPE_UNEXPECTED_CONTENT_LENGTH: 'malformed request: both Content-Length and Transfer-Encoding',
};

export function handleClientError(
  err: Error & { code?: string; rawPacket?: Buffer },
  socket: Duplex,
  deps: { audit: AuditLog; metrics: Metrics; mode: Mode; clientIp: (socket: Duplex) => string },
): void {
  const code = err.code ?? '';
  // Timeouts and resets: the client is gone or idle; there is nobody to answer.
  if (!code.startsWith('HPE_') || !socket.writable) {
    socket.destroy();
    return;
  }
  const flow = new Flow(deps.mode, { ip: deps.clientIp(socket), user: null }, null, null);
  writeRawError(socket, flow, new ProxyError('bad_request', MESSAGES[code] ?? `malformed request (${code})`));
  deps.audit.writeFlow(flow);
  deps.metrics.countRequest('', flow.decision, flow.status);
}

/**
 * A CONNECT where aigate tunnels nothing (the gateway, inside an intercepted tunnel): Node would
 * drop the socket without a word; this answers 400 and audits it like any refused CONNECT.
 */
export function refuseConnect(
  req: { url?: string | undefined },
  socket: Duplex,
  why: string,
  deps: { audit: AuditLog; metrics: Metrics; mode: Mode; clientIp: (socket: Duplex) => string },
): void {
  socket.on('error', () => socket.destroy());
  const flow = new Flow(deps.mode, { ip: deps.clientIp(socket), user: null }, 'CONNECT', null);
  flow.event = 'connect';
  writeRawError(socket, flow, new ProxyError('bad_request', `CONNECT ${req.url ?? ''} refused: ${why}`));
  deps.audit.writeFlow(flow);
  deps.metrics.countRequest('', flow.decision, flow.status);
}

/** The client's address as audited: IPv4-mapped IPv6 shown as plain IPv4. */
export function socketIp(socket: { remoteAddress?: string | undefined }): string {
  const a = socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

// Requests Node's HTTP parser rejects (oversized headers, malformed syntax) never reach a stage;
// they still get the SPEC §7 body and their audit line here.
import type { Duplex } from 'node:stream';
import type { AuditLog } from '../audit/log.js';
import type { Metrics } from '../metrics.js';
import { errorBody } from '../pipeline/errors.js';
import { Flow, type Mode } from '../pipeline/flow.js';

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
  const body = errorBody('bad_request', MESSAGES[code] ?? `malformed request (${code})`);
  flow.status = 400;
  flow.decision = 'error';
  flow.reason = 'bad_request';
  flow.bytesOut = Buffer.byteLength(body);
  socket.end(
    'HTTP/1.1 400 Bad Request\r\n' +
      'Content-Type: application/json\r\n' +
      `X-Aigate-Request-Id: ${flow.id}\r\n` +
      `Content-Length: ${flow.bytesOut}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
  deps.audit.writeFlow(flow);
  deps.metrics.requests.inc({ route: '', decision: 'error', status: '400' });
}

/** The client's address as audited: IPv4-mapped IPv6 shown as plain IPv4. */
export function socketIp(socket: { remoteAddress?: string | undefined }): string {
  const a = socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

// Refusals in each RPC protocol's own error shape, so the tool shows aigate's message instead of
// a protocol error:
// - gRPC and gRPC-Web: HTTP 200 "trailers-only" — grpc-status and grpc-message (percent-encoded,
//   PROTOCOL-HTTP2.md) in the headers, no body; content-type echoes the request's.
// - Connect unary: the code's HTTP status, JSON {"code","message"} (Connect protocol, "Error").
// - Connect streaming: HTTP 200 and one end-stream envelope (flag 0x02) carrying {"error":{…}}.
import { ProxyError, type ErrorType } from '../../pipeline/errors.js';
import type { ErrorResponse } from '../../pipeline/respond.js';
import type { RpcProtocol } from './protocol.js';

/** gRPC status codes by their Connect names (the two specs share the numbering). */
export const RPC_CODES = {
  canceled: 1,
  invalid_argument: 3,
  deadline_exceeded: 4,
  not_found: 5,
  permission_denied: 7,
  resource_exhausted: 8,
  internal: 13,
  unimplemented: 12,
  unavailable: 14,
  unauthenticated: 16,
} as const;
export type RpcCode = keyof typeof RPC_CODES;

const CODE_FOR: Record<ErrorType, RpcCode> = {
  sensitive_content: 'permission_denied',
  egress_denied: 'permission_denied',
  rate_limited: 'resource_exhausted',
  body_too_large: 'resource_exhausted',
  not_found: 'not_found',
  bad_request: 'invalid_argument',
  upstream_unavailable: 'unavailable',
  upstream_certificate: 'unavailable',
  upstream_timeout: 'deadline_exceeded',
  proxy_auth_required: 'unauthenticated',
  audit_unavailable: 'unavailable',
  request_timeout: 'deadline_exceeded',
  internal_error: 'internal',
  websocket_refused: 'unimplemented',
  not_implemented: 'unimplemented',
  overloaded: 'unavailable',
};

/** Connect's HTTP status per code (connectrpc.com/docs/protocol, "Error Codes"). */
const CONNECT_STATUS: Record<RpcCode, number> = {
  canceled: 499,
  invalid_argument: 400,
  deadline_exceeded: 504,
  not_found: 404,
  permission_denied: 403,
  resource_exhausted: 429,
  internal: 500,
  unimplemented: 501,
  unavailable: 503,
  unauthenticated: 401,
};

/** A refusal whose RPC code is not the one its audit type implies (an unknown compression). */
export class RpcRefusal extends ProxyError {
  constructor(
    type: ErrorType,
    readonly code: RpcCode,
    message: string,
    headers: Record<string, string> = {},
  ) {
    super(type, message, headers);
  }
}

export function rpcCode(err: ProxyError): RpcCode {
  return err instanceof RpcRefusal ? err.code : CODE_FOR[err.type];
}

/** grpc-message: bytes outside printable ASCII, and '%', as %XX of their UTF-8 (PROTOCOL-HTTP2.md). */
export function grpcMessage(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export interface RefusalShape {
  protocol: RpcProtocol;
  /** Connect only: a streaming call (end-stream envelope) rather than unary (JSON body). */
  streaming: boolean;
  codec: string;
  /** The request's Content-Type, echoed by gRPC refusals. */
  contentType: string;
}

export function refusalResponse(shape: RefusalShape, err: ProxyError): ErrorResponse {
  const code = rpcCode(err);
  if (shape.protocol !== 'connect') {
    return {
      status: 200,
      headers: { 'content-type': shape.contentType, 'grpc-status': String(RPC_CODES[code]), 'grpc-message': grpcMessage(err.message), 'content-length': '0' },
      body: Buffer.alloc(0),
    };
  }
  if (!shape.streaming) {
    const body = Buffer.from(JSON.stringify({ code, message: err.message }));
    return { status: CONNECT_STATUS[code], headers: { 'content-type': 'application/json', 'content-length': String(body.length) }, body };
  }
  const body = endStreamEnvelope(code, err.message);
  return { status: 200, headers: { 'content-type': `application/connect+${shape.codec}`, 'content-length': String(body.length) }, body };
}

/** A Connect end-stream message (flag 0x02) carrying an error: always JSON, whatever the codec. */
export function endStreamEnvelope(code: RpcCode, message: string): Buffer {
  const json = Buffer.from(JSON.stringify({ error: { code, message } }));
  const out = Buffer.alloc(5 + json.length);
  out[0] = 0x02;
  out.writeUInt32BE(json.length, 1);
  json.copy(out, 5);
  return out;
}

/** A gRPC-Web trailers frame (flag 0x80): HTTP/1-style header lines, as PROTOCOL-WEB.md puts them in the body. */
export function grpcWebTrailers(code: RpcCode, message: string): Buffer {
  const text = Buffer.from(`grpc-status: ${RPC_CODES[code]}\r\ngrpc-message: ${grpcMessage(message)}\r\n`);
  const out = Buffer.alloc(5 + text.length);
  out[0] = 0x80;
  out.writeUInt32BE(text.length, 1);
  text.copy(out, 5);
  return out;
}

/**
 * The envelope that ends a streaming response already under way with `err`, where the protocol
 * has one in the body (Connect end-stream, gRPC-Web trailers); null for gRPC (its status is in
 * HTTP trailers, which an HTTP/1.1 response already started cannot be relied on to carry).
 */
export function finalEnvelope(protocol: RpcProtocol, err: ProxyError): Buffer | null {
  if (protocol === 'connect') return endStreamEnvelope(rpcCode(err), err.message);
  if (protocol === 'grpc-web') return grpcWebTrailers(rpcCode(err), err.message);
  return null;
}

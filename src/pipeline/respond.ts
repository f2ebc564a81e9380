// The one place a ProxyError becomes an HTTP response and a Flow decision.
import { constants as h2 } from 'node:http2';
import type { Http2ServerRequest } from 'node:http2';
import type { Decision } from './flow.js';
import { ProxyError, errorBody, type ErrorType } from './errors.js';
import type { Exchange } from './exchange.js';
import { PROXY_STATUS, proxyStatusHeader } from './proxy-status.js';

export type { ErrorResponse } from './exchange.js';

const DECISION: Record<ErrorType, Decision> = {
  sensitive_content: 'block',
  body_too_large: 'block',
  egress_denied: 'deny',
  not_found: 'deny',
  websocket_refused: 'deny',
  proxy_auth_required: 'deny',
  rate_limited: 'rate_limited',
  bad_request: 'error',
  upstream_unavailable: 'error',
  upstream_certificate: 'error',
  upstream_timeout: 'error',
  audit_unavailable: 'error',
  request_timeout: 'error',
  internal_error: 'error',
  not_implemented: 'error',
  overloaded: 'error',
};

export function decisionFor(type: ErrorType): Decision {
  return DECISION[type];
}

/** The Proxy-Status (RFC 9209) value of an answer aigate gives itself. */
export function proxyStatusOf(err: ProxyError): string {
  return proxyStatusHeader(err.proxyStatus ?? PROXY_STATUS[err.type], err.message);
}

export function sendError(ex: Exchange, err: ProxyError): void {
  const { flow, res } = ex;
  flow.decision = decisionFor(err.type);
  flow.reason = err.type;
  if (err.errorCode !== undefined) flow.error = err.errorCode;
  if (res.headersSent) {
    // Too late for an error body (the upstream response already started): cut the stream so
    // the client sees a truncated response rather than a silently complete one.
    res.destroy();
    return;
  }
  const proxyStatus = proxyStatusOf(err);
  const shaped = ex.errorShape?.(err);
  if (shaped) {
    flow.bytesOut += shaped.body.length;
    res.writeHead(shaped.status, { ...ex.responseHeaders, ...err.headers, ...shaped.headers, 'proxy-status': proxyStatus });
    res.end(shaped.body);
    stopUpload(ex);
    return;
  }
  const body = Buffer.from(errorBody(err.type, err.message));
  flow.bytesOut += body.length;
  res.writeHead(err.status, {
    ...ex.responseHeaders,
    ...err.headers,
    'content-type': 'application/json',
    'content-length': String(body.length),
    'proxy-status': proxyStatus,
  });
  res.end(body);
  stopUpload(ex);
}

/**
 * HTTP/2: an answer sent while the request body is still arriving (413 found mid-body, a budget
 * refusal) is followed by RST_STREAM NO_ERROR once the answer and its END_STREAM are out, which
 * tells the client to stop sending without discarding the answer (RFC 9113 §8.1) — what Node does
 * itself for a stream whose body was never read, and the same way (a turn after 'finish', so the
 * reset cannot overtake the END_STREAM). HTTP/1.1 gets `Connection: close` or the lingering discard
 * instead; an h2 stream left open would upload into nothing until timeouts.idle ended the session.
 */
function stopUpload(ex: Exchange): void {
  if (ex.req.httpVersionMajor !== 2 || ex.req.readableEnded) return;
  const { stream } = ex.req as unknown as Http2ServerRequest;
  const reset = () => setImmediate(() => {
    if (!stream.closed && !stream.destroyed) stream.close(h2.NGHTTP2_NO_ERROR);
  });
  if (stream.writableFinished) reset();
  else stream.once('finish', reset);
}

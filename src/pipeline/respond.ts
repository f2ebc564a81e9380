// The one place a ProxyError becomes an HTTP response and a Flow decision.
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
}

// Proxy-Status (RFC 9209) on every answer aigate itself gives: a client, an IDE's network log or a
// load balancer reads in a header why the proxy (not the upstream) answered, without parsing the
// SPEC §7 body. Responses relayed from an upstream never get one (they are not aigate's errors).
import type { ErrorType } from './errors.js';

/** The RFC 9209 §2.3 error types aigate uses. */
export type ProxyStatusError =
  | 'dns_timeout'
  | 'dns_error'
  | 'destination_not_found'
  | 'destination_unavailable'
  | 'destination_ip_prohibited'
  | 'destination_ip_unroutable'
  | 'connection_refused'
  | 'connection_terminated'
  | 'connection_timeout'
  | 'tls_protocol_error'
  | 'tls_certificate_error'
  | 'http_request_error'
  | 'http_request_denied'
  | 'http_response_timeout'
  | 'proxy_internal_response'
  | 'proxy_internal_error';

/** The default RFC 9209 type of each SPEC §7 error; upstream failures refine it by cause (upstreamError). */
export const PROXY_STATUS: Record<ErrorType, ProxyStatusError> = {
  // Policy: the request was understood and refused by configuration.
  sensitive_content: 'http_request_denied',
  egress_denied: 'http_request_denied',
  rate_limited: 'http_request_denied',
  proxy_auth_required: 'http_request_denied',
  websocket_refused: 'http_request_denied',
  // A 4xx generated on the origin's behalf (RFC 9209 §2.3.15 lists 400, 408, 413).
  body_too_large: 'http_request_error',
  bad_request: 'http_request_error',
  request_timeout: 'http_request_error',
  not_implemented: 'http_request_error',
  // No route: no next hop for this request.
  not_found: 'destination_not_found',
  upstream_unavailable: 'destination_unavailable',
  upstream_certificate: 'tls_certificate_error',
  upstream_timeout: 'connection_timeout',
  audit_unavailable: 'proxy_internal_error',
  internal_error: 'proxy_internal_error',
  // A capacity bound kept for everyone: answered locally, nothing was attempted upstream.
  overloaded: 'proxy_internal_response',
};

/** The RFC 9209 type an upstream failure's cause (errno / undici / TLS code) names best, if any. */
export function proxyStatusForCause(code: string): ProxyStatusError | undefined {
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection_refused';
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
      return 'connection_terminated';
    case 'ENOTFOUND':
      return 'dns_error';
    case 'EAI_AGAIN':
      return 'dns_timeout';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'destination_ip_unroutable';
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return 'connection_timeout';
    case 'UND_ERR_HEADERS_TIMEOUT':
      return 'http_response_timeout';
    case 'private-address':
      return 'destination_ip_prohibited';
    default:
      return code.startsWith('ERR_SSL_') ? 'tls_protocol_error' : undefined;
  }
}

/**
 * The header value: `aigate; error=<type>; details="<message>"`. `details` is a structured-field
 * String (RFC 8941 §3.3.3): printable ASCII only, `"` and `\` escaped; anything else becomes `?`,
 * and it is cut at 256 characters so a long message cannot bloat the header.
 */
export function proxyStatusHeader(type: ProxyStatusError, details: string): string {
  const printable = details.slice(0, 256).replace(/[^\x20-\x7e]/g, '?').replace(/["\\]/g, '\\$&');
  return `aigate; error=${type}; details="${printable}"`;
}

// Typed answers a stage can give instead of letting a flow continue (SPEC §7). They become an HTTP
// response in exactly one place (respond.ts), so every refusal has the same shape.
import type { ProxyStatusError } from './proxy-status.js';

export const ERROR_STATUS = {
  sensitive_content: 403,
  egress_denied: 403,
  rate_limited: 429,
  body_too_large: 413,
  not_found: 404,
  bad_request: 400,
  upstream_unavailable: 502,
  upstream_certificate: 502,
  upstream_timeout: 504,
  proxy_auth_required: 407,
  // Not in SPEC §7's list: `audit.onWriteError: deny` refuses traffic the audit log cannot record.
  audit_unavailable: 503,
  // Not in SPEC §7's list: the client went silent (timeouts.idle) while sending its request body;
  // answered so the client can tell, and audited, instead of being held open forever.
  request_timeout: 408,
  // Not in SPEC §7's list: a WebSocket upgrade to a destination configured `websocket: refuse`;
  // clients that can (Codex) fall back to HTTP and Server-Sent Events at once.
  websocket_refused: 426,
  // Not in SPEC §7's list: a bug in aigate itself. Reported as such rather than blamed on the
  // upstream, so operators look in the right place.
  internal_error: 500,
  // Not in SPEC §7's list: a request framed with a transfer coding other than chunked alone
  // (`Transfer-Encoding: gzip, chunked`). RFC 9112 §6.1: a server that does not implement a coding
  // answers 501; forwarding the bytes without it would send them uninspected and corrupted.
  not_implemented: 501,
  // Not in SPEC §7's list: aigate is at a capacity bound it keeps for everyone (limits.*: buffered
  // request bodies, queued proxy-auth checks). Always with Retry-After; the client did nothing wrong.
  overloaded: 503,
} as const;

export type ErrorType = keyof typeof ERROR_STATUS;

export class ProxyError extends Error {
  readonly status: number;
  /**
   * What failed underneath, for an upstream failure: the errno, undici or TLS code
   * (`ECONNREFUSED`, `ERR_TLS_CERT_ALTNAME_INVALID`, `pin_mismatch`…). The audit line's `error`.
   */
  errorCode: string | undefined = undefined;
  /** The RFC 9209 type when the cause says more than the ErrorType's default (proxy-status.ts). */
  proxyStatus: ProxyStatusError | undefined = undefined;
  constructor(
    readonly type: ErrorType,
    message: string,
    /** Extra response headers (Retry-After, Proxy-Authenticate, …). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ProxyError';
    this.status = ERROR_STATUS[type];
  }
}

/** Records what failed underneath `err` (an upstream failure's cause) and the RFC 9209 type it names. */
export function withCause(err: ProxyError, code: string, proxyStatus?: ProxyStatusError): ProxyError {
  err.errorCode = code;
  err.proxyStatus = proxyStatus;
  return err;
}

/** The SPEC §7 body, readable by the OpenAI and Anthropic client libraries. */
export function errorBody(type: ErrorType, message: string): string {
  return JSON.stringify({ type: 'error', error: { type, message, code: type } });
}

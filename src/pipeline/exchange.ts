// What the stages share for one request: the Flow (what gets audited), the HTTP pair, where the
// request is going once routed, and its body once read.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Action, BucketConfig, WebSocketPolicy } from '../config/schema.js';
import type { ProxyError } from './errors.js';
import type { Flow } from './flow.js';

/** A refusal as a channel's protocol shapes it (gRPC trailers-only, Connect JSON or end-stream). */
export interface ErrorResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export interface Target {
  /** Route name (gateway) or the allowed host pattern (forward). */
  route: string;
  /** `https://host[:port]` of the upstream. */
  origin: string;
  hostHeader: string;
  /** Path and query as sent upstream. */
  path: string;
  /** Inspection policy for this destination (route or egress rule override, else global). */
  action: Action;
  /** Token bucket for this destination. */
  bucket: BucketConfig;
  /** True when `bucket` is the destination's own override rather than the global one. */
  bucketIsOverride: boolean;
  /** What a WebSocket upgrade to this destination gets (route or egress rule, default inspect). */
  websocket: WebSocketPolicy;
}

/** Where a forward-mode request goes: fixed by the CONNECT (or absolute-form URL) it arrived on. */
export interface ForwardDestination {
  scheme: 'https' | 'http';
  /** Canonical host name the client asked for (SNI, Host and verification use it). */
  host: string;
  port: number;
  /** The host as the client spelt it in its CONNECT (Flow.hostAsSent). */
  hostAsSent?: string;
  /** The egress.allow / preset entry that allowed it. */
  rule: { host: string; action?: Action | undefined; websocket?: WebSocketPolicy | undefined };
}

const NO_HEADERS: ReadonlyArray<readonly [string, string]> = [];

export class Exchange {
  target: Target | undefined;
  /** The query string of the request target ("?…" or ""), passed upstream unchanged. */
  query = '';
  /** The request target's path exactly as the client sent it (forward mode sends it on as is). */
  rawPath = '/';
  /** Forward mode only: the destination the tunnel or absolute-form URL named. */
  destination: ForwardDestination | undefined;
  /** The request body as it will be forwarded (possibly redacted); empty until read. */
  body: Buffer = Buffer.alloc(0);
  /** True once the body was replaced by a decoded (and redacted) copy: drop Content-Encoding. */
  bodyDecoded = false;
  /** Headers aigate sets on the upstream request, replacing the client's (tenant restriction, setHeaders). */
  upstreamHeaders: ReadonlyArray<readonly [string, string]> = NO_HEADERS;
  /**
   * Set by a channel adapter (gRPC, Connect) whose clients only show errors in their protocol's
   * own shape; unset, refusals get the SPEC §7 JSON body.
   */
  errorShape: ((err: ProxyError) => ErrorResponse) | undefined = undefined;
  /** Headers every response to this request carries (RateLimit-*, request id). */
  readonly responseHeaders: Record<string, string>;

  constructor(
    readonly flow: Flow,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
  ) {
    this.responseHeaders = { 'x-aigate-request-id': flow.id };
  }
}

/** A stage either returns (the flow continues) or throws a ProxyError (the flow is answered). */
export type Stage = (ex: Exchange) => void | Promise<void>;

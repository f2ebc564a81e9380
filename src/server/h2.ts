// HTTP/2 for the client side of the traffic listeners (the gateway and intercepted tunnels). A
// TLS connection that negotiated ALPN `h2` is handed to a node:http2 server that never listens;
// each stream becomes one request through the same Pipeline as an HTTP/1.1 request, through
// Node's compatibility objects (Http2ServerRequest/Response). HTTP/1.1 connections never come
// here: they stay on the listener's own HTTP/1.1 server, unchanged.
import {
  constants,
  createServer,
  Http2ServerRequest,
  Http2ServerResponse,
  type Http2Server,
  type OutgoingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';

/** The ALPN list both traffic listeners offer, in the server's order of preference. */
export const ALPN_PROTOCOLS = ['h2', 'http/1.1'];

/**
 * Bounds on what one client's HTTP/2 connection may cost (SETTINGS sent to the client and local
 * limits). Named constants, not config: they bound abuse, and a legitimate client (an IDE opens a
 * few dozen streams at most) never comes near them.
 */
export const H2_LIMITS = {
  /** SETTINGS_MAX_CONCURRENT_STREAMS: streams one connection may have open at once (nginx: 128). */
  maxConcurrentStreams: 128,
  /** SETTINGS_MAX_HEADER_LIST_SIZE, and the most header bytes Node accepts (same as HTTP/1.1's 16 KiB). */
  maxHeaderListSize: 16 * 1024,
  /** Header fields per request, pseudo-headers included (Node's default is 128). */
  maxHeaderListPairs: 128,
  /**
   * Memory nghttp2 may hold for one session, in MiB (Node's default 10): past it new streams are
   * refused with ENHANCE_YOUR_CALM; this is what bounds a CONTINUATION flood and queued frames.
   */
  maxSessionMemoryMiB: 10,
  /**
   * Streams refused (over maxConcurrentStreams, or over memory) before the session is closed: a
   * client that keeps opening streams it was told it may not open is hostile. Node's default.
   */
  maxSessionRejectedStreams: 100,
  /** Invalid frames tolerated before the session is closed (Node's default). */
  maxSessionInvalidFrames: 1000,
} as const;

/** Hop-by-hop fields: illegal in an HTTP/2 message (RFC 9113 §8.2.2); dropped from every response. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

function withoutConnectionHeaders(headers: OutgoingHttpHeaders | readonly unknown[] | undefined): OutgoingHttpHeaders | undefined {
  if (headers === undefined || Array.isArray(headers)) return headers as OutgoingHttpHeaders | undefined;
  const out: OutgoingHttpHeaders = {};
  for (const name of Object.keys(headers)) {
    if (!CONNECTION_SPECIFIC.has(name.toLowerCase())) out[name] = (headers as OutgoingHttpHeaders)[name];
  }
  return out;
}

/**
 * The compatibility response, made to answer what the pipeline asks of a ServerResponse:
 * `destroyed` (missing), `writableFinished` (true after a reset too: Node emits 'finish' on an
 * aborted stream), a cut that is a reset with INTERNAL_ERROR (a truncated response must never look
 * complete), and no connection-specific header (Node throws on keep-alive, transfer-encoding…).
 */
class H2Response extends Http2ServerResponse {
  override writeHead(statusCode: number, a?: string | OutgoingHttpHeaders, b?: OutgoingHttpHeaders): this {
    if (typeof a === 'string') return super.writeHead(statusCode, a, withoutConnectionHeaders(b));
    return super.writeHead(statusCode, withoutConnectionHeaders(a));
  }

  override setHeader(name: string, value: number | string | readonly string[]): this {
    if (!CONNECTION_SPECIFIC.has(name.toLowerCase())) super.setHeader(name, value);
    return this;
  }

  override destroy(err?: Error): this {
    const stream = streamOf(this);
    if (stream === undefined || stream.destroyed) return this;
    if (err === undefined && !stream.closed) stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    else stream.destroy(err);
    return this;
  }
}

function streamOf(res: Http2ServerResponse): ServerHttp2Stream | undefined {
  return res.stream as ServerHttp2Stream | undefined;
}

// Accessors where Node's typings declare plain properties (so a class accessor would not type-check).
Object.defineProperties(H2Response.prototype, {
  destroyed: {
    get(this: Http2ServerResponse): boolean {
      const stream = streamOf(this);
      return stream === undefined || stream.destroyed;
    },
  },
  writableFinished: {
    get(this: Http2ServerResponse): boolean {
      const stream = streamOf(this);
      if (stream === undefined || !this.writableEnded) return false;
      return !stream.closed || stream.rstCode === constants.NGHTTP2_NO_ERROR;
    },
  },
});

export interface H2ServeOptions {
  /** A stream's request, with the TLS connection it arrived on (the registry's key, the client's address). */
  onRequest: (req: IncomingMessage, res: ServerResponse, socket: TLSSocket) => void;
  /** Milliseconds without a frame either way before a session is closed (timeouts.idle). */
  idleTimeoutMs: number;
}

/** Serves HTTP/2 on TLS connections that negotiated `h2`; one per listener. */
export class H2Sessions {
  readonly server: Http2Server;
  private readonly open = new Map<ServerHttp2Session, TLSSocket>();
  private accepting: TLSSocket | undefined;
  private goingAway = false;

  constructor(opts: H2ServeOptions) {
    this.server = createServer({
      Http2ServerRequest,
      Http2ServerResponse: H2Response as unknown as typeof Http2ServerResponse,
      maxSessionMemory: H2_LIMITS.maxSessionMemoryMiB,
      maxHeaderListPairs: H2_LIMITS.maxHeaderListPairs,
      maxSessionRejectedStreams: H2_LIMITS.maxSessionRejectedStreams,
      maxSessionInvalidFrames: H2_LIMITS.maxSessionInvalidFrames,
      // Rapid reset (CVE-2023-44487): nghttp2 (Node >= 20.8.1) rate-limits RST_STREAMs a client
      // sends (burst 1000, 33/s) and answers more with GOAWAY; the streams it does open are
      // bounded by maxConcurrentStreams, and each reset stream's flow ends (and is audited) at once.
      settings: {
        maxConcurrentStreams: H2_LIMITS.maxConcurrentStreams,
        maxHeaderListSize: H2_LIMITS.maxHeaderListSize,
        enablePush: false,
      },
    });
    this.server.setTimeout(opts.idleTimeoutMs);
    this.server.on('session', (session: ServerHttp2Session) => {
      const socket = this.accepting;
      if (!socket) return session.destroy();
      this.open.set(session, socket);
      session.once('close', () => this.open.delete(session));
      // A session error (a protocol violation, a flood nghttp2 refused) ends that session only.
      session.on('error', () => session.destroy());
      if (this.goingAway) session.close();
    });
    this.server.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => {
      const socket = this.open.get(req.stream.session as ServerHttp2Session);
      if (!socket) return res.stream.close(constants.NGHTTP2_REFUSED_STREAM);
      // The compatibility objects stand in for IncomingMessage/ServerResponse: H2Response fills
      // the gaps the pipeline reads (see above).
      opts.onRequest(req as unknown as IncomingMessage, res as unknown as ServerResponse, socket);
    });
  }

  /** The TLS connection a stream's request arrived on. */
  socketOf(req: IncomingMessage): TLSSocket | undefined {
    const session = (req as unknown as Http2ServerRequest).stream?.session as ServerHttp2Session | undefined;
    return session ? this.open.get(session) : undefined;
  }

  /** Takes over a TLS connection whose ALPN is `h2`. */
  serve(socket: TLSSocket): void {
    // A server TLSSocket built by hand (an intercepted tunnel) is never marked as connected (only
    // tls.Server clears the flag), and Node's http2 would wait for a 'secureConnect' that never
    // comes. The handshake is done when this is called.
    (socket as TLSSocket & { secureConnecting?: boolean }).secureConnecting = false;
    this.accepting = socket;
    try {
      this.server.emit('connection', socket);
    } finally {
      this.accepting = undefined;
    }
  }

  /** Open sessions (one per HTTP/2 connection). */
  get size(): number {
    return this.open.size;
  }

  /**
   * The drain: GOAWAY on every session (and on those still to come), so clients open their next
   * streams on another replica; streams already open finish, then each session closes.
   */
  goAway(): void {
    this.goingAway = true;
    for (const session of this.open.keys()) if (!session.closed) session.close();
  }
}

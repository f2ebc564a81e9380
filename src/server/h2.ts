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
  type ServerStreamResponseOptions,
} from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { peerIp } from './client-identity.js';
import type { H2RefusalReason, H2RefusalSink } from './h2-refusals.js';

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

/**
 * nghttp2 can end a session on its own (a GOAWAY for a protocol error) without telling Node, which
 * then stops reading the connection: nothing would close it before timeouts.idle. A session that
 * saw no new stream during a period of `afterMs` is sent a PING; a live peer's stack answers at
 * once, and one that does not within `ackMs` is closed. After each answer the next probe waits
 * twice as long (an idle connection costs a handful of PINGs, not one every few seconds). Mutable
 * for tests only.
 */
export const h2IdleProbe = { afterMs: 5_000, ackMs: 10_000, maxMs: 160_000 };

/**
 * How long a client gets to close its side once aigate has ended an HTTP/2 connection (its GOAWAY
 * and TLS close sent): Node would otherwise wait for the client's close as long as it takes, the
 * connection still counted against the client and the drain. Mutable for tests only.
 */
export const h2CloseGrace = { ms: 2_000 };

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
  /** setHeader was called: writeHead must merge those headers (Node's own path does). */
  private headersSet = false;

  override writeHead(statusCode: number, a?: string | OutgoingHttpHeaders, b?: OutgoingHttpHeaders): this {
    const headers = typeof a === 'string' ? b : a;
    const stream = streamOf(this);
    // The usual case — headers only from writeHead, as every response of the pipeline — goes to
    // the stream in one object: Node's compatibility writeHead sets them one by one (each
    // validated and stored), then respond() copies and validates them all again (that writeHead,
    // its respond included, was 45k of 525k instructions a request over h2; this saves ~5k of
    // them, bench/instructions.mjs --h2).
    if (!this.headersSet && stream !== undefined && !stream.headersSent && !stream.destroyed && !stream.closed && !Array.isArray(headers)) {
      const out: OutgoingHttpHeaders = { ':status': statusCode };
      if (headers !== undefined) {
        for (const name in headers) if (!CONNECTION_SPECIFIC.has(name.toLowerCase())) out[name] = headers[name];
      }
      this.statusCode = statusCode;
      // As Node's writeHead: trailers may still be added (gRPC status), and a Date is sent.
      const options: RespondOptions = { waitForTrailers: true, sendDate: this.sendDate };
      stream.respond(out, options);
      return this;
    }
    if (typeof a === 'string') return super.writeHead(statusCode, a, withoutConnectionHeaders(b));
    return super.writeHead(statusCode, withoutConnectionHeaders(a));
  }

  override setHeader(name: string, value: number | string | readonly string[]): this {
    if (!CONNECTION_SPECIFIC.has(name.toLowerCase())) {
      this.headersSet = true;
      super.setHeader(name, value);
    }
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

/** Node reads `sendDate` from respond()'s options (its compatibility layer passes it); the typings omit it. */
interface RespondOptions extends ServerStreamResponseOptions {
  sendDate?: boolean;
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
  /** Where refusals that never became a request are counted and logged (see h2-refusals.ts). */
  onRefused?: H2RefusalSink;
}

/** What is known of one client's HTTP/2 connection. */
interface Tracked {
  socket: TLSSocket;
  /** The client's address, read once (the connection may be gone when a refusal is reported). */
  client: string;
  /**
   * The highest client stream id accounted for: seen as a stream, or counted as refused. Client
   * stream ids are odd and rise one by one (RFC 9113 §5.1.1); ids nghttp2 processed that never
   * reached aigate were refused by it. -1 before the first.
   */
  accounted: number;
  /** Streams seen, and as many when the probe last looked: no new stream in between is quiet. */
  streams: number;
  streamsAtProbe: number;
  /** Quiet time before the next PING (doubles after each answer, back to afterMs on a stream). */
  probeAfterMs: number;
  probe: NodeJS.Timeout | undefined;
}

/** Serves HTTP/2 on TLS connections that negotiated `h2`; one per listener. */
export class H2Sessions {
  readonly server: Http2Server;
  private readonly open = new Map<ServerHttp2Session, Tracked>();
  private readonly sessionOf = new WeakMap<TLSSocket, ServerHttp2Session>();
  private accepting: TLSSocket | undefined;
  private goingAway = false;

  private readonly refused: H2RefusalSink;

  constructor(opts: H2ServeOptions) {
    this.refused = opts.onRefused ?? (() => undefined);
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
      const tracked: Tracked = { socket, client: peerIp(socket), accounted: -1, streams: 0, streamsAtProbe: 0, probeAfterMs: h2IdleProbe.afterMs, probe: undefined };
      this.open.set(session, tracked);
      this.sessionOf.set(socket, session);
      this.armProbe(session, tracked, h2IdleProbe.afterMs);
      session.once('close', () => {
        clearTimeout(tracked.probe);
        this.open.delete(session);
      });
      // A session error (a protocol violation, a flood nghttp2 refused) ends that session only.
      session.on('error', (err: NodeJS.ErrnoException) => {
        // Only the protocol layer's verdicts are refusals: not the connection failing (ECONNRESET…)
        // nor the client's own GOAWAY with an error code (ERR_HTTP2_SESSION_ERROR).
        const code = err.code ?? '';
        if (code.startsWith('ERR_HTTP2_') && code !== 'ERR_HTTP2_SESSION_ERROR') this.report(tracked, 'session_error', 1, code);
        session.destroy();
      });
      // Streams refused just before the session ends are counted while nghttp2 can still say
      // which ids it processed: a GOAWAY from the client is followed by Node's close.
      session.on('goaway', () => this.accountAtEnd(session, tracked));
      if (this.goingAway) this.closeSession(session);
    });
    this.server.on('stream', (stream: ServerHttp2Stream) => {
      const tracked = this.open.get(stream.session as ServerHttp2Session);
      const id = stream.id;
      if (tracked === undefined || id === undefined) return;
      // Ids skipped since the last stream seen are streams nghttp2 refused before this one.
      if (id > tracked.accounted + 2) this.report(tracked, 'stream_refused', (id - tracked.accounted) / 2 - 1);
      if (id > tracked.accounted) tracked.accounted = id;
      tracked.streams++;
    });
    // Node would answer these itself (405, 417) with no request id and no audit line: the pipeline
    // answers them instead (parse-target), like every other request.
    this.server.on('connect', (req: Http2ServerRequest, res: Http2ServerResponse) => this.onStream(opts, req, res));
    this.server.on('checkExpectation', (req: Http2ServerRequest, res: Http2ServerResponse) => this.onStream(opts, req, res));
    this.server.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => this.onStream(opts, req, res));
  }

  private onStream(opts: H2ServeOptions, req: Http2ServerRequest, res: Http2ServerResponse): void {
    const tracked = this.open.get(req.stream.session as ServerHttp2Session);
    if (!tracked) {
      res.stream.close(constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    // The compatibility objects stand in for IncomingMessage/ServerResponse: H2Response fills
    // the gaps the pipeline reads (see above).
    opts.onRequest(req as unknown as IncomingMessage, res as unknown as ServerResponse, tracked.socket);
  }

  private report(tracked: Tracked, reason: H2RefusalReason, count: number, code?: string): void {
    this.refused({ reason, count, client: tracked.client, ...(code ? { code } : {}) });
  }

  /**
   * Counts the streams nghttp2 refused after the last one aigate saw. Read now (the session's
   * state is gone once it is destroyed), compared once the streams nghttp2 already handed over
   * have been emitted (they are, on the next tick).
   */
  private accountAtEnd(session: ServerHttp2Session, tracked: Tracked): void {
    if (session.destroyed) return;
    const last = session.state.lastProcStreamID;
    if (last === undefined) return;
    process.nextTick(() => {
      if (last > tracked.accounted) {
        this.report(tracked, 'stream_refused', (last - Math.max(tracked.accounted, -1)) / 2);
        tracked.accounted = last;
      }
    });
  }

  private armProbe(session: ServerHttp2Session, tracked: Tracked, inMs: number): void {
    tracked.probe = setTimeout(() => this.probe(session, tracked), inMs);
    tracked.probe.unref();
  }

  /** The idle probe (see h2IdleProbe): a PING once a period passed with no new stream. */
  private probe(session: ServerHttp2Session, tracked: Tracked): void {
    if (session.destroyed || session.closed) return;
    if (tracked.streams !== tracked.streamsAtProbe) {
      tracked.streamsAtProbe = tracked.streams;
      tracked.probeAfterMs = h2IdleProbe.afterMs;
      return this.armProbe(session, tracked, tracked.probeAfterMs);
    }
    const noAnswer = setTimeout(() => {
      if (session.destroyed) return;
      this.report(tracked, 'session_stalled', 1);
      session.destroy();
      tracked.socket.destroy();
    }, h2IdleProbe.ackMs);
    noAnswer.unref();
    tracked.probe = noAnswer;
    // false: too many PINGs unanswered already (only a peer that does not answer gets there); the
    // timer above decides.
    session.ping((err) => {
      clearTimeout(noAnswer);
      if (err) return; // the session is closing
      tracked.probeAfterMs = Math.min(tracked.probeAfterMs * 2, h2IdleProbe.maxMs);
      this.armProbe(session, tracked, tracked.probeAfterMs);
    });
  }

  /** GOAWAY, then the session closes when its streams are done (see serve() for the socket). */
  private closeSession(session: ServerHttp2Session): void {
    const tracked = this.open.get(session);
    if (tracked) this.accountAtEnd(session, tracked);
    session.close();
  }

  /** timeouts.idle for sessions that start from now on (a configuration reload). */
  setIdleTimeout(ms: number): void {
    this.server.setTimeout(ms);
  }

  /** The TLS connection a stream's request arrived on. */
  socketOf(req: IncomingMessage): TLSSocket | undefined {
    const session = (req as unknown as Http2ServerRequest).stream?.session as ServerHttp2Session | undefined;
    return session ? this.open.get(session)?.socket : undefined;
  }

  /** Takes over a TLS connection whose ALPN is `h2`. */
  serve(socket: TLSSocket): void {
    // A server TLSSocket built by hand (an intercepted tunnel) is never marked as connected (only
    // tls.Server clears the flag), and Node's http2 would wait for a 'secureConnect' that never
    // comes. The handshake is done when this is called.
    (socket as TLSSocket & { secureConnecting?: boolean }).secureConnecting = false;
    // Registered before the session's own listeners, so the session's state is still there.
    socket.once('close', () => {
      const session = this.sessionOf.get(socket);
      const tracked = session && this.open.get(session);
      if (session && tracked) this.accountAtEnd(session, tracked);
    });
    // Node ends the connection once the session is closed (its GOAWAY sent) and then waits for
    // the client to close its side, however long that takes: the client gets h2CloseGrace.
    socket.once('finish', () => {
      const timer = setTimeout(() => socket.destroy(), h2CloseGrace.ms);
      timer.unref();
      socket.once('close', () => clearTimeout(timer));
    });
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
    for (const session of this.open.keys()) if (!session.closed) this.closeSession(session);
  }
}

// Sends a routed request upstream and streams the response back as it arrives: each chunk
// undici hands us is written to the client at once (SSE events are never held back), with
// backpressure both ways and the upstream request cancelled when the client goes away.
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Metrics } from '../metrics.js';
import { ProxyError, withCause } from '../pipeline/errors.js';
import { proxyStatusForCause } from '../pipeline/proxy-status.js';
import type { Exchange, Stage } from '../pipeline/exchange.js';
import { DestinationError } from '../route/address.js';
import { PinMismatchError } from './connector.js';
import { clientResponseHeaders, upstreamRequestHeaders } from './headers.js';

export interface ForwardOptions {
  dispatcher: Dispatcher;
  /** Milliseconds to wait for response headers. */
  firstByteTimeout: number;
  /** Milliseconds without a byte on an open response. */
  idleTimeout: number;
  metrics: Metrics;
}

const CERT_ERROR = /CERT|ALTNAME|UNABLE_TO_(GET|VERIFY)|SELF_SIGNED|ERR_SSL_/;

/**
 * Maps a failure to reach the upstream onto a SPEC §7 answer the client can act on, keeping its
 * cause (the audit line's `error`, the operational log's `code`, the Proxy-Status type).
 */
export function upstreamError(err: unknown, host: string): ProxyError {
  if (err instanceof ProxyError) return err;
  if (err instanceof PinMismatchError) {
    return withCause(new ProxyError('upstream_certificate', `${host} presented a certificate that matches none of its pins (upstreamTls.pins)`), 'pin_mismatch');
  }
  if (err instanceof DestinationError) {
    // Checked at dial time, on the address actually dialled (forward mode's private-address rule).
    const type = err.reason === 'unresolvable' ? 'upstream_unavailable' : 'egress_denied';
    return withCause(new ProxyError(type, err.message), err.reason, err.reason === 'unresolvable' ? 'dns_error' : proxyStatusForCause(err.reason));
  }
  const code = String((err as { code?: unknown }).code ?? '');
  const message = (err as Error).message ?? String(err);
  const cause = code || (err as Error).name || 'Error';
  const status = proxyStatusForCause(code);
  if (CERT_ERROR.test(code)) {
    return withCause(new ProxyError('upstream_certificate', `TLS certificate of ${host} failed verification (${code})`), cause, status);
  }
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return withCause(new ProxyError('upstream_timeout', `connecting to ${host} timed out (timeouts.connect)`), cause, status);
    case 'UND_ERR_HEADERS_TIMEOUT':
      return withCause(new ProxyError('upstream_timeout', `${host} did not answer in time (timeouts.firstByte)`), cause, status);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return withCause(new ProxyError('upstream_unavailable', `cannot resolve ${host}`), cause, status);
    case 'ECONNREFUSED':
      return withCause(new ProxyError('upstream_unavailable', `${host} refused the connection`), cause, status);
    default:
      return withCause(new ProxyError('upstream_unavailable', `${host} is unavailable (${code || message})`), cause, status);
  }
}

type Trailers = Record<string, string | string[] | undefined>;

/**
 * The upstream's trailers. undici 7 (7.30) hands an HTTP/2 response's trailers, node:http2's
 * object, to a parser written for HTTP/1.1's raw list, which reads it as empty; the object is
 * still on the controller.
 */
function responseTrailers(c: Dispatcher.DispatchController, parsed: Trailers | undefined): Trailers {
  if (parsed && Object.keys(parsed).length > 0) return parsed;
  const raw = (c as { rawTrailers?: unknown }).rawTrailers;
  if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) return raw as Trailers;
  return parsed ?? {};
}

export function forwardStage(opts: ForwardOptions): Stage {
  return (ex) => forward(ex, opts);
}

/** A request body that is still arriving (an RPC stream), forwarded as its clean parts come. */
export interface StreamedBody {
  body: Readable;
  /** Called for each response chunk, after it was written to the client (the stream is alive). */
  onResponseData?: (chunk: Buffer) => void;
  /**
   * A refusal aborted the upstream request after its response had started: the bytes that end the
   * client's response in its protocol's terms, or null when it can only be cut.
   */
  endResponse?: () => Buffer | null;
}

/**
 * Sends the request upstream and streams the response back, as forwardStage does; with
 * `streamed`, the request body is that stream instead of `ex.body`. Destroying the stream with an
 * error aborts the upstream request (a refusal mid-stream).
 */
export function forward(ex: Exchange, opts: ForwardOptions, streamed?: StreamedBody): Promise<void> {
  const { req, res, flow } = ex;
  const target = ex.target!;
  const headers = upstreamRequestHeaders(req.rawHeaders, {
    host: target.hostHeader,
    clientIp: flow.client.ip,
    dropContentEncoding: ex.bodyDecoded,
    // How the client reached aigate: TLS, except absolute-form http:// on the forward listener.
    proto: ex.destination?.scheme ?? 'https',
    set: ex.upstreamHeaders,
    trailers: req.httpVersionMajor === 2,
  });
  const hasBody = streamed !== undefined || ex.body.length > 0 || req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  const started = process.hrtime.bigint();

  return new Promise<void>((resolve, reject) => {
    let controller: Dispatcher.DispatchController | undefined;
    let settled = false;
    let bodyStarted = false;
    const done = (err?: unknown) => {
      if (settled) return;
      settled = true;
      res.off('close', onClientClose);
      res.off('drain', onDrain);
      if (err === undefined) resolve();
      else reject(upstreamError(err, target.hostHeader));
    };
    const onClientClose = () => {
      if (!res.writableFinished) {
        flow.aborted = true;
        controller?.abort(new Error('client closed the connection'));
        done();
      }
    };
    const onDrain = () => controller?.resume();
    res.on('close', onClientClose);
    res.on('drain', onDrain);

    opts.dispatcher.dispatch(
      {
        origin: target.origin,
        path: target.path,
        method: req.method as Dispatcher.HttpMethod,
        headers,
        body: streamed ? streamed.body : hasBody ? ex.body : null,
        headersTimeout: opts.firstByteTimeout,
        bodyTimeout: opts.idleTimeout,
      },
      {
        onRequestStart(c) {
          controller = c;
          if (res.destroyed) c.abort(new Error('client closed the connection'));
        },
        onResponseStart(_c, statusCode, upstreamHeaders) {
          if (statusCode < 200) return;
          const seconds = Number(process.hrtime.bigint() - started) / 1e9;
          opts.metrics.observeUpstream(target.route, seconds);
          // aigate's own headers (request id, RateLimit-*) win over the upstream's.
          res.writeHead(statusCode, Object.assign(clientResponseHeaders(upstreamHeaders), ex.responseHeaders));
          // Headers go out with the body when it came in the same read from upstream (undici calls
          // start, data and end synchronously then): one TLS record and one syscall for the whole
          // response instead of a separate one for the headers (measured: flushHeaders' own write
          // was 15% of CPU under small-request load). Otherwise they go out at the end of this
          // tick, so an SSE client still sees the stream open as soon as the upstream answered.
          queueMicrotask(() => {
            if (!bodyStarted && !res.writableEnded && !res.destroyed) res.flushHeaders();
          });
        },
        onResponseData(c, chunk) {
          bodyStarted = true;
          flow.bytesOut += chunk.length;
          const more = res.write(chunk);
          streamed?.onResponseData?.(chunk);
          if (!more) c.pause();
        },
        onResponseEnd(c, parsed) {
          bodyStarted = true;
          // gRPC's status travels in trailers: relayed as HTTP/2 trailers. An HTTP/1.1 client
          // gets none, as before (a chunked trailer section would need a Trailer header up front).
          if (req.httpVersionMajor === 2) {
            const trailers = responseTrailers(c, parsed);
            if (Object.keys(trailers).length > 0) res.addTrailers(clientResponseHeaders(trailers) as Record<string, string>);
          }
          res.end();
          done();
        },
        onResponseError(_c, err) {
          if (res.headersSent) {
            // Mid-stream failure (idle timeout, upstream reset): the status is already out, so the
            // client must see a cut stream, never a complete-looking one.
            // A refusal mid-stream already decided the flow (and aborted this request); its
            // channel may still end the response properly.
            const tail = !settled && flow.reason !== null ? streamed?.endResponse?.() : null;
            if (tail) {
              flow.bytesOut += tail.length;
              res.end(tail);
              done();
              return;
            }
            if (!settled && flow.reason === null) {
              flow.decision = 'error';
              flow.reason = 'upstream_unavailable';
              if ((err as { code?: string }).code === 'UND_ERR_BODY_TIMEOUT') flow.reason = 'upstream_timeout';
              flow.error = String((err as { code?: unknown }).code ?? '') || (err as Error).name || 'Error';
            }
            res.destroy();
            done();
            return;
          }
          if (flow.aborted) return done();
          done(err);
        },
      },
    );
  });
}

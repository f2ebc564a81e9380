// WebSocket upgrades on a route (SPEC §3, §11): the handshake goes to the same upstream through the
// same dialling rules (SNI, CA, pins, connectTo) as plain requests. Then, by the destination's
// `websocket` policy: `inspect` (default) judges every client message like a body before it is
// forwarded (ws-relay.ts), `relay` pipes bytes both ways uninspected, `refuse` answers 426 first.
import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { BodyBudget } from '../pipeline/body-budget.js';
import type { AuditLog } from '../audit/log.js';
import type { Inspector } from '../inspect/index.js';
import type { Metrics } from '../metrics.js';
import type { ActivityTracker } from '../pipeline/activity.js';
import type { Exchange, Stage } from '../pipeline/exchange.js';
import { ProxyError } from '../pipeline/errors.js';
import { clientResponseHeaders, upstreamRequestHeaders, type HeaderMap } from './headers.js';
import { upstreamError } from './forward.js';
import { ExtensionError, acceptedDeflate, deflateOffersOnly, type DeflateParams } from './ws-framing.js';
import { inspectMessages } from './ws-inspect.js';

export interface WebSocketOptions {
  dispatcher: Dispatcher;
  firstByteTimeout: number;
  idleTimeout: number;
  inspector: Inspector;
  /** inspect.maxBodyBytes: the largest message, reassembled and inflated. */
  maxBodyBytes: number;
  audit: AuditLog;
  metrics: Metrics;
  /** A drain ends open WebSockets through it once its grace period is over. */
  activity: ActivityTracker;
  /** limits.bufferedBodyBytes*: messages being received or judged count as request bodies do. */
  budget?: BodyBudget;
}

/** A refusal is a few hundred bytes of JSON; more than this is cut rather than relayed. */
const REFUSAL_BODY_LIMIT = 64 * 1024;

type Upgraded = { socket: Duplex; headers: IncomingHttpHeaders };

/**
 * The last stage of an upgrade flow. The Exchange's response is a ServerResponse bound to the raw
 * socket (so refusals, aigate's or the upstream's, use the normal response path); once upgraded it
 * is detached, and its `close` is emitted by hand when the piped connection ends, which is when the
 * flow is audited.
 */
export function websocketStage(opts: WebSocketOptions): Stage {
  return async (ex) => {
    const { req, res, flow } = ex;
    const target = ex.target!;
    if (String(req.headers['upgrade'] ?? '').toLowerCase() !== 'websocket') {
      throw new ProxyError('bad_request', 'only WebSocket upgrades are proxied');
    }
    // Node hands over whatever follows an upgrade request's head as if it were WebSocket frames,
    // so a body would reach the upstream after the 101 unread by anyone: refused instead.
    const contentLength = req.headers['content-length'];
    if (req.method !== 'GET' || req.headers['transfer-encoding'] !== undefined || (contentLength !== undefined && contentLength !== '0')) {
      throw new ProxyError('bad_request', 'a WebSocket handshake is a GET without a body (RFC 6455 §4.1); nothing was forwarded');
    }
    if (target.websocket === 'refuse') {
      throw new ProxyError('websocket_refused', `WebSocket is not allowed to ${target.route} (websocket: refuse); use HTTP`);
    }
    const inspect = target.websocket === 'inspect';
    const clientSocket = req.socket as Duplex;
    const headers = upstreamRequestHeaders(req.rawHeaders, {
      host: target.hostHeader,
      clientIp: flow.client.ip,
      dropContentEncoding: false,
      proto: ex.destination?.scheme ?? 'https',
      set: ex.upstreamHeaders,
    });
    if (inspect && headers['sec-websocket-extensions'] !== undefined) {
      const offers = deflateOffersOnly(headers['sec-websocket-extensions']);
      if (offers === null) delete headers['sec-websocket-extensions'];
      else headers['sec-websocket-extensions'] = offers;
    }
    const upgraded = await upgradeOrRelay(ex, opts, headers);
    if (!upgraded) return;
    const upstream = upgraded.socket;
    if (clientSocket.destroyed) {
      upstream.destroy();
      return;
    }
    let deflate: (() => DeflateParams[]) | null = null;
    if (inspect) {
      try {
        deflate = acceptedDeflate(upgraded.headers['sec-websocket-extensions']);
      } catch (err) {
        if (!(err instanceof ExtensionError)) throw err;
        upstream.destroy();
        throw new ProxyError('upstream_unavailable', `${err.message}; the upgrade was not completed`);
      }
    }

    const lines = ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade'];
    const responseHeaders = { ...clientResponseHeaders(upgraded.headers), ...ex.responseHeaders };
    for (const [name, value] of Object.entries(responseHeaders)) {
      for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${v}`);
    }
    res.detachSocket(clientSocket as never);
    flow.status = 101;
    clientSocket.write(lines.join('\r\n') + '\r\n\r\n');
    const head = ex.body;
    flow.bytesIn += head.length;
    clientSocket.on('data', (chunk: Buffer) => (flow.bytesIn += chunk.length));
    upstream.on('data', (chunk: Buffer) => (flow.bytesOut += chunk.length));
    for (const s of [clientSocket, upstream] as Array<Duplex & { setTimeout?: (ms: number, cb: () => void) => void }>) {
      s.setTimeout?.(opts.idleTimeout, () => s.destroy());
    }
    clientSocket.on('error', () => clientSocket.destroy());
    upstream.on('error', () => upstream.destroy());
    if (inspect) {
      inspectMessages(ex, opts, clientSocket, upstream, head, deflate);
      return;
    }
    const unregister = opts.activity.onForcedEnd(() => {
      clientSocket.destroy();
      upstream.destroy();
    });
    res.once('close', unregister);
    if (head.length > 0) upstream.write(head);
    let closed = 0;
    const onClose = () => {
      clientSocket.destroy();
      upstream.destroy();
      if (++closed === 2) res.emit('close');
    };
    clientSocket.once('close', onClose);
    upstream.once('close', onClose);
    clientSocket.pipe(upstream);
    upstream.pipe(clientSocket);
  };
}

/**
 * Asks the upstream to upgrade. Resolves with null when it answered with an ordinary response
 * instead (401 for an expired token, 403, 429): that is the vendor's answer, not an aigate failure,
 * so it goes to the client as sent and is audited with its own status (SPEC §3).
 */
function upgradeOrRelay(
  ex: Exchange,
  opts: WebSocketOptions,
  headers: HeaderMap,
): Promise<Upgraded | null> {
  const { res, flow } = ex;
  const target = ex.target!;
  return new Promise((resolve, reject) => {
    let relayed = 0;
    let settled = false;
    const settle = (value: Upgraded | null, err?: unknown) => {
      if (settled) return;
      settled = true;
      if (err === undefined) resolve(value);
      else reject(upstreamError(err, target.hostHeader));
    };
    opts.dispatcher.dispatch(
      {
        origin: target.origin,
        path: target.path,
        method: 'GET',
        headers,
        upgrade: 'websocket',
        headersTimeout: opts.firstByteTimeout,
        bodyTimeout: opts.idleTimeout,
      },
      {
        onRequestStart(c) {
          if (res.destroyed) c.abort(new Error('client closed the connection'));
        },
        onRequestUpgrade(_c, _statusCode, upstreamHeaders, socket) {
          settle({ socket, headers: upstreamHeaders });
        },
        onResponseStart(_c, statusCode, upstreamHeaders) {
          if (statusCode < 200) return;
          res.writeHead(statusCode, Object.assign(clientResponseHeaders(upstreamHeaders), ex.responseHeaders));
        },
        onResponseData(c, chunk) {
          const room = REFUSAL_BODY_LIMIT - relayed;
          const part = chunk.length <= room ? chunk : chunk.subarray(0, room);
          relayed += part.length;
          flow.bytesOut += part.length;
          if (part === chunk) {
            res.write(part);
            return;
          }
          // Cut once what fits is out, never ended: a truncated body must not look complete.
          settle(null);
          c.abort(new Error('WebSocket refusal body over the relay limit'));
          res.write(part, () => res.destroy());
        },
        onResponseEnd() {
          res.end();
          settle(null);
        },
        onResponseError(_c, err) {
          if (settled) return;
          if (!res.headersSent) return settle(null, err);
          // Failed mid-body, audited as forward.ts does; the status is already out, so cut the stream.
          flow.decision = 'error';
          flow.reason = (err as { code?: string }).code === 'UND_ERR_BODY_TIMEOUT' ? 'upstream_timeout' : 'upstream_unavailable';
          res.destroy();
          settle(null);
        },
      },
    );
  });
}

// WebSocket upgrades on a route (SPEC §3): the handshake goes to the same upstream through the same
// dialling rules (SNI, CA, pins, connectTo) as plain requests, then bytes are piped both ways.
import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Exchange, Stage } from '../pipeline/exchange.js';
import { ProxyError } from '../pipeline/errors.js';
import { clientResponseHeaders, upstreamRequestHeaders, type HeaderMap } from './headers.js';
import { upstreamError } from './forward.js';

export interface WebSocketOptions {
  dispatcher: Dispatcher;
  firstByteTimeout: number;
  idleTimeout: number;
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
    const clientSocket = req.socket as Duplex;
    const headers = upstreamRequestHeaders(req.rawHeaders, {
      host: target.hostHeader,
      clientIp: flow.client.ip,
      dropContentEncoding: false,
      proto: ex.destination?.scheme ?? 'https',
      set: ex.upstreamHeaders,
    });
    const upgraded = await upgradeOrRelay(ex, opts, headers);
    if (!upgraded) return;
    const upstream = upgraded.socket;
    if (clientSocket.destroyed) {
      upstream.destroy();
      return;
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
    if (head.length > 0) upstream.write(head);

    clientSocket.on('data', (chunk: Buffer) => (flow.bytesIn += chunk.length));
    upstream.on('data', (chunk: Buffer) => (flow.bytesOut += chunk.length));
    for (const s of [clientSocket, upstream] as Array<Duplex & { setTimeout?: (ms: number, cb: () => void) => void }>) {
      s.setTimeout?.(opts.idleTimeout, () => s.destroy());
    }
    let closed = 0;
    const onClose = () => {
      clientSocket.destroy();
      upstream.destroy();
      if (++closed === 2) res.emit('close');
    };
    clientSocket.once('close', onClose);
    upstream.once('close', onClose);
    clientSocket.on('error', () => clientSocket.destroy());
    upstream.on('error', () => upstream.destroy());
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

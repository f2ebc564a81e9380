// WebSocket upgrades on a route (SPEC §3): the handshake goes to the same upstream through the same
// dialling rules (SNI, CA, pins, connectTo) as plain requests, then bytes are piped both ways.
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Stage } from '../pipeline/exchange.js';
import { ProxyError } from '../pipeline/errors.js';
import { clientResponseHeaders, upstreamRequestHeaders } from './headers.js';
import { upstreamError } from './forward.js';

export interface WebSocketOptions {
  dispatcher: Dispatcher;
  firstByteTimeout: number;
  idleTimeout: number;
}

/**
 * The last stage of an upgrade flow. The Exchange's response is a ServerResponse bound to the raw
 * socket (so refusals use the normal error path); once upgraded it is detached, and its `close`
 * is emitted by hand when the piped connection ends, which is when the flow is audited.
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
    });
    let upgraded: Dispatcher.UpgradeData;
    try {
      upgraded = await opts.dispatcher.upgrade({
        origin: target.origin,
        path: target.path,
        method: 'GET',
        headers,
        protocol: 'websocket',
        headersTimeout: opts.firstByteTimeout,
      } as Dispatcher.UpgradeOptions);
    } catch (err) {
      if ((err as Error).message === 'bad upgrade') {
        throw new ProxyError('upstream_unavailable', `${target.hostHeader} refused the WebSocket upgrade`);
      }
      throw upstreamError(err, target.hostHeader);
    }
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

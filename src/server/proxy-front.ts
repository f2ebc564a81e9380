// `listen.<name>.proxyProtocol: true`: a plain TCP listener in front of the listener's real server
// (TLS, HTTP, HTTP/2 — whatever it is). It reads the PROXY header off each accepted socket, records
// the client it names, puts back whatever followed the header, and hands the socket to the real
// server as if that server had accepted it. The real server never listens itself.
import { createServer, type Server, type Socket } from 'node:net';
import type { EventEmitter } from 'node:events';
import { declarePeer } from './client-identity.js';
import { parseProxyHeader, ProxyProtocolError } from './proxy-protocol.js';

/** A balancer writes the header at once; a connection without it in this time is closed. Mutable for tests. */
export const proxyHeaderTimeout = { ms: 5_000 };

export interface ProxyFront extends Server {
  /** Closes the connections still waiting for their header (drain: they have no request yet). */
  closeAllConnections(): void;
}

export interface ProxyFrontOptions {
  /** A connection closed for a missing, malformed or late header. */
  onRefused?: (reason: string, peer: string | undefined) => void;
}

export function createProxyFront(target: Server | EventEmitter, opts: ProxyFrontOptions = {}): ProxyFront {
  // Sockets take their half-open, no-delay and keep-alive behaviour from the server that accepts
  // them: the front accepts on the real server's behalf, so it copies them.
  const t = target as Partial<Server> & { allowHalfOpen?: boolean; noDelay?: boolean; keepAlive?: boolean; keepAliveInitialDelay?: number };
  const front = createServer({
    allowHalfOpen: t.allowHalfOpen ?? false,
    noDelay: t.noDelay ?? false,
    keepAlive: t.keepAlive ?? false,
    keepAliveInitialDelay: t.keepAliveInitialDelay ?? 0,
  }) as ProxyFront;
  const waiting = new Set<Socket>();
  front.closeAllConnections = () => {
    for (const s of waiting) s.destroy();
  };
  front.on('connection', (socket: Socket) => {
    waiting.add(socket);
    let received: Buffer = Buffer.alloc(0);
    const refuse = (reason: string) => {
      done();
      opts.onRefused?.(reason, socket.remoteAddress);
      socket.destroy();
    };
    const timer = setTimeout(() => refuse('PROXY protocol header not received in time'), proxyHeaderTimeout.ms);
    const done = () => {
      clearTimeout(timer);
      waiting.delete(socket);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    const onError = () => socket.destroy();
    const onClose = () => done();
    const onData = (chunk: Buffer) => {
      // Bounded: parseProxyHeader refuses before more than its maximum header is needed.
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      let header;
      try {
        header = parseProxyHeader(received);
      } catch (err) {
        if (err instanceof ProxyProtocolError) return refuse(err.message);
        throw err;
      }
      if (!header.complete) return;
      done();
      socket.pause();
      if (header.source) declarePeer(socket, header.source.address);
      const rest = received.subarray(header.length);
      if (rest.length > 0) socket.unshift(rest);
      target.emit('connection', socket);
      // The socket was paused so no byte after the header is lost while it changes hands. A TLS
      // server takes over the handle and reads what was put back itself; an HTTP server listens
      // for 'data' on a socket it expects to be flowing, so it gets it flowing again.
      if (socket.listenerCount('data') > 0) socket.resume();
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
  });
  return front;
}

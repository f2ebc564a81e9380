// Every client connection aigate holds, in one place: the drain closes them all (Node's
// closeAllConnections only knows the sockets of a server that listen()ed and still parses HTTP on
// them, so it misses CONNECT tunnels, the inner server of intercepted tunnels and upgraded
// WebSockets), and the per-client cap (limits.connectionsPerClient) counts them by client address.
//
// A connection is the TCP socket a listener accepted, plus the layers built on it (the TLS socket
// of an intercepted tunnel): closing it destroys every layer, and it is gone once every layer has
// closed — which is when the flows on it have written their audit lines.
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ProxyError } from '../pipeline/errors.js';

export type TrafficListener = 'gateway' | 'forward';

/**
 * `http`: between requests it may be closed at once by a drain (an idle keep-alive connection or
 * intercepted tunnel); `stream`: bytes flow outside HTTP's request/response (blind tunnel,
 * WebSocket), so only the end of the grace period closes it.
 */
type Kind = 'http' | 'stream';

interface Connection {
  readonly ip: string;
  readonly listener: TrafficListener;
  readonly layers: Set<Duplex>;
  kind: Kind;
  /** Requests received on it whose responses are not over. */
  inFlight: number;
  /** Accepted beyond the client's cap: its first request is refused, then it closes. */
  readonly overLimit: boolean;
}

export interface RegistryHooks {
  /** A connection over the client's cap was accepted (the listener decides how to refuse it). */
  onOverLimit?: (listener: TrafficListener, ip: string, open: number) => void;
}

export class ConnectionRegistry {
  private readonly connections = new Set<Connection>();
  private readonly bySocket = new WeakMap<Duplex, Connection>();
  private readonly perClient = new Map<string, number>();
  private emptyWaiters: Array<() => void> = [];

  constructor(
    /** Connections one client address may hold on the traffic listeners together; 0: no cap. */
    /** limits.connectionsPerClient (0: none); a reload sets it. */
    public perClientLimit: number,
    private readonly hooks: RegistryHooks = {},
  ) {}

  get size(): number {
    return this.connections.size;
  }

  /** Requests whose responses are not over, and connections carrying a stream (read when /metrics is scraped). */
  openWork(): { requests: number; streams: number } {
    let requests = 0;
    let streams = 0;
    for (const conn of this.connections) {
      requests += conn.inFlight;
      if (conn.kind === 'stream') streams++;
    }
    return { requests, streams };
  }

  /** Open connections from one client address (the ones within its cap). */
  openFrom(ip: string): number {
    return this.perClient.get(ip) ?? 0;
  }

  /**
   * Tracks a connection a traffic listener just accepted. Returns false when it is over its
   * client's cap: it is still tracked (a drain closes it), but not counted against the client.
   */
  accept(socket: Socket, listener: TrafficListener, ip: string): boolean {
    const open = this.perClient.get(ip) ?? 0;
    const overLimit = this.perClientLimit > 0 && open >= this.perClientLimit;
    const conn: Connection = { ip, listener, layers: new Set(), kind: 'http', inFlight: 0, overLimit };
    this.connections.add(conn);
    if (!overLimit) this.perClient.set(ip, open + 1);
    this.addLayer(conn, socket);
    if (overLimit) this.hooks.onOverLimit?.(listener, ip, open);
    return !overLimit;
  }

  /** A socket built on a tracked one (TLS inside a CONNECT tunnel): closed with it, waited for. */
  layer(socket: Duplex, on: Duplex): void {
    const conn = this.bySocket.get(on);
    if (conn) this.addLayer(conn, socket);
  }

  /** True when the socket's connection was accepted over its client's cap. */
  isOverLimit(socket: Duplex): boolean {
    return this.bySocket.get(socket)?.overLimit ?? false;
  }

  /** A request arrived on the socket; call the returned function once its response is over. */
  request(socket: Duplex): () => void {
    const conn = this.bySocket.get(socket);
    if (!conn) return () => {};
    conn.inFlight++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      conn.inFlight--;
    };
  }

  /** The connection left HTTP (blind tunnel, WebSocket): a drain waits for it like a request. */
  stream(socket: Duplex): void {
    const conn = this.bySocket.get(socket);
    if (conn) conn.kind = 'stream';
  }

  /** The connection speaks HTTP again (an intercepted tunnel once its CONNECT is answered). */
  http(socket: Duplex): void {
    const conn = this.bySocket.get(socket);
    if (conn) conn.kind = 'http';
  }

  /** Closes connections with no request in flight (what a drain does at once and as they turn idle). */
  closeIdle(): void {
    for (const conn of this.connections) {
      if (conn.kind === 'http' && conn.inFlight === 0) destroy(conn);
    }
  }

  /** Closes every connection: the end of the grace period. */
  closeAll(): void {
    for (const conn of this.connections) destroy(conn);
  }

  /** Resolves true once no connection is left (every layer closed), false after `timeoutMs`. */
  empty(timeoutMs: number): Promise<boolean> {
    if (this.connections.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const onEmpty = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.emptyWaiters = this.emptyWaiters.filter((w) => w !== onEmpty);
        resolve(false);
      }, timeoutMs);
      timer.unref();
      this.emptyWaiters.push(onEmpty);
    });
  }

  private addLayer(conn: Connection, socket: Duplex): void {
    if ((socket as Duplex & { closed?: boolean }).closed) {
      if (conn.layers.size === 0) this.remove(conn);
      return;
    }
    conn.layers.add(socket);
    this.bySocket.set(socket, conn);
    socket.once('close', () => {
      conn.layers.delete(socket);
      if (conn.layers.size > 0) return;
      this.remove(conn);
    });
  }

  private remove(conn: Connection): void {
    if (!this.connections.delete(conn)) return;
    if (!conn.overLimit) {
      const left = (this.perClient.get(conn.ip) ?? 1) - 1;
      if (left > 0) this.perClient.set(conn.ip, left);
      else this.perClient.delete(conn.ip);
    }
    if (this.connections.size === 0) {
      const waiters = this.emptyWaiters;
      this.emptyWaiters = [];
      for (const w of waiters) w();
    }
  }
}

function destroy(conn: Connection): void {
  // Outermost layer first, so a TLS layer sees its own close (and its flow writes its line)
  // rather than an error from the socket under it.
  for (const socket of [...conn.layers].reverse()) socket.destroy();
}

/** The answer to a request on a connection over its client's cap (where the protocol has one). */
export function overLimitError(ip: string, limit: number): ProxyError {
  return new ProxyError(
    'rate_limited',
    `too many connections from ${ip} (limits.connectionsPerClient: ${limit}); reuse open connections or close idle ones, then retry`,
    { 'retry-after': '1' },
  );
}

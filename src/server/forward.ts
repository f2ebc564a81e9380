// The forward listener (SPEC §4): what IDEs use through `http.proxy` / HTTPS_PROXY.
//   CONNECT host:port   → proxy auth, default-deny allowlist, private-address check, then either a
//                          blind tunnel (inspect: false) or TLS interception with a minted leaf whose
//                          decrypted requests run through the same pipeline as the gateway's.
//   GET http://host/…   → absolute-form plain HTTP, same allowlist, same pipeline.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/log.js';
import type { Action, Config } from '../config/schema.js';
import type { Metrics } from '../metrics.js';
import type { ActivityTracker } from '../pipeline/activity.js';
import { ProxyError, withCause } from '../pipeline/errors.js';
import { proxyStatusForCause } from '../pipeline/proxy-status.js';
import { assertAuditWritable } from '../pipeline/stages/audit-guard.js';
import type { Exchange, ForwardDestination, Stage } from '../pipeline/exchange.js';
import { Flow, type Client } from '../pipeline/flow.js';
import { CLIENT_CLOSED, reportUpstreamFailure, type Pipeline } from '../pipeline/pipeline.js';
import type { UpstreamFailureLog } from '../upstream/failure-log.js';
import { decisionFor } from '../pipeline/respond.js';
import { ClientAbortedError } from '../pipeline/stages/read-body.js';
import { DestinationError, type Destination } from '../route/address.js';
import type { EgressPolicy } from '../route/egress.js';
import type { LeafMinter } from '../tls/mint.js';
import { handleClientError, refuseConnect, writeRawError } from './client-error.js';
import { peerIdentity, type ClientIdentity } from './client-identity.js';
import { type ConnectionRegistry, overLimitError } from './connections.js';
import { handleUpgrade } from './gateway.js';
import { ALPN_PROTOCOLS, H2Sessions } from './h2.js';

/**
 * Checks Proxy-Authorization for `flow`'s client; resolves the user name, or null for an anonymous
 * client. Throws a ProxyError to refuse, or ClientAbortedError when `signal` fired (the client left)
 * before its password was checked.
 */
export type Authenticate = (header: string | undefined, flow: Flow, signal?: AbortSignal) => Promise<string | null>;

/**
 * Scans a destination host as the client spelt it (it leaves in DNS queries, SNI and Host) under
 * the allow entry's action: records the findings on the flow, throws `sensitive_content` to refuse.
 */
export type InspectHost = (flow: Flow, host: string, action: Action | undefined) => Promise<void>;

/** Read per connection and request: a configuration reload replaces the policy fields in place. */
export interface ForwardServerOptions {
  config: Config;
  egress: EgressPolicy;
  minter: LeafMinter;
  requests: Pipeline;
  upgrades: Pipeline;
  audit: AuditLog;
  metrics: Metrics;
  activity: ActivityTracker;
  /** The current configuration generation's tracker (a child of `activity`): a CONNECT counts in it until answered. */
  generation?: ActivityTracker;
  /** Every client connection (drain, per-client cap); the outer server's accepts are tracked by the caller. */
  connections: ConnectionRegistry;
  logger: Logger;
  authenticate: Authenticate;
  inspectHost: InspectHost;
  /** Resolves and checks where host:port may be dialled (connectTo, denyPrivateAddresses). */
  resolve: (host: string, port: number) => Promise<Destination>;
  /** How a connection's and a request's client is named (PROXY protocol, trustedProxies). */
  clients?: ClientIdentity;
  /** Writes the operational log line of an upstream failure (rate-limited). */
  upstreamFailures?: UpstreamFailureLog;
}

interface TunnelContext {
  client: Client;
  destination: ForwardDestination;
}

const ESTABLISHED = 'HTTP/1.1 200 Connection Established\r\n\r\n';

/**
 * How long an intercepted tunnel's client has to complete its TLS handshake after `200 Connection
 * Established` (the servers' headersTimeout, same spirit): a client that never starts it would
 * otherwise hold its connection forever. Exported (and mutable) only so a test need not wait 30 s.
 */
export const tlsHandshakeTimeout = { ms: 30_000 };

export interface ForwardServers {
  /** Accepts CONNECT and absolute-form requests. */
  outer: Server;
  /** Serves the decrypted HTTP/1.1 of intercepted tunnels (never listens itself). */
  inner: Server;
  /** Serves the intercepted tunnels whose client negotiated h2. */
  h2: H2Sessions;
}

export function createForwardServer(opts: ForwardServerOptions): ForwardServers {
  const tunnels = new WeakMap<Duplex, TunnelContext>();
  // No Host and unknown Expect values are refused by the pipeline (parse-target), not by Node.
  const httpOptions = { requestTimeout: 0, headersTimeout: 30_000, keepAliveTimeout: 65_000, requireHostHeader: false };
  const clientErrors = { audit: opts.audit, metrics: opts.metrics, mode: 'forward' as const, flows: opts.requests };

  const inner = createServer(httpOptions);
  // The inner server never listen()s (tunnels are handed to it), so Node does not enforce its
  // headersTimeout or keep-alive timeout: without this, a client that completes TLS and then
  // says nothing holds its tunnel forever. timeouts.idle is "no bytes either way".
  inner.setTimeout(opts.config.timeouts.idle);
  const onInnerRequest = (req: IncomingMessage, res: ServerResponse) => {
    const ctx = tunnels.get(req.socket);
    if (!ctx) return res.destroy();
    // A copy per request: what one request adds (its credential) must not stick to the tunnel.
    opts.requests.handle('forward', { ...ctx.client }, req, res, (ex) => (ex.destination = ctx.destination));
  };
  inner.on('request', onInnerRequest);
  inner.on('checkExpectation', onInnerRequest);
  inner.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const ctx = tunnels.get(socket);
    if (!ctx) return socket.destroy();
    handleUpgrade(opts.upgrades, 'forward', { ...ctx.client }, req, socket, head, (ex) => (ex.destination = ctx.destination));
  });
  const innerErrors = { ...clientErrors, clientIp: (s: Duplex) => tunnels.get(s)?.client.ip ?? '' };
  inner.on('clientError', (err: Error, socket: Duplex) => handleClientError(err, socket, innerErrors));
  inner.on('connect', (req: IncomingMessage, socket: Duplex) => refuseConnect(req, socket, 'a tunnel inside a tunnel is not proxied', innerErrors));
  const h2 = new H2Sessions({
    idleTimeoutMs: opts.config.timeouts.idle,
    onRequest: (req, res, socket) => {
      const ctx = tunnels.get(socket);
      if (!ctx) return res.destroy();
      opts.requests.handle('forward', { ...ctx.client }, req, res, (ex) => (ex.destination = ctx.destination));
    },
  });

  const outer = createServer(httpOptions);
  const clients = () => opts.clients ?? peerIdentity;
  // Absolute-form requests: the pipeline's first forward stage checks them (absoluteFormStage).
  const onOuterRequest = (req: IncomingMessage, res: ServerResponse) => {
    opts.requests.handle('forward', clients().ofRequest(req), req, res);
  };
  outer.on('request', onOuterRequest);
  outer.on('checkExpectation', onOuterRequest);
  outer.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    void handleConnect(opts, tunnels, { inner, h2 }, req, socket as Socket, head);
  });
  outer.on('clientError', (err: Error, socket: Duplex) => {
    handleClientError(err, socket, { ...clientErrors, clientIp: (s) => clients().ofConnection(s) });
  });
  return { outer, inner, h2 };
}

/** The host of an absolute-form target as written (URL parsing lower-cases and decodes it). */
function hostAsSent(target: string): string {
  const authority = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(target)?.[1] ?? '';
  const host = authority.slice(authority.lastIndexOf('@') + 1);
  return host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d*$/, '');
}

/** `host:port` of a CONNECT request target, IPv6 in brackets. */
export function parseAuthority(target: string | undefined): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^\s:/?#@[\]]+):(\d{1,5})$/.exec(target ?? '');
  const port = Number(m?.[2]);
  if (!m || port < 1 || port > 65535) throw new ProxyError('bad_request', `CONNECT needs host:port, got "${target ?? ''}"`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

async function handleConnect(
  opts: ForwardServerOptions,
  tunnels: WeakMap<Duplex, TunnelContext>,
  servers: { inner: Server; h2: H2Sessions },
  req: IncomingMessage,
  socket: Socket,
  head: Buffer,
): Promise<void> {
  const flow = new Flow('forward', { ip: (opts.clients ?? peerIdentity).ofRequest(req).ip, user: null }, 'CONNECT', null);
  flow.event = 'connect';
  socket.on('error', () => socket.destroy());
  // Until it is answered or becomes a tunnel, a CONNECT is work in flight: a drain waits for it
  // (its line must be written before the audit log closes), and does not close it as idle.
  // It counts in the configuration generation it is answered by (its minter, authenticator).
  const release = (opts.generation ?? opts.activity).begin();
  opts.connections.stream(socket);
  const finish = () => {
    release();
    const record = opts.audit.writeFlow(flow);
    opts.metrics.countTunnel(flow.route ?? '', flow.decision, flow.status);
    for (const f of flow.findings) opts.metrics.findings.inc({ rule: f.rule });
    if (flow.error !== null) reportUpstreamFailure(opts.upstreamFailures, flow, record);
  };
  const abandoned = () => {
    flow.aborted = true;
    flow.status = CLIENT_CLOSED;
    finish();
  };
  let destination: ForwardDestination;
  let dest: Destination;
  try {
    if (opts.connections.isOverLimit(socket)) throw overLimitError(flow.client.ip, opts.config.limits.connectionsPerClient);
    flow.client.user = await authenticateConnect(opts.authenticate, req, socket, flow);
    const { host, port } = parseAuthority(req.url);
    flow.host = host;
    flow.hostAsSent = host;
    const match = opts.egress.match(host, port);
    if ('denied' in match) throw new ProxyError('egress_denied', `CONNECT ${req.url} denied: ${match.denied}`);
    flow.route = match.rule.host;
    flow.host = match.host;
    assertAuditWritable(opts.audit);
    // Before the name is resolved: the DNS query alone would carry a secret out.
    await opts.inspectHost(flow, host, match.rule.action);
    dest = await opts.resolve(match.host, port).catch((err: unknown) => {
      if (err instanceof DestinationError) {
        const refusal = new ProxyError(err.reason === 'unresolvable' ? 'upstream_unavailable' : 'egress_denied', `CONNECT ${req.url} denied: ${err.message}`);
        throw withCause(refusal, err.reason, err.reason === 'unresolvable' ? 'dns_error' : proxyStatusForCause(err.reason));
      }
      throw err;
    });
    destination = { scheme: 'https', host: match.host, hostAsSent: host, port, rule: { host: match.rule.host, action: match.rule.action, websocket: match.rule.websocket } };
    // What the operational log may say of the host (a token can be a label under a wildcard).
    const loggedHost = opts.audit.maskHost(match.host, host);
    // The client may have gone while its name was resolved or its certificate minted: audited
    // as abandoned (exactly one line per CONNECT), nothing dialled.
    if (socket.destroyed) return abandoned();
    if (!match.rule.inspect) {
      release();
      return blindTunnel(opts, flow, socket, head, dest);
    }
    const context = await opts.minter.contextFor(match.host);
    if (socket.destroyed) return abandoned();
    socket.write(ESTABLISHED);
    flow.status = 200;
    if (head.length > 0) socket.unshift(head);
    const tls = new TLSSocket(socket, {
      isServer: true,
      secureContext: context,
      ALPNProtocols: ALPN_PROTOCOLS,
    });
    tunnels.set(tls, { client: flow.client, destination });
    // From here the tunnel is an HTTP connection like the gateway's: idle between requests (a
    // drain closes it at once), busy while one is in flight. Its line is written when it closes.
    opts.connections.layer(tls, socket);
    opts.connections.http(socket);
    release();
    const handshakeMs = tlsHandshakeTimeout.ms;
    const handshakeTimer = setTimeout(() => {
      opts.logger.info({ host: loggedHost, client: flow.client.ip, timeoutMs: handshakeMs }, 'intercepted TLS handshake not completed in time; tunnel closed');
      // The 200 was sent (status stays what the client got); the line says why the tunnel ended.
      flow.decision = decisionFor('request_timeout');
      flow.reason = 'request_timeout';
      tls.destroy();
    }, handshakeMs);
    // Until the handshake picks the protocol no server reads the TLS socket: a client gone
    // before its handshake would keep the tunnel (and its line) until the handshake timeout.
    const goneEarly = () => {
      if (!tls.destroyed && tls.alpnProtocol === null) tls.destroy();
    };
    tls.once('end', goneEarly);
    socket.once('end', goneEarly);
    socket.once('close', goneEarly);
    tls.once('secure', () => {
      clearTimeout(handshakeTimer);
      // The protocol is known once the handshake chose it: h2 to the HTTP/2 sessions, the rest
      // (http/1.1, or no ALPN at all) to the HTTP/1.1 server as before.
      if (tls.alpnProtocol === 'h2') servers.h2.serve(tls);
      else servers.inner.emit('connection', tls);
    });
    tls.on('error', (err: Error & { code?: string }) => {
      opts.logger.info({ host: loggedHost, client: flow.client.ip, code: err.code }, 'intercepted TLS failed (does the client trust the aigate CA?)');
      tls.destroy();
    });
    tls.once('close', () => {
      clearTimeout(handshakeTimer);
      flow.bytesIn = socket.bytesRead;
      flow.bytesOut = socket.bytesWritten;
      opts.audit.writeFlow(flow);
      opts.metrics.countTunnel(flow.route ?? '', flow.decision, flow.status);
    });
  } catch (err) {
    if (err instanceof ClientAbortedError) {
      socket.destroy();
      return abandoned();
    }
    const answer =
      err instanceof ProxyError ? err : new ProxyError('internal_error', `internal error in aigate (request id ${flow.id}); the proxy log has details`);
    if (!(err instanceof ProxyError)) opts.logger.error({ err, requestId: flow.id }, 'internal error while handling CONNECT');
    writeRawError(socket, flow, answer);
    finish();
  }
}

/**
 * A queued password check must not outlive its client (issue #19: a flood's checks ran long after
 * the flood had gone): the check is dropped when the client closes or half-closes (the forward
 * server allows half-open sockets, so a FIN alone is only an 'end').
 */
async function authenticateConnect(authenticate: Authenticate, req: IncomingMessage, socket: Socket, flow: Flow): Promise<string | null> {
  const header = req.headers['proxy-authorization'];
  if (header === undefined) return authenticate(header, flow);
  const left = new AbortController();
  const leave = () => left.abort();
  if (socket.readableEnded || socket.destroyed) leave();
  socket.once('end', leave);
  socket.once('close', leave);
  try {
    return await authenticate(header, flow, left.signal);
  } finally {
    socket.off('end', leave);
    socket.off('close', leave);
  }
}

/** `inspect: false`: bytes are relayed untouched and audited once, when the tunnel closes. */
function blindTunnel(opts: ForwardServerOptions, flow: Flow, client: Socket, head: Buffer, dest: Destination): void {
  flow.event = 'tunnel';
  const release = opts.activity.begin();
  const upstream = netConnect({ host: dest.address, port: dest.port });
  const connectTimer = setTimeout(() => {
    upstream.destroy();
    fail(withCause(new ProxyError('upstream_timeout', `connecting to ${dest.host}:${dest.port} timed out (timeouts.connect)`), 'ETIMEDOUT', 'connection_timeout'));
  }, opts.config.timeouts.connect);
  let established = false;
  let audited = false;
  const done = () => {
    if (audited) return;
    audited = true;
    const record = opts.audit.writeFlow(flow);
    opts.metrics.countTunnel(flow.route ?? '', flow.decision, flow.status);
    if (flow.error !== null) reportUpstreamFailure(opts.upstreamFailures, flow, record);
    release();
  };
  const fail = (err: ProxyError) => {
    clearTimeout(connectTimer);
    if (established) return;
    writeRawError(client, flow, err);
    done();
  };
  // The client gone while the upstream is dialled (it hung up, or a drain closed it): nothing to
  // relay; audited now rather than when timeouts.connect fires, which may be after the log closed.
  client.once('close', () => {
    if (established || audited) return;
    clearTimeout(connectTimer);
    upstream.destroy();
    flow.aborted = true;
    flow.status = CLIENT_CLOSED;
    done();
  });
  upstream.once('error', (err: NodeJS.ErrnoException) => {
    if (established) return;
    const cause = err.code ?? err.name;
    fail(withCause(new ProxyError('upstream_unavailable', `${dest.host}:${dest.port} is unavailable (${err.code ?? err.message})`), cause, proxyStatusForCause(cause)));
  });
  upstream.once('connect', () => {
    clearTimeout(connectTimer);
    if (client.destroyed) return upstream.destroy();
    established = true;
    flow.status = 200;
    client.write(ESTABLISHED);
    if (head.length > 0) upstream.write(head);
    client.on('data', (c: Buffer) => (flow.bytesIn += c.length));
    upstream.on('data', (c: Buffer) => (flow.bytesOut += c.length));
    for (const s of [client, upstream]) s.setTimeout(opts.config.timeouts.idle, () => s.destroy());
    let closed = 0;
    const onClose = () => {
      client.destroy();
      upstream.destroy();
      if (++closed === 2) done();
    };
    client.once('close', onClose);
    upstream.once('close', onClose);
    upstream.on('error', () => upstream.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
}

/**
 * First forward-mode stage. Requests from an intercepted tunnel already carry their destination;
 * an absolute-form `http://` request on the forward listener is checked here against the same
 * allowlist (with proxy authentication); anything else is not a proxy request.
 */
export function absoluteFormStage(egress: EgressPolicy, authenticate: Authenticate): Stage {
  return async (ex) => {
    if (ex.destination) return;
    const target = ex.req.url ?? '';
    if (!/^http:\/\//i.test(target)) {
      throw new ProxyError(
        'bad_request',
        /^https:\/\//i.test(target)
          ? 'send https:// requests through CONNECT (set HTTPS_PROXY / http.proxy to this proxy)'
          : 'this is aigate\'s forward proxy: send CONNECT host:port or an absolute http:// URL',
      );
    }
    ex.flow.client.user = await authenticateRequest(authenticate, ex);
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      throw new ProxyError('bad_request', `bad request target "${target.slice(0, 200)}"`);
    }
    const port = url.port ? Number(url.port) : 80;
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const match = egress.match(host, port);
    ex.flow.host = host;
    ex.flow.hostAsSent = hostAsSent(target);
    if ('denied' in match) throw new ProxyError('egress_denied', `${url.origin} denied: ${match.denied}`);
    ex.destination = { scheme: 'http', host: match.host, port, rule: { host: match.rule.host, action: match.rule.action, websocket: match.rule.websocket } };
  };
}

/** An absolute-form request's credentials, checked no longer than its client stays (see authenticateConnect). */
async function authenticateRequest(authenticate: Authenticate, ex: Exchange): Promise<string | null> {
  const header = ex.req.headers['proxy-authorization'];
  if (header === undefined) return authenticate(header, ex.flow);
  const left = new AbortController();
  const leave = () => left.abort();
  if (ex.res.destroyed) leave();
  ex.res.once('close', leave);
  try {
    return await authenticate(header, ex.flow, left.signal);
  } finally {
    ex.res.off('close', leave);
  }
}

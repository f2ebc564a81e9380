// The gateway listener (SPEC §3): TLS-terminating, path-routed. Plain requests and WebSocket
// upgrades run through their pipelines; parser-level errors are answered in client-error.ts.
import { createServer, type Server } from 'node:https';
import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AuditLog } from '../audit/log.js';
import type { Metrics } from '../metrics.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import type { TLSSocket } from 'node:tls';
import { handleClientError, refuseConnect } from './client-error.js';
import { peerIdentity, type ClientIdentity } from './client-identity.js';
import { ALPN_PROTOCOLS, H2Sessions } from './h2.js';

export interface GatewayOptions {
  cert: Buffer;
  key: Buffer;
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  requests: Pipeline;
  upgrades: Pipeline;
  audit: AuditLog;
  metrics: Metrics;
  /** Milliseconds a keep-alive connection may sit idle between requests. */
  keepAliveTimeout?: number;
  /** How a connection's and a request's client is named (PROXY protocol, trustedProxies, certificate user); read per request, so a reload may replace it. */
  clients?: ClientIdentity;
  /** mTLS: client certificates asked for and verified against `ca` (listen.gateway.clientCertificate). */
  clientCertificate?: { ca: Buffer; required: boolean };
  /** Milliseconds an HTTP/2 connection may go without a frame either way (timeouts.idle). */
  h2IdleTimeout: number;
}

export interface GatewayServers {
  /** The listener: TLS, ALPN h2 and http/1.1; HTTP/1.1 is served by this server itself. */
  server: Server;
  /** Where its h2 connections go. */
  h2: H2Sessions;
}

export function createGatewayServer(opts: GatewayOptions): GatewayServers {
  const server = createServer({
    cert: opts.cert,
    key: opts.key,
    minVersion: opts.minVersion,
    ALPNProtocols: ALPN_PROTOCOLS,
    // Long prompts upload slowly and LLM answers stream for minutes: only the header phase is
    // bounded here; upstream timeouts bound the rest.
    requestTimeout: 0,
    headersTimeout: 30_000,
    keepAliveTimeout: opts.keepAliveTimeout ?? 65_000,
    requireHostHeader: false, // answered by the pipeline (parse-target), with a request id and an audit line
    // Optional mTLS still verifies what is presented: only a verified certificate names a user.
    ...(opts.clientCertificate ? { requestCert: true, ca: opts.clientCertificate.ca, rejectUnauthorized: opts.clientCertificate.required } : {}),
  });
  const clients = () => opts.clients ?? peerIdentity;
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    opts.requests.handle('gateway', clients().ofRequest(req), req, res);
  };
  server.on('request', onRequest);
  // One listener, both protocols: https.Server serves every TLS connection as HTTP/1.1 (its
  // 'secureConnection' listener); a connection that negotiated h2 goes to the HTTP/2 server
  // instead, so HTTP/1.1 keeps exactly its own server, timeouts and parser.
  const h2 = new H2Sessions({
    idleTimeoutMs: opts.h2IdleTimeout,
    onRequest: (req, res, socket) => opts.requests.handle('gateway', clients().ofStream(socket, req.headers), req, res),
  });
  const http1 = server.listeners('secureConnection') as Array<(socket: TLSSocket) => void>;
  server.removeAllListeners('secureConnection');
  server.on('secureConnection', (socket: TLSSocket) => {
    if (socket.alpnProtocol === 'h2') h2.serve(socket);
    else for (const listener of http1) listener.call(server, socket);
  });
  server.on('checkExpectation', onRequest); // an Expect other than 100-continue: refused by parse-target
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    handleUpgrade(opts.upgrades, 'gateway', clients().ofRequest(req), req, socket, head);
  });
  const clientErrors = { audit: opts.audit, metrics: opts.metrics, mode: 'gateway' as const, clientIp: (s: Duplex) => clients().ofConnection(s), flows: opts.requests };
  server.on('clientError', (err: Error, socket: Duplex) => handleClientError(err, socket, clientErrors));
  server.on('connect', (req: IncomingMessage, socket: Duplex) =>
    refuseConnect(req, socket, 'the gateway routes by path; CONNECT is served on the forward proxy listener (listen.forward)', clientErrors),
  );
  return { server, h2 };
}

/** Runs an upgrade request through the upgrade pipeline with a response bound to its socket. */
export function handleUpgrade(
  pipeline: Pipeline,
  mode: 'gateway' | 'forward',
  client: { ip: string; user: string | null },
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  configure?: Parameters<Pipeline['handle']>[4],
): void {
  socket.on('error', () => socket.destroy());
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket as never);
  // A plain answer on an upgrade socket (a refusal: aigate's 404/429/502 or the upstream's 401)
  // says Connection: close, but Node only closes the sockets of ordinary requests; without this
  // the connection, and the flow's audit line, would wait for the client to hang up.
  res.once('finish', () => socket.end());
  pipeline.handle(mode, client, req, res, (ex) => {
    ex.body = head;
    configure?.(ex);
  });
}

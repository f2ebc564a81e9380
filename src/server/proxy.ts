// Assembles a running aigate from a validated config: shared parts built once (metrics, audit,
// upstream agents, limiter, inspector, minter), the pipelines of each mode, and the listeners.
// Also owns the drain.
import { randomBytes, X509Certificate } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo, Server, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { AuditLog, MAX_BUFFERED_BYTES } from '../audit/log.js';
import { SyslogError } from '../audit/syslog.js';
import { HtpasswdError } from '../auth/htpasswd.js';
import { ProxyAuthenticator } from '../auth/proxy-auth.js';
import { ConfigError, readConfiguredFile } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { Metrics } from '../metrics.js';
import { ActivityTracker } from '../pipeline/activity.js';
import { UpstreamFailureLog } from '../upstream/failure-log.js';
import { ProxyError } from '../pipeline/errors.js';
import type { Stage } from '../pipeline/exchange.js';
import { Pipeline } from '../pipeline/pipeline.js';
import { createInspector, type Inspector } from '../inspect/index.js';
import { PooledInspector, THREAD_MIN_BYTES, resolveScanThreads } from '../inspect/pool.js';
import { loadProtectedCode, type ProtectedCodeSource } from '../inspect/protected.js';
import { auditGuardStage } from '../pipeline/stages/audit-guard.js';
import { inspectStage } from '../pipeline/stages/inspect.js';
import { inspectUrlPart, inspectUrlStage } from '../pipeline/stages/inspect-url.js';
import { limitStage } from '../pipeline/stages/limit.js';
import { credentialStage } from '../pipeline/stages/credential.js';
import { parseTargetStage } from '../pipeline/stages/parse-target.js';
import { ClientAbortedError, readBodyStage } from '../pipeline/stages/read-body.js';
import { BodyBudget } from '../pipeline/body-budget.js';
import { forwardRouteStage } from '../pipeline/stages/route-forward.js';
import { gatewayRouteStage } from '../pipeline/stages/route-gateway.js';
import { createRateLimiter, type RateLimiter } from '../ratelimit/index.js';
import { canonicalHost, compileConnectTo, formatHostPort, resolveDestination } from '../route/address.js';
import { compileEgress } from '../route/egress.js';
import { loadGatewayKeyPair, loadInterceptionCa, loadUpstreamCas } from '../tls/files.js';
import { LeafMinter } from '../tls/mint.js';
import { recordCertificateExpiry } from '../tls/expiry.js';
import { timedInspector } from '../inspect/timed.js';
import { createUpstreamAgents } from '../upstream/agent.js';
import { forwardStage, type ForwardOptions } from '../upstream/forward.js';
import { rpcStage } from '../channels/envelopes/stage.js';
import { websocketStage } from '../upstream/websocket.js';
import { UpstreamHeaderPolicy } from '../upstream/tenancy.js';
import { upstreamHeadersStage } from '../pipeline/stages/upstream-headers.js';
import { createDashboard } from '../dashboard/routes.js';
import { createAdminServer } from './admin.js';
import { loadAdminAuth } from './admin-auth.js';
import { isWorker, reportAuditState } from './cluster.js';
import { createClientIdentity, peerIp, TrustedProxies } from './client-identity.js';
import { createProxyFront } from './proxy-front.js';
import { ConnectionRegistry, overLimitError, type TrafficListener } from './connections.js';
import { watchAcceptErrors, watchFileDescriptors } from './fd-watch.js';
import { absoluteFormStage, createForwardServer, type Authenticate, type InspectHost } from './forward.js';
import { createGatewayServer } from './gateway.js';
import type { H2Sessions } from './h2.js';
import { listen } from './listen.js';
import { throttledReport } from '../log-throttle.js';

export interface StartOptions {
  configFile: string;
  logger: Logger;
  /** Process metrics off in tests that start many proxies in one process. */
  processMetrics?: boolean;
}

export interface RunningProxy {
  readonly config: Config;
  readonly metrics: Metrics;
  readonly audit: AuditLog;
  readonly limiter: RateLimiter | undefined;
  readonly addresses: { gateway?: AddressInfo; forward?: AddressInfo; admin?: AddressInfo };
  /** Stops accepting, lets open requests and streams finish within `graceMs`, then closes all. */
  drain(graceMs?: number): Promise<{ forced: number }>;
  reopenAudit(): void;
}

type ListenerName = 'gateway' | 'forward' | 'admin';

export async function startProxy(config: Config, opts: StartOptions): Promise<RunningProxy> {
  const { configFile, logger } = opts;
  const extraCa = loadUpstreamCas(config, configFile);
  const metrics = new Metrics({ processMetrics: opts.processMetrics });
  const audit = openAuditLog(config, configFile, logger, metrics);
  const activity = new ActivityTracker();
  const connections = new ConnectionRegistry(config.limits.connectionsPerClient, {
    onOverLimit: overLimitReporter(config.limits.connectionsPerClient, metrics, logger),
  });
  metrics.openConnections = () => connections.size;
  metrics.openWork = () => connections.openWork();
  const fdWatch = watchFileDescriptors({ metrics, logger, openConnections: () => connections.size });
  const closers: Array<() => Promise<unknown> | void> = [() => audit.close(), () => fdWatch.stop()];
  let draining = false;
  let ready = false;

  const connectTo = compileConnectTo(config.connectTo);
  const limiter = config.rateLimit.enabled ? createRateLimiter(config.rateLimit, { logger, metrics }) : undefined;
  if (limiter) closers.unshift(() => limiter.close());

  // Stages shared by both modes, in SPEC order. A stage switched off in config is left out.
  // `admit` runs once a request is routed and its user known: the audit guard, then the limiter.
  const admit: Stage[] = [
    ...(config.audit.onWriteError === 'deny' ? [auditGuardStage(audit)] : []),
    ...(limiter ? [limitStage(config.rateLimit, limiter)] : []),
  ];
  let inspector: Inspector;
  // One key for the event loop and the scan threads: a finding's fingerprint must not depend on
  // which thread scanned the body.
  const fingerprintKey = config.audit.fingerprintKey ? Buffer.from(config.audit.fingerprintKey) : randomBytes(32);
  // Vendor-key fingerprints (audit client.credential, rateLimit.key: credential), before the limiter.
  admit.unshift(credentialStage(fingerprintKey));
  let protectedCode: ProtectedCodeSource[];
  try {
    // Loaded once into shared memory: the scan threads read the same indexes.
    protectedCode = loadProtectedCode(config.inspect.fingerprints, { share: true });
    inspector = createInspector(config.inspect, { fingerprintKey, protectedCode });
  } catch (err) {
    // Messages already lead with the key path (inspect.rules.custom[0].pattern: …).
    throw new ConfigError(configFile, '', (err as Error).message);
  }
  audit.maskPath = (path) => inspector.maskSecrets(path);
  const threads = resolveScanThreads(config.inspect.scanThreads, { clusterWorker: isWorker() });
  let sharedFromBytes = Infinity;
  if (threads > 0) {
    // Every flow, WebSocket and blind tunnel counts itself while open, the scanned request included.
    const alone = () => activity.active <= 1;
    const onDisabled = (reason: string) => logger.warn({ reason }, 'scan threads unavailable: large bodies are scanned on the event loop');
    const pooled = new PooledInspector(inspector, { config: config.inspect, fingerprintKey, protectedCode, threads, alone, onDisabled });
    closers.push(() => pooled.close());
    inspector = pooled;
    sharedFromBytes = THREAD_MIN_BYTES; // what may go to a thread is read into shared memory
  }
  inspector = timedInspector(inspector, metrics);
  // Bodies held at once, by every listener and tunnel of this process (each --workers process has its own).
  const budget = new BodyBudget({ totalBytes: config.limits.bufferedBodyBytes, perClientBytes: config.limits.bufferedBodyBytesPerClient });
  budget.onRefused = (scope) => metrics.bodyBudgetRefusals.inc({ scope });
  metrics.watchBufferedBodies(() => budget.usedBytes);
  // Reading and inspecting the body always go together: nothing is forwarded unscanned.
  // timeouts.idle bounds a client's silence mid-body (the servers have no request timeout).
  const readWholeBody = readBodyStage({ maxBodyBytes: config.inspect.maxBodyBytes, sharedFromBytes, idleTimeoutMs: config.timeouts.idle, budget });
  const readBody: Stage[] = [readWholeBody, inspectStage(inspector, config.inspect.maxBodyBytes)];
  // The path and query go upstream too: scanned once routed and admitted, before the body is read.
  const inspectUrl = inspectUrlStage(inspector);
  const timeouts = { firstByteTimeout: config.timeouts.firstByte, idleTimeout: config.timeouts.idle };
  // A WebSocket message is inspected as a body is: the same inspector, limit, audit and metrics.
  const websocket = { ...timeouts, inspector, maxBodyBytes: config.inspect.maxBodyBytes, audit, metrics, activity, budget };
  // gRPC, gRPC-Web and Connect: inspected message by message and forwarded as they go, in place
  // of read-body + inspect; every other request passes it untouched.
  const rpc = (forward: ForwardOptions): Stage =>
    rpcStage({ inspector, maxBodyBytes: config.inspect.maxBodyBytes, idleTimeoutMs: config.timeouts.idle, readBody: readWholeBody, forward, budget });
  const upstreamFailures = new UpstreamFailureLog(logger);
  const pipelineDeps = { audit, metrics, logger, activity, upstreamFailures };

  const servers: Array<{ name: ListenerName; server: Server; host: string; port: number }> = [];
  const trustedProxies = new TrustedProxies(config.trustedProxies);
  /** The server that listens for `name`: a PROXY-protocol front before `server` where configured. */
  const listening = (name: ListenerName, server: Server): Server =>
    config.listen[name]?.proxyProtocol ? createProxyFront(server, { onRefused: proxyProtocolReporter(name, metrics, logger) }) : server;
  /** Servers whose idle keep-alive connections a drain closes (includes the tunnel server). */
  const trafficServers: Server[] = [];
  /** Where each traffic listener's HTTP/2 connections are served. */
  const h2Listeners: H2Sessions[] = [];

  if (config.listen.gateway) {
    // Gateway upstreams are named in config by the operator, so they are dialled as named.
    const { requests: dispatcher, upgrades: upgradeDispatcher } = createUpstreamAgents({
      config,
      extraCa,
      metrics,
      logger,
      dialTarget: (host, port) => connectTo.get(formatHostPort(canonicalHost(host)?.host ?? host, port)) ?? { host, port },
    });
    closers.unshift(() => dispatcher.destroy());
    if (upgradeDispatcher !== dispatcher) closers.unshift(() => upgradeDispatcher.destroy());
    const routed = [parseTargetStage, gatewayRouteStage(config), ...headerStage(UpstreamHeaderPolicy.forGateway(config)), ...admit, inspectUrl];
    const { cert, key } = loadGatewayKeyPair(config, configFile);
    const mtls = config.listen.gateway.clientCertificate;
    const { server: gateway, h2 } = createGatewayServer({
      clients: createClientIdentity({ trustedProxies, certificateUserField: mtls?.userField }),
      ...(mtls ? { clientCertificate: { ca: loadClientCa(configFile, mtls.ca), required: mtls.required } } : {}),
      cert,
      key,
      minVersion: config.tls.minVersion,
      requests: new Pipeline([...routed, rpc({ dispatcher, metrics, ...timeouts }), ...readBody, forwardStage({ dispatcher, metrics, ...timeouts })], pipelineDeps),
      upgrades: new Pipeline([...routed, websocketStage({ dispatcher: upgradeDispatcher, ...websocket })], pipelineDeps),
      audit,
      metrics,
      h2IdleTimeout: config.timeouts.idle,
    });
    h2Listeners.push(h2);
    // Over its client's cap a TLS connection can only be closed: answering would cost the
    // handshake the cap is there to save.
    gateway.on('connection', (socket: Socket) => {
      if (!connections.accept(socket, 'gateway', peerIp(socket))) socket.destroy();
    });
    gateway.on('secureConnection', (tls: TLSSocket) => {
      // The TLS socket the HTTP layer sees is built on the accepted one (Node keeps it as _parent).
      const raw = (tls as TLSSocket & { _parent?: Socket })._parent;
      if (raw) connections.layer(tls, raw);
      // Optional mTLS: no certificate is fine, but one that does not verify is refused like a
      // required one would be, never served as anonymous.
      if (mtls && !tls.authorized && Object.keys(tls.getPeerCertificate()).length > 0) {
        logger.info({ client: peerIp(tls), reason: String(tls.authorizationError) }, 'client certificate not verified; connection closed');
        tls.destroy();
      }
    });
    servers.push({ name: 'gateway', server: listening('gateway', gateway), ...config.listen.gateway });
    trafficServers.push(gateway);
  }

  if (config.listen.forward) {
    const egress = compileEgress(config.egress, undefined, configFile);
    const resolve = (host: string, port: number) =>
      resolveDestination(host, port, { connectTo, denyPrivateAddresses: config.egress.denyPrivateAddresses });
    // Forward destinations are whatever clients ask for: the address is resolved and checked at
    // dial time and the checked address is the one dialled (no DNS-rebinding window).
    const { requests: dispatcher, upgrades: upgradeDispatcher } = createUpstreamAgents({
      config,
      extraCa,
      metrics,
      logger,
      dialTarget: async (host, port) => {
        const dest = await resolve(host, port);
        return { host: dest.address, port: dest.port };
      },
    });
    closers.unshift(() => dispatcher.destroy());
    if (upgradeDispatcher !== dispatcher) closers.unshift(() => upgradeDispatcher.destroy());
    const minter = new LeafMinter(loadInterceptionCa(config, configFile).pair, { secureContextOptions: { minVersion: config.tls.minVersion } });
    await minter.ready();
    const auth = loadProxyAuth(config, configFile, metrics);
    closers.unshift(() => auth.close());
    const authenticate: Authenticate = async (header, flow, signal) => {
      const outcome = await auth.authenticate(header, { client: flow.client.ip, signal });
      if (outcome.ok) return outcome.user;
      // Audited for refused logins when it names a real user (an unknown name may be a mistyped password).
      if (outcome.user !== null && auth.knows(outcome.user)) flow.attemptedUser = outcome.user;
      switch (outcome.reason) {
        case 'gone':
          throw new ClientAbortedError();
        case 'busy':
          throw new ProxyError('overloaded', outcome.message, { 'retry-after': String(outcome.retryAfterSeconds) });
        case 'throttled':
          throw new ProxyError('rate_limited', outcome.message, { 'retry-after': String(outcome.retryAfterSeconds) });
        default:
          throw new ProxyError('proxy_auth_required', outcome.message, { 'proxy-authenticate': outcome.challenge });
      }
    };
    const inspectHost: InspectHost = (flow, host, action) => inspectUrlPart(inspector, flow, host, action ?? config.inspect.action, 'the host name');
    // A connection over its client's cap gets one answer (429 JSON, audited), then is closed.
    const withinCap: Stage = (ex) => {
      if (!connections.isOverLimit(ex.req.socket)) return;
      ex.res.shouldKeepAlive = false;
      throw overLimitError(ex.flow.client.ip, config.limits.connectionsPerClient);
    };
    const accepted = [withinCap, parseTargetStage, absoluteFormStage(egress, authenticate), forwardRouteStage(config), ...headerStage(UpstreamHeaderPolicy.forForward(config)), ...admit, inspectUrl];
    const forward = createForwardServer({
      config,
      egress,
      minter,
      requests: new Pipeline([...accepted, rpc({ dispatcher, metrics, ...timeouts }), ...readBody, forwardStage({ dispatcher, metrics, ...timeouts })], pipelineDeps),
      upgrades: new Pipeline([...accepted, websocketStage({ dispatcher: upgradeDispatcher, ...websocket })], pipelineDeps),
      audit,
      metrics,
      activity,
      connections,
      logger,
      authenticate,
      inspectHost,
      resolve,
      clients: createClientIdentity({ trustedProxies }),
      upstreamFailures,
    });
    forward.outer.on('connection', (socket: Socket) => {
      if (connections.accept(socket, 'forward', peerIp(socket))) return;
      // Its request is answered 429 as soon as it arrives; one that never comes must not keep it.
      const timer = setTimeout(() => socket.destroy(), OVER_LIMIT_WAIT_MS);
      timer.unref();
      socket.once('close', () => clearTimeout(timer));
    });
    servers.push({ name: 'forward', server: listening('forward', forward.outer), ...config.listen.forward });
    trafficServers.push(forward.outer, forward.inner);
    h2Listeners.push(forward.h2);
  }

  for (const server of trafficServers) {
    server.on('request', (req, res) => {
      if (draining) res.shouldKeepAlive = false;
      res.once('close', connections.request(req.socket));
    });
    // An upgraded connection leaves HTTP: a drain waits for it like for a request.
    server.on('upgrade', (req) => connections.stream(req.socket));
  }
  for (const h2 of h2Listeners) {
    // Each stream is a request in flight on its TLS connection (the drain's idle test).
    h2.server.on('request', (req) => {
      const socket = h2.socketOf(req as unknown as IncomingMessage);
      if (socket) req.stream.once('close', connections.request(socket));
    });
  }
  // Read once the listeners loaded them (their own errors are clearer than a missing-file one here).
  recordCertificateExpiry(metrics.certificateExpiry, config, configFile);
  let dashboard: ReturnType<typeof createDashboard> | undefined;
  if (config.listen.admin) {
    dashboard = createDashboard({ audit, limiter, config });
    const adminAuth = config.listen.admin.auth ? loadAdminAuth(config.listen.admin.auth, configFile) : undefined;
    if (adminAuth) closers.push(() => adminAuth.close());
    const { host, port } = config.listen.admin;
    const adminServer = createAdminServer(metrics.registry, { ready: () => ready && !draining && !audit.refusesTraffic() }, dashboard.routes, undefined, adminAuth);
    servers.push({ name: 'admin', server: listening('admin', adminServer), host, port });
  }

  const closeAll = async () => {
    for (const close of closers) await Promise.resolve(close()).catch(() => undefined);
  };
  const addresses: RunningProxy['addresses'] = {};
  try {
    if (limiter && config.rateLimit.store === 'redis') {
      // Give Redis a moment so the first requests are limited by the shared bucket; a Redis that
      // is down must not stop the proxy: after the wait requests get rateLimit.onStoreError.
      const waitMs = Math.min(config.timeouts.connect, 3000);
      if (!(await limiter.whenReady(waitMs))) {
        logger.warn(
          { waitedMs: waitMs, onStoreError: config.rateLimit.onStoreError },
          'rate-limit Redis not reachable at start-up; requests get onStoreError until it is',
        );
      }
    }
    for (const s of servers) {
      await listen(s.server, s.host, s.port).catch((err: Error) => {
        throw new ConfigError(configFile, `listen.${s.name}`, err.message);
      });
      watchAcceptErrors(s.server, s.name, { metrics, logger });
      addresses[s.name] = s.server.address() as AddressInfo;
    }
  } catch (err) {
    for (const s of servers) s.server.close();
    await closeAll();
    throw err;
  }
  ready = true;

  return {
    config,
    metrics,
    audit,
    limiter,
    addresses,
    reopenAudit: () => audit.reopen(),
    async drain(graceMs = config.timeouts.drain) {
      draining = true;
      for (const s of servers) if (s.name !== 'admin') s.server.close();
      // HTTP/2 clients are told to go elsewhere (GOAWAY): their open streams finish, no new one starts.
      for (const h2 of h2Listeners) h2.goAway();
      // Connections between requests (keep-alive, idle intercepted tunnels) would hold the drain
      // open: close them now and again as in-flight responses finish (they turn idle).
      connections.closeIdle();
      const sweeper = setInterval(() => connections.closeIdle(), 100);
      const finished = await activity.idle(graceMs);
      clearInterval(sweeper);
      const forced = finished ? 0 : activity.active;
      if (!finished) {
        // Inspected WebSockets are ended their own way first (close 1001 both ways), with a
        // moment to flush it before every connection left is closed.
        activity.endAll();
        await activity.idle(WEBSOCKET_CLOSE_WAIT_MS);
      }
      // Every connection still open — streams, WebSockets, blind tunnels, CONNECTs in progress —
      // is closed; each flow on it writes its line as its socket closes, before the log closes.
      // Closing costs ~0.2 ms a connection (2,000 idle tunnels: ~0.4 s, measured by the soak), so
      // the wait for their lines grows with how many there are.
      const closeWaitMs = CLOSE_WAIT_MS + connections.size;
      connections.closeAll();
      dashboard?.close(); // open dashboard event streams end before the admin server closes
      for (const s of servers) {
        (s.server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
        s.server.close();
      }
      const [idle, empty] = await Promise.all([activity.idle(closeWaitMs), connections.empty(closeWaitMs)]);
      if (!idle || !empty) {
        logger.error({ flows: activity.active, connections: connections.size, waitedMs: closeWaitMs }, 'connections still closing after the drain; their audit lines may be lost');
      }
      await closeAll();
      return { forced };
    },
  };
}

/** The stage that sets tenancy / setHeaders headers, or none when the config sets no header. */
function headerStage(policy: UpstreamHeaderPolicy): Stage[] {
  return policy.empty ? [] : [upstreamHeadersStage(policy)];
}


/** After the grace period, how long closed connections get to write their lines (plus 1 ms each). */
const CLOSE_WAIT_MS = 500;
/** How long a forward connection over its client's cap may take to send the request it is refused. */
const OVER_LIMIT_WAIT_MS = 5_000;
/** Refusals for the per-client cap are logged at most this often (with the count meanwhile). */
const OVER_LIMIT_LOG_EVERY_MS = 10_000;

/** Counts every refusal for limits.connectionsPerClient; logs them at most every 10 s. */
function overLimitReporter(limit: number, metrics: Metrics, logger: Logger): (listener: TrafficListener, ip: string) => void {
  const log = throttledReport(OVER_LIMIT_LOG_EVERY_MS, (refused, listener: TrafficListener, ip: string) =>
    logger.warn({ listener, client: ip, limit, refused }, 'client over limits.connectionsPerClient: connection refused (raise the limit if many users share this address)'),
  );
  return (listener, ip) => {
    metrics.connectionsRefused.inc({ listener, reason: 'per_client_limit' });
    log(listener, ip);
  };
}

/** `listen.gateway.clientCertificate.ca`: PEM certificates that client certificates must chain to. */
function loadClientCa(configFile: string, file: string): Buffer {
  const pem = readConfiguredFile(configFile, 'listen.gateway.clientCertificate.ca', file);
  try {
    new X509Certificate(pem);
  } catch (err) {
    throw new ConfigError(configFile, 'listen.gateway.clientCertificate.ca', `${file} is not a PEM certificate (${(err as Error).message})`);
  }
  return pem;
}

/** Connections refused for a missing or malformed PROXY header: counted, logged at most every 10 s. */
function proxyProtocolReporter(listener: ListenerName, metrics: Metrics, logger: Logger): (reason: string, peer: string | undefined) => void {
  const log = throttledReport(OVER_LIMIT_LOG_EVERY_MS, (refused, reason: string, peer: string | undefined) =>
    logger.warn({ listener, peer, reason, refused }, `connection refused: listen.${listener}.proxyProtocol is on and the PROXY header is missing or malformed (is the balancer sending it?)`),
  );
  return (reason, peer) => {
    metrics.connectionsRefused.inc({ listener, reason: 'proxy_protocol' });
    log(reason, peer);
  };
}

/** After the grace period, how long ended WebSockets get to send their close frames. */
const WEBSOCKET_CLOSE_WAIT_MS = 200;

/** `auth.usersFile` loaded once, its checks bounded by `limits.auth*` and counted in metrics. */
function loadProxyAuth(config: Config, configFile: string, metrics: Metrics): ProxyAuthenticator {
  try {
    const auth = ProxyAuthenticator.fromConfig(config.auth, {
      maxPending: config.limits.authPending,
      failuresPerMinute: config.limits.authFailuresPerMinute,
      events: {
        checked: (ok) => metrics.authChecks.inc({ result: ok ? 'valid' : 'invalid' }),
        dropped: () => metrics.authChecksDropped.inc(),
        refused: (reason) => metrics.authRefusals.inc({ reason: reason === 'busy' ? 'queue_full' : 'too_many_failures' }),
      },
    });
    metrics.watchAuthPending(() => auth.pending);
    return auth;
  } catch (err) {
    if (err instanceof HtpasswdError) throw new ConfigError(configFile, 'auth.usersFile', err.message);
    throw err;
  }
}

/** The audit log with its write failures logged; a file that cannot be opened stops the start. */
function openAuditLog(config: Config, configFile: string, logger: Logger, metrics: Metrics): AuditLog {
  const { onWriteError } = config.audit;
  if (config.audit.file) metrics.auditFailing.set({ sink: 'file' }, 0);
  if (config.audit.stdout) metrics.auditFailing.set({ sink: 'stdout' }, 0);
  if (config.audit.syslog) metrics.auditFailing.set({ sink: 'syslog' }, 0);
  let log: AuditLog | undefined;
  try {
    log = new AuditLog(config.audit, {
      onError: (err, sink) => {
        metrics.auditWriteErrors.inc({ sink });
        metrics.auditFailing.set({ sink }, 1);
        reportAuditState(log?.refusesTraffic() ?? false);
        const traffic = onWriteError === 'deny' ? 'refused until it works again' : 'continues';
        logger.error({ err, sink, onWriteError, traffic }, 'audit log write failed; its lines are kept in memory and written when it works again');
      },
      onDrop: (sink) => logger.error({ sink, maxBufferedBytes: MAX_BUFFERED_BYTES }, 'audit log failing with too much unwritten: lines are dropped until it works again'),
      onRecovered: (sink, droppedBytes) => {
        metrics.auditFailing.set({ sink }, 0);
        reportAuditState(log?.refusesTraffic() ?? false);
        logger.warn({ sink, droppedBytes }, 'audit log writable again; the lines it kept are written');
      },
    });
    return log;
  } catch (err) {
    if (err instanceof SyslogError) throw new ConfigError(configFile, 'audit.syslog', err.message);
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(configFile, 'audit.file', `cannot open ${config.audit.file} for appending (${code})`);
  }
}

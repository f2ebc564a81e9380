// Assembles a running aigate from a validated config: the process's own parts (metrics, audit
// log, connection registry, listeners), built once, and a Runtime (server/runtime.ts) with
// everything else the config describes, which a reload replaces without closing a connection.
// Also owns the drain.
import type { IncomingMessage } from 'node:http';
import type { AddressInfo, Server, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/log.js';
import { ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { Metrics } from '../metrics.js';
import { ActivityTracker } from '../pipeline/activity.js';
import { UpstreamFailureLog } from '../upstream/failure-log.js';
import { Pipeline } from '../pipeline/pipeline.js';
import { BodyBudget } from '../pipeline/body-budget.js';
import type { RateLimiter } from '../ratelimit/index.js';
import { recordCertificateExpiry } from '../tls/expiry.js';
import { createDashboard } from '../dashboard/routes.js';
import { createAdminServer } from './admin.js';
import { liveAdminAuth, loadAdminAuth, retireAdminAuth, type AdminAuth } from './admin-auth.js';
import { peerIp } from './client-identity.js';
import { createProxyFront } from './proxy-front.js';
import { ConnectionRegistry, type TrafficListener } from './connections.js';
import { drainListeners } from './drain.js';
import { watchAcceptErrors, watchFileDescriptors } from './fd-watch.js';
import { openAuditLog } from './open-audit.js';
import { createForwardServer, type ForwardServerOptions } from './forward.js';
import { createGatewayServer, type GatewayOptions } from './gateway.js';
import type { H2Sessions } from './h2.js';
import { listen } from './listen.js';
import { changedKeys, configDigest, DRAINING, loadForReload, oneAtATime, refusedBy, type ReloadOutcome } from './reload.js';
import { buildRuntime, randomFingerprintKey, type ModeStages, type ProcessParts, type Runtime } from './runtime.js';
import { throttledReport } from '../log-throttle.js';

export type { ReloadOutcome } from './reload.js';

export interface StartOptions {
  configFile: string;
  logger: Logger;
  /** Process metrics off in tests that start many proxies in one process. */
  processMetrics?: boolean;
  /** Applied to each configuration a reload reads (a cluster worker leaves listen.admin to the primary). */
  adjustConfig?: (config: Config) => Config;
}

export interface RunningProxy {
  /** The configuration in force (a reload replaces it). */
  readonly config: Config;
  readonly metrics: Metrics;
  readonly audit: AuditLog;
  /** The rate limiter in force (a reload keeps it when `rateLimit` is unchanged). */
  readonly limiter: RateLimiter | undefined;
  readonly addresses: { gateway?: AddressInfo; forward?: AddressInfo; admin?: AddressInfo };
  /** Stops accepting, lets open requests and streams finish within `graceMs`, then closes all. */
  drain(graceMs?: number): Promise<{ forced: number }>;
  reopenAudit(): void;
  /**
   * Re-reads the config file and every file it names (users, rules, indexes, certificates, CAs,
   * admin credentials) and applies them to new flows; flows in progress finish as they began and
   * no connection is closed. An invalid config, or one changing what needs a restart, is refused
   * and the running one kept. Logged and audited either way; reloads run one at a time.
   */
  reload(): Promise<ReloadOutcome>;
}

type ListenerName = 'gateway' | 'forward' | 'admin';

export async function startProxy(config: Config, opts: StartOptions): Promise<RunningProxy> {
  const { configFile, logger } = opts;
  const metrics = new Metrics({ processMetrics: opts.processMetrics });
  const audit = openAuditLog(config, configFile, logger, metrics);
  const activity = new ActivityTracker();
  const connections: ConnectionRegistry = new ConnectionRegistry(config.limits.connectionsPerClient, {
    onOverLimit: overLimitReporter(() => connections.perClientLimit, metrics, logger),
  });
  metrics.openConnections = () => connections.size;
  metrics.openWork = () => connections.openWork();
  const fdWatch = watchFileDescriptors({ metrics, logger, openConnections: () => connections.size });
  // Bodies held at once, by every listener and tunnel of this process (each --workers process has its own).
  const budget = new BodyBudget(budgetLimits(config));
  budget.onRefused = (scope) => metrics.bodyBudgetRefusals.inc({ scope });
  metrics.watchBufferedBodies(() => budget.usedBytes);
  const parts: ProcessParts = { configFile, logger, metrics, audit, activity, connections, budget, fallbackFingerprintKey: randomFingerprintKey() };
  let current: Runtime;
  try {
    current = await buildRuntime(config, parts);
  } catch (err) {
    fdWatch.stop();
    await audit.close();
    throw err;
  }
  const closers: Array<() => Promise<unknown> | void> = [() => audit.close(), () => fdWatch.stop()];
  let draining = false;
  let ready = false;
  audit.maskPath = (path) => current.inspector.maskSecrets(path);

  const upstreamFailures = new UpstreamFailureLog(logger);
  const pipelineDeps = { audit, metrics, logger, activity: current.activity, upstreamFailures };
  /** Each mode's pipelines, built once; a reload replaces their stages. */
  const modes: Array<{ requests: Pipeline; upgrades: Pipeline; stagesOf: (rt: Runtime) => ModeStages }> = [];
  const pipelinesFor = (stagesOf: (rt: Runtime) => ModeStages) => {
    const stages = stagesOf(current);
    const mode = { requests: new Pipeline(stages.requests, pipelineDeps), upgrades: new Pipeline(stages.upgrades, pipelineDeps), stagesOf };
    modes.push(mode);
    return mode;
  };
  /** What a reload applies to the listeners themselves (certificates, client naming, policies). */
  const onReload: Array<(rt: Runtime) => void> = [];

  const servers: Array<{ name: ListenerName; server: Server; host: string; port: number }> = [];
  /** The server that listens for `name`: a PROXY-protocol front before `server` where configured. */
  const listening = (name: ListenerName, server: Server): Server =>
    config.listen[name]?.proxyProtocol ? createProxyFront(server, { onRefused: proxyProtocolReporter(name, metrics, logger) }) : server;
  /** Servers whose idle keep-alive connections a drain closes (includes the tunnel server). */
  const trafficServers: Server[] = [];
  /** Where each traffic listener's HTTP/2 connections are served. */
  const h2Listeners: H2Sessions[] = [];

  if (config.listen.gateway && current.gateway) {
    const gw = current.gateway;
    const { requests, upgrades } = pipelinesFor((rt) => rt.gateway!);
    const mtls = config.listen.gateway.clientCertificate;
    const gatewayOpts: GatewayOptions = {
      clients: gw.clients,
      ...(mtls && gw.tls.ca ? { clientCertificate: { ca: gw.tls.ca, required: mtls.required } } : {}),
      cert: gw.tls.cert,
      key: gw.tls.key,
      minVersion: gw.tls.minVersion,
      requests,
      upgrades,
      audit,
      metrics,
      h2IdleTimeout: config.timeouts.idle,
      logger,
    };
    const { server: gateway, h2 } = createGatewayServer(gatewayOpts);
    onReload.push((rt) => {
      const { tls, clients } = rt.gateway!;
      // New handshakes get the renewed certificate (and client CA); open connections keep theirs.
      gateway.setSecureContext({ cert: tls.cert, key: tls.key, minVersion: tls.minVersion, ...(tls.ca ? { ca: tls.ca } : {}) });
      gatewayOpts.clients = clients;
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

  if (config.listen.forward && current.forward) {
    const fw = current.forward;
    const { requests, upgrades } = pipelinesFor((rt) => rt.forward!);
    const forwardOpts: ForwardServerOptions = {
      config,
      egress: fw.egress,
      minter: fw.minter,
      requests,
      upgrades,
      audit,
      metrics,
      activity,
      generation: current.activity,
      connections,
      logger,
      authenticate: fw.authenticate,
      inspectHost: fw.inspectHost,
      resolve: fw.resolve,
      clients: fw.clients,
      upstreamFailures,
    };
    const forward = createForwardServer(forwardOpts);
    onReload.push((rt) => {
      const { egress, minter, authenticate, inspectHost, resolve, clients } = rt.forward!;
      Object.assign(forwardOpts, { config: rt.config, egress, minter, authenticate, inspectHost, resolve, clients, generation: rt.activity });
      forward.inner.setTimeout(rt.config.timeouts.idle);
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
  let adminAuth: AdminAuth | undefined;
  if (config.listen.admin) {
    dashboard = createDashboard({ audit, config, get limiter() { return current.limiter; } });
    adminAuth = config.listen.admin.auth ? loadAdminAuth(config.listen.admin.auth, configFile) : undefined;
    closers.push(() => adminAuth?.close());
    const { host, port } = config.listen.admin;
    const adminServer = createAdminServer(
      metrics.registry,
      { ready: () => ready && !draining && !audit.refusesTraffic() },
      [...dashboard.routes],
      undefined,
      adminAuth && liveAdminAuth(() => adminAuth!),
      { reload: () => reload() },
    );
    servers.push({ name: 'admin', server: listening('admin', adminServer), host, port });
  }

  const addresses: RunningProxy['addresses'] = {};
  const closeAll = async () => {
    await current.close(true);
    for (const close of closers) await Promise.resolve(close()).catch(() => undefined);
  };
  try {
    const { limiter } = current;
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

  /** Builds the next Runtime from the file as it is now and swaps it in, or says why not. */
  const applyReload = async (): Promise<ReloadOutcome> => {
    if (draining) return DRAINING;
    let next: Runtime;
    let nextAdminAuth: AdminAuth | undefined;
    try {
      const nextConfig = loadForReload(configFile, current.config, opts.adjustConfig);
      next = await buildRuntime(nextConfig, parts, current);
      try {
        nextAdminAuth = nextConfig.listen.admin?.auth ? loadAdminAuth(nextConfig.listen.admin.auth, configFile) : undefined;
        metrics.certificateExpiry.reset();
        recordCertificateExpiry(metrics.certificateExpiry, nextConfig, configFile);
      } catch (err) {
        await next.close(true);
        throw err;
      }
    } catch (err) {
      return refusedBy(configFile, err);
    }
    if (draining) {
      await next.close(true);
      await nextAdminAuth?.close();
      return DRAINING;
    }
    const previous = current;
    const changed = changedKeys(previous.config, next.config);
    current = next;
    for (const mode of modes) {
      const stages = mode.stagesOf(next);
      mode.requests.replaceStages(stages.requests, next.activity);
      mode.upgrades.replaceStages(stages.upgrades, next.activity);
    }
    for (const apply of onReload) apply(next);
    for (const h2 of h2Listeners) h2.setIdleTimeout(next.config.timeouts.idle);
    connections.perClientLimit = next.config.limits.connectionsPerClient;
    budget.limits = budgetLimits(next.config);
    if (adminAuth && nextAdminAuth) {
      const retired = adminAuth;
      adminAuth = nextAdminAuth;
      // An admin request being checked against the old credentials finishes first.
      retireAdminAuth(retired);
    }
    previous.handLimiterTo(next);
    // What the old configuration built closes once the last flow that started on it is over
    // (a long stream or WebSocket keeps it); nothing is cut.
    void previous.activity.whenIdle().then(() => previous.close());
    return { applied: true, changed };
  };
  const reload = oneAtATime(async (): Promise<ReloadOutcome> => {
    const result = await applyReload();
    const sha256 = configDigest(configFile);
    audit.writeConfigEvent({ event: 'reload', outcome: result.applied ? 'applied' : 'refused', reason: result.applied ? null : result.reason, config: configFile, sha256 });
    metrics.configReloads.inc({ outcome: result.applied ? 'applied' : 'refused' });
    if (result.applied) logger.info({ config: configFile, changed: result.changed, sha256 }, 'configuration reloaded');
    else logger.warn({ config: configFile, reason: result.reason }, 'configuration reload refused; the running configuration is kept');
    return result;
  });

  return {
    get config() {
      return current.config;
    },
    metrics,
    audit,
    get limiter() {
      return current.limiter;
    },
    addresses,
    reopenAudit: () => audit.reopen(),
    reload,
    async drain(graceMs = current.config.timeouts.drain) {
      draining = true;
      const { forced } = await drainListeners({ servers, h2Listeners, connections, activity, dashboard, logger }, graceMs);
      await closeAll();
      return { forced };
    },
  };
}

/** limits.bufferedBodyBytes(PerClient) as the body budget's bounds. */
function budgetLimits(config: Config) {
  return { totalBytes: config.limits.bufferedBodyBytes, perClientBytes: config.limits.bufferedBodyBytesPerClient };
}


/** How long a forward connection over its client's cap may take to send the request it is refused. */
const OVER_LIMIT_WAIT_MS = 5_000;
/** Refusals for the per-client cap are logged at most this often (with the count meanwhile). */
const OVER_LIMIT_LOG_EVERY_MS = 10_000;

/** Counts every refusal for limits.connectionsPerClient; logs them at most every 10 s. */
function overLimitReporter(limit: () => number, metrics: Metrics, logger: Logger): (listener: TrafficListener, ip: string) => void {
  const log = throttledReport(OVER_LIMIT_LOG_EVERY_MS, (refused, listener: TrafficListener, ip: string) =>
    logger.warn({ listener, client: ip, limit: limit(), refused }, 'client over limits.connectionsPerClient: connection refused (raise the limit if many users share this address)'),
  );
  return (listener, ip) => {
    metrics.connectionsRefused.inc({ listener, reason: 'per_client_limit' });
    log(listener, ip);
  };
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

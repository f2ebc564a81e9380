// Assembles a running aigate from a validated config: shared parts built once (metrics, audit,
// upstream agents, limiter, inspector, minter), the pipelines of each mode, and the listeners.
// Also owns the drain.
import { randomBytes } from 'node:crypto';
import type { AddressInfo, Server } from 'node:net';
import type { Logger } from 'pino';
import { AuditLog, MAX_BUFFERED_BYTES } from '../audit/log.js';
import { HtpasswdError } from '../auth/htpasswd.js';
import { ProxyAuthenticator } from '../auth/proxy-auth.js';
import { ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { Metrics } from '../metrics.js';
import { ActivityTracker } from '../pipeline/activity.js';
import { ProxyError } from '../pipeline/errors.js';
import type { Stage } from '../pipeline/exchange.js';
import { Pipeline } from '../pipeline/pipeline.js';
import { createInspector, type Inspector } from '../inspect/index.js';
import { PooledInspector, THREAD_MIN_BYTES, resolveScanThreads } from '../inspect/pool.js';
import { auditGuardStage } from '../pipeline/stages/audit-guard.js';
import { inspectStage } from '../pipeline/stages/inspect.js';
import { limitStage } from '../pipeline/stages/limit.js';
import { parseTargetStage } from '../pipeline/stages/parse-target.js';
import { readBodyStage } from '../pipeline/stages/read-body.js';
import { forwardRouteStage } from '../pipeline/stages/route-forward.js';
import { gatewayRouteStage } from '../pipeline/stages/route-gateway.js';
import { createRateLimiter, type RateLimiter } from '../ratelimit/index.js';
import { canonicalHost, compileConnectTo, formatHostPort, resolveDestination } from '../route/address.js';
import { compileEgress } from '../route/egress.js';
import { loadGatewayKeyPair, loadInterceptionCa, loadUpstreamCas } from '../tls/files.js';
import { LeafMinter } from '../tls/mint.js';
import { createUpstreamAgent } from '../upstream/agent.js';
import { forwardStage, type ForwardOptions } from '../upstream/forward.js';
import { rpcStage } from '../channels/envelopes/stage.js';
import { websocketStage } from '../upstream/websocket.js';
import { createDashboard } from '../dashboard/routes.js';
import { createAdminServer } from './admin.js';
import { isWorker, reportAuditState } from './cluster.js';
import { absoluteFormStage, createForwardServer, type Authenticate } from './forward.js';
import { createGatewayServer } from './gateway.js';
import { listen } from './listen.js';

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
  const closers: Array<() => Promise<unknown> | void> = [() => audit.close()];
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
  try {
    inspector = createInspector(config.inspect, { fingerprintKey });
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
    const pooled = new PooledInspector(inspector, { config: config.inspect, fingerprintKey, threads, alone, onDisabled });
    closers.push(() => pooled.close());
    inspector = pooled;
    sharedFromBytes = THREAD_MIN_BYTES; // what may go to a thread is read into shared memory
  }
  // Reading and inspecting the body always go together: nothing is forwarded unscanned.
  // timeouts.idle bounds a client's silence mid-body (the servers have no request timeout).
  const readWholeBody = readBodyStage({ maxBodyBytes: config.inspect.maxBodyBytes, sharedFromBytes, idleTimeoutMs: config.timeouts.idle });
  const readBody: Stage[] = [readWholeBody, inspectStage(inspector, config.inspect.maxBodyBytes)];
  const timeouts = { firstByteTimeout: config.timeouts.firstByte, idleTimeout: config.timeouts.idle };
  // gRPC, gRPC-Web and Connect: inspected message by message and forwarded as they go, in place
  // of read-body + inspect; every other request passes it untouched.
  const rpc = (forward: ForwardOptions): Stage =>
    rpcStage({ inspector, maxBodyBytes: config.inspect.maxBodyBytes, idleTimeoutMs: config.timeouts.idle, readBody: readWholeBody, forward });
  const pipelineDeps = { audit, metrics, logger, activity };

  const servers: Array<{ name: ListenerName; server: Server; host: string; port: number }> = [];
  /** Servers whose idle keep-alive connections a drain closes (includes the tunnel server). */
  const trafficServers: Server[] = [];

  if (config.listen.gateway) {
    // Gateway upstreams are named in config by the operator, so they are dialled as named.
    const dispatcher = createUpstreamAgent({
      config,
      extraCa,
      metrics,
      logger,
      dialTarget: (host, port) => connectTo.get(formatHostPort(canonicalHost(host)?.host ?? host, port)) ?? { host, port },
    });
    closers.unshift(() => dispatcher.destroy());
    const routed = [parseTargetStage, gatewayRouteStage(config), ...admit];
    const { cert, key } = loadGatewayKeyPair(config, configFile);
    const gateway = createGatewayServer({
      cert,
      key,
      minVersion: config.tls.minVersion,
      requests: new Pipeline([...routed, rpc({ dispatcher, metrics, ...timeouts }), ...readBody, forwardStage({ dispatcher, metrics, ...timeouts })], pipelineDeps),
      upgrades: new Pipeline([...routed, websocketStage({ dispatcher, ...timeouts })], pipelineDeps),
      audit,
      metrics,
    });
    servers.push({ name: 'gateway', server: gateway, ...config.listen.gateway });
    trafficServers.push(gateway);
  }

  if (config.listen.forward) {
    const egress = compileEgress(config.egress, undefined, configFile);
    const resolve = (host: string, port: number) =>
      resolveDestination(host, port, { connectTo, denyPrivateAddresses: config.egress.denyPrivateAddresses });
    // Forward destinations are whatever clients ask for: the address is resolved and checked at
    // dial time and the checked address is the one dialled (no DNS-rebinding window).
    const dispatcher = createUpstreamAgent({
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
    const minter = new LeafMinter(loadInterceptionCa(config, configFile).pair, { secureContextOptions: { minVersion: config.tls.minVersion } });
    await minter.ready();
    const auth = loadProxyAuth(config, configFile);
    closers.unshift(() => auth.close());
    const authenticate: Authenticate = async (header) => {
      const outcome = await auth.authenticate(header);
      if (outcome.ok) return outcome.user;
      throw new ProxyError('proxy_auth_required', outcome.message, { 'proxy-authenticate': outcome.challenge });
    };
    const accepted = [parseTargetStage, absoluteFormStage(egress, authenticate), forwardRouteStage(config), ...admit];
    const forward = createForwardServer({
      config,
      egress,
      minter,
      requests: new Pipeline([...accepted, rpc({ dispatcher, metrics, ...timeouts }), ...readBody, forwardStage({ dispatcher, metrics, ...timeouts })], pipelineDeps),
      upgrades: new Pipeline([...accepted, websocketStage({ dispatcher, ...timeouts })], pipelineDeps),
      audit,
      metrics,
      activity,
      logger,
      authenticate,
      resolve,
    });
    servers.push({ name: 'forward', server: forward.outer, ...config.listen.forward });
    trafficServers.push(forward.outer, forward.inner);
  }

  for (const server of trafficServers) {
    server.on('request', (_req, res) => {
      if (draining) res.shouldKeepAlive = false;
    });
  }
  let dashboard: ReturnType<typeof createDashboard> | undefined;
  if (config.listen.admin) {
    dashboard = createDashboard({ audit, limiter, config });
    servers.push({ name: 'admin', server: createAdminServer(metrics.registry, { ready: () => ready && !draining && !audit.refusesTraffic() }, dashboard.routes), ...config.listen.admin });
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
      // Keep-alive connections between requests would hold the drain open: close them now and
      // again as in-flight responses finish (their connections turn idle).
      const closeIdle = () => {
        for (const server of trafficServers) (server as unknown as { closeIdleConnections(): void }).closeIdleConnections();
      };
      closeIdle();
      const sweeper = setInterval(closeIdle, 100);
      const finished = await activity.idle(graceMs);
      clearInterval(sweeper);
      const forced = finished ? 0 : activity.active;
      dashboard?.close(); // open dashboard event streams end before the admin server closes
      for (const server of [...trafficServers, ...servers.map((s) => s.server)]) {
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
        server.close();
      }
      // Forced-closed flows write their audit lines as their sockets close.
      if (!finished) await activity.idle(1000);
      await closeAll();
      return { forced };
    },
  };
}

/** `auth.usersFile` loaded once; a refusal becomes a 407 with Proxy-Authenticate. */
function loadProxyAuth(config: Config, configFile: string): ProxyAuthenticator {
  try {
    return ProxyAuthenticator.fromConfig(config.auth);
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
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(configFile, 'audit.file', `cannot open ${config.audit.file} for appending (${code})`);
  }
}

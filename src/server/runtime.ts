// What one configuration builds: the inspector and its scan threads, the limiter, the upstream
// agents, the interception CA's minter, proxy authentication, the gateway's certificate, and the
// stage lists of each mode's pipelines. The process (server/proxy.ts) keeps its listeners,
// connections, audit log and metrics across reloads and swaps one Runtime for the next; flows
// already running finish on the Runtime they started with, which closes once its last one is over.
import { randomBytes, X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/log.js';
import { HtpasswdError } from '../auth/htpasswd.js';
import { ProxyAuthenticator } from '../auth/proxy-auth.js';
import { ConfigError, readConfiguredFile } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { createInspector, type Inspector } from '../inspect/index.js';
import { PooledInspector, THREAD_MIN_BYTES, resolveScanThreads } from '../inspect/pool.js';
import { loadProtectedCode } from '../inspect/protected.js';
import { timedInspector } from '../inspect/timed.js';
import type { Metrics } from '../metrics.js';
import type { ActivityTracker } from '../pipeline/activity.js';
import type { BodyBudget } from '../pipeline/body-budget.js';
import { ProxyError } from '../pipeline/errors.js';
import type { Stage } from '../pipeline/exchange.js';
import { auditGuardStage } from '../pipeline/stages/audit-guard.js';
import { credentialStage } from '../pipeline/stages/credential.js';
import { inspectStage } from '../pipeline/stages/inspect.js';
import { inspectUrlPart, inspectUrlStage } from '../pipeline/stages/inspect-url.js';
import { limitStage } from '../pipeline/stages/limit.js';
import { parseTargetStage } from '../pipeline/stages/parse-target.js';
import { ClientAbortedError, readBodyStage } from '../pipeline/stages/read-body.js';
import { forwardRouteStage } from '../pipeline/stages/route-forward.js';
import { gatewayRouteStage } from '../pipeline/stages/route-gateway.js';
import { upstreamHeadersStage } from '../pipeline/stages/upstream-headers.js';
import { createRateLimiter, type RateLimiter } from '../ratelimit/index.js';
import { canonicalHost, compileConnectTo, formatHostPort, resolveDestination, type Destination } from '../route/address.js';
import { compileEgress, type EgressPolicy } from '../route/egress.js';
import { loadGatewayKeyPair, loadInterceptionCa, loadUpstreamCas } from '../tls/files.js';
import { LeafMinter } from '../tls/mint.js';
import { createUpstreamAgents } from '../upstream/agent.js';
import { forwardStage, type ForwardOptions } from '../upstream/forward.js';
import { UpstreamHeaderPolicy } from '../upstream/tenancy.js';
import { websocketStage } from '../upstream/websocket.js';
import { rpcStage } from '../channels/envelopes/stage.js';
import { isWorker } from './cluster.js';
import { createClientIdentity, TrustedProxies, type ClientIdentity } from './client-identity.js';
import { overLimitError, type ConnectionRegistry } from './connections.js';
import { absoluteFormStage, type Authenticate, type InspectHost } from './forward.js';

/** What a Runtime builds on: the process's parts, which outlive every configuration. */
export interface ProcessParts {
  configFile: string;
  logger: Logger;
  metrics: Metrics;
  audit: AuditLog;
  /** The process's tracker: every generation's work counts in it (the drain waits on it). */
  activity: ActivityTracker;
  connections: ConnectionRegistry;
  budget: BodyBudget;
  /**
   * The key of finding fingerprints when `audit.fingerprintKey` is not set: random, but one per
   * process, so the same secret keeps its fingerprint across reloads.
   */
  fallbackFingerprintKey: Buffer;
}

/** Each mode's pipelines: the stages of plain requests and of upgrade requests. */
export interface ModeStages {
  requests: Stage[];
  upgrades: Stage[];
}

export interface GatewayParts extends ModeStages {
  /** The listener's secure context: certificate, key, minimum version, client CA for mTLS. */
  tls: { cert: Buffer; key: Buffer; minVersion: Config['tls']['minVersion']; ca?: Buffer };
  clients: ClientIdentity;
}

export interface ForwardParts extends ModeStages {
  egress: EgressPolicy;
  minter: LeafMinter;
  authenticate: Authenticate;
  inspectHost: InspectHost;
  resolve: (host: string, port: number) => Promise<Destination>;
  clients: ClientIdentity;
}

/** Closes one thing a Runtime built; `force` (the drain is over) need not wait for what is in flight. */
type Closer = (force: boolean) => Promise<unknown> | void;

export class Runtime {
  /** Becomes false when a newer Runtime takes over the limiter (it is then that one's to close). */
  private ownsLimiter = true;
  private closed: Promise<void> | undefined;

  constructor(
    readonly config: Config,
    /** This generation's work (flows, CONNECTs being answered, WebSockets), counted in the process's too. */
    readonly activity: ActivityTracker,
    readonly inspector: Inspector,
    readonly limiter: RateLimiter | undefined,
    readonly gateway: GatewayParts | undefined,
    readonly forward: ForwardParts | undefined,
    private readonly closers: Closer[],
  ) {}

  /** The limiter (and its buckets) carries over to `next` when the rate-limit config is unchanged. */
  handLimiterTo(next: Runtime): void {
    if (next.limiter === this.limiter) this.ownsLimiter = false;
  }

  /**
   * Closes what this configuration built (scan threads, upstream pools, auth threads, limiter).
   * `force`: the drain is over and every connection closed, so nothing in flight is waited for.
   */
  close(force = false): Promise<void> {
    this.closed ??= (async () => {
      for (const close of this.closers) await Promise.resolve(close(force)).catch(() => undefined);
      if (this.ownsLimiter) await this.limiter?.close().catch(() => undefined);
    })();
    return this.closed;
  }
}

/**
 * Builds everything `config` describes on top of the process's parts. Throws ConfigError (with the
 * key path) when a file it names is missing or invalid; what was built before is closed then.
 * `previous`: the running Runtime on a reload (its limiter is reused when `rateLimit` is unchanged).
 */
export async function buildRuntime(config: Config, parts: ProcessParts, previous?: Runtime): Promise<Runtime> {
  const closers: Closer[] = [];
  // Buckets live in the limiter: an unchanged rate-limit config keeps them (and its Redis client).
  const limiter = !config.rateLimit.enabled
    ? undefined
    : previous?.limiter && sameJson(previous.config.rateLimit, config.rateLimit)
      ? previous.limiter
      : createRateLimiter(config.rateLimit, { logger: parts.logger, metrics: parts.metrics });
  try {
    const built = await assemble(config, parts, closers, limiter);
    return new Runtime(config, built.activity, built.inspector, limiter, built.gateway, built.forward, closers);
  } catch (err) {
    for (const close of closers) await Promise.resolve(close(true)).catch(() => undefined);
    if (limiter !== previous?.limiter) await limiter?.close().catch(() => undefined);
    throw err;
  }
}

async function assemble(config: Config, parts: ProcessParts, closers: Closer[], limiter: RateLimiter | undefined) {
  const { configFile, logger, metrics, audit, connections, budget } = parts;
  const activity = parts.activity.child();
  const extraCa = loadUpstreamCas(config, configFile);
  const connectTo = compileConnectTo(config.connectTo);

  // Stages shared by both modes, in SPEC order. A stage switched off in config is left out.
  // `admit` runs once a request is routed and its user known: the audit guard, then the limiter.
  const admit: Stage[] = [
    ...(config.audit.onWriteError === 'deny' ? [auditGuardStage(audit)] : []),
    ...(limiter ? [limitStage(config.rateLimit, limiter)] : []),
  ];
  // One key for the event loop and the scan threads: a finding's fingerprint must not depend on
  // which thread scanned the body.
  const fingerprintKey = config.audit.fingerprintKey ? Buffer.from(config.audit.fingerprintKey) : parts.fallbackFingerprintKey;
  // Vendor-key fingerprints (audit client.credential, rateLimit.key: credential), before the limiter.
  admit.unshift(credentialStage(fingerprintKey));
  let inspector: Inspector;
  let protectedCode;
  try {
    // Loaded once into shared memory: the scan threads read the same indexes.
    protectedCode = loadProtectedCode(config.inspect.fingerprints, { share: true });
    inspector = createInspector(config.inspect, { fingerprintKey, protectedCode });
  } catch (err) {
    // Messages already lead with the key path (inspect.rules.custom[0].pattern: …).
    throw new ConfigError(configFile, '', (err as Error).message);
  }
  const threads = resolveScanThreads(config.inspect.scanThreads, { clusterWorker: isWorker() });
  let sharedFromBytes = Infinity;
  if (threads > 0) {
    // Every flow, WebSocket and blind tunnel counts itself while open, the scanned request included.
    const alone = () => parts.activity.active <= 1;
    const onDisabled = (reason: string) => logger.warn({ reason }, 'scan threads unavailable: large bodies are scanned on the event loop');
    const pooled = new PooledInspector(inspector, { config: config.inspect, fingerprintKey, protectedCode, threads, alone, onDisabled });
    closers.push(() => pooled.close());
    inspector = pooled;
    sharedFromBytes = THREAD_MIN_BYTES; // what may go to a thread is read into shared memory
  }
  inspector = timedInspector(inspector, metrics);
  // Reading and inspecting the body always go together: nothing is forwarded unscanned.
  // timeouts.idle bounds a client's silence mid-body (the servers have no request timeout).
  const readWholeBody = readBodyStage({ maxBodyBytes: config.inspect.maxBodyBytes, sharedFromBytes, idleTimeoutMs: config.timeouts.idle, budget });
  const readBody: Stage[] = [readWholeBody, inspectStage(inspector, config.inspect.maxBodyBytes)];
  // The path and query go upstream too: scanned once routed and admitted, before the body is read.
  const inspectUrl = inspectUrlStage(inspector);
  const timeouts = { firstByteTimeout: config.timeouts.firstByte, idleTimeout: config.timeouts.idle };
  // A WebSocket message is inspected as a body is: the same inspector, limit, audit and metrics.
  // Its connection counts in this generation: the inspector it uses stays open while it lasts.
  const websocket = { ...timeouts, inspector, maxBodyBytes: config.inspect.maxBodyBytes, audit, metrics, activity, budget };
  // gRPC, gRPC-Web and Connect: inspected message by message and forwarded as they go, in place
  // of read-body + inspect; every other request passes it untouched.
  const rpc = (forward: ForwardOptions): Stage =>
    rpcStage({ inspector, maxBodyBytes: config.inspect.maxBodyBytes, idleTimeoutMs: config.timeouts.idle, readBody: readWholeBody, forward, budget });
  const trustedProxies = new TrustedProxies(config.trustedProxies);

  let gateway: GatewayParts | undefined;
  if (config.listen.gateway) {
    // Gateway upstreams are named in config by the operator, so they are dialled as named.
    const { requests: dispatcher, upgrades: upgradeDispatcher } = createUpstreamAgents({
      config,
      extraCa,
      metrics,
      logger,
      dialTarget: (host, port) => connectTo.get(formatHostPort(canonicalHost(host)?.host ?? host, port)) ?? { host, port },
    });
    closers.push((force) => (force ? dispatcher.destroy() : dispatcher.close()));
    if (upgradeDispatcher !== dispatcher) closers.push((force) => (force ? upgradeDispatcher.destroy() : upgradeDispatcher.close()));
    const routed = [parseTargetStage, gatewayRouteStage(config), ...headerStage(UpstreamHeaderPolicy.forGateway(config)), ...admit, inspectUrl];
    const { cert, key } = loadGatewayKeyPair(config, configFile);
    const mtls = config.listen.gateway.clientCertificate;
    const tls = { cert, key, minVersion: config.tls.minVersion, ...(mtls ? { ca: loadClientCa(configFile, mtls.ca) } : {}) };
    try {
      // What the listener will be given (at start, or by a reload after the swap): it must not fail then.
      createSecureContext(tls);
    } catch (err) {
      throw new ConfigError(configFile, 'tls', `the gateway's TLS settings are unusable (${(err as Error).message})`);
    }
    gateway = {
      requests: [...routed, rpc({ dispatcher, metrics, ...timeouts }), ...readBody, forwardStage({ dispatcher, metrics, ...timeouts })],
      upgrades: [...routed, websocketStage({ dispatcher: upgradeDispatcher, ...websocket })],
      tls,
      clients: createClientIdentity({ trustedProxies, certificateUserField: mtls?.userField }),
    };
  }

  let forward: ForwardParts | undefined;
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
    closers.push((force) => (force ? dispatcher.destroy() : dispatcher.close()));
    if (upgradeDispatcher !== dispatcher) closers.push((force) => (force ? upgradeDispatcher.destroy() : upgradeDispatcher.close()));
    const minter = new LeafMinter(loadInterceptionCa(config, configFile).pair, { secureContextOptions: { minVersion: config.tls.minVersion } });
    await minter.ready();
    const auth = loadProxyAuth(config, configFile, metrics);
    closers.push(() => auth.close());
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
    forward = {
      requests: [...accepted, rpc({ dispatcher, metrics, ...timeouts }), ...readBody, forwardStage({ dispatcher, metrics, ...timeouts })],
      upgrades: [...accepted, websocketStage({ dispatcher: upgradeDispatcher, ...websocket })],
      egress,
      minter,
      authenticate,
      inspectHost,
      resolve,
      clients: createClientIdentity({ trustedProxies }),
    };
  }
  return { activity, inspector, gateway, forward };
}


/** True when two config sections serialise alike (config values are plain JSON data). */
export function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** A random key for finding fingerprints when `audit.fingerprintKey` is not set. */
export function randomFingerprintKey(): Buffer {
  return randomBytes(32);
}

/** The stage that sets tenancy / setHeaders headers, or none when the config sets no header. */
function headerStage(policy: UpstreamHeaderPolicy): Stage[] {
  return policy.empty ? [] : [upstreamHeadersStage(policy)];
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

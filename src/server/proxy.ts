// Assembles a running aigate from a validated config: shared parts built once (metrics, audit,
// upstream agent, limiter, inspector), the pipelines, and the listeners. Also owns the drain.
import type { Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import type { Logger } from 'pino';
import { AuditLog } from '../audit/log.js';
import { readConfiguredFile } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { Metrics } from '../metrics.js';
import { ActivityTracker } from '../pipeline/activity.js';
import { Pipeline } from '../pipeline/pipeline.js';
import { parseTargetStage } from '../pipeline/stages/parse-target.js';
import { limitStage } from '../pipeline/stages/limit.js';
import { readBodyStage } from '../pipeline/stages/read-body.js';
import { createRateLimiter, type RateLimiter } from '../ratelimit/index.js';
import { gatewayRouteStage } from '../pipeline/stages/route-gateway.js';
import { connectToMap, createConnector } from '../upstream/connector.js';
import { forwardStage } from '../upstream/forward.js';
import { websocketStage } from '../upstream/websocket.js';
import { createAdminServer } from './admin.js';
import { createGatewayServer } from './gateway.js';

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

export async function startProxy(config: Config, opts: StartOptions): Promise<RunningProxy> {
  const { configFile, logger } = opts;
  const extraCa = config.upstreamTls.ca.map((file, i) =>
    readConfiguredFile(configFile, `upstreamTls.ca[${i}]`, file).toString('utf8'),
  );
  const metrics = new Metrics({ processMetrics: opts.processMetrics });
  const audit = new AuditLog(config.audit);
  const activity = new ActivityTracker();
  let draining = false;
  let ready = false;

  const connectTo = connectToMap(config.connectTo);
  const dispatcher = new Agent({
    connect: createConnector({
      extraCa,
      pins: config.upstreamTls.pins,
      connectTimeout: config.timeouts.connect,
      // Gateway upstreams are named in config by the operator, so they are dialled as named.
      dialTarget: (host, port) => connectTo(host, port) ?? { host, port },
      onPinMismatch: (err) => {
        metrics.upstreamCertificateErrors.inc({ host: err.host });
        logger.warn({ host: err.host, seenPin: err.seen }, 'upstream certificate matches no configured pin; connection refused');
      },
    }),
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 300_000,
  });

  const limiter: RateLimiter | undefined = config.rateLimit.enabled
    ? createRateLimiter(config.rateLimit, { logger, metrics })
    : undefined;

  if (limiter && config.rateLimit.store === 'redis') {
    // Give Redis a moment so the first requests are limited by the shared bucket; a Redis that is
    // down must not stop the proxy, so after the wait requests get rateLimit.onStoreError.
    const waitMs = Math.min(config.timeouts.connect, 3000);
    if (!(await limiter.whenReady(waitMs))) {
      logger.warn({ waitedMs: waitMs, onStoreError: config.rateLimit.onStoreError }, 'rate-limit Redis not reachable at start-up; requests get onStoreError until it is');
    }
  }

  const pipelineDeps = { audit, metrics, logger, activity };
  // Stages in SPEC order; a stage that is switched off in config is left out, not stubbed.
  const routed = [
    parseTargetStage,
    gatewayRouteStage(config),
    ...(limiter ? [limitStage(config.rateLimit, limiter)] : []),
  ];
  const timeouts = { firstByteTimeout: config.timeouts.firstByte, idleTimeout: config.timeouts.idle };
  const requests = new Pipeline(
    [...routed, readBodyStage(config.inspect.maxBodyBytes), forwardStage({ dispatcher, metrics, ...timeouts })],
    pipelineDeps,
  );
  const upgrades = new Pipeline([...routed, websocketStage({ dispatcher, ...timeouts })], pipelineDeps);

  const servers: Array<{ name: 'gateway' | 'forward' | 'admin'; server: Server; host: string; port: number }> = [];
  if (config.listen.gateway) {
    const gateway = createGatewayServer({
      cert: readConfiguredFile(configFile, 'tls.cert', config.tls.cert),
      key: readConfiguredFile(configFile, 'tls.key', config.tls.key),
      minVersion: config.tls.minVersion,
      requests,
      upgrades,
      audit,
      metrics,
    });
    gateway.on('request', (_req, res) => {
      if (draining) res.shouldKeepAlive = false;
    });
    servers.push({ name: 'gateway', server: gateway, ...config.listen.gateway });
  }
  if (config.listen.admin) {
    servers.push({ name: 'admin', server: createAdminServer(metrics, { ready: () => ready && !draining }), ...config.listen.admin });
  }

  const addresses: RunningProxy['addresses'] = {};
  try {
    for (const s of servers) {
      await listen(s.server, s.host, s.port);
      addresses[s.name] = s.server.address() as AddressInfo;
    }
  } catch (err) {
    for (const s of servers) s.server.close();
    await dispatcher.close();
    await limiter?.close();
    audit.close();
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
      const traffic = servers.filter((s) => s.name !== 'admin');
      for (const s of traffic) s.server.close();
      // Keep-alive connections between requests would hold the drain open: close them now and
      // again as in-flight responses finish (their connections turn idle).
      const closeIdle = () => {
        for (const s of traffic) (s.server as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
      };
      closeIdle();
      const sweeper = setInterval(closeIdle, 100);
      const finished = await activity.idle(graceMs);
      clearInterval(sweeper);
      const forced = finished ? 0 : activity.active;
      for (const s of servers) {
        (s.server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
        s.server.close();
      }
      if (!finished) await activity.idle(1000);
      await dispatcher.destroy().catch(() => undefined);
      await limiter?.close().catch(() => undefined);
      audit.close();
      return { forced };
    },
  };
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(new Error(`cannot listen on ${host}:${port}: ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

// One undici Agent per kind of destination, built once at start-up: keep-alive pools per origin,
// the connector's TLS rules, and the dialling policy of the mode.
import { Agent } from 'undici';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Metrics } from '../metrics.js';
import { createConnector, type DialTarget } from './connector.js';

export interface UpstreamAgentOptions {
  config: Config;
  extraCa: string[];
  metrics: Metrics;
  logger: Logger;
  dialTarget: (host: string, port: number) => DialTarget | Promise<DialTarget>;
  /**
   * For WebSocket upgrades: HTTP/1.1 only whatever upstreamTls.http2 says (an upgrade is an
   * HTTP/1.1 mechanism; RFC 8441's extended CONNECT is not used).
   */
  http1Only?: boolean;
}

/**
 * The agent for requests and the one for WebSocket upgrades: the same one when upstreamTls.http2
 * is off; with auto, upgrades get their own HTTP/1.1 pool (an h2 session to the same origin
 * cannot carry them).
 */
export function createUpstreamAgents(opts: UpstreamAgentOptions): { requests: Agent; upgrades: Agent } {
  const requests = createUpstreamAgent(opts);
  if (opts.config.upstreamTls.http2 === 'off') return { requests, upgrades: requests };
  return { requests, upgrades: createUpstreamAgent({ ...opts, http1Only: true }) };
}

export function createUpstreamAgent(opts: UpstreamAgentOptions): Agent {
  const { config, metrics, logger } = opts;
  // upstreamTls.http2 auto: HTTP/2 where the upstream's ALPN picks it (gRPC and Connect
  // bidirectional streams need it), HTTP/1.1 elsewhere; one pooled session per origin either way.
  const allowH2 = config.upstreamTls.http2 === 'auto' && opts.http1Only !== true;
  return new Agent({
    allowH2,
    connect: createConnector({
      extraCa: opts.extraCa,
      pins: config.upstreamTls.pins,
      connectTimeout: config.timeouts.connect,
      allowH2,
      dialTarget: opts.dialTarget,
      onPinMismatch: (err) => {
        metrics.upstreamCertificateErrors.inc({ host: err.host });
        logger.warn({ host: err.host, seenPin: err.seen }, 'upstream certificate matches no configured pin; connection refused');
      },
    }),
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 300_000,
  });
}

// One undici Agent per kind of destination, built once at start-up: keep-alive pools per origin,
// the connector's TLS rules, and the dialling policy of the mode.
import { Agent } from 'undici';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Metrics } from '../metrics.js';
import { createConnector, type DialTarget } from './connector.js';

export function createUpstreamAgent(opts: {
  config: Config;
  extraCa: string[];
  metrics: Metrics;
  logger: Logger;
  dialTarget: (host: string, port: number) => DialTarget | Promise<DialTarget>;
}): Agent {
  const { config, metrics, logger } = opts;
  return new Agent({
    connect: createConnector({
      extraCa: opts.extraCa,
      pins: config.upstreamTls.pins,
      connectTimeout: config.timeouts.connect,
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

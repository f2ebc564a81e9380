// Forward-mode routing stage: the destination was fixed and checked against the egress allowlist
// when the tunnel (or absolute-form request) was accepted; here it becomes the flow's target.
// The Host header inside the tunnel is ignored: it cannot redirect a request to another host.
import type { Config } from '../../config/schema.js';
import { isIP } from 'node:net';
import type { Stage } from '../exchange.js';

export function forwardRouteStage(config: Config): Stage {
  const bucket = { rate: config.rateLimit.rate, burst: config.rateLimit.burst };
  return (ex) => {
    const dest = ex.destination!;
    const defaultPort = dest.scheme === 'https' ? 443 : 80;
    const hostPart = isIP(dest.host) === 6 ? `[${dest.host}]` : dest.host;
    const authority = dest.port === defaultPort ? hostPart : `${hostPart}:${dest.port}`;
    ex.flow.route = dest.rule.host;
    ex.flow.host = dest.host;
    if (dest.hostAsSent !== undefined) ex.flow.hostAsSent = dest.hostAsSent;
    ex.target = {
      route: dest.rule.host,
      origin: `${dest.scheme}://${authority}`,
      hostHeader: authority,
      // The real host is fixed, so the path goes on exactly as the client wrote it.
      path: ex.rawPath + ex.query,
      action: dest.rule.action ?? config.inspect.action,
      bucket,
      bucketIsOverride: false,
      websocket: dest.rule.websocket ?? 'inspect',
    };
  };
}

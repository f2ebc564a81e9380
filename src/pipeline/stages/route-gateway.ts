// Gateway routing stage: normalised path → route (SPEC §3). No route: 404.
import type { Config } from '../../config/schema.js';
import { Router } from '../../route/router.js';
import { ProxyError } from '../errors.js';
import type { Stage } from '../exchange.js';

export function gatewayRouteStage(config: Config): Stage {
  const router = new Router(config.routes);
  const defaultBucket = { rate: config.rateLimit.rate, burst: config.rateLimit.burst };
  return (ex) => {
    // The listener already normalised the path into the flow (it is what gets audited).
    const path = ex.flow.path ?? '/';
    const match = router.match(path, ex.query);
    if (!match) throw new ProxyError('not_found', `no route for ${path}; routes: ${config.routes.map((r) => r.prefix).join(', ') || 'none configured'}`);
    ex.flow.route = match.route;
    ex.flow.host = match.hostHeader;
    ex.target = {
      route: match.route,
      origin: match.origin,
      hostHeader: match.hostHeader,
      path: match.path,
      action: match.action ?? config.inspect.action,
      bucket: match.bucket ?? defaultBucket,
      bucketIsOverride: match.bucket !== undefined,
      websocket: match.websocket ?? 'inspect',
    };
  };
}

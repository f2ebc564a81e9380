// Sets the headers aigate adds to the routed request (tenant restriction, setHeaders): after
// routing, so the destination is known; the forwarding stages send them. Left out of the pipeline
// when the config sets none.
import type { UpstreamHeaderPolicy } from '../../upstream/tenancy.js';
import type { Stage } from '../exchange.js';

export function upstreamHeadersStage(policy: UpstreamHeaderPolicy): Stage {
  return (ex) => {
    const target = ex.target!;
    ex.upstreamHeaders = policy.headersFor(target.route, hostName(target.hostHeader));
  };
}

/** `api.example.com:8443` → `api.example.com`, `[::1]:443` → `::1`. */
function hostName(authority: string): string {
  if (authority.startsWith('[')) return authority.slice(1, authority.indexOf(']'));
  const colon = authority.indexOf(':');
  return (colon < 0 ? authority : authority.slice(0, colon)).toLowerCase();
}

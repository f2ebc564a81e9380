// Headers aigate sets on requests to an upstream, replacing whatever the client sent (never merged):
// the vendors' tenant restrictions, and the operator's own per-route / per-allow-entry setHeaders.
//
// Tenant restriction is how a vendor lets an intercepting proxy say "only these organisations'
// accounts may be used from this network": the vendor refuses a personal or foreign account that
// arrives without its organisation in the header. Without it, a developer signed in with a personal
// account sends company code to a place the company has no contract with — the largest
// exfiltration path an AI-tool proxy can close. Each entry is the vendor's documented header and
// the hosts its documentation names (`*.` names every subdomain). Cursor's header is the one our
// operations issue (#17) names; we could not find it in Cursor's public documentation, so the docs
// tell operators to confirm with Cursor that it is enforced.
import type { Config } from '../config/schema.js';

export type TenancyConfig = Config['tenancy'];
export type HeaderList = ReadonlyArray<readonly [name: string, value: string]>;

interface TenancyVendor {
  header: string;
  hosts: readonly string[];
  source: string;
}

export const TENANCY_VENDORS: Readonly<Record<keyof TenancyConfig, TenancyVendor>> = {
  anthropic: {
    header: 'anthropic-allowed-org-ids',
    hosts: ['api.anthropic.com', 'claude.ai'],
    source: 'https://support.claude.com/en/articles/13198485 (Tenant Restrictions)',
  },
  github: {
    header: 'sec-github-allowed-enterprise',
    // Copilot's own API hosts too (api.githubcopilot.com, api.business.githubcopilot.com, …).
    hosts: ['github.com', 'api.github.com', '*.githubcopilot.com'],
    source: 'https://docs.github.com/en/enterprise-cloud@latest/admin/configuring-settings/hardening-security-for-your-enterprise/restricting-access-to-githubcom-using-a-corporate-proxy',
  },
  openai: {
    header: 'openai-allowed-organization-ids',
    hosts: ['api.openai.com'],
    source: 'https://developers.openai.com/api/docs/guides/organization-blocking',
  },
  gemini: {
    header: 'x-geminicodeassist-allowed-domains',
    hosts: ['cloudcode-pa.googleapis.com'],
    source: 'https://cloud.google.com/gemini/docs/codeassist/network-access',
  },
  cursor: {
    header: 'x-cursor-allowed-tenants',
    hosts: ['cursor.sh', '*.cursor.sh'],
    source: 'issue #17 (not found in Cursor\'s public documentation: confirm with Cursor that it is enforced)',
  },
};

const NONE: HeaderList = [];

/**
 * What to set on requests for one listener's destinations, resolved once per (destination, host)
 * and cached: the tenancy headers of the vendor whose host it is, then the destination's own
 * setHeaders (which win on the same name).
 */
export class UpstreamHeaderPolicy {
  private readonly byHost = new Map<string, HeaderList>();
  /** `*.suffix` entries: [".suffix", headers], for hosts under a vendor's domain. */
  private readonly bySuffix: Array<readonly [string, HeaderList]> = [];
  private readonly cache = new Map<string, HeaderList>();

  constructor(
    tenancy: TenancyConfig,
    /** setHeaders by destination: route name (gateway) or allow entry host pattern (forward). */
    private readonly byDestination: ReadonlyMap<string, Readonly<Record<string, string>>>,
  ) {
    for (const [vendor, ids] of Object.entries(tenancy) as Array<[keyof TenancyConfig, string[]]>) {
      if (ids.length === 0) continue;
      const { header, hosts } = TENANCY_VENDORS[vendor];
      const entry = [header, ids.join(',')] as const;
      for (const host of hosts) {
        if (host.startsWith('*.')) this.bySuffix.push([host.slice(1), [entry]]);
        else this.byHost.set(host, [...(this.byHost.get(host) ?? []), entry]);
      }
    }
  }

  /** True when nothing is ever set: the stage is then left out. */
  get empty(): boolean {
    return this.byHost.size === 0 && this.bySuffix.length === 0 && this.byDestination.size === 0;
  }

  static forGateway(config: Config): UpstreamHeaderPolicy {
    return new UpstreamHeaderPolicy(config.tenancy, new Map(config.routes.flatMap((r) => (r.setHeaders ? [[r.name, r.setHeaders] as const] : []))));
  }

  static forForward(config: Config): UpstreamHeaderPolicy {
    return new UpstreamHeaderPolicy(config.tenancy, new Map(config.egress.allow.flatMap((a) => (a.setHeaders ? [[a.host.toLowerCase(), a.setHeaders] as const] : []))));
  }

  /** `host` is the upstream's host name (no port), lower-case. */
  headersFor(destination: string, host: string): HeaderList {
    const key = `${destination}\0${host}`;
    let list = this.cache.get(key);
    if (list === undefined) {
      const merged = new Map<string, string>();
      for (const [name, value] of this.byHost.get(host) ?? NONE) merged.set(name, value);
      for (const [suffix, list] of this.bySuffix) if (host.endsWith(suffix)) for (const [name, value] of list) merged.set(name, value);
      for (const [name, value] of Object.entries(this.byDestination.get(destination) ?? {})) merged.set(name.toLowerCase(), value);
      list = merged.size === 0 ? NONE : [...merged];
      // Destinations are config entries and hosts are the ones they allow: bounded, except for
      // wildcard entries, whose hosts are whatever clients ask for — so the cache is capped.
      if (this.cache.size < 10_000) this.cache.set(key, list);
    }
    return list;
  }
}

// Forward-mode allowlist (SPEC §4): default deny, compiled once at start-up into two hash maps so
// a CONNECT costs a few map lookups whatever the list's length.
//
// Matching rules:
//  - host names are compared in canonical form (lower case, IDNA, no trailing dot; see canonicalHost);
//  - `*.example.com` matches one or more labels before example.com, never example.com itself;
//  - the most specific rule that allows the port wins: an exact host before any wildcard, a longer
//    wildcard suffix before a shorter one, and at equal specificity egress.allow before presets;
//  - an IP-literal destination (including disguised forms like 127.1) only matches a rule listing that
//    literal address; wildcards never match IPs.
import { ConfigError } from '../config/load.js';
import type { Action, Config, WebSocketPolicy } from '../config/schema.js';
import { canonicalHost, formatHostPort } from './address.js';
import { expandPresets, PRESETS, UnknownPresetError, type PresetCatalog } from './presets/index.js';

export interface EgressRule {
  /** Canonical exact host, `*.suffix`, or IP literal. */
  host: string;
  ports: readonly number[];
  inspect: boolean;
  /** Inspection action override for this host (block | redact | monitor). */
  action?: Action;
  /** WebSocket policy override for this host (inspect | refuse | relay). */
  websocket?: WebSocketPolicy;
  /** Where the rule came from: `egress.allow[2]` or `preset copilot`. */
  source: string;
  why?: string;
}

export type EgressMatch =
  | { rule: EgressRule; host: string }
  | { denied: string; host: string | null };

export interface EgressPolicy {
  /** Every rule, config entries first, then preset entries, in canonical form. */
  readonly rules: readonly EgressRule[];
  match(host: string, port: number): EgressMatch;
}

type EgressConfig = Pick<Config['egress'], 'allow' | 'presets'>;

/**
 * Compiles `egress.allow` and `egress.presets`. Throws ConfigError (key path + problem) for an unknown
 * preset, an invalid host, or a wildcard over a whole top-level domain.
 */
export function compileEgress(cfg: EgressConfig, presets: PresetCatalog = PRESETS, file = '<config>'): EgressPolicy {
  const rules: EgressRule[] = [];
  cfg.allow.forEach((a, i) => {
    const rule: EgressRule = { host: a.host, ports: a.ports, inspect: a.inspect, source: `egress.allow[${i}]` };
    if (a.action) rule.action = a.action;
    if (a.websocket) rule.websocket = a.websocket;
    rules.push(canonicalRule(rule, `egress.allow[${i}].host`, file));
  });
  let presetRules: EgressRule[];
  try {
    presetRules = expandPresets(cfg.presets, presets);
  } catch (err) {
    if (err instanceof UnknownPresetError) throw new ConfigError(file, `egress.presets[${err.index}]`, err.message);
    throw err;
  }
  for (const r of presetRules) rules.push(canonicalRule(r, r.source, file));

  const exact = new Map<string, EgressRule[]>();
  const wildcard = new Map<string, EgressRule[]>();
  for (const r of rules) {
    const [map, key] = r.host.startsWith('*.') ? [wildcard, r.host.slice(2)] : [exact, r.host];
    const list = map.get(key);
    if (list) list.push(r);
    else map.set(key, [r]);
  }

  return {
    rules,
    match(rawHost: string, port: number): EgressMatch {
      const c = canonicalHost(rawHost);
      if (!c) return { denied: `"${rawHost}" is not a valid host name`, host: null };
      const host = c.host;
      if (!Number.isInteger(port) || port < 1 || port > 65535) return { denied: `port ${port} is not a valid port`, host };

      const seenPorts = new Set<number>();
      const pick = (candidates: EgressRule[] | undefined): EgressRule | undefined => {
        if (!candidates) return undefined;
        for (const r of candidates) {
          if (r.ports.includes(port)) return r;
          for (const p of r.ports) seenPorts.add(p);
        }
        return undefined;
      };

      const direct = pick(exact.get(host));
      if (direct) return { rule: direct, host };
      if (c.ip === 0) {
        // Longest suffix first: for a.b.example.com try b.example.com, then example.com, then com.
        let dot = host.indexOf('.');
        while (dot !== -1) {
          const hit = pick(wildcard.get(host.slice(dot + 1)));
          if (hit) return { rule: hit, host };
          dot = host.indexOf('.', dot + 1);
        }
      }
      if (seenPorts.size > 0) {
        const allowed = [...seenPorts].sort((a, b) => a - b).join(', ');
        return { denied: `port ${port} is not allowed for ${host} (allowed: ${allowed})`, host };
      }
      if (c.ip !== 0) {
        return { denied: `${formatHostPort(host, port)} is an IP address not listed in egress.allow (IP destinations must be listed literally)`, host };
      }
      return { denied: `${host} is not in the egress allowlist`, host };
    },
  };
}

function canonicalRule(rule: EgressRule, keyPath: string, file: string): EgressRule {
  const wild = rule.host.startsWith('*.');
  const c = canonicalHost(wild ? rule.host.slice(2) : rule.host);
  if (!c) throw new ConfigError(file, keyPath, `"${rule.host}" is not a host name, IP address or *.domain`);
  if (wild && c.ip !== 0) throw new ConfigError(file, keyPath, `"${rule.host}": wildcards apply to names, not IP addresses`);
  if (wild && !c.host.includes('.')) {
    throw new ConfigError(file, keyPath, `"${rule.host}" would allow a whole top-level domain; name the domain (*.example.com)`);
  }
  return { ...rule, host: wild ? `*.${c.host}` : c.host, ports: [...rule.ports] };
}

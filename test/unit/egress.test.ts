import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/load.js';
import { parseConfig } from '../../src/config/load.js';
import { compileEgress, type EgressMatch } from '../../src/route/egress.js';
import { expandPresets, PRESETS, presetNames, renderPresets, UnknownPresetError } from '../../src/route/presets/index.js';

const policy = compileEgress({
  presets: [],
  allow: [
    { host: 'api.githubcopilot.com', ports: [443], inspect: true, action: 'redact' },
    { host: '*.githubcopilot.com', ports: [443], inspect: true },
    { host: 'telemetry.githubcopilot.com', ports: [443], inspect: false },
    { host: 'API.Anthropic.com', ports: [443], inspect: true },
    { host: 'licensing.example.com', ports: [443, 8443], inspect: false },
    { host: '*.b.example.org', ports: [443], inspect: false },
    { host: '*.example.org', ports: [443, 8443], inspect: true },
    { host: '203.0.113.7', ports: [443], inspect: false },
    { host: '2001:DB8::10', ports: [443], inspect: false },
  ],
});

const allowed = (m: EgressMatch) => ('rule' in m ? m.rule.host : null);
const denied = (m: EgressMatch) => ('denied' in m ? m.denied : null);

describe('compileEgress / match', () => {
  it.each([
    ['api.githubcopilot.com', 443, 'api.githubcopilot.com'],
    ['API.GITHUBCOPILOT.COM', 443, 'api.githubcopilot.com'], // case
    ['api.githubcopilot.com.', 443, 'api.githubcopilot.com'], // trailing dot
    ['proxy.individual.githubcopilot.com', 443, '*.githubcopilot.com'], // wildcard, two labels
    ['x.githubcopilot.com', 443, '*.githubcopilot.com'], // wildcard, one label
    ['telemetry.githubcopilot.com', 443, 'telemetry.githubcopilot.com'], // exact beats wildcard
    ['api.anthropic.com', 443, 'api.anthropic.com'],
    ['licensing.example.com', 8443, 'licensing.example.com'],
    ['a.b.example.org', 443, '*.b.example.org'], // longer suffix wins
    ['a.b.example.org', 8443, '*.example.org'], // …unless it lacks the port
    ['c.example.org', 443, '*.example.org'],
    ['203.0.113.7', 443, '203.0.113.7'], // IP listed literally
    ['[2001:db8::10]', 443, '2001:db8::10'],
    ['2001:0db8:0:0::10', 443, '2001:db8::10'],
  ])('allows %s:%i by rule %s', (host, port, rule) => {
    expect(allowed(policy.match(host, port))).toBe(rule);
  });

  it('returns the rule with its inspect flag, action and source', () => {
    const m = policy.match('api.githubcopilot.com', 443);
    expect(m).toEqual({
      host: 'api.githubcopilot.com',
      rule: { host: 'api.githubcopilot.com', ports: [443], inspect: true, action: 'redact', source: 'egress.allow[0]' },
    });
    expect('rule' in policy.match('telemetry.githubcopilot.com', 443) && policy.match('telemetry.githubcopilot.com', 443)).toMatchObject({
      rule: { inspect: false },
    });
  });

  it.each([
    ['githubcopilot.com', 443, 'githubcopilot.com is not in the egress allowlist'], // *. never matches the apex
    ['example.org', 443, 'example.org is not in the egress allowlist'],
    ['evilgithubcopilot.com', 443, 'evilgithubcopilot.com is not in the egress allowlist'], // not a label boundary
    ['githubcopilot.com.evil.net', 443, 'githubcopilot.com.evil.net is not in the egress allowlist'],
    ['api.anthropic.com', 80, 'port 80 is not allowed for api.anthropic.com (allowed: 443)'],
    ['x.githubcopilot.com', 22, 'port 22 is not allowed for x.githubcopilot.com (allowed: 443)'],
    ['licensing.example.com', 22, 'port 22 is not allowed for licensing.example.com (allowed: 443, 8443)'],
    ['127.0.0.1', 6379, '127.0.0.1:6379 is an IP address not listed in egress.allow (IP destinations must be listed literally)'],
    ['127.1', 443, '127.0.0.1:443 is an IP address not listed in egress.allow (IP destinations must be listed literally)'],
    ['2130706433', 443, '127.0.0.1:443 is an IP address not listed in egress.allow (IP destinations must be listed literally)'],
    ['[::1]', 443, '[::1]:443 is an IP address not listed in egress.allow (IP destinations must be listed literally)'],
    ['203.0.113.7', 8443, 'port 8443 is not allowed for 203.0.113.7 (allowed: 443)'],
    ['bad host', 443, '"bad host" is not a valid host name'],
    ['api.anthropic.com', 0, 'port 0 is not a valid port'],
  ])('denies %s:%i', (host, port, reason) => {
    expect(denied(policy.match(host, port))).toBe(reason);
  });

  it('denies everything when nothing is listed', () => {
    const empty = compileEgress({ presets: [], allow: [] });
    expect(denied(empty.match('api.github.com', 443))).toBe('api.github.com is not in the egress allowlist');
  });

  it('rejects wildcards over IPs or a whole TLD, naming the key', () => {
    expect(() => compileEgress({ presets: [], allow: [{ host: '*.com', ports: [443], inspect: true }] }, PRESETS, 'aigate.yaml')).toThrow(
      'aigate.yaml: egress.allow[0].host: "*.com" would allow a whole top-level domain; name the domain (*.example.com)',
    );
    expect(() => compileEgress({ presets: [], allow: [{ host: '*.10.0.0.1', ports: [443], inspect: true }] })).toThrow(/not IP addresses/);
  });

  it('works with the schema defaults from a parsed config', () => {
    const cfg = parseConfig({ egress: { allow: [{ host: 'api.anthropic.com' }] } });
    const p = compileEgress(cfg.egress);
    expect('rule' in p.match('api.anthropic.com', 443) && p.match('api.anthropic.com', 443)).toMatchObject({ rule: { inspect: true, ports: [443] } });
  });
});

describe('presets', () => {
  it('expand to rules with their source', () => {
    const rules = expandPresets(['copilot']);
    expect(rules.length).toBe(PRESETS['copilot']!.entries.length);
    expect(rules).toContainEqual(expect.objectContaining({ host: '*.githubcopilot.com', inspect: true, source: 'preset copilot' }));
    expect(rules).toContainEqual(expect.objectContaining({ host: 'github.com', inspect: false }));
  });

  it('throw a clear error for an unknown name, listing the known ones', () => {
    expect(() => expandPresets(['copilot', 'copliot'])).toThrow(UnknownPresetError);
    expect(() => expandPresets(['copliot'])).toThrow(`unknown preset "copliot" (known presets: ${presetNames().join(', ')})`);
    expect(() => compileEgress({ presets: ['copilot', 'nope'], allow: [] }, PRESETS, 'aigate.yaml')).toThrow(
      expect.objectContaining({ name: 'ConfigError', keyPath: 'egress.presets[1]' }) as unknown as ConfigError,
    );
  });

  it('copilot: API hosts inspected, auth and telemetry tunnelled', () => {
    const p = compileEgress({ presets: ['copilot'], allow: [] });
    const inspect = (h: string) => {
      const m = p.match(h, 443);
      return 'rule' in m ? m.rule.inspect : 'denied';
    };
    expect(inspect('api.githubcopilot.com')).toBe(true);
    expect(inspect('api.individual.githubcopilot.com')).toBe(true);
    expect(inspect('api.business.githubcopilot.com')).toBe(true);
    expect(inspect('api.enterprise.githubcopilot.com')).toBe(true);
    expect(inspect('proxy.individual.githubcopilot.com')).toBe(true);
    expect(inspect('copilot-proxy.githubusercontent.com')).toBe(true);
    expect(inspect('telemetry.business.githubcopilot.com')).toBe(false);
    expect(inspect('github.com')).toBe(false);
    expect(inspect('api.github.com')).toBe(false);
    expect(inspect('copilot-telemetry.githubusercontent.com')).toBe(false);
    expect(inspect('default.exp-tas.com')).toBe(false);
    expect(inspect('gist.github.com')).toBe('denied');
  });

  it('claude-code and cursor inspect the prompt-carrying API hosts', () => {
    const p = compileEgress({ presets: ['claude-code', 'cursor'], allow: [] });
    const rule = (h: string) => {
      const m = p.match(h, 443);
      return 'rule' in m ? m.rule : null;
    };
    expect(rule('api.anthropic.com')?.inspect).toBe(true);
    expect(rule('statsig.anthropic.com')?.inspect).toBe(false);
    expect(rule('sentry.io')?.inspect).toBe(false);
    expect(rule('api2.cursor.sh')?.inspect).toBe(true);
    expect(rule('repo42.cursor.sh')?.inspect).toBe(true);
    expect(rule('authenticator.cursor.sh')?.inspect).toBe(false);
    expect(rule('marketplace.cursorapi.com')?.inspect).toBe(false);
    expect(rule('cursor.sh')).toBeNull();
  });

  it('config entries override a preset for the same host', () => {
    const p = compileEgress({ presets: ['copilot'], allow: [{ host: 'github.com', ports: [443], inspect: true }] });
    const m = p.match('github.com', 443);
    expect('rule' in m && m.rule).toMatchObject({ inspect: true, source: 'egress.allow[0]' });
  });

  it('every preset is well-formed data with a source and date, and compiles', () => {
    for (const name of presetNames()) {
      const preset = PRESETS[name]!;
      expect(preset.sources.length).toBeGreaterThan(0);
      for (const s of preset.sources) expect(s).toMatch(/^https:\/\//);
      expect(preset.retrieved).toBe('2026-11-29');
      for (const e of preset.entries) {
        expect(e.why.length).toBeGreaterThan(3);
        expect(e.ports.length).toBeGreaterThan(0);
      }
      expect(() => compileEgress({ presets: [name], allow: [] })).not.toThrow();
    }
  });

  it('render as text lines for aigate check', () => {
    const lines = renderPresets(['copilot']);
    expect(lines[0]).toBe('preset copilot: GitHub Copilot (IDE extensions, Copilot Chat, Copilot CLI)');
    expect(lines[1]).toContain('https://docs.github.com/en/copilot/reference/copilot-allowlist-reference (taken 2026-11-29)');
    expect(lines).toContainEqual(expect.stringMatching(/^  inspect  \*\.githubcopilot\.com:443 +Copilot API/));
    expect(lines).toContainEqual(expect.stringMatching(/^  tunnel   github\.com:443 +authentication/));
    expect(() => renderPresets(['nope'])).toThrow(/unknown preset/);
  });
});

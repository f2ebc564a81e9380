// tenancy and setHeaders in the config: what is accepted, and the key path of what is not.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { UpstreamHeaderPolicy } from '../../src/upstream/tenancy.js';

const base = { routes: [{ name: 'claude', prefix: '/claude/', upstream: 'https://api.anthropic.com' }] };
const parse = (extra: Record<string, unknown>) => parseConfig({ ...base, ...extra }, 'aigate.yaml');

describe('tenancy and setHeaders config', () => {
  it('refuses what would break or smuggle a header, naming the key', () => {
    expect(() => parse({ tenancy: { anthropic: ['a,b'] } })).toThrow(/tenancy\.anthropic\[0\]: must be one id/);
    expect(() => parse({ tenancy: { windsurf: ['x'] } })).toThrow(/tenancy\.windsurf: unknown key/);
    expect(() => parse({ routes: [{ ...base.routes[0], setHeaders: { 'x-a': 'ok\r\nx-b: injected' } }] })).toThrow(/routes\[0\]\.setHeaders.*line breaks/);
    expect(() => parse({ routes: [{ ...base.routes[0], setHeaders: { 'bad name': 'v' } }] })).toThrow(/routes\[0\]\.setHeaders/);
    expect(() => parse({ routes: [{ ...base.routes[0], setHeaders: { Host: 'elsewhere.example' } }] })).toThrow(/set by aigate itself/);
  });

  it('resolves vendor headers by host, with the destination\'s setHeaders winning on the same name', () => {
    const config = parse({
      tenancy: { anthropic: ['o1', 'o2'], gemini: ['example.com'] },
      routes: [{ ...base.routes[0], setHeaders: { 'Anthropic-Allowed-Org-Ids': 'mine', 'x-team': 't' } }],
    });
    const policy = UpstreamHeaderPolicy.forGateway(config);
    expect(policy.headersFor('claude', 'api.anthropic.com')).toEqual([['anthropic-allowed-org-ids', 'mine'], ['x-team', 't']]);
    expect(policy.headersFor('other', 'api.anthropic.com')).toEqual([['anthropic-allowed-org-ids', 'o1,o2']]);
    expect(policy.headersFor('other', 'cloudcode-pa.googleapis.com')).toEqual([['x-geminicodeassist-allowed-domains', 'example.com']]);
    expect(policy.headersFor('other', 'api.githubcopilot.com')).toEqual([]);
    expect(UpstreamHeaderPolicy.forGateway(parse({})).empty).toBe(true);
  });

  it('GitHub\'s header reaches Copilot\'s hosts, Cursor\'s every *.cursor.sh host; a look-alike domain gets nothing', () => {
    const policy = UpstreamHeaderPolicy.forForward(parse({ tenancy: { github: ['acme-ent'], cursor: ['team-1', 'team-2'] } }));
    for (const host of ['github.com', 'api.github.com', 'api.githubcopilot.com', 'api.business.githubcopilot.com']) {
      expect(policy.headersFor('x', host), host).toEqual([['sec-github-allowed-enterprise', 'acme-ent']]);
    }
    for (const host of ['cursor.sh', 'api2.cursor.sh', 'repo42.cursor.sh']) {
      expect(policy.headersFor('x', host), host).toEqual([['x-cursor-allowed-tenants', 'team-1,team-2']]);
    }
    for (const host of ['notcursor.sh', 'githubcopilot.com.evil.example', 'evilgithubcopilot.com']) expect(policy.headersFor('x', host), host).toEqual([]);
  });
});

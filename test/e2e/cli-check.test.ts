// `aigate check` and `aigate pin` against the fake vendors: green on a good setup, and one precise
// red line for each way a deployment breaks.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spkiPin } from '../../src/tls/spki.js';
import { runCli } from '../support/cli.js';
import { startVendors, testPki, writeTestConfig, type RawConfig } from '../support/proxy.js';
import { freePort } from '../support/ports.js';
import type { FakeVendors } from '../support/vendors.js';

let vendors: FakeVendors;
let closedPort: number;
beforeAll(async () => {
  vendors = await startVendors();
  closedPort = await freePort(); // free a moment ago: nothing listens there
});
afterAll(() => vendors?.close());

function configFile(edit: (raw: RawConfig) => void = () => {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'aigate-check-'));
  return writeTestConfig(vendors, dir, (raw) => {
    (raw['listen'] as Record<string, unknown>)['forward'] = { host: '127.0.0.1', port: 0 };
    raw['egress'] = { allow: [{ host: 'api.anthropic.com', ports: [443] }, { host: '*.githubcopilot.com', ports: [443] }] };
    raw['audit'] = { file: join(dir, 'audit.log'), fingerprintKey: 'test-key' };
    edit(raw);
  });
}

const vendorPin = () => spkiPin(testPki().vendorCerts['api.githubcopilot.com']!.cert);

describe('aigate check', () => {
  it('green on a good setup: one ok line per host, exit 0', async () => {
    const file = configFile((raw) => {
      (raw['upstreamTls'] as Record<string, unknown>)['pins'] = { 'api.githubcopilot.com': [vendorPin()] };
    });
    const { code, stdout } = await runCli(['check', '--config', file]);
    expect(stdout).toContain('config ok');
    expect(stdout).toMatch(/^ok {4}route copilot .*api\.githubcopilot\.com:443 .*127\.0\.0\.1 \(connectTo\).*TLSv1\.3 {2}chain ok {2}pin ok {2}HTTP 404/m);
    expect(stdout).toMatch(/^ok {4}route claude .*no pin {2}HTTP/m);
    expect(stdout).toMatch(/^ok {4}egress\.allow\[0\] .*api\.anthropic\.com:443/m);
    expect(stdout).toMatch(/^skip {2}\*\.githubcopilot\.com/m);
    expect(stdout).toMatch(/\d+ checked, 0 failed/);
    expect(code).toBe(0);
  });

  it('--offline validates without touching the network; --json gives one object per host', async () => {
    const offline = await runCli(['check', '--offline', '--config', configFile()]);
    expect(offline.code).toBe(0);
    expect(offline.stdout).not.toMatch(/^ok /m);
    const json = await runCli(['check', '--json', '--config', configFile()]);
    const lines = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as { kind: string; ok: boolean; host: string });
    expect(lines.find((l) => l.host === 'api.cursor.sh')).toMatchObject({ kind: 'route', ok: true });
  });

  const red: Array<[string, (raw: RawConfig) => void, RegExp]> = [
    [
      'unresolvable host',
      (raw) => (raw['routes'] as unknown[]).push({ name: 'ghost', prefix: '/ghost/', upstream: 'https://ghost.invalid' }),
      /^FAIL {2}route ghost .*ghost\.invalid:443 .*cannot resolve ghost\.invalid/m,
    ],
    ['wrong CA', (raw) => ((raw['upstreamTls'] as Record<string, unknown>)['ca'] = []), /^FAIL {2}route copilot .*TLS: certificate rejected \(UNABLE_TO_VERIFY_LEAF_SIGNATURE|^FAIL {2}route copilot .*certificate rejected/m],
    [
      'wrong pin',
      (raw) => ((raw['upstreamTls'] as Record<string, unknown>)['pins'] = { 'api.githubcopilot.com': [`sha256/${'A'.repeat(43)}=`] }),
      /^FAIL {2}route copilot .*matches none of upstreamTls\.pins\["api\.githubcopilot\.com"\] \(saw sha256\//m,
    ],
    [
      'upstream down',
      (raw) => ((raw['connectTo'] as Record<string, string>)['api.cursor.sh:443'] = `127.0.0.1:${closedPort}`),
      /^FAIL {2}route cursor .*api\.cursor\.sh:443 .*connection refused/m,
    ],
    [
      'allowed host resolving to a private address',
      (raw) => ((raw['egress'] as { allow: unknown[] }).allow.push({ host: 'localhost', ports: [443] })),
      /^FAIL {2}egress\.allow\[2\] .*localhost:443 .*resolves to .*private address/m,
    ],
  ];
  for (const [name, edit, expected] of red) {
    it(`red: ${name}`, async () => {
      const { code, stdout } = await runCli(['check', '--config', configFile(edit)]);
      expect(stdout).toMatch(expected);
      expect(stdout).toMatch(/[1-9]\d* failed/);
      expect(code).toBe(1);
    });
  }

  it('a broken config fails before any connection, naming the key', async () => {
    const file = configFile((raw) => ((raw['tls'] as Record<string, unknown>)['key'] = (raw['upstreamTls'] as { ca: string[] }).ca[0]));
    const { code, stderr } = await runCli(['check', '--config', file]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/tls\.key: .* is not a readable PEM private key/);
  });
});

describe('aigate pin', () => {
  it('prints the SPKI pin of the upstream aigate would reach (connectTo and upstreamTls.ca honoured)', async () => {
    const { code, stdout } = await runCli(['pin', 'api.githubcopilot.com', '--config', configFile()]);
    expect(code).toBe(0);
    expect(stdout.trim()).toBe(vendorPin());
  });
});

// `aigate start` as a process: broken configs stop it with one line naming file and key; it
// creates dev certs on request; SIGHUP reopens the audit log; SIGTERM drains and exits 0.
import { existsSync, mkdtempSync, readFileSync, renameSync, statSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, spawnCli } from '../support/cli.js';
import { startVendors, testPki, writeTestConfig, type RawConfig } from '../support/proxy.js';
import type { FakeVendors } from '../support/vendors.js';

let vendors: FakeVendors;
beforeAll(async () => {
  vendors = await startVendors();
});
afterAll(() => vendors?.close());

const writeConfig = (dir: string, edit?: (raw: RawConfig) => void) => writeTestConfig(vendors, dir, edit);

describe('configuration errors stop start-up with the key path', () => {
  const cases: Array<[string, (raw: Record<string, unknown>) => void, RegExp]> = [
    ['unknown key', (raw) => ((raw['rateLimit'] as object) = { rate: 10, brust: 20 }), /rateLimit\.brust: unknown key/],
    [
      'bad upstream URL',
      (raw) => ((raw['routes'] as Array<Record<string, unknown>>)[1]!['upstream'] = 'http://api.cursor.sh'),
      /routes\[1\]\.upstream: must be an https URL/,
    ],
    ['missing cert file', (raw) => ((raw['tls'] as Record<string, unknown>)['cert'] = '/nonexistent/proxy.crt'), /tls\.cert: file not found: \/nonexistent\/proxy\.crt/],
    ['wrong type', (raw) => ((raw['rateLimit'] as object) = { burst: 'twenty' }), /rateLimit\.burst: .*number/],
    ['bad duration', (raw) => ((raw['timeouts'] as object) = { connect: 'soon' }), /timeouts\.connect: must be a duration/],
    ['bad pin', (raw) => ((raw['upstreamTls'] as Record<string, unknown>)['pins'] = { 'a.com': ['md5/xx'] }), /upstreamTls\.pins\.a\.com\[0\]: must be sha256/],
    ['audit file not writable', (raw) => ((raw['audit'] as Record<string, unknown>)['file'] = '/'), /audit\.file: cannot open \/ for appending \(EISDIR\)/],
    ['audit file under a file', (raw) => ((raw['audit'] as Record<string, unknown>)['file'] = '/etc/hostname/logs/audit.log'), /audit\.file: cannot open \/etc\/hostname\/logs\/audit\.log for appending \(ENOTDIR\)/],
    ['bad scan threads', (raw) => ((raw['inspect'] as object) = { scanThreads: 'many' }), /inspect\.scanThreads: must be auto or a number of threads from 0 to 64/],
    ['connectTo port out of range', (raw) => (raw['connectTo'] = { 'a.example:443': '127.0.0.1:99999' }), /connectTo\.a\.example:443: must be host:port with a port from 1 to 65535/],
    ['bad Redis URL', (raw) => ((raw['rateLimit'] as object) = { redis: { url: 'http://cache:6379' } }), /rateLimit\.redis\.url: scheme must be redis:\/\/ or rediss:\/\//],
  ];
  for (const [name, edit, expected] of cases) {
    it(`${name} (and \`aigate check --offline\` says the same)`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'aigate-cfg-'));
      const file = writeConfig(dir, edit);
      for (const command of ['start', 'check --offline']) {
        const { code, stderr } = await runCli([...command.split(' '), '--config', file]);
        expect(code, command).toBe(1);
        const lines = stderr.trim().split('\n');
        expect(lines, command).toHaveLength(1);
        expect(lines[0]).toContain(file);
        expect(lines[0]).toMatch(expected);
      }
    });
  }

  it('YAML syntax error names the line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aigate-cfg-'));
    const file = join(dir, 'aigate.yaml');
    writeFileSync(file, 'listen:\n  gateway: { host: 0.0.0.0, port: 8443\nroutes: []\n');
    const { code, stderr } = await runCli(['start', '--config', file]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/aigate\.yaml: line \d+ col \d+: YAML syntax error/);
  });

  it('missing environment variable without default names the key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aigate-cfg-'));
    const file = writeConfig(dir, (raw) => ((raw['audit'] as Record<string, unknown>)['fingerprintKey'] = '${AIGATE_TEST_UNSET_VAR}'));
    const { code, stderr } = await runCli(['start', '--config', file], { env: { AIGATE_TEST_UNSET_VAR: undefined } });
    expect(code).toBe(1);
    expect(stderr).toMatch(/audit\.fingerprintKey: environment variable AIGATE_TEST_UNSET_VAR is not set/);
  });

  it('usage errors exit with each command\'s failure status (SPEC §1: 1, and 2 for scan)', async () => {
    for (const [args, status] of [
      [['start', '--bogus'], 1],
      [['check', '--bogus'], 1],
      [['pin'], 1],
      [['certs', 'init', '--bogus'], 1],
      [['scan', '--bogus'], 2],
    ] as const) {
      const { code, stderr } = await runCli([...args]);
      expect(code, args.join(' ')).toBe(status);
      expect(stderr).toMatch(/error: (unknown option '--bogus'|missing required argument)/);
    }
  });

  it('config file missing', async () => {
    const { code, stderr } = await runCli(['start', '--config', '/nonexistent/aigate.yaml']);
    expect(code).toBe(1);
    expect(stderr).toContain('/nonexistent/aigate.yaml: file not found');
  });
});

describe('running process', () => {
  it('npm start on a fresh checkout creates the dev CA and says how to trust it', async () => {
    // The arguments `npm start` passes, so a broken start script fails here.
    const pkg = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../package.json'), 'utf8')) as { scripts: { start: string } };
    const startArgs = pkg.scripts.start.split(/\s+/).slice(pkg.scripts.start.split(/\s+/).indexOf('dist/cli.js') + 1);
    expect(startArgs[0]).toBe('start');
    const dir = mkdtempSync(join(tmpdir(), 'aigate-fresh-'));
    cpSync(resolve(import.meta.dirname, '../../config/aigate.yaml'), join(dir, 'aigate.yaml'));
    // the shipped config, on free ports
    const text = readFileSync(join(dir, 'aigate.yaml'), 'utf8').replace(/port: (8443|3128|9090)/g, 'port: 0');
    writeFileSync(join(dir, 'aigate.yaml'), text);
    const proc = spawnCli([...startArgs, '--config', 'aigate.yaml'], { cwd: dir });
    const started = await proc.logLine('aigate started');
    expect(proc.stderr()).toContain('NODE_EXTRA_CA_CERTS=');
    expect(statSync(join(dir, 'certs/ca.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'certs/proxy.key')).mode & 0o777).toBe(0o600);
    expect(started['routes']).toEqual([
      '/copilot/ -> https://api.githubcopilot.com',
      '/cursor/ -> https://api.cursor.sh',
      '/claude/ -> https://api.anthropic.com',
    ]);
    expect(started['rateLimitStore']).toBe('memory');
    expect(started['forward']).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    proc.child.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
  });

  it('SIGHUP reopens the audit file (and reloads); SIGTERM flushes every line and exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aigate-run-'));
    const file = writeConfig(dir);
    const proc = spawnCli(['start', '--config', file]);
    const started = await proc.logLine('aigate started');
    const url = (started['gateway'] as string).replace('127.0.0.1', 'localhost');
    const client = new Agent({ connect: { ca: testPki().proxyCa.certPem } });
    const get = async () => (await request(`${url}/copilot/echo`, { dispatcher: client })).body.text();

    await get();
    const audit = join(dir, 'audit.log');
    // logrotate's move, then HUP: later lines must land in a new audit.log
    const hupSeen = proc.logLine('configuration reloaded');
    renameSync(audit, `${audit}.1`);
    proc.child.kill('SIGHUP');
    await hupSeen;
    for (let i = 0; i < 50; i++) await get();
    await client.close();
    proc.child.kill('SIGTERM');
    expect(await proc.exited).toBe(0);

    expect(existsSync(`${audit}.1`)).toBe(true);
    // Flow lines only: the reload is audited in the new file, and the clean stop ends the hash
    // chain with a chain-end line.
    const flows = (f: string) => readFileSync(f, 'utf8').trim().split('\n').filter((l) => !/"event":"(chain-end|reload)"/.test(l));
    const rotated = flows(`${audit}.1`);
    const fresh = flows(audit);
    expect(rotated.length + fresh.length).toBe(51);
    expect(fresh).toHaveLength(50);
    for (const line of fresh) expect(JSON.parse(line)).toMatchObject({ event: 'request', status: 200, route: 'copilot' });
    expect(JSON.parse(readFileSync(audit, 'utf8').split('\n')[0]!)).toMatchObject({ event: 'reload', outcome: 'applied', reason: null, config: file });
    // The chain continues across the rotation: the set verifies.
    const verified = await runCli(['audit', 'verify', '--config', file, audit, `${audit}.1`]);
    expect(verified.stdout).toMatch(/^ok: 53 lines in 2 file\(s\), 1 chain\(s\)/);
    expect(verified.code).toBe(0);
  });
});

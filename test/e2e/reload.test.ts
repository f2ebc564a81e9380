// Configuration reload (issue #17, SPEC §11 Operations): SIGHUP, `aigate reload` and POST /reload
// re-read the configuration and every file it names — users, rules, routes, indexes, certificates
// — and apply them to new flows without cutting what is open; an invalid new configuration is
// refused with the reason and the running one kept; every reload is audited and counted.
import bcrypt from 'bcryptjs';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as h2connect } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import { Agent, ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCA, issueServerCert } from '../../src/tls/ca.js';
import { runCli, spawnCli } from '../support/cli.js';
import { metricValue } from '../support/metrics.js';
import { baseRawConfig, startTestProxy, startVendors, testPki, writeTestConfig, type RawConfig, type TestProxy } from '../support/proxy.js';
import type { FakeVendors } from '../support/vendors.js';
import { openHeldStream } from '../support/held-stream.js';

let vendors: FakeVendors;
beforeAll(async () => {
  vendors = await startVendors();
});
afterAll(() => vendors?.close());

/** Writes the file a running test proxy re-reads: its base config with `edit` applied. */
function rewrite(t: TestProxy, edit: (raw: RawConfig, dir: string) => void): void {
  const raw = baseRawConfig(vendors, t.dir);
  edit(raw, t.dir);
  writeFileSync(join(t.dir, 'aigate.yaml'), JSON.stringify(raw, null, 2));
}

const chat = (content: string, extra: Record<string, unknown> = {}) => JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content }], ...extra });

async function post(t: TestProxy, path: string, body: string, headers: Record<string, string> = {}) {
  const res = await request(`${t.gatewayUrl}${path}`, { method: 'POST', dispatcher: t.client, headers: { 'content-type': 'application/json', ...headers }, body });
  return { status: res.statusCode, text: await res.body.text() };
}

/** The audit file's lines (after a flush), parsed. */
function auditFile(t: TestProxy): Array<Record<string, unknown>> {
  t.proxy.audit.flush();
  return readFileSync(join(t.dir, 'audit.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

const RULE = { id: 'acme-ticket', pattern: 'ACME-[0-9]{6}', keywords: ['acme-'], action: 'block' };
const withRule = (raw: RawConfig) => (raw['inspect'] = { rules: { custom: [RULE] } });

describe('reload in place', () => {
  let t: TestProxy;
  beforeAll(async () => {
    t = await startTestProxy(vendors);
    rewrite(t, () => {});
  });
  afterAll(() => t?.stop());

  it('new routes and rules apply to new requests; a stream open across the reload finishes untouched', async () => {
    expect((await post(t, '/copilot/chat/completions', chat('ticket ACME-123456'))).status).toBe(200);
    expect((await post(t, '/mistral/chat/completions', chat('hi'))).status).toBe(404);
    const stream = await openHeldStream(t.client, t.gatewayUrl, 'reload-1');
    expect(stream.status).toBe(200);

    rewrite(t, (raw) => {
      withRule(raw);
      (raw['routes'] as unknown[]).push({ name: 'mistral', prefix: '/mistral/', upstream: 'https://api.openai.com/v1' });
    });
    const outcome = await t.proxy.reload();
    expect(outcome).toEqual({ applied: true, changed: ['inspect', 'routes'] });

    const blocked = await post(t, '/copilot/chat/completions', chat('ticket ACME-123456'));
    expect(blocked.status).toBe(403);
    expect(blocked.text).toContain('acme-ticket');
    expect((await post(t, '/mistral/chat/completions', chat('hi'))).status).toBe(200);

    // The stream began before the reload: it ends as the vendor ends it, audited as allowed.
    vendors.release('reload-1');
    const { text, cut } = await stream.rest;
    expect(cut).toBe(false);
    expect(text).toContain('data: [DONE]');
    const line = await t.auditWhere((r) => r.path === '/openai/chat/completions' && r.status === 200);
    expect(line.decision).toBe('allow');

    const reloads = auditFile(t).filter((l) => l['event'] === 'reload');
    expect(reloads).toEqual([expect.objectContaining({ outcome: 'applied', reason: null, config: join(t.dir, 'aigate.yaml'), sha256: expect.stringMatching(/^[0-9a-f]{64}$/) })]);
    expect(await metricValue(t.proxy.metrics, 'aigate_config_reloads_total', { outcome: 'applied' })).toBe(1);
  });

  it('an invalid or restart-only configuration is refused with the reason, and the running one kept', async () => {
    const file = join(t.dir, 'aigate.yaml');
    const cases: Array<[string, () => void, RegExp]> = [
      ['syntax error', () => writeFileSync(file, '{ "listen": '), /aigate\.yaml: .*(syntax|JSON|YAML)/i],
      ['unknown key', () => rewrite(t, (raw) => ((raw['rateLimit'] as object) = { rate: 10, brust: 20 })), /rateLimit\.brust: unknown key/],
      ['bad rule pattern', () => rewrite(t, (raw) => (raw['inspect'] = { rules: { custom: [{ ...RULE, pattern: '(' }] } })), /inspect\.rules\.custom\[0\]\.pattern/],
      ['missing certificate', () => rewrite(t, (raw) => ((raw['tls'] as Record<string, unknown>)['cert'] = join(t.dir, 'gone.crt'))), /tls\.cert: file not found/],
      ['listener added', () => rewrite(t, (raw) => ((raw['listen'] as Record<string, unknown>)['forward'] = { host: '127.0.0.1', port: 0 })), /listen\.forward changed; that needs a restart/],
      ['listener moved', () => rewrite(t, (raw) => ((raw['listen'] as Record<string, unknown>)['gateway'] = { host: '127.0.0.1', port: 1 })), /listen\.gateway changed; that needs a restart/],
      ['audit file moved', () => rewrite(t, (raw) => ((raw['audit'] as Record<string, unknown>)['file'] = join(t.dir, 'other.log'))), /audit\.file changed; that needs a restart/],
    ];
    for (const [name, write, reason] of cases) {
      write();
      const outcome = await t.proxy.reload();
      expect(outcome.applied, name).toBe(false);
      expect(outcome.applied ? '' : outcome.reason, name).toMatch(reason);
    }
    // Still the configuration of the last good reload: the rule blocks, the added route answers.
    expect((await post(t, '/copilot/chat/completions', chat('ticket ACME-123456'))).status).toBe(403);
    expect((await post(t, '/mistral/chat/completions', chat('hi'))).status).toBe(200);
    const refused = auditFile(t).filter((l) => l['event'] === 'reload' && l['outcome'] === 'refused');
    expect(refused).toHaveLength(cases.length);
    expect(String(refused[1]!['reason'])).toMatch(/rateLimit\.brust/);
    expect(await metricValue(t.proxy.metrics, 'aigate_config_reloads_total', { outcome: 'refused' })).toBe(cases.length);
  });

  it('POST /reload on the admin listener does the same and answers the outcome', async () => {
    rewrite(t, () => {});
    const res = await request(`${t.adminUrl}/reload`, { method: 'POST' });
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toEqual({ applied: true, changed: ['inspect', 'routes'] });
    expect((await post(t, '/copilot/chat/completions', chat('ticket ACME-123456'))).status).toBe(200);
    const get = await request(`${t.adminUrl}/reload`);
    expect(get.statusCode).toBe(405);
    expect(get.headers['allow']).toBe('POST');
    await get.body.dump();
  });
});

describe('timeouts', () => {
  it('a reloaded timeouts.idle applies to HTTP/2 sessions opened after it', async () => {
    const t = await startTestProxy(vendors, (raw) => ((raw['timeouts'] as Record<string, unknown>)['idle'] = '60s'));
    try {
      rewrite(t, (raw) => ((raw['timeouts'] as Record<string, unknown>)['idle'] = '1s'));
      expect(await t.proxy.reload()).toEqual({ applied: true, changed: ['timeouts'] });
      // An idle session is closed after timeouts.idle: 1 s now, where the start-up value was 60 s
      // (longer than this test may take).
      const session = h2connect(t.gatewayUrl, { ca: t.caPem });
      await new Promise<void>((resolve, reject) => {
        session.once('connect', () => resolve());
        session.once('error', reject);
      });
      await new Promise<void>((resolve) => session.once('close', () => resolve()));
      expect(session.closed).toBe(true);
    } finally {
      await t.stop();
    }
  }, 20_000);
});

describe('files the configuration names are re-read', () => {
  it('a renewed gateway certificate is served to new connections; open ones keep working', async () => {
    const t = await startTestProxy(vendors);
    try {
      rewrite(t, () => {});
      const serialOf = () =>
        new Promise<string>((resolve, reject) => {
          const s = tlsConnect({ host: '127.0.0.1', port: t.proxy.addresses.gateway!.port, servername: 'localhost', ca: testPki().proxyCa.certPem }, () => {
            resolve(new X509Certificate(s.getPeerX509Certificate()!.raw).serialNumber);
            s.end();
          });
          s.on('error', reject);
        });
      const before = await serialOf();
      // A keep-alive connection opened on the old certificate.
      expect((await post(t, '/copilot/echo', '{}')).status).toBe(200);
      const renewed = issueServerCert(testPki().proxyCa, ['localhost', '127.0.0.1']);
      writeFileSync(join(t.dir, 'proxy.crt.new'), renewed.certPem);
      writeFileSync(join(t.dir, 'proxy.key.new'), renewed.keyPem, { mode: 0o600 });
      rewrite(t, (raw) => {
        (raw['tls'] as Record<string, unknown>)['cert'] = join(t.dir, 'proxy.crt.new');
        (raw['tls'] as Record<string, unknown>)['key'] = join(t.dir, 'proxy.key.new');
      });
      expect(await t.proxy.reload()).toEqual({ applied: true, changed: ['tls'] });
      expect((await post(t, '/copilot/echo', '{}')).status).toBe(200); // the old connection
      const after = await serialOf();
      expect(after).not.toBe(before);
      expect(after).toBe(new X509Certificate(renewed.certPem).serialNumber);
      // A key that does not match the certificate is refused; the renewed pair stays in force.
      const stranger = issueServerCert(createCA({ commonName: 'Other' }), ['localhost']);
      writeFileSync(join(t.dir, 'proxy.key.new'), stranger.keyPem, { mode: 0o600 });
      const refused = await t.proxy.reload();
      expect(refused.applied).toBe(false);
      expect(await serialOf()).toBe(after);
    } finally {
      await t.stop();
    }
  });

  it('a user added to the users file can log in after the reload; a tunnel open across it keeps working', async () => {
    const users = (dir: string, lines: string[]) => writeFileSync(join(dir, 'users.htpasswd'), lines.join('\n') + '\n');
    const alice = `alice:${bcrypt.hashSync('wonderland', 8)}`;
    const bob = `bob:${bcrypt.hashSync('builder', 8)}`;
    const forward = (raw: RawConfig, dir: string) => {
      (raw['listen'] as Record<string, unknown>)['forward'] = { host: '127.0.0.1', port: 0 };
      raw['egress'] = { allow: [{ host: 'api.githubcopilot.com', ports: [443], inspect: true }] };
      raw['auth'] = { usersFile: join(dir, 'users.htpasswd'), required: true };
    };
    const t = await startTestProxy(vendors, (raw, dir) => {
      users(dir, [alice]);
      forward(raw, dir);
    });
    try {
      const port = t.proxy.addresses.forward!.port;
      const as = (creds: string) => new ProxyAgent({ uri: `http://${creds}@127.0.0.1:${port}`, requestTls: { ca: t.caPem } });
      const aliceAgent = as('alice:wonderland');
      const bobAgent = as('bob:builder');
      const first = await request('https://api.githubcopilot.com/echo', { dispatcher: aliceAgent });
      expect(first.statusCode).toBe(200);
      await first.body.dump();
      await expect(request('https://api.githubcopilot.com/echo', { dispatcher: bobAgent })).rejects.toThrow(/407/);

      users(t.dir, [alice, bob]);
      rewrite(t, (raw, dir) => {
        forward(raw, dir);
        withRule(raw);
      });
      expect((await t.proxy.reload()).applied).toBe(true);
      const bobAgain = as('bob:builder');
      const res = await request('https://api.githubcopilot.com/echo', { dispatcher: bobAgain });
      expect(res.statusCode).toBe(200);
      await res.body.dump();
      // Alice's tunnel was opened before the reload: still up, and its new requests get the new
      // rules (a GET: undici sends a POST on a fresh connection, which would prove nothing here).
      const inTunnel = await request('https://api.githubcopilot.com/echo?ref=ACME-123456', { dispatcher: aliceAgent });
      expect(inTunnel.statusCode).toBe(403);
      await inTunnel.body.dump();
      await Promise.all([aliceAgent.close(), bobAgent.close(), bobAgain.close()]);
    } finally {
      await t.stop();
    }
    // One CONNECT carried both of Alice's requests, before and after the reload: not cut.
    const connects = t.audit.filter((r) => r.event === 'connect' && r.client.user === 'alice');
    expect(connects).toHaveLength(1);
  });

  it('rate-limit buckets survive a reload that leaves rateLimit unchanged', async () => {
    const limited = (raw: RawConfig) => (raw['rateLimit'] = { rate: 0.001, burst: 2 });
    const t = await startTestProxy(vendors, limited);
    try {
      const statuses = async (n: number) => {
        const out: number[] = [];
        for (let i = 0; i < n; i++) out.push((await post(t, '/copilot/echo', '{}')).status);
        return out;
      };
      expect(await statuses(3)).toEqual([200, 200, 429]);
      rewrite(t, (raw) => {
        limited(raw);
        withRule(raw);
      });
      expect((await t.proxy.reload()).applied).toBe(true);
      expect(await statuses(1)).toEqual([429]);
      // A changed rateLimit builds a new limiter: fresh buckets under the new numbers.
      rewrite(t, (raw) => (raw['rateLimit'] = { rate: 0.001, burst: 1 }));
      expect((await t.proxy.reload()).applied).toBe(true);
      expect(await statuses(2)).toEqual([200, 429]);
    } finally {
      await t.stop();
    }
  });
});

describe('protected-code indexes', () => {
  it('an index rebuilt in place is loaded by the reload: code indexed since then is refused', async () => {
    const NM = join(import.meta.dirname, '../../node_modules');
    const work = mkdtempSync(join(tmpdir(), 'aigate-reload-fp-'));
    const index = join(work, 'acme.fp');
    const snippet = (file: string, marker: string) => {
      const lines = readFileSync(join(NM, file), 'utf8').split('\n');
      const at = lines.findIndex((l) => l.includes(marker));
      return lines.slice(at, at + 20).join('\n');
    };
    const build = async (files: string[]) => {
      const src = mkdtempSync(join(work, 'acme-'));
      for (const f of files) writeFileSync(join(src, f.split('/').pop()!), readFileSync(join(NM, f)));
      const built = await runCli(['fingerprint', 'build', src, '--label', 'acme', '--out', index]);
      expect(built.code, built.stderr).toBe(0);
    };
    await build(['ws/lib/receiver.js']);
    const fingerprints = (raw: RawConfig) => (raw['inspect'] = { fingerprints: [{ file: index }] });
    const t = await startTestProxy(vendors, fingerprints);
    try {
      const sender = snippet('ws/lib/sender.js', 'static frame(data, options) {');
      expect((await post(t, '/copilot/chat/completions', chat(`Why?\n\n${sender}\n`))).status).toBe(200);
      await build(['ws/lib/receiver.js', 'ws/lib/sender.js']);
      rewrite(t, fingerprints);
      expect(await t.proxy.reload()).toEqual({ applied: true, changed: [] });
      const refused = await post(t, '/copilot/chat/completions', chat(`Why?\n\n${sender}\n`));
      expect(refused.status).toBe(403);
      expect(refused.text).toContain('protected-code:acme');
      // A damaged index is refused by the reload, and the one loaded stays in force.
      writeFileSync(index, readFileSync(index).subarray(0, 100));
      const outcome = await t.proxy.reload();
      expect(outcome.applied ? '' : outcome.reason).toMatch(/inspect\.fingerprints\[0\]\.file: .*(truncated|checksum)/);
      expect((await post(t, '/copilot/chat/completions', chat(`Why?\n\n${sender}\n`))).status).toBe(403);
    } finally {
      await t.stop();
    }
  });
});

describe('the running binary', () => {
  it('SIGHUP and `aigate reload` (admin token) reload; a broken file is refused with the reason and traffic goes on', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aigate-reload-'));
    writeFileSync(join(dir, 'admin.token'), 'tok-reload-test\n', { mode: 0o600 });
    const admin = (raw: RawConfig) => ((raw['listen'] as Record<string, unknown>)['admin'] = { host: '127.0.0.1', port: 0, auth: { tokenFile: join(dir, 'admin.token') } });
    const file = writeTestConfig(vendors, dir, admin);
    const proc = spawnCli(['start', '--config', file]);
    const started = await proc.logLine('aigate started');
    const adminUrl = started['admin'] as string;
    const gateway = (started['gateway'] as string).replace('127.0.0.1', 'localhost');
    const client = new Agent({ connect: { ca: testPki().proxyCa.certPem } });
    const send = async (content: string) => {
      const res = await request(`${gateway}/copilot/chat/completions`, { method: 'POST', dispatcher: client, headers: { 'content-type': 'application/json' }, body: chat(content) });
      await res.body.dump();
      return res.statusCode;
    };
    try {
      expect(await send('ticket ACME-123456')).toBe(200);
      writeTestConfig(vendors, dir, (raw) => {
        admin(raw);
        withRule(raw);
      });
      const reloaded = proc.logLine('configuration reloaded');
      proc.child.kill('SIGHUP');
      expect(await reloaded).toMatchObject({ changed: ['inspect'] });
      expect(await send('ticket ACME-123456')).toBe(403);

      // `aigate reload` reads the admin address and token from the same file.
      const port = new URL(adminUrl).port;
      const withPort = (raw: RawConfig) => {
        (raw['listen'] as Record<string, unknown>)['admin'] = { host: '127.0.0.1', port: Number(port), auth: { tokenFile: join(dir, 'admin.token') } };
      };
      // The file names the real admin port from now on (port 0 would be a listener change).
      writeTestConfig(vendors, dir, (raw) => {
        withPort(raw);
        withRule(raw);
      });
      const refusedPort = await runCli(['reload', '--config', file]);
      expect(refusedPort.code).toBe(1);
      expect(refusedPort.stderr).toMatch(/refused, the running configuration is kept: .*listen\.admin changed; that needs a restart/);

      writeFileSync(join(dir, 'wrong.token'), 'nope\n');
      const unauthorised = await runCli(['reload', '--config', file, '--admin', adminUrl, '--token-file', join(dir, 'wrong.token')]);
      expect(unauthorised.code).toBe(1);
      expect(unauthorised.stderr).toMatch(/refused the credentials/);

      writeTestConfig(vendors, dir, (raw) => {
        admin(raw);
        raw['inspect'] = { rules: { custom: [{ ...RULE, pattern: '(' }] } };
      });
      const broken = await runCli(['reload', '--config', join(dir, 'aigate.yaml'), '--admin', adminUrl, '--token-file', join(dir, 'admin.token')]);
      expect(broken.code).toBe(1);
      expect(broken.stderr).toMatch(/refused, the running configuration is kept: .*inspect\.rules\.custom\[0\]\.pattern/);
      expect(await send('ticket ACME-123456')).toBe(403); // the running rules

      writeTestConfig(vendors, dir, admin);
      const ok = await runCli(['reload', '--config', file, '--admin', adminUrl, '--token-file', join(dir, 'admin.token')]);
      expect(ok.stderr).toBe('');
      expect(ok.stdout).toBe('configuration reloaded (changed: inspect)\n');
      expect(ok.code).toBe(0);
      expect(await send('ticket ACME-123456')).toBe(200);
    } finally {
      await client.close();
      proc.child.kill('SIGTERM');
      expect(await proc.exited).toBe(0);
    }
    const reloads = readFileSync(join(dir, 'audit.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['event'] === 'reload');
    expect(reloads.map((l) => l['outcome'])).toEqual(['applied', 'refused', 'refused', 'applied']);
    const verified = await runCli(['audit', 'verify', '--config', file, join(dir, 'audit.log')]);
    expect(verified.code).toBe(0);
  });

  it('with --workers 2, SIGHUP reloads every worker and POST /reload answers once all have', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aigate-reload-workers-'));
    const file = writeTestConfig(vendors, dir);
    const proc = spawnCli(['start', '--config', file, '--workers', '2']);
    const started = await proc.logLine('aigate started');
    const gateway = (started['gateway'] as string).replace('127.0.0.1', 'localhost');
    // A new connection per request: the primary hands connections to the workers in turn.
    const send = async (content: string) => {
      const client = new Agent({ connect: { ca: testPki().proxyCa.certPem }, pipelining: 0 });
      const res = await request(`${gateway}/copilot/chat/completions`, { method: 'POST', dispatcher: client, headers: { 'content-type': 'application/json', connection: 'close' }, body: chat(content) });
      await res.body.dump();
      await client.close();
      return res.statusCode;
    };
    try {
      expect(await Promise.all([1, 2, 3, 4].map(() => send('ticket ACME-123456')))).toEqual([200, 200, 200, 200]);
      writeTestConfig(vendors, dir, withRule);
      const everyWorker = proc.logLine('configuration reloaded in every worker');
      proc.child.kill('SIGHUP');
      expect(await everyWorker).toMatchObject({ changed: ['inspect'], workers: 2 });
      expect(await Promise.all([1, 2, 3, 4, 5, 6].map(() => send('ticket ACME-123456')))).toEqual([403, 403, 403, 403, 403, 403]);

      writeTestConfig(vendors, dir);
      const res = await request(`${started['admin'] as string}/reload`, { method: 'POST' });
      expect(res.statusCode).toBe(200);
      expect(await res.body.json()).toEqual({ applied: true, changed: ['inspect'] });
      expect(await Promise.all([1, 2, 3, 4].map(() => send('ticket ACME-123456')))).toEqual([200, 200, 200, 200]);
    } finally {
      proc.child.kill('SIGTERM');
      expect(await proc.exited).toBe(0);
    }
    const reloads = readFileSync(join(dir, 'audit.log'), 'utf8').trim().split('\n').filter((l) => l.includes('"event":"reload"'));
    expect(reloads).toHaveLength(4); // each worker audits its own, twice
  });
});

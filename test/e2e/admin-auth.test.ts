// The admin listener behind authentication (listen.admin.auth, issue #17 item 7), the dashboard
// under --workers (aggregated in the primary) and request ids on the dashboard that match the
// audit lines.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { spawnCli } from '../support/cli.js';
import { httpsRequest } from '../support/http.js';
import { startTestProxy, startVendors, testPki, writeTestConfig, type RawConfig, type TestProxy } from '../support/proxy.js';
import type { FakeVendors } from '../support/vendors.js';

const TOKEN = 'admin-token-0123456789abcdef';
let vendors: FakeVendors;
let px: TestProxy;
let credsDir: string;

function writeCredentials(dir: string): { tokenFile: string; usersFile: string } {
  const tokenFile = join(dir, 'admin.token');
  const usersFile = join(dir, 'admin.htpasswd');
  writeFileSync(tokenFile, `# rotated tokens, one per line\nold-token-abcdefabcdef\n${TOKEN}\n`, { mode: 0o600 });
  writeFileSync(usersFile, `ops:${bcrypt.hashSync('s3cret-pass', 4)}\n`, { mode: 0o600 });
  return { tokenFile, usersFile };
}

const withAuth = (creds: { tokenFile: string; usersFile: string }, extra: Record<string, unknown> = {}) => (raw: RawConfig) => {
  const listen = raw['listen'] as Record<string, Record<string, unknown>>;
  listen['admin'] = { ...listen['admin'], auth: { ...creds, ...extra } };
};

beforeAll(async () => {
  vendors = await startVendors();
  credsDir = mkdtempSync(join(tmpdir(), 'aigate-admin-auth-'));
  px = await startTestProxy(vendors, withAuth(writeCredentials(credsDir)));
});
afterAll(async () => {
  await px?.stop();
  await vendors?.close();
});

const get = async (url: string, headers: Record<string, string> = {}) => {
  const res = await request(url, { headers });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
};
const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

describe('listen.admin.auth', () => {
  it('probes stay open', async () => {
    expect((await get(`${px.adminUrl}/healthz`)).status).toBe(200);
    expect((await get(`${px.adminUrl}/readyz`)).status).toBe(200);
  });

  it('the dashboard, its API and /metrics refuse a request without credentials (401 with a challenge)', async () => {
    for (const path of ['/', '/api/dashboard', '/api/dashboard/events', '/metrics']) {
      const res = await get(`${px.adminUrl}${path}`);
      expect(res.status, path).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer realm="aigate admin", Basic realm="aigate admin", charset="UTF-8"');
      expect(res.body).not.toMatch(/aigate_|<html/);
    }
  });

  it('wrong credentials are refused; any token of the file and a users-file login are accepted', async () => {
    expect((await get(`${px.adminUrl}/metrics`, { authorization: 'Bearer nope' })).status).toBe(401);
    expect((await get(`${px.adminUrl}/metrics`, { authorization: basic('ops', 'wrong') })).status).toBe(401);
    expect((await get(`${px.adminUrl}/metrics`, { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
    expect((await get(`${px.adminUrl}/metrics`, { authorization: 'Bearer old-token-abcdefabcdef' })).status).toBe(200);
    expect((await get(`${px.adminUrl}/api/dashboard`, { authorization: basic('ops', 's3cret-pass') })).status).toBe(200);
  });

  it('metrics: false leaves /metrics open for a Prometheus without credentials, nothing else', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aigate-admin-auth-'));
    const open = await startTestProxy(vendors, withAuth(writeCredentials(dir), { metrics: false }));
    try {
      expect((await get(`${open.adminUrl}/metrics`)).status).toBe(200);
      expect((await get(`${open.adminUrl}/api/dashboard`)).status).toBe(401);
    } finally {
      await open.stop();
    }
  });

  it('config: auth must name a token file or a users file, and the files must exist', async () => {
    const base = (auth: unknown) => ({ listen: { admin: { host: '127.0.0.1', port: 0, auth } } });
    expect(() => parseConfig(base({}), 'x.yaml')).toThrow(/listen\.admin\.auth.*tokenFile, usersFile or both/);
    const dir = mkdtempSync(join(tmpdir(), 'aigate-admin-auth-'));
    const empty = join(dir, 'empty.token');
    writeFileSync(empty, '\n# nothing\n');
    const { loadAdminAuth } = await import('../../src/server/admin-auth.js');
    expect(() => loadAdminAuth({ tokenFile: empty }, 'x.yaml')).toThrow(/listen\.admin\.auth\.tokenFile.*has no token/);
    expect(() => loadAdminAuth({ usersFile: join(dir, 'missing') }, 'x.yaml')).toThrow(/listen\.admin\.auth\.usersFile.*file not found/);
  });
});

describe('dashboard request ids', () => {
  it('a refused request is listed with the id of its audit line and of its X-Aigate-Request-Id', async () => {
    const res = await httpsRequest(px.gatewayUrl, { ca: px.caPem, path: '/nowhere/at-all' });
    expect(res.status).toBe(404);
    const id = res.headers['x-aigate-request-id'] as string;
    await px.auditWhere((r) => r.id === id);
    const snap = JSON.parse((await get(`${px.adminUrl}/api/dashboard`, { authorization: `Bearer ${TOKEN}` })).body) as { recent: Array<{ id: string; path: string }> };
    expect(snap.recent.find((a) => a.path === '/nowhere/at-all')?.id).toBe(id);
  });
});

describe('dashboard under --workers', () => {
  it('the primary serves it behind auth, with the traffic of every worker', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aigate-cluster-dash-'));
    const file = writeTestConfig(vendors, dir, withAuth(writeCredentials(dir)));
    const cli = spawnCli(['start', '--config', file, '--workers', '2']);
    try {
      const started = await cli.logLine('aigate started');
      const gateway = new URL(String(started['gateway']));
      const admin = String(started['admin']);
      expect((await get(`${admin}/`)).status).toBe(401);
      const page = await get(`${admin}/`, { authorization: `Bearer ${TOKEN}` });
      expect(page.status).toBe(200);
      expect(page.body).toMatch(/<html/);

      const client = new Agent({ connect: { ca: testPki().proxyCa.certPem, servername: 'localhost' }, pipelining: 0 });
      const n = 10;
      const ids: string[] = [];
      for (let i = 0; i < n; i++) {
        // A new connection each time: the primary hands them to the workers in turn.
        const res = await request(`https://localhost:${gateway.port}/nowhere/${i}`, { headers: { connection: 'close' }, dispatcher: client });
        expect(res.statusCode).toBe(404);
        ids.push(String(res.headers['x-aigate-request-id']));
        await res.body.text();
      }
      await client.close();

      type Snap = { lastHour: Record<string, number>; recent: Array<{ id: string }> };
      let snap: Snap | undefined;
      const end = Date.now() + 10_000;
      for (;;) {
        const res = await get(`${admin}/api/dashboard`, { authorization: `Bearer ${TOKEN}` });
        expect(res.status).toBe(200);
        snap = JSON.parse(res.body) as Snap;
        if (snap.lastHour['deny'] === n || Date.now() > end) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      // Each worker served about half: only an aggregate of both has all n.
      expect(snap.lastHour['deny']).toBe(n);
      expect(new Set(snap.recent.map((a) => a.id))).toEqual(new Set(ids));

      cli.child.kill('SIGTERM');
      expect(await cli.exited).toBe(0);
      const audited = readFileSync(join(dir, 'audit.log'), 'utf8').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { id?: string }).id);
      for (const id of ids) expect(audited).toContain(id);
    } finally {
      if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
    }
  });
});

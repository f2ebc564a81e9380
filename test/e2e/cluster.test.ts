// `aigate start --workers N` (server/cluster.ts): N worker processes serve the same listeners, the
// primary answers /readyz and /metrics summed over the workers, SIGTERM drains every worker and
// exits 0, and a worker that cannot start stops the whole start with exit 1.
import { mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

describe('aigate start --workers', () => {
  it('two workers serve the gateway; the primary sums their metrics; SIGTERM drains and exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aigate-cluster-'));
    const file = writeConfig(dir);
    const cli = spawnCli(['start', '--config', file, '--workers', '2']);
    try {
      const started = await cli.logLine('aigate started');
      expect(started['workers']).toBe(2);
      const gateway = new URL(String(started['gateway']));
      const admin = String(started['admin']);
      expect(childPids(cli.child.pid!)).toHaveLength(2);

      const client = new Agent({ connect: { ca: testPki().proxyCa.certPem, servername: 'localhost' }, pipelining: 0 });
      const n = 20;
      for (let i = 0; i < n; i++) {
        // A new connection each time, so the primary hands them to both workers.
        const res = await request(`https://localhost:${gateway.port}/openai/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', connection: 'close' },
          body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: `hello ${i}` }] }),
          dispatcher: client,
        });
        expect(res.statusCode).toBe(200);
        await res.body.text();
      }
      await client.close();

      expect((await request(`${admin}/readyz`)).statusCode).toBe(200);
      const metrics = await (await request(`${admin}/metrics`)).body.text();
      expect(metrics).toMatch(new RegExp(`aigate_requests_total\\{route="openai",decision="allow",status="200"\\} ${n}\\b`));

      cli.child.kill('SIGTERM');
      expect(await cli.exited).toBe(0);
      expect(cli.stderr()).toContain('aigate stopped');
      // Every worker wrote its buffered lines as it drained: all of them are in the one file.
      const audit = readFileSync(join(dir, 'audit.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { path: string });
      expect(audit.filter((r) => r.path === '/openai/chat/completions')).toHaveLength(n);
      // Each worker is its own hash chain, interleaved in the one file: both verify, and both ended.
      const verified = await runCli(['audit', 'verify', '--config', file, join(dir, 'audit.log')]);
      expect(verified.stdout).toMatch(/^ok: \d+ lines in 1 file\(s\), 2 chain\(s\)/);
      expect(verified.code).toBe(0);

      // A restart appends two new chains to the same file; the whole file still verifies.
      const again = spawnCli(['start', '--config', file, '--workers', '2']);
      await again.logLine('aigate started');
      again.child.kill('SIGTERM');
      expect(await again.exited).toBe(0);
      const reverified = await runCli(['audit', 'verify', '--config', file, join(dir, 'audit.log')]);
      expect(reverified.stdout).toMatch(/^ok: \d+ lines in 1 file\(s\), 4 chain\(s\)/);
      expect(reverified.code).toBe(0);
    } finally {
      cli.child.kill('SIGKILL');
    }
  }, 30_000);

  it('audit.onWriteError deny: the primary reports not ready while a worker cannot write its audit log', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aigate-cluster-'));
    symlinkSync('/dev/full', join(dir, 'audit.log')); // every write fails with ENOSPC, as on a full disk
    const file = writeConfig(dir, (raw) => (raw['audit'] = { file: join(dir, 'audit.log'), onWriteError: 'deny' }));
    const cli = spawnCli(['start', '--config', file, '--workers', '2']);
    try {
      const started = await cli.logLine('aigate started');
      const gateway = new URL(String(started['gateway']));
      const admin = String(started['admin']);
      expect((await request(`${admin}/readyz`)).statusCode).toBe(200);
      const client = new Agent({ connect: { ca: testPki().proxyCa.certPem, servername: 'localhost' } });
      const res = await request(`https://localhost:${gateway.port}/openai/chat/completions`, { method: 'POST', body: '{}', dispatcher: client });
      await res.body.text();
      await client.close();
      expect(res.statusCode).toBe(200); // its audit line is written in a batch, and fails then
      expect(await cli.logLine('audit log write failed; its lines are kept in memory and written when it works again')).toMatchObject({ traffic: 'refused until it works again' });
      // The worker's report reaches the primary over IPC, not through the log: wait for it.
      const deadline = Date.now() + 5000;
      let status = 200;
      while (status === 200 && Date.now() < deadline) status = (await request(`${admin}/readyz`)).statusCode;
      expect(status).toBe(503);
    } finally {
      cli.child.kill('SIGKILL');
    }
  }, 30_000);

  it('a worker that cannot listen stops the start with exit 1 and says why', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as { port: number }).port;
    const dir = mkdtempSync(join(tmpdir(), 'aigate-cluster-'));
    const file = writeConfig(dir, (raw) => ((raw['listen'] as Record<string, unknown>)['gateway'] = { host: '127.0.0.1', port }));
    // spawnCli, not runCli: if this ever hangs, the finally below still ends the primary and its workers.
    const cli = spawnCli(['start', '--config', file, '--workers', '2']);
    try {
      expect(await cli.exited).toBe(1);
      expect(cli.stderr()).toContain(`listen.gateway: cannot listen on 127.0.0.1:${port}: address already in use`);
    } finally {
      if (cli.child.exitCode === null) cli.child.kill('SIGTERM');
      taken.close();
    }
  }, 30_000);

  it('--workers must be a whole number or auto', async () => {
    const { code, stderr } = await runCli(['start', '--workers', 'many']);
    expect(code).toBe(1);
    expect(stderr).toMatch(/--workers.*whole number/);
  });
});

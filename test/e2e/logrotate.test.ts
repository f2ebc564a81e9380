// The shipped config/logrotate.conf (issue #17 item 4), rewritten to a temp dir and run by a real
// logrotate against a running `aigate start --workers 2 --pid-file`: the rotated file is closed by
// every process, new lines go to the new file, and `aigate audit verify` passes on the set.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, spawnCli } from '../support/cli.js';
import { startVendors, testPki, writeTestConfig } from '../support/proxy.js';
import type { FakeVendors } from '../support/vendors.js';

const run = promisify(execFile);
const LOGROTATE = ['/usr/sbin/logrotate', '/usr/bin/logrotate'].find((p) => existsSync(p));
const SHIPPED = resolve(import.meta.dirname, '../../config/logrotate.conf');

let vendors: FakeVendors;
beforeAll(async () => {
  vendors = await startVendors();
});
afterAll(() => vendors?.close());

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Processes among `pids` that hold `file` open. */
function holders(pids: number[], file: string): number[] {
  return pids.filter((pid) => {
    try {
      return readdirSync(`/proc/${pid}/fd`).some((fd) => {
        try {
          return readlinkSync(`/proc/${pid}/fd/${fd}`) === file;
        } catch {
          return false;
        }
      });
    } catch {
      return false;
    }
  });
}

const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

async function waitFor(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('config/logrotate.conf with a real logrotate', () => {
  it('no longer matches the process by name nor names a user the image lacks', () => {
    const text = readFileSync(SHIPPED, 'utf8');
    expect(text).not.toMatch(/pkill|create 0640 aigate/);
    expect(text).not.toMatch(/^\s*copytruncate/m);
  });

  it.skipIf(!LOGROTATE)('rotates under a running aigate --workers 2: old file closed, new lines in the new file, the chain verifies', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aigate-logrotate-'));
    const auditFile = join(dir, 'audit.log');
    const pidFile = join(dir, 'aigate.pid');
    const file = writeTestConfig(vendors, dir, (raw) => {
      raw['audit'] = { file: auditFile, chainKey: 'logrotate-test-chain-key-0123456789' };
    });
    // The shipped policy, with its paths moved into the temp dir.
    const conf = join(dir, 'logrotate.conf');
    writeFileSync(conf, readFileSync(SHIPPED, 'utf8').replaceAll('/app/logs/', `${dir}/`), { mode: 0o644 });

    const cli = spawnCli(['start', '--config', file, '--workers', '2', '--pid-file', pidFile]);
    const client = new Agent({ connect: { ca: testPki().proxyCa.certPem, servername: 'localhost' }, pipelining: 0 });
    try {
      const started = await cli.logLine('aigate started');
      const gateway = new URL(String(started['gateway']));
      expect(readFileSync(pidFile, 'utf8').trim()).toBe(String(cli.child.pid));
      const send = async (n: number, tag: string) => {
        for (let i = 0; i < n; i++) {
          const res = await request(`https://localhost:${gateway.port}/nowhere/${tag}-${i}`, { headers: { connection: 'close' }, dispatcher: client });
          await res.body.text();
        }
      };
      await send(6, 'before');
      await waitFor(() => lines(auditFile).filter((l) => l.includes('/nowhere/before-')).length === 6, 'the first lines');

      const { stderr } = await run(LOGROTATE!, ['--force', '--state', join(dir, 'logrotate.state'), conf]);
      expect(stderr).toBe('');
      const rotated = `${auditFile}.1`;
      expect(lines(rotated).filter((l) => l.includes('/nowhere/before-'))).toHaveLength(6);
      // Every worker reopened: none holds the rotated file any more, and the new file exists.
      const workers = childPids(cli.child.pid!);
      expect(workers).toHaveLength(2);
      await waitFor(() => holders([cli.child.pid!, ...workers], rotated).length === 0, 'the rotated file to be closed');
      expect(existsSync(auditFile)).toBe(true);

      const rotatedLines = lines(rotated).length;
      await send(6, 'after');
      await waitFor(() => lines(auditFile).filter((l) => l.includes('/nowhere/after-')).length === 6, 'new lines in the new file');
      expect(lines(rotated)).toHaveLength(rotatedLines);

      cli.child.kill('SIGTERM');
      expect(await cli.exited).toBe(0);
      expect(existsSync(pidFile)).toBe(false);
      const verify = await runCli(['audit', 'verify', '--config', file, rotated, auditFile]);
      expect(verify.stderr + verify.stdout).not.toMatch(/break|modified|missing/i);
      expect(verify.code).toBe(0);
    } finally {
      await client.close();
      if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
    }
  });
  if (!LOGROTATE) it.skip('logrotate is not installed (apt-get install logrotate; .ci/run does)', () => {});
});

describe('aigate start --pid-file', () => {
  it('a pid file that cannot be written stops the start with exit 1 and the reason', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aigate-pidfile-'));
    const file = writeTestConfig(vendors, dir);
    writeFileSync(join(dir, 'not-a-dir'), '');
    const res = await runCli(['start', '--config', file, '--pid-file', join(dir, 'not-a-dir', 'aigate.pid')]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/--pid-file .*not-a-dir\/aigate\.pid: .*(ENOTDIR|EEXIST)/);
  });
});

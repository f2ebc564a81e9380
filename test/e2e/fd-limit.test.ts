// Out of file descriptors, Node's listeners drop new connections without a word (libuv accepts
// and closes them to keep the reserve descriptor; no 'error', no 'drop'). aigate must say so: an
// operational log line, a counter on /metrics, and it keeps running (and drains, exit 0) once
// descriptors are free again. Run as a real process under a low `ulimit -n`.
import { mkdtempSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli } from '../support/cli.js';
import { startVendors, writeTestConfig } from '../support/proxy.js';
import type { FakeVendors } from '../support/vendors.js';

let vendors: FakeVendors;
beforeAll(async () => {
  vendors = await startVendors();
});
afterAll(() => vendors?.close());

/** Resolves with the value, or 'timed out' after `ms` (a missing log line fails instead of hanging). */
function within<T>(p: Promise<T>, ms: number): Promise<T | 'timed out'> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<'timed out'>((r) => (timer = setTimeout(() => r('timed out'), ms)))]).finally(() => clearTimeout(timer));
}

describe('file-descriptor limit', () => {
  it('connections beyond `ulimit -n` are logged and counted, and aigate carries on', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aigate-fd-'));
    const file = writeTestConfig(vendors, dir, (raw) => {
      raw['inspect'] = { scanThreads: 0 };
    });
    const proc = spawnCli(['start', '--config', file], { ulimitNofile: 128 });
    const started = await proc.logLine('aigate started');
    const port = Number(new URL(String(started['gateway'])).port);
    // Idle TCP connections (no TLS handshake yet): each holds one of aigate's descriptors.
    const clients: Socket[] = [];
    for (let i = 0; i < 200; i++) {
      const s = netConnect(port, '127.0.0.1');
      s.on('error', () => undefined);
      clients.push(s);
    }
    const exhausted = await within(proc.logLine('file-descriptor limit reached: new connections (admin and /healthz included) are dropped until some close; raise the limit (ulimit -n, the container\'s nofile) or lower limits.connectionsPerClient'), 10_000);
    expect(exhausted).toMatchObject({ level: 50, code: 'EMFILE', limit: 128 });
    for (const s of clients) s.destroy();
    await within(proc.logLine('file descriptors available again'), 10_000);

    const metrics = await (await request(`${String(started['admin'])}/metrics`)).body.text();
    expect(Number(/^aigate_fd_exhausted_total (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
    proc.child.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
  });
});

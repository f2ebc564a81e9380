// Graceful drain under load, as a real process: on SIGTERM /readyz turns 503 at once, the
// listener stops accepting, open SSE streams finish within timeouts.drain and are audited, and the
// process exits 0; streams still open when the grace period ends are cut.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli } from '../support/cli.js';
import { startVendors, testPki, writeTestConfig } from '../support/proxy.js';
import type { FakeVendors } from '../support/vendors.js';

let vendors: FakeVendors;
beforeAll(async () => {
  vendors = await startVendors();
});
afterAll(() => vendors?.close());

async function startAigate(drain: string) {
  const dir = mkdtempSync(join(tmpdir(), 'aigate-drain-'));
  const file = writeTestConfig(vendors, dir, (raw) => (raw['timeouts'] = { connect: '2s', firstByte: '5s', idle: '30s', drain }));
  const proc = spawnCli(['start', '--config', file]);
  const started = await proc.logLine('aigate started');
  return {
    proc,
    audit: join(dir, 'audit.log'),
    gateway: (started['gateway'] as string).replace('127.0.0.1', 'localhost'),
    admin: started['admin'] as string,
  };
}

async function openStream(client: Agent, gateway: string, hold: string) {
  const res = await request(`${gateway}/openai/chat/completions`, {
    method: 'POST',
    dispatcher: client,
    headers: { 'content-type': 'application/json', 'x-test-hold': hold },
    body: JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'x' }] }),
  });
  const it = res.body[Symbol.asyncIterator]();
  await it.next(); // first event arrived: the stream is open end to end
  // Settled, never rejected: a cut stream is an outcome the tests assert, not an unhandled error.
  const rest = (async () => {
    let text = '';
    for (let r = await it.next(); !r.done; r = await it.next()) text += String(r.value);
    return { text, cut: false };
  })().catch(() => ({ text: '', cut: true }));
  return { status: res.statusCode, rest };
}

describe('drain on SIGTERM', () => {
  it('open SSE streams finish within the grace period; readyz says 503 as soon as draining starts', async () => {
    const a = await startAigate('10s');
    const client = new Agent({ connect: { ca: testPki().proxyCa.certPem } });
    const streams = await Promise.all([1, 2, 3].map((i) => openStream(client, a.gateway, `drain-${i}`)));
    expect(streams.every((s) => s.status === 200)).toBe(true);
    expect((await request(`${a.admin}/readyz`)).statusCode).toBe(200);

    const draining = a.proc.logLine('draining: no new connections, waiting for open requests and streams');
    a.proc.child.kill('SIGTERM');
    await draining;
    const ready = await request(`${a.admin}/readyz`);
    expect(ready.statusCode).toBe(503);
    await ready.body.dump();
    // no new connections
    const fresh = new Agent({ connect: { ca: testPki().proxyCa.certPem } });
    await expect(request(`${a.gateway}/copilot/echo`, { dispatcher: fresh })).rejects.toThrow(/ECONNREFUSED/);

    for (const i of [1, 2, 3]) vendors.release(`drain-${i}`);
    const texts = await Promise.all(streams.map((s) => s.rest));
    for (const t of texts) expect(t).toEqual({ text: expect.stringContaining('data: [DONE]'), cut: false });
    expect(await a.proc.exited).toBe(0);
    await Promise.all([client.close(), fresh.close()]);

    const lines = readFileSync(a.audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { path: string; status: number; aborted?: boolean });
    const streamed = lines.filter((l) => l.path === '/openai/chat/completions');
    expect(streamed).toHaveLength(3);
    for (const l of streamed) {
      expect(l.status).toBe(200);
      expect(l.aborted).toBeUndefined();
    }
  });

  it('a stream still open when the grace period ends is cut, audited, and the process exits 0', async () => {
    const a = await startAigate('500ms');
    const client = new Agent({ connect: { ca: testPki().proxyCa.certPem } });
    const stream = await openStream(client, a.gateway, 'never-released');
    const forced = a.proc.logLine('drain grace period over; closed the remaining connections');
    a.proc.child.kill('SIGTERM');
    await forced;
    expect((await stream.rest).cut).toBe(true);
    expect(await a.proc.exited).toBe(0);
    vendors.release('never-released');
    await client.close().catch(() => undefined);
    const lines = readFileSync(a.audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { path: string; aborted?: boolean });
    expect(lines.find((l) => l.path === '/openai/chat/completions')).toMatchObject({ aborted: true });
  });
});

// Graceful drain under load, as a real process: on SIGTERM /readyz turns 503 at once, the
// listener stops accepting, open SSE streams finish within timeouts.drain and are audited, and the
// process exits 0; streams still open when the grace period ends are cut.
import { mkdtempSync, readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, ProxyAgent, request } from 'undici';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli } from '../support/cli.js';
import { startVendors, testPki, writeTestConfig, type RawConfig } from '../support/proxy.js';
import type { FakeVendors } from '../support/vendors.js';
import { openHeldStream } from '../support/held-stream.js';

let vendors: FakeVendors;
beforeAll(async () => {
  vendors = await startVendors();
});
afterAll(() => vendors?.close());

async function startAigate(drain: string, opts: { edit?: (raw: RawConfig) => void; args?: string[] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'aigate-drain-'));
  const file = writeTestConfig(vendors, dir, (raw) => {
    raw['timeouts'] = { connect: '2s', firstByte: '5s', idle: '30s', drain };
    opts.edit?.(raw);
  });
  const proc = spawnCli(['start', '--config', file, ...(opts.args ?? [])]);
  const started = await proc.logLine('aigate started');
  return {
    proc,
    audit: join(dir, 'audit.log'),
    gateway: (started['gateway'] as string).replace('127.0.0.1', 'localhost'),
    forward: started['forward'] as string | undefined,
    admin: started['admin'] as string,
  };
}

/** Forward mode with one intercepted and one blind destination (both the fake vendors). */
function withForward(raw: RawConfig): void {
  (raw['listen'] as Record<string, unknown>)['forward'] = { host: '127.0.0.1', port: 0 };
  raw['egress'] = {
    allow: [
      { host: 'api.openai.com', ports: [443], inspect: true },
      { host: 'licensing.example.com', ports: [443], inspect: false },
    ],
  };
  (raw['connectTo'] as Record<string, string>)['licensing.example.com:443'] = `127.0.0.1:${vendors.port}`;
}

/** A raw CONNECT; resolves with the socket once the 200 arrived (the tunnel is open). */
function openTunnel(forward: string, target: string): Promise<Socket> {
  const { port } = new URL(forward);
  return new Promise((resolve, reject) => {
    const socket = netConnect(Number(port), '127.0.0.1');
    socket.once('error', reject);
    let head = '';
    socket.on('data', function onData(c: Buffer) {
      head += c.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      if (head.startsWith('HTTP/1.1 200')) resolve(socket);
      else reject(new Error(head));
    });
    socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  });
}

/** The exit code, or 'still running' when the process outlives `ms` (an orchestrator would SIGKILL it). */
function exitWithin(proc: { exited: Promise<number | null> }, ms: number): Promise<number | null | 'still running'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'still running'>((r) => (timer = setTimeout(() => r('still running'), ms)));
  return Promise.race([proc.exited, late]).finally(() => clearTimeout(timer));
}

type Line = { event: string; method: string | null; path: string | null; status: number; decision: string; aborted?: boolean };
const auditLines = (file: string): Line[] => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Line);

describe('drain on SIGTERM', () => {
  it('open SSE streams finish within the grace period; readyz says 503 as soon as draining starts', async () => {
    const a = await startAigate('10s');
    const client = new Agent({ connect: { ca: testPki().proxyCa.certPem } });
    const streams = await Promise.all([1, 2, 3].map((i) => openHeldStream(client, a.gateway, `drain-${i}`)));
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
    const stream = await openHeldStream(client, a.gateway, 'never-released');
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

  it('closes idle intercepted tunnels, blind tunnels and requests inside tunnels: every one audited, exit 0', async () => {
    const a = await startAigate('300ms', { edit: withForward });
    const ca = testPki().proxyCa.certPem;
    const url = 'https://api.openai.com/v1/chat/completions';
    const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }] });
    // Keep-alive clients whose tunnels sit idle after one request each (the IDE between prompts).
    const idle = Array.from({ length: 5 }, () => new ProxyAgent({ uri: a.forward!, requestTls: { ca } }));
    for (const agent of idle) {
      const res = await request(url, { method: 'POST', dispatcher: agent, headers: { 'content-type': 'application/json' }, body });
      expect(res.statusCode).toBe(200);
      await res.body.text();
    }
    // A blind tunnel, open and quiet.
    const blind = await openTunnel(a.forward!, 'licensing.example.com:443');
    const blindClosed = new Promise<void>((r) => blind.once('close', () => r()));
    blind.on('error', () => undefined);
    // A stream inside an intercepted tunnel that the grace period cuts.
    const streaming = new ProxyAgent({ uri: a.forward!, requestTls: { ca } });
    const res = await request(url, {
      method: 'POST',
      dispatcher: streaming,
      headers: { 'content-type': 'application/json', 'x-test-hold': 'tunnel-cut' },
      body: JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'x' }] }),
    });
    const events = res.body[Symbol.asyncIterator]();
    await events.next();
    const cut = (async () => {
      for (let r = await events.next(); !r.done; r = await events.next());
      return false;
    })().catch(() => true);

    a.proc.child.kill('SIGTERM');
    // timeouts.drain is 300 ms; exit is due within drain + 1 s (the bound here is generous).
    const code = await exitWithin(a.proc, 5_300);
    if (code !== 0) console.log(a.proc.stderr().slice(-3000));
    expect(code).toBe(0);
    expect(await cut).toBe(true);
    await blindClosed;
    vendors.release('tunnel-cut');
    await Promise.all([...idle, streaming].map((d) => d.destroy()));
    blind.destroy();

    const lines = auditLines(a.audit);
    expect(lines.filter((l) => l.event === 'connect' && l.status === 200)).toHaveLength(6);
    expect(lines.filter((l) => l.event === 'tunnel')).toMatchObject([{ status: 200, decision: 'allow' }]);
    const requests = lines.filter((l) => l.event === 'request' && l.path === '/v1/chat/completions');
    expect(requests).toHaveLength(6);
    expect(requests.filter((l) => l.aborted)).toMatchObject([{ status: 200 }]);
  });

  it('--workers 2: each worker closes its tunnels and writes their lines; the primary exits 0', async () => {
    const a = await startAigate('300ms', { edit: withForward, args: ['--workers', '2'] });
    const ca = testPki().proxyCa.certPem;
    const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }] });
    const idle = Array.from({ length: 4 }, () => new ProxyAgent({ uri: a.forward!, requestTls: { ca } }));
    for (const agent of idle) {
      const res = await request('https://api.openai.com/v1/chat/completions', { method: 'POST', dispatcher: agent, headers: { 'content-type': 'application/json' }, body });
      expect(res.statusCode).toBe(200);
      await res.body.text();
    }
    const blind = await openTunnel(a.forward!, 'licensing.example.com:443');
    blind.on('error', () => undefined);
    a.proc.child.kill('SIGTERM');
    expect(await exitWithin(a.proc, 5_300)).toBe(0);
    await Promise.all(idle.map((d) => d.destroy()));
    blind.destroy();
    const lines = auditLines(a.audit);
    expect(lines.filter((l) => l.event === 'connect' && l.status === 200)).toHaveLength(4);
    expect(lines.filter((l) => l.event === 'tunnel')).toHaveLength(1);
    expect(lines.filter((l) => l.event === 'request')).toHaveLength(4);
  });

  it('an open WebSocket is closed at the end of the grace period and audited (101), exit 0', async () => {
    const a = await startAigate('300ms');
    const ws = new WebSocket(`${a.gateway.replace('https', 'wss')}/copilot/ws`, { ca: testPki().proxyCa.certPem });
    ws.on('error', () => undefined);
    await new Promise((r) => ws.once('open', r));
    const echoed = new Promise((r) => ws.once('message', (m) => r(String(m))));
    ws.send('hello');
    expect(await echoed).toBe('echo: hello');
    const closed = new Promise((r) => ws.once('close', r));
    a.proc.child.kill('SIGTERM');
    expect(await exitWithin(a.proc, 5_300)).toBe(0);
    await closed;
    const lines = auditLines(a.audit);
    expect(lines.filter((l) => l.path === '/copilot/ws')).toMatchObject([{ event: 'request', status: 101 }]);
  });
});

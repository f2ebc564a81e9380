// What traffic gets while the audit log cannot be written (`audit.onWriteError`). The audit file is
// a symlink to /dev/full, where every write fails with ENOSPC, as on a full disk; replacing it with
// a regular file and reopening (logrotate's SIGHUP) is the disk getting room again.
import { readFileSync, symlinkSync, unlinkSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestProxy, startVendors, type TestProxy } from '../support/proxy.js';
import type { FakeVendors } from '../support/vendors.js';

let vendors: FakeVendors;
let t: TestProxy | undefined;
beforeAll(async () => {
  vendors = await startVendors();
});
afterEach(async () => {
  await t?.stop();
  t = undefined;
});
afterAll(async () => {
  await vendors?.close();
});

async function startOnFullDisk(onWriteError: 'allow' | 'deny'): Promise<TestProxy & { auditFile: string }> {
  let auditFile = '';
  t = await startTestProxy(vendors, (raw, dir) => {
    auditFile = join(dir, 'audit.log');
    symlinkSync('/dev/full', auditFile);
    raw['audit'] = { file: auditFile, onWriteError };
    (raw['listen'] as Record<string, unknown>)['forward'] = { host: '127.0.0.1', port: 0 };
    raw['egress'] = { allow: [{ host: 'api.anthropic.com', ports: [443], inspect: true }] };
  });
  return { ...t, auditFile };
}

const PROMPT = JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hello' }] });

async function post(p: TestProxy) {
  const res = await request(`${p.gatewayUrl}/claude/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': 'test' },
    body: PROMPT,
    dispatcher: p.client,
  });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

async function readyz(p: TestProxy): Promise<number> {
  return (await request(`${p.adminUrl}/readyz`)).statusCode;
}

async function metric(p: TestProxy, series: string): Promise<string | undefined> {
  const text = await (await request(`${p.adminUrl}/metrics`)).body.text();
  return text.split('\n').find((l) => l.startsWith(`${series} `))?.split(' ')[1];
}

function connectStatus(port: number, target: string): Promise<{ status: number; head: string }> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, '127.0.0.1');
    let buf = '';
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      buf += chunk.toString('latin1');
      if (!buf.includes('\r\n\r\n')) return;
      socket.destroy();
      resolve({ status: Number(buf.split(' ')[1]), head: buf });
    });
    socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  });
}

describe('audit.onWriteError', () => {
  it('deny: while the log cannot be written, requests and CONNECTs get 503 audit_unavailable and /readyz is 503; then it heals', async () => {
    const p = await startOnFullDisk('deny');
    // Writes are batched: the first request passes, and the failure shows when its line is written.
    expect((await post(p)).status).toBe(200);
    expect(await readyz(p)).toBe(200);
    p.proxy.audit.flush();
    expect(p.proxy.audit.isFailing()).toBe(true);

    const forwarded = vendors.requests.length;
    const refused = await post(p);
    expect(refused.status).toBe(503);
    expect(refused.headers['x-aigate-request-id']).toBeTruthy();
    expect(JSON.parse(refused.body)).toEqual({
      type: 'error',
      error: { type: 'audit_unavailable', code: 'audit_unavailable', message: expect.stringMatching(/audit log cannot be written.*audit\.onWriteError: deny/) },
    });
    expect(vendors.requests.length).toBe(forwarded);
    expect((await connectStatus(p.proxy.addresses.forward!.port, 'api.anthropic.com:443')).status).toBe(503);
    expect(await readyz(p)).toBe(503);
    expect(await metric(p, 'aigate_audit_failing{sink="file"}')).toBe('1');
    expect(await metric(p, 'aigate_audit_write_errors_total{sink="file"}')).toBe('1');
    // Refusals are audited like any request: their lines wait with the others.
    expect(p.audit.map((r) => [r.status, r.decision, r.reason])).toEqual([
      [200, 'allow', null],
      [503, 'error', 'audit_unavailable'],
      [503, 'error', 'audit_unavailable'],
    ]);

    unlinkSync(p.auditFile);
    p.proxy.reopenAudit();
    p.proxy.audit.flush();
    expect(p.proxy.audit.isFailing()).toBe(false);
    expect(await readyz(p)).toBe(200);
    expect(await metric(p, 'aigate_audit_failing{sink="file"}')).toBe('0');
    expect((await post(p)).status).toBe(200);
    p.proxy.audit.flush();
    const written = readFileSync(p.auditFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { status: number; event: string });
    expect(written.map((r) => `${r.event} ${r.status}`)).toEqual(['request 200', 'request 503', 'connect 503', 'request 200']);
  });

  it('allow (the default): traffic flows while the log fails, and the kept lines are written when it works again', async () => {
    const p = await startOnFullDisk('allow');
    expect((await post(p)).status).toBe(200);
    p.proxy.audit.flush();
    expect(p.proxy.audit.isFailing()).toBe(true);
    expect((await post(p)).status).toBe(200);
    expect((await connectStatus(p.proxy.addresses.forward!.port, 'api.anthropic.com:443')).status).toBe(200);
    await p.auditWhere((r) => r.method === 'CONNECT'); // audited when the tunnel closes
    expect(await readyz(p)).toBe(200);
    expect(await metric(p, 'aigate_audit_failing{sink="file"}')).toBe('1');

    unlinkSync(p.auditFile);
    p.proxy.reopenAudit();
    p.proxy.audit.flush();
    expect(p.proxy.audit.isFailing()).toBe(false);
    const written = readFileSync(p.auditFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { status: number; event: string });
    expect(written.map((r) => `${r.event} ${r.status}`)).toEqual(['request 200', 'request 200', 'connect 200']);
  });
});

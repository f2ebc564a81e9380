// The admin listener's health and metrics (SPEC §9), and the gateway's TLS floor (SPEC §3).
import { connect as tlsConnect } from 'node:tls';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestProxy, startVendors, type TestProxy } from '../support/proxy.js';
import type { FakeVendors } from '../support/vendors.js';

let vendors: FakeVendors;
let gw: TestProxy;
beforeAll(async () => {
  vendors = await startVendors();
  gw = await startTestProxy(vendors, (raw) => {
    (raw['tls'] as Record<string, unknown>)['minVersion'] = 'TLSv1.3';
  });
});
afterAll(async () => {
  await gw?.stop();
  await vendors?.close();
});

describe('admin endpoint', () => {
  it('/healthz and /readyz answer 200 while running', async () => {
    for (const path of ['/healthz', '/readyz']) {
      const res = await request(`${gw.adminUrl}${path}`);
      expect(res.statusCode, path).toBe(200);
      await res.body.dump();
    }
  });

  it('/metrics has the SPEC §9 series with their labels', async () => {
    const ok = await request(`${gw.gatewayUrl}/copilot/echo`, { dispatcher: gw.client });
    await ok.body.dump();
    const blocked = await request(`${gw.gatewayUrl}/copilot/x`, {
      method: 'POST',
      dispatcher: gw.client,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'db_password = "Zq8-unguessable-Pw"' }),
    });
    await blocked.body.dump();
    await gw.auditWhere((r) => r.id === blocked.headers['x-aigate-request-id']);
    const res = await request(`${gw.adminUrl}/metrics`);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    const text = await res.body.text();
    expect(text).toMatch(/^aigate_requests_total\{route="copilot",decision="allow",status="200"\} [1-9]/m);
    expect(text).toMatch(/^aigate_requests_total\{route="copilot",decision="block",status="403"\} [1-9]/m);
    expect(text).toMatch(/^aigate_findings_total\{rule="generic-password"\} [1-9]/m);
    expect(text).toMatch(/^# TYPE aigate_ratelimit_store_errors_total counter$/m);
    expect(text).toMatch(/^aigate_upstream_duration_seconds_bucket\{le="0.1",route="copilot"\} [1-9]/m);
    expect(text).toMatch(/^aigate_upstream_duration_seconds_count\{route="copilot"\} [1-9]/m);
    expect(text).not.toContain('Zq8-unguessable-Pw');
  });
});

describe('gateway TLS', () => {
  it('refuses clients below tls.minVersion', async () => {
    const port = Number(new URL(gw.gatewayUrl).port);
    const attempt = (maxVersion: 'TLSv1.2' | 'TLSv1.3') =>
      new Promise<string>((resolve) => {
        const s = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: gw.caPem, maxVersion }, () => {
          resolve(s.getProtocol() ?? 'unknown');
          s.destroy();
        });
        s.on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code ?? err.message}`));
      });
    expect(await attempt('TLSv1.3')).toBe('TLSv1.3');
    expect(await attempt('TLSv1.2')).toMatch(/^error /);
  });
});

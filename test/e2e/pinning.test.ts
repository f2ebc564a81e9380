// upstreamTls.pins: every new upstream connection, gateway and forward mode, is refused unless the
// leaf's SPKI hash is pinned — 502 upstream_certificate, an audit line, a metric, a log line.
import { Writable } from 'node:stream';
import pino from 'pino';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spkiPin } from '../../src/tls/spki.js';
import { startTestProxy, startVendors, testPki, type TestProxy } from '../support/proxy.js';
import type { FakeVendors } from '../support/vendors.js';

let vendors: FakeVendors;
let px: TestProxy;
const wrongPin = `sha256/${'B'.repeat(43)}=`;

beforeAll(async () => {
  vendors = await startVendors();
  px = await startTestProxy(vendors, (raw) => {
    (raw['listen'] as Record<string, unknown>)['forward'] = { host: '127.0.0.1', port: 0 };
    raw['egress'] = { allow: [{ host: 'api.githubcopilot.com' }, { host: 'api.anthropic.com' }] };
    (raw['upstreamTls'] as Record<string, unknown>)['pins'] = {
      'api.githubcopilot.com': [wrongPin, spkiPin(testPki().vendorCerts['api.githubcopilot.com']!.cert)],
      'api.anthropic.com': [wrongPin],
    };
  });
});
afterAll(async () => {
  await px?.stop();
  await vendors?.close();
});

describe('pins', () => {
  it('gateway: a pinned upstream whose leaf matches passes', async () => {
    const res = await request(`${px.gatewayUrl}/copilot/echo`, { dispatcher: px.client });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
  });

  it('gateway: a mismatch is 502 upstream_certificate with an audit line and a metric', async () => {
    const res = await request(`${px.gatewayUrl}/claude/v1/messages`, { dispatcher: px.client });
    expect(res.statusCode).toBe(502);
    const body = (await res.body.json()) as { error: { type: string; message: string } };
    expect(body.error.type).toBe('upstream_certificate');
    expect(body.error.message).toContain('api.anthropic.com');
    const record = await px.auditWhere((r) => r.id === res.headers['x-aigate-request-id']);
    expect(record).toMatchObject({ status: 502, decision: 'error', reason: 'upstream_certificate' });
    const metrics = await px.proxy.metrics.registry.getSingleMetricAsString('aigate_upstream_certificate_errors_total');
    expect(metrics).toMatch(/aigate_upstream_certificate_errors_total\{host="api\.anthropic\.com"\} [1-9]/);
  });

  it('forward mode: the same pins apply inside an intercepted tunnel', async () => {
    const agent = new ProxyAgent({ uri: `http://127.0.0.1:${px.proxy.addresses.forward!.port}`, requestTls: { ca: px.caPem } });
    const ok = await request('https://api.githubcopilot.com/echo', { dispatcher: agent });
    expect(ok.statusCode).toBe(200);
    await ok.body.dump();
    const bad = await request('https://api.anthropic.com/v1/messages', { dispatcher: agent });
    expect(bad.statusCode).toBe(502);
    expect(((await bad.body.json()) as { error: { type: string } }).error.type).toBe('upstream_certificate');
    await agent.close();
  });
});

describe('the log line names host and the pin that was seen', () => {
  it('warns once per refused connection', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _e, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const { startProxy } = await import('../../src/server/proxy.js');
    const { parseConfig } = await import('../../src/config/load.js');
    const config = parseConfig({ ...JSON.parse(JSON.stringify(px.proxy.config)), listen: { gateway: { host: '127.0.0.1', port: 0 } } });
    const proxy = await startProxy(config, { configFile: 'x', logger: pino({ level: 'info' }, sink), processMetrics: false });
    try {
      const res = await request(`https://localhost:${proxy.addresses.gateway!.port}/claude/v1/messages`, { dispatcher: px.client });
      await res.body.dump();
      const seen = spkiPin(testPki().vendorCerts['api.anthropic.com']!.cert);
      const warn = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['host'] === 'api.anthropic.com');
      expect(warn).toMatchObject({ seenPin: seen, msg: expect.stringContaining('pin') });
    } finally {
      await proxy.drain(500);
    }
  });
});

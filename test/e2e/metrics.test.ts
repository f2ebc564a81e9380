// /metrics (issue #17 item 6): CONNECTs counted apart from the requests inside them, end-to-end
// request and scan durations, in-flight gauges, build info and certificate expiry.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestProxy, startVendors, type TestProxy } from '../support/proxy.js';
import type { FakeVendors } from '../support/vendors.js';

let vendors: FakeVendors;
let px: TestProxy;

beforeAll(async () => {
  vendors = await startVendors();
  px = await startTestProxy(vendors, (raw) => {
    (raw['listen'] as Record<string, unknown>)['forward'] = { host: '127.0.0.1', port: 0 };
    raw['egress'] = {
      allow: [
        { host: 'api.githubcopilot.com', ports: [443], inspect: true },
        { host: 'api.cursor.sh', ports: [443], inspect: false },
      ],
    };
  });
});
afterAll(async () => {
  await px?.stop();
  await vendors?.close();
});

async function scrape(): Promise<string> {
  const res = await request(`${px.adminUrl}/metrics`);
  expect(res.statusCode).toBe(200);
  return res.body.text();
}

/** The value of one sample, e.g. `aigate_tunnels_total{route="x",decision="allow",status="200"}`; 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

function connect(target: string): Promise<{ socket: Socket; head: string }> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(px.proxy.addresses.forward!.port, '127.0.0.1');
    let buf = '';
    socket.on('error', reject);
    socket.on('data', function onData(c: Buffer) {
      buf += c.toString('latin1');
      if (!buf.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      resolve({ socket, head: buf });
    });
    socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  });
}

/** Two requests inside one intercepted tunnel (one connection of undici's ProxyAgent), then the tunnel closes. */
async function twoRequestsInOneTunnel(): Promise<void> {
  const agent = new ProxyAgent({ uri: `http://127.0.0.1:${px.proxy.addresses.forward!.port}`, requestTls: { ca: px.caPem }, connections: 1 });
  for (let i = 0; i < 2; i++) {
    const res = await request('https://api.githubcopilot.com/echo', { method: 'POST', body: '{"prompt":"hello"}', headers: { 'content-type': 'application/json' }, dispatcher: agent });
    expect(res.statusCode).toBe(200);
    await res.body.text();
  }
  const closed = px.auditWhere((r) => r.event === 'connect' && r.host === 'api.githubcopilot.com');
  await agent.close();
  await closed;
}

describe('/metrics', () => {
  it('a CONNECT counts in aigate_tunnels_total; only the requests inside it count as requests', async () => {
    const labels = { route: 'api.githubcopilot.com', decision: 'allow', status: '200' };
    const before = await scrape();
    await twoRequestsInOneTunnel();
    const refused = await connect('evil.example.com:443');
    refused.socket.destroy();
    await px.auditWhere((r) => r.event === 'connect' && r.status === 403);
    const after = await scrape();
    expect(sample(after, 'aigate_requests_total', labels) - sample(before, 'aigate_requests_total', labels)).toBe(2);
    expect(sample(after, 'aigate_tunnels_total', labels) - sample(before, 'aigate_tunnels_total', labels)).toBe(1);
    expect(sample(after, 'aigate_tunnels_total', { decision: 'deny', status: '403' })).toBe(1);
    expect(sample(after, 'aigate_requests_total', { status: '403' })).toBe(0);
  });

  it('request and scan durations are observed', async () => {
    const before = await scrape();
    const res = await request(`${px.gatewayUrl}/copilot/echo`, { method: 'POST', body: '{"prompt":"hi"}', headers: { 'content-type': 'application/json' }, dispatcher: px.client });
    await res.body.text();
    await px.auditWhere((r) => r.id === res.headers['x-aigate-request-id']);
    const after = await scrape();
    const count = (t: string, n: string) => sample(t, `${n}_count`, n === 'aigate_request_duration_seconds' ? { route: 'copilot' } : {});
    expect(count(after, 'aigate_request_duration_seconds') - count(before, 'aigate_request_duration_seconds')).toBe(1);
    expect(count(after, 'aigate_scan_duration_seconds') - count(before, 'aigate_scan_duration_seconds')).toBeGreaterThanOrEqual(1);
    expect(sample(after, 'aigate_request_duration_seconds_bucket', { route: 'copilot', le: '+Inf' })).toBeGreaterThanOrEqual(1);
  });

  it('in-flight requests and open streams are gauged', async () => {
    expect(sample(await scrape(), 'aigate_requests_in_flight')).toBe(0);
    const controller = new AbortController();
    const slow = request(`${px.gatewayUrl}/copilot/slow`, { dispatcher: px.client, signal: controller.signal }).catch(() => undefined);
    const tunnel = await connect('api.cursor.sh:443'); // blind: a stream until it closes
    await waitFor(async () => {
      const t = await scrape();
      return sample(t, 'aigate_requests_in_flight') === 1 && sample(t, 'aigate_streams_open') === 1;
    });
    controller.abort();
    await slow;
    tunnel.socket.destroy();
    await waitFor(async () => {
      const t = await scrape();
      return sample(t, 'aigate_requests_in_flight') === 0 && sample(t, 'aigate_streams_open') === 0;
    });
  });

  it('aigate_build_info and certificate expiry', async () => {
    const text = await scrape();
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(sample(text, 'aigate_build_info', { version, node: process.version })).toBe(1);
    const cert = new X509Certificate(readFileSync(`${px.dir}/proxy.crt`));
    expect(sample(text, 'aigate_certificate_expiry_timestamp_seconds', { certificate: 'tls.cert' })).toBe(Date.parse(cert.validTo) / 1000);
    const ca = new X509Certificate(readFileSync(`${px.dir}/ca.crt`));
    expect(sample(text, 'aigate_certificate_expiry_timestamp_seconds', { certificate: 'tls.ca.cert' })).toBe(Date.parse(ca.validTo) / 1000);
    expect(sample(text, 'aigate_certificate_expiry_timestamp_seconds', { certificate: 'upstreamTls.ca[0]' })).toBeGreaterThan(Date.now() / 1000);
  });
});

async function waitFor(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

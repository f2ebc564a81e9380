// Diagnosis (issue #17 item 5): an upstream failure says why — in the operational log (warn, with
// request id, route, host and cause), in the audit line (`error`) and to the client in a
// Proxy-Status header (RFC 9209) — and a refused CONNECT says why in a header IDEs can show.
import { connect as netConnect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsRequest } from '../support/http.js';
import { freePort } from '../support/ports.js';
import { startTestProxy, startVendors, type TestProxy } from '../support/proxy.js';
import type { FakeVendors } from '../support/vendors.js';

let vendors: FakeVendors;
let gw: TestProxy;
let closedPort: number;
const logLines: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  vendors = await startVendors();
  closedPort = await freePort();
  gw = await startTestProxy(
    vendors,
    (raw) => {
      (raw['routes'] as unknown[]).push(
        { name: 'down', prefix: '/down/', upstream: 'https://down.example.com' },
        { name: 'wrongname', prefix: '/wrongname/', upstream: 'https://wrong.example.com' },
      );
      const connectTo = raw['connectTo'] as Record<string, string>;
      connectTo['down.example.com:443'] = `127.0.0.1:${closedPort}`;
      connectTo['wrong.example.com:443'] = `127.0.0.1:${vendors.port}`;
      (raw['listen'] as Record<string, unknown>)['forward'] = { host: '127.0.0.1', port: 0 };
      raw['egress'] = {
        allow: [
          { host: 'api.githubcopilot.com', ports: [443], inspect: false },
          { host: 'dead.example.com', ports: [443], inspect: false },
        ],
      };
      connectTo['dead.example.com:443'] = `127.0.0.1:${closedPort}`;
    },
    { log: (line) => logLines.push(JSON.parse(line) as Record<string, unknown>) },
  );
});
afterAll(async () => {
  await gw?.stop();
  await vendors?.close();
});

const get = (path: string) => httpsRequest(gw.gatewayUrl, { ca: gw.caPem, path });

function connectRaw(target: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(gw.proxy.addresses.forward!.port, '127.0.0.1');
    let buf = '';
    socket.on('error', reject);
    socket.on('data', (c: Buffer) => (buf += c.toString('latin1')));
    socket.on('close', () => resolve(buf));
    socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  });
}

describe('an upstream that refuses connections', () => {
  it('502 with Proxy-Status connection_refused, the cause in the audit line and a warn log line', async () => {
    const res = await get('/down/x');
    expect(res.status).toBe(502);
    const id = res.headers['x-aigate-request-id'] as string;
    expect(res.headers['proxy-status']).toMatch(/^aigate; error=connection_refused; details="[^"]*down\.example\.com[^"]*"$/);
    const record = await gw.auditWhere((r) => r.id === id);
    expect(record).toMatchObject({ reason: 'upstream_unavailable', error: 'ECONNREFUSED' });
    const line = logLines.find((l) => l['requestId'] === id);
    expect(line).toMatchObject({ level: 40, route: 'down', host: 'down.example.com', code: 'ECONNREFUSED', reason: 'upstream_unavailable' });
  });

  it('a dead upstream cannot flood the log: repeated failures are summarised', async () => {
    const before = logLines.filter((l) => l['route'] === 'down').length;
    for (let i = 0; i < 30; i++) expect((await get('/down/y')).status).toBe(502);
    const after = logLines.filter((l) => l['route'] === 'down').length;
    expect(after - before).toBeLessThan(10);
  });
});

describe('an upstream whose certificate fails verification', () => {
  it('502 with Proxy-Status tls_certificate_error and the TLS error code in the audit line', async () => {
    const res = await get('/wrongname/x');
    expect(res.status).toBe(502);
    expect(res.headers['proxy-status']).toMatch(/^aigate; error=tls_certificate_error; details=".+"$/);
    const record = await gw.auditWhere((r) => r.id === res.headers['x-aigate-request-id']);
    expect(record.error).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
  });
});

describe("aigate's own refusals", () => {
  it('404 not_found carries Proxy-Status destination_not_found', async () => {
    const res = await get('/nowhere/x');
    expect(res.status).toBe(404);
    expect(res.headers['proxy-status']).toMatch(/^aigate; error=destination_not_found; details=".+"$/);
  });

  it('a relayed upstream response never carries aigate\'s Proxy-Status', async () => {
    const res = await get('/copilot/status/503');
    expect(res.status).toBe(503);
    expect(res.headers['proxy-status']).toBeUndefined();
  });

  it('a CONNECT refused by the allowlist explains itself in Proxy-Status', async () => {
    const head = await connectRaw('evil.example.com:443');
    expect(head).toMatch(/^HTTP\/1\.1 403 /);
    expect(head).toMatch(/\r\nProxy-Status: aigate; error=http_request_denied; details="CONNECT evil\.example\.com:443 denied[^"]*"\r\n/);
  });

  it('a blind tunnel to a dead upstream: 502 connection_refused, the cause audited and logged', async () => {
    const head = await connectRaw('dead.example.com:443');
    expect(head).toMatch(/^HTTP\/1\.1 502 /);
    expect(head).toMatch(/\r\nProxy-Status: aigate; error=connection_refused; details="dead\.example\.com:\d+ is unavailable \(ECONNREFUSED\)"\r\n/);
    const id = /X-Aigate-Request-Id: (\S+)/.exec(head)![1]!;
    const record = await gw.auditWhere((r) => r.id === id);
    expect(record).toMatchObject({ event: 'tunnel', reason: 'upstream_unavailable', error: 'ECONNREFUSED' });
    expect(logLines.find((l) => l['requestId'] === id)).toMatchObject({ level: 40, host: 'dead.example.com', code: 'ECONNREFUSED', msg: 'upstream failed' });
  });

  it('a malformed CONNECT gets http_request_error', async () => {
    const head = await connectRaw('no-port');
    expect(head).toMatch(/^HTTP\/1\.1 400 /);
    expect(head).toMatch(/\r\nProxy-Status: aigate; error=http_request_error; details=".+"\r\n/);
  });
});

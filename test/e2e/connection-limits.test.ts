// limits.connectionsPerClient: one client address holds at most N connections on the gateway and
// forward listeners together. Beyond: a TLS gateway connection is closed at accept (answering would
// cost the handshake the cap saves); a forward connection gets a 429 JSON answer to its CONNECT or
// request, audited. Every refusal is counted; closing a connection frees its place.
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestProxy, startVendors, type TestProxy } from '../support/proxy.js';
import type { FakeVendors } from '../support/vendors.js';

const LIMIT = 3;
let vendors: FakeVendors;
let p: TestProxy;
let gatewayPort: number;
let forwardPort: number;

beforeAll(async () => {
  vendors = await startVendors();
  p = await startTestProxy(vendors, (raw) => {
    (raw['listen'] as Record<string, unknown>)['forward'] = { host: '127.0.0.1', port: 0 };
    raw['egress'] = { allow: [{ host: 'api.openai.com', ports: [443], inspect: true }] };
    raw['limits'] = { connectionsPerClient: LIMIT };
  });
  gatewayPort = p.proxy.addresses.gateway!.port;
  forwardPort = p.proxy.addresses.forward!.port;
});
afterAll(async () => {
  await p?.stop();
  await vendors?.close();
});

/** A TLS connection to the gateway: 'secure' once the handshake is done, 'closed' if aigate closed it first. */
function gatewayConnection(): Promise<{ outcome: 'secure' | 'closed'; socket: TLSSocket }> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: gatewayPort, servername: 'localhost', ca: p.caPem });
    socket.once('secureConnect', () => resolve({ outcome: 'secure', socket }));
    socket.on('error', () => undefined);
    socket.once('close', () => resolve({ outcome: 'closed', socket }));
  });
}

function tcpConnection(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Sends a CONNECT on an open socket; resolves with the whole answer once the socket closes or a 200 arrives. */
function sendConnect(socket: Socket, target: string): Promise<string> {
  return new Promise((resolve) => {
    let answer = '';
    socket.on('data', (c: Buffer) => {
      answer += c.toString('latin1');
      if (answer.startsWith('HTTP/1.1 200') && answer.includes('\r\n\r\n')) resolve(answer);
    });
    socket.once('close', () => resolve(answer));
    socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  });
}

async function refusedCount(listener: string): Promise<number> {
  const text = await (await request(`${p.adminUrl}/metrics`)).body.text();
  const m = new RegExp(`aigate_connections_refused_total\\{listener="${listener}",reason="per_client_limit"\\} (\\d+)`).exec(text);
  return Number(m?.[1] ?? 0);
}

describe('limits.connectionsPerClient', () => {
  it('a gateway connection over the cap is closed before its handshake; closing one frees a place', async () => {
    const held = await Promise.all(Array.from({ length: LIMIT }, () => gatewayConnection()));
    expect(held.map((c) => c.outcome)).toEqual(Array(LIMIT).fill('secure'));
    const over = await gatewayConnection();
    expect(over.outcome).toBe('closed');
    expect(await refusedCount('gateway')).toBe(1);

    const freed = new Promise((r) => held[0]!.socket.once('close', r));
    held[0]!.socket.destroy();
    await freed;
    // aigate sees the close a moment after the client: poll, bounded.
    let again = await gatewayConnection();
    for (let i = 0; i < 50 && again.outcome === 'closed'; i++) again = await gatewayConnection();
    expect(again.outcome).toBe('secure');
    for (const c of [...held, again]) c.socket.destroy();
  });

  it('a forward connection over the cap gets 429 JSON to its CONNECT, audited; the cap spans both listeners', async () => {
    // Wait until the gateway test's connections are gone on aigate's side too.
    for (let i = 0; i < 100 && (await openConnections()) > 0; i++) await new Promise((r) => setImmediate(r));
    const gateway = await gatewayConnection();
    expect(gateway.outcome).toBe('secure');
    const within = await Promise.all(Array.from({ length: LIMIT - 1 }, () => tcpConnection(forwardPort)));
    const over = await tcpConnection(forwardPort);
    const answer = await sendConnect(over, 'api.openai.com:443');
    expect(answer).toMatch(/^HTTP\/1\.1 429 /);
    expect(answer).toMatch(/\r\nRetry-After: 1\r\n/i);
    expect(answer).toMatch(/\r\nConnection: close\r\n/i);
    const id = /\r\nX-Aigate-Request-Id: (\S+)\r\n/i.exec(answer)?.[1];
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { error: { type: string; message: string } };
    expect(body.error.type).toBe('rate_limited');
    expect(body.error.message).toMatch(/too many connections from 127\.0\.0\.1 \(limits\.connectionsPerClient: 3\)/);
    const line = await p.auditWhere((r) => r.id === id);
    expect(line).toMatchObject({ event: 'connect', mode: 'forward', status: 429, decision: 'rate_limited', reason: 'rate_limited' });
    expect(await refusedCount('forward')).toBe(1);

    // Within the cap, a CONNECT on an already open connection is served.
    expect(await sendConnect(within[0]!, 'api.openai.com:443')).toMatch(/^HTTP\/1\.1 200 /);
    for (const s of [...within, over]) s.destroy();
    gateway.socket.destroy();
  });
});

describe('limits.connectionsPerClient, absolute-form', () => {
  it('an http:// request on a forward connection over the cap gets 429 JSON with Connection: close, audited', async () => {
    for (let i = 0; i < 100 && (await openConnections()) > 0; i++) await new Promise((r) => setImmediate(r));
    const within = await Promise.all(Array.from({ length: LIMIT }, () => tcpConnection(forwardPort)));
    const over = await tcpConnection(forwardPort);
    const answer = await new Promise<string>((resolve) => {
      let text = '';
      over.on('data', (c: Buffer) => (text += c.toString('latin1')));
      over.once('close', () => resolve(text));
      over.write('GET http://plain.example.com/ HTTP/1.1\r\nHost: plain.example.com\r\n\r\n');
    });
    expect(answer).toMatch(/^HTTP\/1\.1 429 /);
    expect(answer).toMatch(/\r\nconnection: close\r\n/i);
    const id = /\r\nx-aigate-request-id: (\S+)\r\n/i.exec(answer)?.[1];
    expect(await p.auditWhere((r) => r.id === id)).toMatchObject({ event: 'request', mode: 'forward', status: 429, decision: 'rate_limited' });
    for (const s of within) s.destroy();
  });
});

async function openConnections(): Promise<number> {
  const text = await (await request(`${p.adminUrl}/metrics`)).body.text();
  return Number(/^aigate_connections_open (\d+)/m.exec(text)?.[1] ?? NaN);
}

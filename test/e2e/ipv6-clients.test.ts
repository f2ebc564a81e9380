// IPv6 clients are limited per /64, not per address: a host given a /64 (what every IPv6 customer
// gets) could otherwise take a fresh address for each connection, request, upload or password guess
// and walk around every per-client limit. The sources are real IPv6 addresses declared in PROXY
// protocol headers on real TCP connections (the test host has only ::1), so each connection is its
// own client exactly as behind a balancer; the audit line still names the whole address.
import { writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAnswer, type Answer } from '../support/http.js';
import { metricValue } from '../support/metrics.js';
import { startTestProxy, startVendors, type RawConfig, type TestProxy } from '../support/proxy.js';
import type { FakeVendors } from '../support/vendors.js';

const KiB = 1024;
let vendors: FakeVendors;
beforeAll(async () => {
  vendors = await startVendors();
});
afterAll(() => vendors?.close());

const proxyHeader = (src: string, port: number) => `PROXY TCP6 ${src} ::1 40000 ${port}\r\n`;

/** A gateway proxy whose listener takes PROXY headers, with `edit` applied. */
function proxyProtocolGateway(edit: (raw: RawConfig) => void): Promise<TestProxy> {
  return startTestProxy(vendors, (raw) => {
    (raw['listen'] as Record<string, Record<string, unknown>>)['gateway']!['proxyProtocol'] = true;
    edit(raw);
  });
}

/** A TLS connection to the gateway from `src`: resolves once secure, rejects if aigate closes it first. */
function gatewayTls(px: TestProxy, src: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const raw = netConnect(px.proxy.addresses.gateway!.port, '127.0.0.1');
    raw.write(proxyHeader(src, 8443));
    const tls = tlsConnect({ socket: raw, servername: 'localhost', ca: px.caPem }, () => resolve(tls));
    tls.on('error', reject);
    tls.once('close', () => reject(new Error('closed before TLS was up')));
  });
}

/** A real HTTPS GET through the gateway from `src` (node:https on a socket that sent the PROXY header). */
function gatewayGet(px: TestProxy, src: string, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        path,
        createConnection: () => {
          const raw = netConnect(px.proxy.addresses.gateway!.port, '127.0.0.1');
          raw.write(proxyHeader(src, 8443));
          return tlsConnect({ socket: raw, servername: 'localhost', ca: px.caPem });
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers as Record<string, string>, body: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('an IPv6 client is its /64', () => {
  it('limits.connectionsPerClient: another address of the same /64 is over the cap; the next /64 is not', async () => {
    const px = await proxyProtocolGateway((raw) => (raw['limits'] = { connectionsPerClient: 1 }));
    const open: TLSSocket[] = [];
    const outcome = (src: string) =>
      gatewayTls(px, src).then(
        (s) => (open.push(s), 'secure'),
        () => 'closed',
      );
    try {
      expect(await outcome('2001:db8:1:2::1')).toBe('secure');
      expect(await outcome('2001:db8:1:2:ffff:ffff:ffff:fffe')).toBe('closed');
      expect(await outcome('2001:db8:1:3::1')).toBe('secure');
      // IPv4-mapped IPv6 stays the IPv4 address: one client with 203.0.113.5.
      expect(await outcome('::ffff:203.0.113.5')).toBe('secure');
      const v4 = await new Promise<string>((resolve) => {
        const raw = netConnect(px.proxy.addresses.gateway!.port, '127.0.0.1');
        raw.write('PROXY TCP4 203.0.113.5 127.0.0.1 40000 8443\r\n');
        const tls = tlsConnect({ socket: raw, servername: 'localhost', ca: px.caPem });
        tls.on('error', () => undefined);
        tls.once('secureConnect', () => (open.push(tls), resolve('secure')));
        tls.once('close', () => resolve('closed'));
      });
      expect(v4).toBe('closed');
      expect(await metricValue(px.proxy.metrics, 'aigate_connections_refused_total', { listener: 'gateway', reason: 'per_client_limit' })).toBe(2);
    } finally {
      for (const s of open) s.destroy();
      await px.stop();
    }
  });

  it('rateLimit by address: one bucket per /64; the audit line keeps the whole address', async () => {
    const px = await proxyProtocolGateway((raw) => (raw['rateLimit'] = { key: 'ip', rate: 0.001, burst: 1 }));
    try {
      const first = await gatewayGet(px, '2001:db8:5:6::1', '/claude/echo');
      expect(first.status).toBe(200);
      const sibling = await gatewayGet(px, '2001:db8:5:6::2', '/claude/echo');
      expect(sibling.status).toBe(429);
      expect((await gatewayGet(px, '2001:db8:5:7::1', '/claude/echo')).status).toBe(200);
      const line = await px.auditWhere((r) => r.id === sibling.headers['x-aigate-request-id']);
      expect(line).toMatchObject({ decision: 'rate_limited', client: { ip: '2001:db8:5:6::2' } });
      expect((await px.auditWhere((r) => r.id === first.headers['x-aigate-request-id'])).client.ip).toBe('2001:db8:5:6::1');
      // A balancer that names an IPv4 client in IPv6 form: audited (and limited) as the IPv4 address.
      const mapped = await gatewayGet(px, '::ffff:203.0.113.9', '/claude/echo');
      expect(mapped.status).toBe(200);
      expect((await px.auditWhere((r) => r.id === mapped.headers['x-aigate-request-id'])).client.ip).toBe('203.0.113.9');
      expect((await gatewayGet(px, '::ffff:203.0.113.9', '/claude/echo')).status).toBe(429);
    } finally {
      await px.stop();
    }
  });

  it('limits.bufferedBodyBytesPerClient: uploads from two addresses of one /64 share one budget', async () => {
    const px = await proxyProtocolGateway((raw) => {
      raw['inspect'] = { maxBodyBytes: '256kb' };
      raw['limits'] = { bufferedBodyBytesPerClient: '300kb', bufferedBodyBytes: '1mb' };
    });
    const sockets: TLSSocket[] = [];
    /** A POST of `length` bytes from `src`, all but the last byte sent. */
    const upload = async (src: string, length: number) => {
      const socket = await gatewayTls(px, src);
      sockets.push(socket);
      const answer = readAnswer(socket);
      socket.write(`POST /copilot/status/200 HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: ${length}\r\n\r\n`);
      socket.write(Buffer.alloc(length - 1, 'a'));
      return { answer, finish: () => socket.write('a') };
    };
    const held = async (bytes: number) => {
      while ((await metricValue(px.proxy.metrics, 'aigate_buffered_body_bytes')) !== bytes) await new Promise((r) => setTimeout(r, 10));
    };
    try {
      const a = await upload('2001:db8:9:9::1', 200 * KiB);
      await held(200 * KiB);
      const sibling = await upload('2001:db8:9:9::2', 200 * KiB);
      const refused = await sibling.answer;
      expect(refused.status).toBe(429);
      expect(JSON.parse(refused.body).error.message).toContain('limits.bufferedBodyBytesPerClient');
      const other = await upload('2001:db8:9:a::1', 200 * KiB);
      await held(400 * KiB);
      a.finish();
      other.finish();
      expect([(await a.answer).status, (await other.answer).status]).toEqual([200, 200]);
      await held(0);
    } finally {
      for (const s of sockets) s.destroy();
      await px.stop();
    }
  });

  it('limits.authFailuresPerMinute: guesses from another address of the same /64 are refused too', async () => {
    const px = await startTestProxy(vendors, (raw, dir) => {
      (raw['listen'] as Record<string, unknown>)['forward'] = { host: '127.0.0.1', port: 0, proxyProtocol: true };
      raw['egress'] = { allow: [{ host: 'api.githubcopilot.com', ports: [443], inspect: true }] };
      const usersFile = join(dir, 'users.htpasswd');
      writeFileSync(usersFile, `alice:${bcrypt.hashSync('wonderland', 4)}\n`);
      raw['auth'] = { usersFile, required: true };
      raw['limits'] = { authFailuresPerMinute: 2 };
    });
    const connectAs = async (src: string, password: string): Promise<Answer> => {
      const socket = netConnect(px.proxy.addresses.forward!.port, '127.0.0.1');
      socket.on('error', () => undefined);
      const answer = readAnswer(socket);
      const credentials = Buffer.from(`alice:${password}`).toString('base64');
      socket.write(
        `${proxyHeader(src, 3128)}CONNECT api.githubcopilot.com:443 HTTP/1.1\r\nHost: api.githubcopilot.com:443\r\nProxy-Authorization: Basic ${credentials}\r\n\r\n`,
      );
      try {
        return await answer;
      } finally {
        socket.destroy();
      }
    };
    try {
      expect((await connectAs('2001:db8:7:7::1', 'guess-1')).status).toBe(407);
      expect((await connectAs('2001:db8:7:7::1', 'guess-2')).status).toBe(407);
      const refused = await connectAs('2001:db8:7:7::abcd', 'guess-3');
      expect(refused.status).toBe(429);
      expect(JSON.parse(refused.body).error.message).toMatch(/limits\.authFailuresPerMinute/);
      expect((await connectAs('2001:db8:7:8::1', 'guess-4')).status).toBe(407);
      const line = await px.auditWhere((r) => r.event === 'connect' && r.status === 429);
      expect(line.client.ip).toBe('2001:db8:7:7::abcd');
    } finally {
      await px.stop();
    }
  });
});

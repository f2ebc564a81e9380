// Proxy-auth under a login flood (issue #19 item 10): real CONNECTs from several loopback addresses
// (127.0.0.x all reach the proxy's 127.0.0.1 on Linux, each seen as its own client). The password
// checks are bounded (limits.authPending: 503 + Retry-After beyond it), shared fairly among
// addresses (a real user is not queued behind a flood), dropped when their client left (counted:
// aigate_auth_checks_total / _dropped_total), and failed logins per address are limited
// (limits.authFailuresPerMinute: 429 + Retry-After), while a user already verified still gets in.
// The flood uses a user whose hash has a high cost, so its checks are still queued while the test
// acts; assertions are on answers, their order and the proxy's counters, never on durations. And a
// plain wrong password (407): its line names the attempted user only when the users file knows it.
import { writeFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestProxy, startVendors, type RawConfig, type TestProxy } from '../support/proxy.js';
import type { FakeVendors } from '../support/vendors.js';
import { metricValue } from '../support/metrics.js';

let vendors: FakeVendors;
let usersFile: string;
const ALICE = bcrypt.hashSync('wonderland', 4);
const BOB = bcrypt.hashSync('builder', 4);
/** ~0.4 s of bcrypt per check or more: the flood's checks outlast everything the test does meanwhile. */
const SLOWPOKE = bcrypt.hashSync('tortoise', 12);

beforeAll(async () => {
  vendors = await startVendors();
});
afterAll(() => vendors?.close());

function authedProxy(limits: Record<string, number>): Promise<TestProxy> {
  return startTestProxy(vendors, (raw: RawConfig, dir) => {
    (raw['listen'] as Record<string, unknown>)['forward'] = { host: '127.0.0.1', port: 0 };
    raw['egress'] = { allow: [{ host: 'api.githubcopilot.com', ports: [443], inspect: true }] };
    usersFile = join(dir, 'users.htpasswd');
    writeFileSync(usersFile, `alice:${ALICE}\nbob:${BOB}\nslowpoke:${SLOWPOKE}\n`);
    raw['auth'] = { usersFile, required: true };
    raw['limits'] = limits;
  });
}

interface ConnectAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  socket: Socket;
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** A CONNECT from `from` (a 127.0.0.x address); `sent` resolves once it is on the wire, `answer` with the proxy's answer. */
function connectFrom(px: TestProxy, from: string, user: string, password: string): { sent: Promise<void>; answer: Promise<ConnectAnswer>; socket: Socket } {
  const socket = netConnect({ port: px.proxy.addresses.forward!.port, host: '127.0.0.1', localAddress: from });
  socket.on('error', () => undefined);
  const sent = new Promise<void>((resolve) =>
    socket.once('connect', () => {
      socket.write(
        `CONNECT api.githubcopilot.com:443 HTTP/1.1\r\nHost: api.githubcopilot.com:443\r\nProxy-Authorization: ${basic(user, password)}\r\n\r\n`,
        () => resolve(),
      );
    }),
  );
  const answer = new Promise<ConnectAnswer>((resolve, reject) => {
    let buf = '';
    const onData = (chunk: Buffer) => {
      buf += chunk.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      const [statusLine, ...lines] = buf.slice(0, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
      const length = Number(headers['content-length'] ?? 0);
      if (buf.length < end + 4 + length) return;
      socket.off('data', onData);
      resolve({ status: Number(statusLine!.split(' ')[1]), headers, body: buf.slice(end + 4, end + 4 + length), socket });
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error(`closed before an answer: ${JSON.stringify(buf)}`)));
  });
  answer.catch(() => undefined);
  return { sent, answer, socket };
}

/** Polls `read` until it returns `want` (bounded by the test's timeout). */
async function until(read: () => Promise<number> | number, want: number): Promise<void> {
  for (;;) {
    if ((await read()) === want) return;
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('a login flood beyond limits.authPending', () => {
  let px: TestProxy;
  beforeAll(async () => {
    px = await authedProxy({ authPending: 4, authFailuresPerMinute: 0 });
  });
  afterAll(() => px?.stop());

  it('gets 503 with Retry-After at once, and a real user from another address gets in ahead of the flood', async () => {
    const order: string[] = [];
    const flood = Array.from({ length: 12 }, (_, i) => connectFrom(px, '127.0.0.1', 'slowpoke', `guess-${i}`));
    const floodAnswers = flood.map((f) =>
      f.answer.then((a) => {
        order.push(`flood-${a.status}`);
        return a;
      }),
    );
    // Everything beyond the queue is answered without a bcrypt: 4 checks pending, 8 refused.
    await until(() => order.filter((o) => o === 'flood-503').length, 8);
    expect(order).toHaveLength(8);
    expect(await metricValue(px.proxy.metrics, 'aigate_auth_checks_pending')).toBe(4);
    expect(await metricValue(px.proxy.metrics, 'aigate_auth_refusals_total', { reason: 'queue_full' })).toBe(8);
    const line = await px.auditWhere((r) => r.event === 'connect' && r.status === 503);
    expect(line).toMatchObject({ decision: 'error', reason: 'overloaded', attemptedUser: 'slowpoke', client: { ip: '127.0.0.1', user: null } });

    // The queue is full of the flood's checks; alice comes from another address.
    const alice = connectFrom(px, '127.0.0.2', 'alice', 'wonderland');
    const answer = await alice.answer;
    order.push(`alice-${answer.status}`);
    expect(answer.status).toBe(200);
    alice.socket.destroy();

    const answers = await Promise.all(floodAnswers);
    for (const a of answers) a.socket.destroy();
    // She took the place of the newest waiting flood check (that client got 503 too)…
    expect(answers.filter((a) => a.status === 503)).toHaveLength(9);
    expect(answers.filter((a) => a.status === 407)).toHaveLength(3);
    for (const a of answers.filter((a) => a.status === 503)) {
      expect(Number(a.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(JSON.parse(a.body)).toMatchObject({ error: { type: 'overloaded', code: 'overloaded' } });
    }
    // …and her check ran before the flood's checks still waiting when she came: at least one of
    // them was answered after her (in a FIFO all of them would have been answered first).
    expect(order.indexOf('alice-200')).toBeLessThan(order.lastIndexOf('flood-407'));
    await until(() => metricValue(px.proxy.metrics, 'aigate_auth_checks_pending'), 0);
    expect(await metricValue(px.proxy.metrics, 'aigate_auth_checks_total', { result: 'valid' })).toBe(1);
    expect(await metricValue(px.proxy.metrics, 'aigate_auth_checks_total', { result: 'invalid' })).toBe(3);
  });
});

describe('a queued check whose client left', () => {
  let px: TestProxy;
  beforeAll(async () => {
    px = await authedProxy({ authPending: 64, authFailuresPerMinute: 0 });
  });
  afterAll(() => px?.stop());

  it('is dropped before it runs: only the checks already running cost bcrypt', async () => {
    const flood = Array.from({ length: 10 }, (_, i) => connectFrom(px, '127.0.0.3', 'slowpoke', `gone-${i}`));
    await Promise.all(flood.map((f) => f.sent));
    await until(() => metricValue(px.proxy.metrics, 'aigate_auth_checks_pending'), 10);
    for (const f of flood) f.socket.destroy();
    await until(() => metricValue(px.proxy.metrics, 'aigate_auth_checks_pending'), 0);
    const ran = await metricValue(px.proxy.metrics, 'aigate_auth_checks_total');
    const dropped = await metricValue(px.proxy.metrics, 'aigate_auth_checks_dropped_total');
    // The checks running when the clients left (one per bcrypt thread) finish; the rest never start.
    expect(ran).toBeGreaterThanOrEqual(1);
    expect(ran).toBeLessThanOrEqual(2);
    expect(dropped).toBe(10 - ran);
    // Each CONNECT still has its one audit line: abandoned by its client.
    await until(() => px.audit.filter((r) => r.event === 'connect' && r.client.ip === '127.0.0.3').length, 10);
    for (const r of px.audit.filter((r) => r.event === 'connect' && r.client.ip === '127.0.0.3')) {
      expect(r).toMatchObject({ status: 499, aborted: true });
    }
  });
});

describe('failed logins per address (limits.authFailuresPerMinute)', () => {
  let px: TestProxy;
  beforeAll(async () => {
    px = await authedProxy({ authPending: 64, authFailuresPerMinute: 3 });
  });
  afterAll(() => px?.stop());

  const status = async (from: string, user: string, password: string) => {
    const c = connectFrom(px, from, user, password);
    const a = await c.answer;
    c.socket.destroy();
    return a;
  };

  it('are refused 429 with Retry-After beyond the limit, without a bcrypt; a signed-in user and other addresses still get in', async () => {
    expect((await status('127.0.0.4', 'alice', 'wonderland')).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await status('127.0.0.4', 'alice', `wrong-${i}`)).status).toBe(407);
    const checked = await metricValue(px.proxy.metrics, 'aigate_auth_checks_total');

    const refused = await status('127.0.0.4', 'alice', 'wrong-3');
    expect(refused.status).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(20); // 3 a minute: one back every 20 s
    expect(JSON.parse(refused.body)).toMatchObject({ error: { type: 'rate_limited' } });
    expect(JSON.parse(refused.body).error.message).toMatch(/limits\.authFailuresPerMinute/);
    expect(await metricValue(px.proxy.metrics, 'aigate_auth_checks_total')).toBe(checked);
    expect(await metricValue(px.proxy.metrics, 'aigate_auth_refusals_total', { reason: 'too_many_failures' })).toBe(1);
    const line = await px.auditWhere((r) => r.event === 'connect' && r.status === 429);
    expect(line).toMatchObject({ decision: 'rate_limited', reason: 'rate_limited', attemptedUser: 'alice', client: { ip: '127.0.0.4', user: null } });
    expect(JSON.stringify(line)).not.toContain('wrong-3');

    // A wrong password already answered is answered again from cache (a client retrying its stale
    // password is not a new guess): 407, not 429.
    expect((await status('127.0.0.4', 'alice', 'wrong-0')).status).toBe(407);
    // Alice signed in before the failures: her credentials are remembered, no check needed.
    expect((await status('127.0.0.4', 'alice', 'wonderland')).status).toBe(200);
    // A credential never verified from this address waits for the window (a minute at most).
    expect((await status('127.0.0.4', 'bob', 'builder')).status).toBe(429);
    // Other addresses are not affected.
    expect((await status('127.0.0.5', 'bob', 'nope')).status).toBe(407);
    expect((await status('127.0.0.5', 'bob', 'builder')).status).toBe(200);
  });
});

describe('a plain wrong password (407)', () => {
  let px: TestProxy;
  beforeAll(async () => {
    px = await authedProxy({ authPending: 64, authFailuresPerMinute: 30 });
  });
  afterAll(() => px?.stop());

  const refusedLine = async (from: string, user: string, password: string) => {
    const c = connectFrom(px, from, user, password);
    const a = await c.answer;
    c.socket.destroy();
    expect(a.status).toBe(407);
    expect(a.headers['proxy-authenticate']).toMatch(/^Basic /);
    return px.auditWhere((r) => r.event === 'connect' && r.client.ip === from && r.status === 407);
  };

  it('names the attempted user when the users file knows the name, and only then', async () => {
    const known = await refusedLine('127.0.0.6', 'alice', 'not-wonderland');
    expect(known).toMatchObject({ mode: 'forward', decision: 'deny', reason: 'proxy_auth_required', attemptedUser: 'alice', client: { ip: '127.0.0.6', user: null } });
    expect(JSON.stringify(known)).not.toContain('not-wonderland');
    // An unknown name may be a password typed in the wrong field: not written down.
    const unknown = await refusedLine('127.0.0.7', 'mallory', 'whatever');
    expect(unknown).toMatchObject({ mode: 'forward', decision: 'deny', reason: 'proxy_auth_required', client: { ip: '127.0.0.7', user: null } });
    expect(unknown).not.toHaveProperty('attemptedUser');
    expect(JSON.stringify(unknown)).not.toContain('mallory');
  });
});

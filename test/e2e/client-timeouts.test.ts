// Clients that go silent must not hold the proxy forever (the servers have no request timeout:
// slow uploads and long streams are legitimate). A request body that stalls for `timeouts.idle`
// is answered 408 `request_timeout`, audited, never forwarded, and its connection closed; a body
// that keeps trickling in is not cut. A CONNECT whose client never starts its TLS handshake is
// closed after the handshake bound and audited once.
// Waits are for the proxy's answers (bounded by the test timeout); the only timers pace a trickle.
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tlsHandshakeTimeout } from '../../src/server/forward.js';
import { startTestProxy, startVendors, type TestProxy } from '../support/proxy.js';
import type { FakeVendors } from '../support/vendors.js';

const IDLE_MS = 400;
const HANDSHAKE_MS = 300;
/** A proxy that holds a silent client fails these tests by timing out, well before the default 20 s. */
const STALL_TEST_MS = 5_000;

let vendors: FakeVendors;
let px: TestProxy;
let gatewayPort: number;
let forwardPort: number;
const savedHandshakeMs = tlsHandshakeTimeout.ms;

beforeAll(async () => {
  tlsHandshakeTimeout.ms = HANDSHAKE_MS;
  vendors = await startVendors();
  px = await startTestProxy(vendors, (raw) => {
    (raw['listen'] as Record<string, unknown>)['forward'] = { host: '127.0.0.1', port: 0 };
    raw['egress'] = { allow: [{ host: '*.githubcopilot.com', ports: [443], inspect: true }] };
    const connectTo = raw['connectTo'] as Record<string, string>;
    for (const h of ['stall.githubcopilot.com', 'nohandshake.githubcopilot.com']) {
      connectTo[`${h}:443`] = `127.0.0.1:${vendors.port}`;
    }
    raw['timeouts'] = { connect: '2s', firstByte: '5s', idle: `${IDLE_MS}ms`, drain: '2s' };
  });
  gatewayPort = px.proxy.addresses.gateway!.port;
  forwardPort = px.proxy.addresses.forward!.port;
});
afterAll(async () => {
  tlsHandshakeTimeout.ms = savedHandshakeMs;
  await px?.stop();
  await vendors?.close();
});

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Date.now() when the whole answer was in. */
  at: number;
}

/**
 * Reads one HTTP/1.1 response (Content-Length or chunked) from `socket`; `closed` resolves when the
 * connection closes (it never does if the proxy keeps it open: the test then times out).
 */
function readAnswer(socket: Socket | TLSSocket): { answer: Promise<Answer>; closed: Promise<void> } {
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const answer = new Promise<Answer>((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      const [statusLine, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const rest = buf.subarray(end + 4);
      let body: Buffer;
      if (headers['transfer-encoding'] === 'chunked') {
        if (!rest.includes('0\r\n\r\n')) return;
        const parts: Buffer[] = [];
        for (let at = 0; ; ) {
          const eol = rest.indexOf('\r\n', at);
          const size = parseInt(rest.subarray(at, eol).toString('latin1'), 16);
          if (size === 0) break;
          parts.push(rest.subarray(eol + 2, eol + 2 + size));
          at = eol + 2 + size + 2;
        }
        body = Buffer.concat(parts);
      } else {
        const length = Number(headers['content-length'] ?? 0);
        if (rest.length < length) return;
        body = rest.subarray(0, length);
      }
      socket.off('data', onData);
      resolve({ status: Number(statusLine!.split(' ')[1]), headers, body: body.toString('utf8'), at: Date.now() });
    };
    socket.on('data', onData);
    socket.on('error', reject);
    socket.once('close', () => reject(new Error(`connection closed before a whole answer: ${JSON.stringify(buf.toString('latin1'))}`)));
  });
  answer.catch(() => undefined);
  return { answer, closed };
}

function gatewayTls(): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port: gatewayPort, servername: 'localhost', ca: px.caPem }, () => resolve(s));
    s.on('error', reject);
  });
}

/** CONNECT through the forward listener; resolves with the raw socket once the 200 is in. */
function connectRaw(target: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(forwardPort, '127.0.0.1');
    let buf = '';
    socket.on('error', reject);
    socket.on('data', function onData(chunk: Buffer) {
      buf += chunk.toString('latin1');
      if (!buf.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      if (!buf.startsWith('HTTP/1.1 200 ')) reject(new Error(`CONNECT refused: ${buf}`));
      else resolve(socket);
    });
    socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  });
}

/** TLS through an intercepted tunnel (the leaf is minted by aigate's CA for `host`). */
async function forwardTls(host: string): Promise<TLSSocket> {
  const raw = await connectRaw(`${host}:443`);
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ socket: raw, servername: host, ca: px.caPem }, () => resolve(s));
    s.on('error', reject);
  });
}

interface ErrorBody {
  type: string;
  error: { type: string; message: string; code: string };
}

/** Headers, then part of the body, then silence: the proxy must answer 408 and close. */
async function expectStalledUpload(socket: TLSSocket, host: string, path: string, framing: 'content-length' | 'chunked') {
  const { answer, closed } = readAnswer(socket);
  const head = `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n`;
  if (framing === 'content-length') socket.write(`${head}Content-Length: 1000\r\n\r\n{"a":"1234`);
  else socket.write(`${head}Transfer-Encoding: chunked\r\n\r\na\r\n{"a":"1234\r\n`);
  const silentFrom = Date.now();

  const res = await answer;
  expect(res.status).toBe(408);
  // Silence, not an immediate refusal: the answer comes after timeouts.idle (a timer fires no earlier
  // than asked; a little slack for clock granularity).
  expect(res.at - silentFrom).toBeGreaterThanOrEqual(IDLE_MS - 20);
  expect(res.headers['content-type']).toBe('application/json');
  expect(res.headers['connection']).toBe('close');
  const id = res.headers['x-aigate-request-id']!;
  expect(id).toMatch(/^[0-9a-f-]{36}$/);
  const body = JSON.parse(res.body) as ErrorBody;
  expect(body).toMatchObject({ type: 'error', error: { type: 'request_timeout', code: 'request_timeout' } });
  expect(body.error.message).toBe(`request body stalled: no bytes for ${IDLE_MS}ms (timeouts.idle)`);
  await closed; // the rest of the body will never come: the connection is not kept

  const record = await px.auditWhere((r) => r.id === id);
  expect(record).toMatchObject({ status: 408, decision: 'error', reason: 'request_timeout' });
  expect(px.audit.filter((r) => r.id === id)).toHaveLength(1);
  expect(vendors.requests.filter((r) => r.path.includes('stall'))).toEqual([]);
}

/** Sends `body` a few bytes at a time, `everyMs` apart: never silent for timeouts.idle, but for several of them in total. */
async function trickle(socket: TLSSocket, host: string, path: string, body: string, everyMs: number): Promise<Answer> {
  const { answer } = readAnswer(socket);
  socket.write(`POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`);
  const started = Date.now();
  for (let i = 0; i < body.length; i += 2) {
    await new Promise((r) => setTimeout(r, everyMs)); // pacing the upload is what is under test
    socket.write(body.slice(i, i + 2));
  }
  expect(Date.now() - started).toBeGreaterThan(3 * IDLE_MS); // a total-time limit would have cut it
  return answer;
}

describe('a request body that stalls is answered 408 after timeouts.idle', () => {
  for (const framing of ['content-length', 'chunked'] as const) {
    it(`gateway (${framing})`, async () => {
      const socket = await gatewayTls();
      await expectStalledUpload(socket, 'localhost', `/openai/chat/completions?stall-gw-${framing}`, framing);
    }, STALL_TEST_MS);
  }

  it('forward mode, inside an intercepted tunnel', async () => {
    const host = 'stall.githubcopilot.com';
    const socket = await forwardTls(host);
    await expectStalledUpload(socket, host, '/stall-fw', 'content-length');
  }, STALL_TEST_MS);
});

describe('a body that keeps trickling in is not cut', () => {
  const body = JSON.stringify({ messages: [{ role: 'user', content: 'slow but steady upload' }] });
  const everyMs = 50; // IDLE_MS / 8: far from the limit even on a loaded machine

  it('gateway', async () => {
    const socket = await gatewayTls();
    try {
      const res = await trickle(socket, 'localhost', '/copilot/echo?trickle-gw', body, everyMs);
      expect(res.status).toBe(200);
      expect((JSON.parse(res.body) as { body: string }).body).toBe(body);
    } finally {
      socket.destroy();
    }
  });

  it('forward mode: the tunnel outlives the handshake bound, the body outlives timeouts.idle', async () => {
    const host = 'api.githubcopilot.com'; // the fake vendor has a certificate for it
    const socket = await forwardTls(host);
    try {
      const res = await trickle(socket, host, '/echo?trickle-fw', body, everyMs);
      expect(res.status).toBe(200);
      expect((JSON.parse(res.body) as { body: string }).body).toBe(body);
    } finally {
      socket.destroy();
    }
  });
});

describe('an intercepted tunnel whose client completes TLS and then says nothing', () => {
  it('is closed after timeouts.idle and audited once', async () => {
    const socket = await forwardTls('stall.githubcopilot.com');
    const opened = Date.now();
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    // Not closed at once (the proxy's clock starts before this side's: only a loose bound).
    expect(Date.now() - opened).toBeGreaterThanOrEqual(IDLE_MS / 2);
    const record = await px.auditWhere((r) => r.event === 'connect' && r.host === 'stall.githubcopilot.com' && r.bytesIn > 0 && r.durationMs >= IDLE_MS - 20);
    expect(record).toMatchObject({ method: 'CONNECT', status: 200 });
  }, STALL_TEST_MS);
});

describe('a CONNECT whose client never starts its TLS handshake', () => {
  it('is closed after the handshake bound and audited once', async () => {
    const host = 'nohandshake.githubcopilot.com';
    const socket = await connectRaw(`${host}:443`);
    const established = Date.now();
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    // Not closed at once; the reason below says which timer closed it. The proxy's clock starts
    // before the client reads the 200, so only a loose bound holds on a loaded machine.
    expect(Date.now() - established).toBeGreaterThanOrEqual(HANDSHAKE_MS / 2);
    const record = await px.auditWhere((r) => r.event === 'connect' && r.host === host);
    expect(record).toMatchObject({ method: 'CONNECT', status: 200, decision: 'error', reason: 'request_timeout' });
    expect(record.aborted).toBeUndefined(); // closed by the proxy, not abandoned by the client
    expect(px.audit.filter((r) => r.event === 'connect' && r.host === host)).toHaveLength(1);
  }, STALL_TEST_MS);
});

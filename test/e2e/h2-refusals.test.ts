// HTTP/2 refusals that happen before a request exists (issue #15): each is counted in
// aigate_h2_refusals_total and logged (throttled); a stream that is answered with a status gets
// its audit line like any request. And sessions that nghttp2 ends on its own close promptly
// instead of lingering until timeouts.idle.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { h2CloseGrace, h2IdleProbe } from '../../src/server/h2.js';
import { FLAG, FRAME, frame, literal, rawH2, requestBlock, type RawH2 } from '../support/h2-frames.js';
import { metricValue } from '../support/metrics.js';
import { startTestProxy, startVendors, type TestProxy } from '../support/proxy.js';
import { h2Request, openH2 } from '../support/h2-client.js';
import type { FakeVendors } from '../support/vendors.js';

let vendors: FakeVendors;
let gw: TestProxy;
const logs: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  vendors = await startVendors();
  // timeouts.idle far beyond the test timeout: a session that lingers until it fails the test.
  gw = await startTestProxy(
    vendors,
    (raw) => {
      raw['timeouts'] = { connect: '2s', firstByte: '5s', idle: '120s', drain: '5s' };
    },
    { log: (line) => logs.push(JSON.parse(line) as Record<string, unknown>) },
  );
});
afterAll(async () => {
  await gw?.stop();
  await vendors?.close();
});

const h2Session = () => openH2(gw.gatewayUrl, gw.caPem);

const port = () => Number(new URL(gw.gatewayUrl).port);
const refusals = (reason: string) => metricValue(gw.proxy.metrics, 'aigate_h2_refusals_total', { listener: 'gateway', reason });

async function attacker(opts: { allowHalfOpen?: boolean } = {}): Promise<RawH2> {
  const a = await rawH2(port(), gw.caPem, opts);
  await a.waitFor((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0);
  return a;
}

/** Resolves once `check` holds, polling the proxy's own counters (no fixed sleep). */
async function until(check: () => Promise<boolean> | boolean): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 10));
}

describe('HTTP/2 streams refused before they are requests are counted and logged', () => {
  it('a malformed header block (an upper-case field name) is one stream_refused; the connection goes on', async () => {
    const before = await refusals('stream_refused');
    const a = await attacker();
    a.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, requestBlock('GET', '/openai/v1/models', [literal('X-Upper', 'v')])));
    const reset = await a.waitFor((f) => f.stream === 1);
    expect(reset.type).toBe(FRAME.RST_STREAM);
    // The next stream on the same connection is served; the one skipped is counted.
    a.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 3, requestBlock('GET', '/openai/v1/after-malformed')));
    await a.waitFor((f) => f.stream === 3 && f.type === FRAME.HEADERS);
    await until(async () => (await refusals('stream_refused')) === before + 1);
    // Only the stream that was a request has an audit line.
    await until(() => gw.audit.some((r) => r.path === '/openai/v1/after-malformed'));
    expect(gw.audit.filter((r) => r.path === '/openai/v1/models')).toHaveLength(0);
    const line = logs.find((l) => l['reason'] === 'stream_refused');
    expect(line).toMatchObject({ level: 40, listener: 'gateway', client: '127.0.0.1' });
    a.socket.destroy();
  });

  it('a header list over 16 KiB, the last thing on its connection, is counted when the connection closes', async () => {
    const before = await refusals('stream_refused');
    const a = await attacker();
    const big = requestBlock('GET', '/openai/v1/big-headers', [literal('x-big', 'a'.repeat(20 * 1024))]);
    a.write(frame(FRAME.HEADERS, FLAG.END_STREAM, 1, big.subarray(0, 16_000)));
    a.write(frame(FRAME.CONTINUATION, FLAG.END_HEADERS, 1, big.subarray(16_000)));
    const reset = await a.waitFor((f) => f.stream === 1 || f.type === FRAME.GOAWAY);
    expect(reset.type).toBe(FRAME.RST_STREAM);
    a.socket.destroy();
    await until(async () => (await refusals('stream_refused')) === before + 1);
    expect(gw.audit.some((r) => r.path === '/openai/v1/big-headers')).toBe(false);
  });

  it('streams past SETTINGS_MAX_CONCURRENT_STREAMS end the connection: one session_error, logged with its code', async () => {
    // (Past a limit the client had acknowledged, nghttp2 treats it as a connection error.)
    const before = await refusals('session_error');
    const a = await attacker();
    const block = requestBlock('POST', '/openai/v1/over-the-limit', [literal('content-type', 'application/json')]);
    for (let i = 0; i < 140; i++) a.write(frame(FRAME.HEADERS, FLAG.END_HEADERS, 1 + 2 * i, block));
    // nghttp2 reports a protocol error: the session is destroyed and the connection closed for it.
    await a.closed;
    await until(async () => (await refusals('session_error')) === before + 1);
    expect(logs.find((l) => l['reason'] === 'session_error')).toMatchObject({ listener: 'gateway', code: 'ERR_HTTP2_ERROR' });
    // The streams it had opened were requests: each has its line, as aborted.
    await until(() => gw.audit.some((r) => r.path === '/openai/v1/over-the-limit'));
    for (const r of gw.audit.filter((l) => l.path === '/openai/v1/over-the-limit')) expect(r).toMatchObject({ protocol: 'h2', status: 499, aborted: true });
  });

  it('the log is throttled: a burst of refusals is one line, the metric counts each', async () => {
    const before = await refusals('stream_refused');
    const linesBefore = logs.filter((l) => l['reason'] === 'stream_refused').length;
    // Two connections, each with ten malformed streams then a good one: twenty refusals (seen when
    // each good one arrives), at most one log line for them (the throttle is 10 s).
    for (let round = 0; round < 2; round++) {
      const a = await attacker();
      for (let i = 0; i < 10; i++) a.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1 + 2 * i, requestBlock('GET', '/x', [literal('Bad', 'v')])));
      a.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 21, requestBlock('GET', '/openai/v1/burst')));
      await a.waitFor((f) => f.stream === 21 && f.type === FRAME.HEADERS);
      a.socket.destroy();
    }
    await until(async () => (await refusals('stream_refused')) === before + 20);
    expect(logs.filter((l) => l['reason'] === 'stream_refused').length).toBeLessThanOrEqual(linesBefore + 1);
  });
});

describe('HTTP/2 requests Node would answer itself are answered by the pipeline, with an audit line', () => {
  it('CONNECT over h2 gets the JSON 400 with a request id and its audit line (Node answered 405, unaudited)', async () => {
    const session = await h2Session();
    try {
      const answer = await h2Request(session, { ':method': 'CONNECT', ':authority': 'api.openai.com:443' });
      expect(answer.headers[':status']).toBe(400);
      expect(JSON.parse(answer.body).error.type).toBe('bad_request');
      const line = await gw.auditWhere((r) => r.id === answer.headers['x-aigate-request-id']);
      expect(line).toMatchObject({ protocol: 'h2', method: 'CONNECT', status: 400, decision: 'error' });
    } finally {
      session.close();
    }
  });

  it('an Expect other than 100-continue gets the JSON 400 and its audit line (Node answered 417, unaudited)', async () => {
    const session = await h2Session();
    try {
      const answer = await h2Request(session, { ':method': 'GET', ':path': '/openai/v1/models', expect: 'something-else' });
      expect(answer.headers[':status']).toBe(400);
      expect(JSON.parse(answer.body).error.message).toContain('Expect: something-else');
      const line = await gw.auditWhere((r) => r.id === answer.headers['x-aigate-request-id']);
      expect(line).toMatchObject({ protocol: 'h2', status: 400, path: '/openai/v1/models' });
    } finally {
      session.close();
    }
  });
});

describe('HTTP/2 sessions ended by the protocol layer close promptly (not at timeouts.idle)', () => {
  it('a GOAWAY from a client that then keeps the connection open: aigate closes it and frees its registry entry', async () => {
    const saved = h2CloseGrace.ms;
    h2CloseGrace.ms = 100;
    // A client that does not close its side when aigate closes its own.
    const a = await attacker({ allowHalfOpen: true });
    try {
      await until(() => gw.proxy.metrics.openConnections() >= 1);
      const open = gw.proxy.metrics.openConnections();
      const ended = new Promise((resolve) => a.socket.once('end', resolve));
      a.write(frame(FRAME.GOAWAY, 0, 0, Buffer.alloc(8)));
      // Node closes the session at once (no stream open) and ends its side, then waited for the
      // client's close for as long as it took (timeouts.idle is 120 s here): now h2CloseGrace.
      await ended;
      await until(() => gw.proxy.metrics.openConnections() === open - 1);
    } finally {
      h2CloseGrace.ms = saved;
      a.socket.destroy();
    }
  });

  it('a protocol error nghttp2 answers with GOAWAY on its own (DATA on stream 0): closed promptly and counted (found by the idle PING where Node is not told)', async () => {
    const saved = { ...h2IdleProbe };
    Object.assign(h2IdleProbe, { afterMs: 100, ackMs: 200 });
    try {
      const counted = async () => (await refusals('session_stalled')) + (await refusals('session_error'));
      const before = await counted();
      const a = await attacker();
      await until(() => gw.proxy.metrics.openConnections() >= 1);
      const open = gw.proxy.metrics.openConnections();
      a.write(frame(FRAME.DATA, 0, 0, Buffer.from('x')));
      const goaway = await a.waitFor((f) => f.type === FRAME.GOAWAY);
      expect(goaway.payload.readUInt32BE(4)).toBe(1); // PROTOCOL_ERROR
      // Node 20 is not told and stops reading: only the probe notices (session_stalled), then
      // closes the connection. Node 26 reports the protocol error itself (session_error).
      await a.closed;
      await until(() => gw.proxy.metrics.openConnections() === open - 1);
      expect(await counted()).toBe(before + 1);
    } finally {
      Object.assign(h2IdleProbe, saved);
    }
  });

  it('a live client answers the idle PING and keeps its session', async () => {
    const saved = { ...h2IdleProbe };
    Object.assign(h2IdleProbe, { afterMs: 100, ackMs: 5_000 });
    const session = await h2Session();
    try {
      const chat = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'ping' }] });
      const ask = { ':method': 'POST', ':path': '/openai/v1/chat/completions', 'content-type': 'application/json' };
      const first = await h2Request(session, ask, chat);
      expect(first.headers[':status']).toBe(200);
      // The probe's PING arrives (node:http2 answers it by itself), and the session stays usable.
      await new Promise((resolve) => session.once('ping', resolve));
      const second = await h2Request(session, ask, chat);
      expect(second.headers[':status']).toBe(200);
      expect(session.closed || session.destroyed).toBe(false);
    } finally {
      session.close();
      Object.assign(h2IdleProbe, saved);
    }
  });
});

// The read-body stage over a real HTTP server: the whole body, bounded, and from
// `sharedFromBytes` on in shared memory, so a scan thread reads the very bytes that are forwarded.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProxyError } from '../../src/pipeline/errors.js';
import { Exchange } from '../../src/pipeline/exchange.js';
import { Flow } from '../../src/pipeline/flow.js';
import { readBodyStage } from '../../src/pipeline/stages/read-body.js';

const stage = readBodyStage({ maxBodyBytes: 1024 * 1024, sharedFromBytes: 64 * 1024 });
/** At …/small: a limit a request in one packet can exceed. */
const smallStage = readBodyStage({ maxBodyBytes: 100 });
let server: Server;
let url: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const ex = new Exchange(new Flow('gateway', { ip: '127.0.0.1', user: null }, req.method ?? null, null), req, res);
    void (async () => {
      try {
        // /whole…: run the stage once the parser has the whole request, as it does in the proxy
        // when earlier stages took a turn or two (the body is then read from the stream's buffer).
        if (req.url!.startsWith('/whole')) await untilComplete(req);
        await (req.url!.endsWith('/small') ? smallStage : stage)(ex);
        res.end(
          JSON.stringify({
            shared: ex.body.buffer instanceof SharedArrayBuffer,
            length: ex.body.length,
            bytesIn: ex.flow.bytesIn,
            sha: createHash('sha256').update(ex.body).digest('hex'),
          }),
        );
      } catch (err) {
        res.writeHead(err instanceof ProxyError ? 413 : 500).end((err as Error).message);
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

async function send(body: Buffer | Readable, headers: Record<string, string> = {}) {
  const res = await request(url, { method: 'POST', body, headers });
  const text = await res.body.text();
  return { status: res.statusCode, json: res.statusCode === 200 ? (JSON.parse(text) as Record<string, unknown>) : text };
}

/** Resolves once the parser has seen the end of the request (it was sent in one write). */
function untilComplete(req: IncomingMessage): Promise<void> {
  return new Promise((done) => {
    const check = () => (req.complete ? done() : setImmediate(check));
    check();
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Headers and body in one write: the body is parsed and buffered before the stage runs. */
function sendWhole(path: string, head: string, body: Buffer): Promise<string> {
  const { port } = server.address() as AddressInfo;
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.end(Buffer.concat([Buffer.from(`POST ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n${head}\r\n`), body]));
    });
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
  });
}

const chunked = (body: Buffer) => Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]);

/** A body sent in small pieces with no Content-Length (chunked), as a streaming client sends it. */
function inPieces(body: Buffer, size: number): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < body.length; i += size) yield body.subarray(i, i + size);
    })(),
  );
}

describe('read-body stage', () => {
  it('keeps a small body in ordinary memory', async () => {
    const body = Buffer.from('{"messages":[{"role":"user","content":"hi"}]}');
    expect(await send(body)).toEqual({ status: 200, json: { shared: false, length: body.length, bytesIn: body.length, sha: sha(body) } });
  });

  it('assembles a body from sharedFromBytes on in shared memory, byte for byte, declared or chunked', async () => {
    const body = Buffer.alloc(300 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 131) & 0xff;
    const expected = { status: 200, json: { shared: true, length: body.length, bytesIn: body.length, sha: sha(body) } };
    expect(await send(body)).toEqual(expected);
    expect(await send(inPieces(body, 1000))).toEqual(expected);
    const edge = body.subarray(0, 64 * 1024);
    expect(await send(edge)).toMatchObject({ json: { shared: true, length: edge.length } });
    expect(await send(body.subarray(0, 64 * 1024 - 1))).toMatchObject({ json: { shared: false } });
  });

  it('takes a body that arrived with its headers as it is, declared or chunked', async () => {
    const body = Buffer.from('{"messages":[{"role":"user","content":"all in one packet"}]}');
    const expected = `"length":${body.length},"bytesIn":${body.length},"sha":"${sha(body)}"`;
    expect(await sendWhole('/whole', `content-length: ${body.length}\r\n`, body)).toContain(expected);
    expect(await sendWhole('/whole', 'transfer-encoding: chunked\r\n', chunked(body))).toContain(expected);
    expect(await sendWhole('/whole', 'content-length: 0\r\n', Buffer.alloc(0))).toContain('"length":0');
  });

  it('refuses a body over the limit that arrived whole without a declared length', async () => {
    const answer = await sendWhole('/whole/small', 'transfer-encoding: chunked\r\n', chunked(Buffer.alloc(101, 'a')));
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(await sendWhole('/whole/small', 'transfer-encoding: chunked\r\n', chunked(Buffer.alloc(100, 'a')))).toContain('"length":100');
  });

  it('refuses a body over the limit, declared or not', async () => {
    const big = Buffer.alloc(1024 * 1024 + 1);
    expect((await send(big)).status).toBe(413);
    expect((await send(inPieces(big, 64 * 1024))).status).toBe(413);
  });
});

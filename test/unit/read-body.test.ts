// The read-body stage over a real HTTP server: the whole body, bounded, and from
// `sharedFromBytes` on in shared memory, so a scan thread reads the very bytes that are forwarded.
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProxyError } from '../../src/pipeline/errors.js';
import { Exchange } from '../../src/pipeline/exchange.js';
import { Flow } from '../../src/pipeline/flow.js';
import { readBodyStage } from '../../src/pipeline/stages/read-body.js';

const stage = readBodyStage({ maxBodyBytes: 1024 * 1024, sharedFromBytes: 64 * 1024 });
let server: Server;
let url: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const ex = new Exchange(new Flow('gateway', { ip: '127.0.0.1', user: null }, req.method ?? null, null), req, res);
    void (async () => {
      try {
        await stage(ex);
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

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

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

  it('refuses a body over the limit, declared or not', async () => {
    const big = Buffer.alloc(1024 * 1024 + 1);
    expect((await send(big)).status).toBe(413);
    expect((await send(inPieces(big, 64 * 1024))).status).toBe(413);
  });
});

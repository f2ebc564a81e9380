// The connection registry on real loopback sockets: the per-client count (over-cap connections
// tracked but not counted), what a drain closes when (idle HTTP at once; in-flight requests and
// streams only by closeAll), and `empty` waiting for every layer of a connection to close.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionRegistry } from '../../src/server/connections.js';

let server: Server;
const accepted: Socket[] = [];
const waiting: Array<(s: Socket) => void> = [];
beforeAll(async () => {
  server = createServer((s) => {
    const w = waiting.shift();
    if (w) w(s);
    else accepted.push(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
});
afterAll(() => server.close());

/** One loopback connection; resolves with aigate's (the server's) end of it. */
function serverSide(): Promise<Socket> {
  return new Promise((resolve) => {
    waiting.push(resolve);
    connect((server.address() as { port: number }).port, '127.0.0.1').on('error', () => undefined);
  });
}

describe('ConnectionRegistry', () => {
  it('counts connections per client; one over the cap is tracked but not counted; a close frees a place', async () => {
    const overs: string[] = [];
    const reg = new ConnectionRegistry(2, { onOverLimit: (listener, ip) => overs.push(`${listener} ${ip}`) });
    const [a, b, c] = await Promise.all([serverSide(), serverSide(), serverSide()]);
    expect(reg.accept(a, 'gateway', '10.0.0.1')).toBe(true);
    expect(reg.accept(b, 'forward', '10.0.0.1')).toBe(true);
    expect(reg.accept(c, 'gateway', '10.0.0.1')).toBe(false);
    expect(reg.isOverLimit(c)).toBe(true);
    expect(overs).toEqual(['gateway 10.0.0.1']);
    expect(reg.openFrom('10.0.0.1')).toBe(2);
    expect(reg.size).toBe(3);
    c.destroy();
    a.destroy();
    expect(await reg.empty(0)).toBe(false); // b is still open
    await new Promise((r) => b.once('close', r).destroy());
    expect(await reg.empty(1000)).toBe(true);
    expect(reg.openFrom('10.0.0.1')).toBe(0);
  });

  it('counts an IPv6 client by its /64: other addresses in it share its cap, the next /64 has its own', async () => {
    const overs: string[] = [];
    const reg = new ConnectionRegistry(1, { onOverLimit: (_listener, client) => overs.push(client) });
    const [a, b, c] = await Promise.all([serverSide(), serverSide(), serverSide()]);
    expect(reg.accept(a, 'gateway', '2001:db8:1:2::1')).toBe(true);
    expect(reg.accept(b, 'forward', '2001:db8:1:2:ffff::2')).toBe(false);
    expect(reg.accept(c, 'gateway', '2001:db8:1:3::1')).toBe(true);
    expect(overs).toEqual(['2001:db8:1:2::/64']);
    expect(reg.openFrom('2001:db8:1:2::77')).toBe(1);
    for (const s of [a, b, c]) s.destroy();
    expect(await reg.empty(1000)).toBe(true);
    expect(reg.openFrom('2001:db8:1:2::1')).toBe(0);
  });

  it('closeIdle spares connections with a request in flight and streams; closeAll closes every layer', async () => {
    const reg = new ConnectionRegistry(0);
    const [idle, busy, stream] = await Promise.all([serverSide(), serverSide(), serverSide()]);
    for (const s of [idle, busy, stream]) reg.accept(s, 'forward', '10.0.0.2');
    const tlsLike = new PassThrough(); // a layer built on `busy`, as TLS is on an intercepted tunnel
    reg.layer(tlsLike, busy);
    const done = reg.request(tlsLike);
    reg.stream(stream);
    reg.closeIdle();
    expect([idle.destroyed, busy.destroyed, stream.destroyed]).toEqual([true, false, false]);
    done();
    reg.closeIdle();
    expect(busy.destroyed).toBe(true);
    expect(tlsLike.destroyed).toBe(true);
    reg.closeAll();
    expect(stream.destroyed).toBe(true);
    expect(await reg.empty(1000)).toBe(true);
  });
});

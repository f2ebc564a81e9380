import { describe, expect, it } from 'vitest';
import { parseProxyHeader, ProxyProtocolError, V1_MAX_BYTES, V2_MAX_PAYLOAD_BYTES } from '../../src/server/proxy-protocol.js';

const SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** A v2 header as a balancer writes it: command 1 = PROXY, family 1 = INET, 2 = INET6. */
function v2(opts: { command?: number; family?: number; transport?: number; block?: Buffer; version?: number; declared?: number }): Buffer {
  const block = opts.block ?? Buffer.alloc(0);
  const head = Buffer.alloc(4);
  head[0] = ((opts.version ?? 2) << 4) | (opts.command ?? 1);
  head[1] = ((opts.family ?? 1) << 4) | (opts.transport ?? 1);
  head.writeUInt16BE(opts.declared ?? block.length, 2);
  return Buffer.concat([SIG, head, block]);
}

function inet(src: number[], sport: number, tlvs = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(12);
  Buffer.from(src).copy(b, 0);
  Buffer.from([10, 0, 0, 1]).copy(b, 4);
  b.writeUInt16BE(sport, 8);
  b.writeUInt16BE(443, 10);
  return Buffer.concat([b, tlvs]);
}

function inet6(src: Buffer, sport: number): Buffer {
  const b = Buffer.alloc(36);
  src.copy(b, 0);
  b.writeUInt16BE(sport, 32);
  b.writeUInt16BE(443, 34);
  return b;
}

/** Feeds `bytes` one at a time: incomplete until the last byte of the header, then the result. */
function byteAtATime(bytes: Buffer) {
  for (let i = 1; i < bytes.length; i++) expect(parseProxyHeader(bytes.subarray(0, i))).toEqual({ complete: false });
  return parseProxyHeader(bytes);
}

describe('PROXY protocol v1', () => {
  it('TCP4 names the source address and port; the header length excludes what follows', () => {
    const line = 'PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n';
    const h = parseProxyHeader(Buffer.from(line + 'GET / HTTP/1.1\r\n'));
    expect(h).toEqual({ complete: true, version: 1, length: line.length, source: { address: '203.0.113.7', port: 51234 } });
  });

  it('TCP6, delivered one byte at a time', () => {
    const h = byteAtATime(Buffer.from('PROXY TCP6 2001:db8::7 2001:db8::1 65535 443\r\n'));
    expect(h).toMatchObject({ complete: true, source: { address: '2001:db8::7', port: 65535 } });
  });

  it('UNKNOWN names no client (the peer is used), whatever follows it on the line', () => {
    expect(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n'))).toEqual({ complete: true, version: 1, length: 15, source: null });
    expect(parseProxyHeader(Buffer.from('PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n'))).toMatchObject({ complete: true, source: null });
  });

  it.each([
    ['a plain HTTP request', 'GET / HTTP/1.1\r\n'],
    ['a TLS ClientHello', '\x16\x03\x01\x02\x00'],
    ['lower case', 'proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n'],
    ['an unknown protocol', 'PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n'],
    ['a v6 address under TCP4', 'PROXY TCP4 ::1 5.6.7.8 1 2\r\n'],
    ['a host name', 'PROXY TCP4 example.com 5.6.7.8 1 2\r\n'],
    ['a port above 65535', 'PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n'],
    ['a port with a leading zero', 'PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n'],
    ['a missing field', 'PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n'],
    ['two spaces', 'PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n'],
    ['a bare LF', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n'],
    ['a NUL byte', 'PROXY TCP4 1.2.3.4\x00'],
    ['a non-ASCII byte', 'PROXY TCP4 1.2.3.4\xff'],
  ])('refuses %s', (_what, text) => {
    expect(() => parseProxyHeader(Buffer.from(text, 'latin1'))).toThrow(ProxyProtocolError);
  });

  it(`refuses a line with no CRLF within ${V1_MAX_BYTES} bytes, without waiting for more`, () => {
    const long = Buffer.from('PROXY UNKNOWN ' + 'a'.repeat(V1_MAX_BYTES));
    expect(() => parseProxyHeader(long.subarray(0, V1_MAX_BYTES))).toThrow(/longer than 107/);
    expect(parseProxyHeader(long.subarray(0, V1_MAX_BYTES - 1))).toEqual({ complete: false });
  });
});

describe('PROXY protocol v2', () => {
  it('INET PROXY names the source; TLVs after the addresses are skipped', () => {
    const tlv = Buffer.from([0xea, 0x00, 0x05, 0x01, 0x76, 0x70, 0x63, 0x65]); // AWS VPC endpoint TLV
    const bytes = Buffer.concat([v2({ block: inet([198, 51, 100, 9], 40000, tlv) }), Buffer.from('\x16\x03\x01', 'latin1')]);
    expect(parseProxyHeader(bytes)).toEqual({ complete: true, version: 2, length: 16 + 12 + tlv.length, source: { address: '198.51.100.9', port: 40000 } });
  });

  it('INET6, delivered one byte at a time; IPv4-mapped shown as IPv4', () => {
    const src = Buffer.from('20010db8000000000000000000000007', 'hex');
    expect(byteAtATime(v2({ family: 2, block: inet6(src, 1234) }))).toMatchObject({ source: { address: '2001:db8::7', port: 1234 } });
    const mapped = Buffer.from('00000000000000000000ffffc0000201', 'hex');
    expect(parseProxyHeader(v2({ family: 2, block: inet6(mapped, 1) }))).toMatchObject({ source: { address: '192.0.2.1' } });
    const full = Buffer.from('20010db8000100020003000400050006', 'hex');
    expect(parseProxyHeader(v2({ family: 2, block: inet6(full, 1) }))).toMatchObject({ source: { address: '2001:db8:1:2:3:4:5:6' } });
  });

  it('LOCAL (a health check), UNSPEC and UNIX name no client', () => {
    expect(parseProxyHeader(v2({ command: 0, family: 0, transport: 0 }))).toEqual({ complete: true, version: 2, length: 16, source: null });
    expect(parseProxyHeader(v2({ command: 0, block: inet([1, 2, 3, 4], 5) }))).toMatchObject({ source: null, length: 28 });
    expect(parseProxyHeader(v2({ family: 0, transport: 0, block: Buffer.alloc(3) }))).toMatchObject({ source: null });
    expect(parseProxyHeader(v2({ family: 3, block: Buffer.alloc(216) }))).toMatchObject({ source: null, length: 232 });
  });

  it('waits for a truncated header (signature, fixed part, address block)', () => {
    const whole = v2({ block: inet([1, 2, 3, 4], 5) });
    for (const n of [1, 11, 12, 15, 16, 27]) expect(parseProxyHeader(whole.subarray(0, n))).toEqual({ complete: false });
  });

  it.each([
    ['a wrong signature', Buffer.concat([Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0b]), Buffer.alloc(4)])],
    ['version 1 in a v2 header', v2({ version: 1, block: inet([1, 2, 3, 4], 5) })],
    ['an unknown command', v2({ command: 2, block: inet([1, 2, 3, 4], 5) })],
    ['an unknown family', v2({ family: 4, block: inet([1, 2, 3, 4], 5) })],
    ['an unknown transport', v2({ transport: 3, block: inet([1, 2, 3, 4], 5) })],
    ['an INET block shorter than 12 bytes', v2({ block: Buffer.alloc(11) })],
    ['an INET6 block shorter than 36 bytes', v2({ family: 2, block: Buffer.alloc(35) })],
    ['a declared length over the bound', v2({ declared: V2_MAX_PAYLOAD_BYTES + 1 })],
    ['the largest declared length', v2({ declared: 0xffff })],
  ])('refuses %s', (_what, bytes) => {
    expect(() => parseProxyHeader(bytes)).toThrow(ProxyProtocolError);
  });

  it('refuses an oversized declaration from its first 16 bytes, before any payload arrives', () => {
    expect(() => parseProxyHeader(v2({ declared: 0xffff }).subarray(0, 16))).toThrow(/limit 2048/);
  });

  it('accepts TLVs up to the bound', () => {
    const block = inet([1, 2, 3, 4], 5, Buffer.alloc(V2_MAX_PAYLOAD_BYTES - 12));
    expect(parseProxyHeader(v2({ block }))).toMatchObject({ complete: true, length: 16 + V2_MAX_PAYLOAD_BYTES });
  });
});

// PROXY protocol v1 (text) and v2 (binary), as HAProxy's proxy-protocol.txt defines them: the
// header a load balancer (AWS NLB, HAProxy `send-proxy[-v2]`, nginx `proxy_protocol on`) writes
// before the client's first byte, naming the client it accepted. Parsed here, on the raw TCP
// socket, before TLS or HTTP sees a byte.
//
// Hand-written rather than taken from npm: the one maintained package (proxy-protocol-js) parses
// a complete buffer only (no framing, so no way to know where the header ends on a stream), does
// not check the v1 addresses or the v2 length against the bytes present, and throws non-Error
// values. The framing and the checks are the part that matters for hostile input.
import { isIPv4, isIPv6 } from 'node:net';

/** v1: "PROXY TCP6 <39> <39> <5> <5>\r\n" is the longest line the specification allows. */
export const V1_MAX_BYTES = 107;
/**
 * v2: the address block plus TLVs an operator's balancer may add (AWS NLB: VPC endpoint id; HAProxy:
 * SSL and unique-id TLVs; Azure: link id). Far above what they send, far below the 64 KiB the
 * 16-bit length field could declare.
 */
export const V2_MAX_PAYLOAD_BYTES = 2048;
const V2_HEADER_BYTES = 16;
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_SIGNATURE = Buffer.from('PROXY ', 'latin1');

export interface ProxySource {
  address: string;
  port: number;
}

export type ProxyHeader =
  | { complete: false }
  /**
   * `source` null: the header names no client (v1 UNKNOWN, v2 LOCAL such as a balancer's health
   * check, v2 UNSPEC or UNIX family): the specification says to use the connection's own peer.
   */
  | { complete: true; version: 1 | 2; length: number; source: ProxySource | null };

export class ProxyProtocolError extends Error {
  override readonly name = 'ProxyProtocolError';
}

/**
 * Reads a PROXY header from the start of `buf` (the bytes received so far). Incomplete: more bytes
 * are needed (never more than V1_MAX_BYTES or 16 + V2_MAX_PAYLOAD_BYTES in all). Throws
 * ProxyProtocolError as soon as the bytes cannot begin a valid header.
 */
export function parseProxyHeader(buf: Buffer): ProxyHeader {
  if (buf.length === 0) return { complete: false };
  if (buf[0] === V2_SIGNATURE[0]) return parseV2(buf);
  if (buf[0] === V1_SIGNATURE[0]) return parseV1(buf);
  throw new ProxyProtocolError('no PROXY protocol header (the listener requires one)');
}

function startsAsPrefix(buf: Buffer, signature: Buffer): boolean {
  const n = Math.min(buf.length, signature.length);
  return buf.subarray(0, n).equals(signature.subarray(0, n));
}

function parseV1(buf: Buffer): ProxyHeader {
  if (!startsAsPrefix(buf, V1_SIGNATURE)) throw new ProxyProtocolError('no PROXY protocol header (the listener requires one)');
  const end = buf.subarray(0, V1_MAX_BYTES).indexOf('\r\n');
  if (end < 0) {
    if (buf.length >= V1_MAX_BYTES) throw new ProxyProtocolError(`PROXY v1 header longer than ${V1_MAX_BYTES} bytes`);
    // A lone LF or any byte outside printable ASCII can never become a valid line.
    for (const b of buf) if (b !== 0x0d && (b < 0x20 || b > 0x7e)) throw new ProxyProtocolError('PROXY v1 header has a control or non-ASCII byte');
    return { complete: false };
  }
  const line = buf.subarray(0, end).toString('latin1');
  const length = end + 2;
  if (!/^[\x20-\x7e]*$/.test(line)) throw new ProxyProtocolError('PROXY v1 header has a control or non-ASCII byte');
  const parts = line.split(' ');
  // "PROXY UNKNOWN" may be followed by anything up to the CRLF, which the receiver ignores.
  if (parts[1] === 'UNKNOWN') return { complete: true, version: 1, length, source: null };
  if (parts.length !== 6) throw new ProxyProtocolError('PROXY v1 header must be "PROXY TCP4|TCP6 src dst sport dport"');
  const [, family, src, dst, sport, dport] = parts as [string, string, string, string, string, string];
  const isAddress = family === 'TCP4' ? isIPv4 : family === 'TCP6' ? isIPv6 : undefined;
  if (!isAddress) throw new ProxyProtocolError(`PROXY v1 protocol must be TCP4, TCP6 or UNKNOWN, got "${family.slice(0, 16)}"`);
  if (!isAddress(src) || !isAddress(dst)) throw new ProxyProtocolError(`PROXY v1 addresses are not ${family} addresses`);
  const port = v1Port(sport);
  if (port === undefined || v1Port(dport) === undefined) throw new ProxyProtocolError('PROXY v1 ports must be decimal 0-65535 without leading zeros');
  return { complete: true, version: 1, length, source: { address: src, port } };
}

function v1Port(s: string): number | undefined {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(s)) return undefined;
  const n = Number(s);
  return n <= 65535 ? n : undefined;
}

function parseV2(buf: Buffer): ProxyHeader {
  if (!startsAsPrefix(buf, V2_SIGNATURE)) throw new ProxyProtocolError('no PROXY protocol header (the listener requires one)');
  if (buf.length < V2_HEADER_BYTES) return { complete: false };
  const versionCommand = buf[12]!;
  if (versionCommand >> 4 !== 2) throw new ProxyProtocolError(`PROXY v2 header has version ${versionCommand >> 4}, not 2`);
  const command = versionCommand & 0x0f;
  if (command > 1) throw new ProxyProtocolError(`PROXY v2 header has an unknown command ${command}`);
  const family = buf[13]! >> 4;
  const transport = buf[13]! & 0x0f;
  if (family > 3 || transport > 2) throw new ProxyProtocolError('PROXY v2 header has an unknown address family or transport');
  const payload = buf.readUInt16BE(14);
  if (payload > V2_MAX_PAYLOAD_BYTES) throw new ProxyProtocolError(`PROXY v2 header declares ${payload} bytes (limit ${V2_MAX_PAYLOAD_BYTES})`);
  const length = V2_HEADER_BYTES + payload;
  if (buf.length < length) return { complete: false };
  // LOCAL: the balancer speaking for itself (health checks); its address block is ignored.
  if (command === 0) return { complete: true, version: 2, length, source: null };
  const block = buf.subarray(V2_HEADER_BYTES, length);
  if (family === 1) {
    if (payload < 12) throw new ProxyProtocolError('PROXY v2 INET address block shorter than 12 bytes');
    return { complete: true, version: 2, length, source: { address: `${block[0]}.${block[1]}.${block[2]}.${block[3]}`, port: block.readUInt16BE(8) } };
  }
  if (family === 2) {
    if (payload < 36) throw new ProxyProtocolError('PROXY v2 INET6 address block shorter than 36 bytes');
    return { complete: true, version: 2, length, source: { address: ipv6(block.subarray(0, 16)), port: block.readUInt16BE(32) } };
  }
  // UNSPEC or UNIX: no IP address to name the client by.
  return { complete: true, version: 2, length, source: null };
}

/** 16 bytes as an IPv6 address; IPv4-mapped addresses come out as plain IPv4, as the audit shows them. */
function ipv6(b: Buffer): string {
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  // Compress the longest run of zero groups (RFC 5952), so the address matches what Node reports.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

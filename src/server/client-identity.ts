// Who the client is: the one place its address (and, on the gateway, its certificate user) is
// decided, for the audit line, the rate-limit key, the body budgets, the per-client connection cap
// and the X-Forwarded-For / X-Real-IP sent upstream. (The limits count an IPv6 address by its /64:
// clientKey in route/address.ts; the audit line and the headers keep the whole address.)
//   connection: the PROXY-protocol source when the listener takes one, else the TCP peer;
//   request:    the connection's address, or — when that address is in `trustedProxies` — the
//               right-most address of X-Forwarded-For that is not itself a trusted proxy.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Client } from '../pipeline/flow.js';
import { socketIp } from './client-error.js';
import { parseCidr, type CertUserField } from './identity-config.js';

export { CERT_USER_FIELDS, parseCidr, type CertUserField } from './identity-config.js';

/** PROXY-protocol sources, by the raw socket they arrived on. */
const declaredPeers = new WeakMap<object, string>();

/** Records the client a PROXY header named for this connection (proxy-protocol front), IPv4-mapped IPv6 as IPv4. */
export function declarePeer(socket: object, address: string): void {
  declaredPeers.set(socket, socketIp({ remoteAddress: address }));
}

/**
 * The client address of a connection: what its PROXY header declared (on the socket itself or on
 * the raw socket under a TLS layer), else the TCP peer. IPv4-mapped IPv6 is shown as IPv4.
 */
export function peerIp(socket: { remoteAddress?: string | undefined }): string {
  const declared = declaredPeers.get(socket) ?? declaredPeers.get((socket as { _parent?: object })._parent ?? socket);
  return declared ?? socketIp(socket);
}

/** Addresses (CIDRs) of the reverse proxies / balancers allowed to name the client in X-Forwarded-For. */
export class TrustedProxies {
  private readonly list = new BlockList();
  readonly empty: boolean;

  constructor(cidrs: readonly string[]) {
    for (const c of cidrs) {
      const { address, prefix } = parseCidr(c);
      const family = isIP(address) === 4 ? 'ipv4' : 'ipv6';
      this.list.addSubnet(address, prefix, family);
    }
    this.empty = cidrs.length === 0;
  }

  has(ip: string): boolean {
    const family = isIP(ip);
    if (family === 0) return false;
    return this.list.check(ip, family === 4 ? 'ipv4' : 'ipv6');
  }

  /**
   * The client of a request that came from `peer`. Only a trusted peer's X-Forwarded-For counts,
   * and only as far as the chain of trusted proxies goes: walking right to left, the first address
   * not in the list is the client (anything left of it was written by the client and may be forged).
   * A malformed entry stops the walk at the last address known good.
   */
  clientOf(peer: string, forwardedFor: string | string[] | undefined): string {
    if (this.empty || forwardedFor === undefined || !this.has(peer)) return peer;
    const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',');
    let client = peer;
    // Bounded: a header is at most 16 KiB (the parser's limit), so the walk is too.
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = normaliseHop(hops[i]!);
      if (hop === undefined) return client;
      client = hop;
      if (!this.has(hop)) return hop;
    }
    return client;
  }
}

/** One X-Forwarded-For entry as an address: spaces trimmed, IPv4-mapped shown as IPv4; undefined when it is not one. */
function normaliseHop(raw: string): string | undefined {
  let hop = raw.trim();
  // Some proxies write "[v6]" or "v4:port"; RFC 7239 style values are not X-Forwarded-For.
  if (hop.startsWith('[') && hop.endsWith(']')) hop = hop.slice(1, -1);
  if (isIP(hop) === 0) return undefined;
  return hop.toLowerCase().startsWith('::ffff:') && hop.includes('.') ? hop.slice(7) : hop;
}

/** Longest user name taken from a certificate (audit lines, rate-limit keys). */
const MAX_CERT_USER = 256;

/**
 * The user a verified client certificate names, by `field`; null without a verified certificate or
 * without that field. Only an authorized (chain-verified against the configured CA) certificate counts.
 */
export function certificateUser(socket: Partial<Pick<TLSSocket, 'authorized' | 'getPeerCertificate'>>, field: CertUserField): string | null {
  if (socket.authorized !== true || typeof socket.getPeerCertificate !== 'function') return null;
  const cert = socket.getPeerCertificate(false);
  if (!cert || Object.keys(cert).length === 0) return null;
  let value: string | undefined;
  if (field === 'CN' || field === 'emailAddress') {
    const v = (cert.subject as unknown as Record<string, string | string[] | undefined> | undefined)?.[field];
    value = Array.isArray(v) ? v[0] : v;
  } else {
    value = subjectAltName(cert.subjectaltname ?? '', field.slice(4));
  }
  if (value === undefined || value === '') return null;
  return value.slice(0, MAX_CERT_USER);
}

/** The first `kind:` entry of Node's subjectaltname string ("DNS:a, email:b, URI:c"; values with a comma are JSON-quoted). */
function subjectAltName(san: string, kind: string): string | undefined {
  const re = /(?:^|, )([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)/g;
  for (let m = re.exec(san); m; m = re.exec(san)) {
    if (m[1] !== kind) continue;
    const v = m[2]!;
    if (!v.startsWith('"')) return v;
    try {
      return JSON.parse(v) as string;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** How a listener names the client of a connection and of a request. */
export interface ClientIdentity {
  ofConnection(socket: Duplex | { remoteAddress?: string | undefined }): string;
  ofRequest(req: IncomingMessage): Client;
  /** The same for a request on `socket` with these headers (an HTTP/2 stream on its TLS socket). */
  ofStream(socket: TLSSocket, headers: IncomingHttpHeaders): Client;
}

export function createClientIdentity(opts: { trustedProxies?: TrustedProxies; certificateUserField?: CertUserField } = {}): ClientIdentity {
  const trusted = opts.trustedProxies;
  const field = opts.certificateUserField;
  return {
    ofConnection: (socket) => peerIp(socket as { remoteAddress?: string }),
    ofRequest: (req) => ofStream(req.socket as TLSSocket, req.headers),
    ofStream,
  };
  function ofStream(socket: TLSSocket, headers: IncomingHttpHeaders): Client {
    const peer = peerIp(socket);
    const ip = trusted ? trusted.clientOf(peer, headers['x-forwarded-for']) : peer;
    const user = field ? certificateUser(socket, field) : null;
    return { ip, user };
  }
}

/** The identity of a listener without PROXY protocol, trusted proxies or certificates: the TCP peer. */
export const peerIdentity: ClientIdentity = createClientIdentity();

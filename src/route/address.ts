// Destination address policy for forward mode (SPEC §4): host-name canonicalisation, the private
// address table, and resolution that pins the connection to the address that was checked.
//
// Why resolve here and not let the socket do it: a name checked against one DNS answer and dialled
// with another (DNS rebinding, or just a short TTL) would let `evil.example` reach 127.0.0.1 after
// passing the check. The caller dials exactly the address returned by resolveDestination.
import { lookup as dnsLookup } from 'node:dns/promises';
import { BlockList, isIP, type LookupFunction } from 'node:net';

export type IpVersion = 4 | 6;

export interface CanonicalHost {
  /** Lower-case ASCII (IDNA) name without trailing dot, or a canonical IP address (no brackets). */
  host: string;
  /** 0 for a DNS name. */
  ip: 0 | IpVersion;
}

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;
// Characters that may appear in a host before IDNA; anything else (/, @, :, %, ?, #, space …) could
// change how a URL parser splits the string, so it is refused before parsing.
const HOST_CHARS = /^[A-Za-z0-9._\-\u0080-\uffff]+$/;

function isDnsName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  return name.split('.').every((l) => LABEL.test(l));
}

/**
 * Canonical form of a host as a client may send it (CONNECT target, Host header, config): strips
 * `[ ]` around IPv6 and one trailing dot, lower-cases, converts IDNs to punycode, and recognises the
 * numeric shorthands resolvers accept (`127.1`, `0x7f.0.0.1`, `2130706433`) as the IPv4 address they
 * denote, so an allowlist of names cannot be bypassed with an IP in disguise. Null when invalid.
 */
export function canonicalHost(input: string): CanonicalHost | null {
  let h = input.trim();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  const family = isIP(h);
  if (family === 4) return { host: h, ip: 4 };
  if (family === 6) {
    if (h.includes('%')) return null; // zone ids only make sense on the local link
    return { host: canonicalIPv6(h), ip: 6 };
  }
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (!HOST_CHARS.test(h)) return null;
  let parsed: string;
  try {
    parsed = new URL(`http://${h}/`).hostname;
  } catch {
    return null;
  }
  if (isIP(parsed) === 4) return { host: parsed, ip: 4 };
  if (parsed.endsWith('.')) parsed = parsed.slice(0, -1);
  return isDnsName(parsed) ? { host: parsed, ip: 0 } : null;
}

function canonicalIPv6(ip: string): string {
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
}

/** `host:port` with IPv6 in brackets, as connectTo keys and log lines spell it. */
export function formatHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Network-order bytes of an IPv4 or IPv6 address (IPv6 may end in dotted IPv4), or null. */
export function ipToBytes(ip: string): Buffer | null {
  const family = isIP(ip);
  if (family === 4) return Buffer.from(ip.split('.').map(Number));
  if (family !== 6 || ip.includes('%')) return null;
  let s = ip.toLowerCase();
  const lastColon = s.lastIndexOf(':');
  const tail = s.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = tail.split('.').map(Number);
    s = `${s.slice(0, lastColon + 1)}${((v4[0]! << 8) | v4[1]!).toString(16)}:${((v4[2]! << 8) | v4[3]!).toString(16)}`;
  }
  const halves = s.split('::');
  const head = halves[0] ? halves[0].split(':') : [];
  const rest = halves.length > 1 ? (halves[1] ? halves[1].split(':') : []) : [];
  const groups = halves.length > 1 ? [...head, ...Array<string>(8 - head.length - rest.length).fill('0'), ...rest] : head;
  if (groups.length !== 8) return null;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/**
 * What a client's own limits count under (failed logins, connections, body budget, the rate limit
 * by address): an IPv4 address as itself, IPv4-mapped IPv6 (`::ffff:a.b.c.d`) as that IPv4 address,
 * any other IPv6 address as its /64 (`2001:db8:1:2::/64`). A /64 is what an IPv6 host or customer
 * is given: keyed by the whole address, one of them would be 2^64 clients, each with its own limits.
 * The audit line keeps the whole address. Anything that is not an address is returned as it is.
 */
export function clientKey(ip: string): string {
  if (!ip.includes(':')) return ip; // IPv4 (or nothing): the common case costs one scan
  const zone = ip.indexOf('%');
  const address = zone === -1 ? ip : ip.slice(0, zone);
  if (isIP(address) !== 6) return ip;
  // Called per request (rate limit, body budget): parsed in one pass, without ipToBytes' Buffer and splits.
  const g = ipv6Groups(address);
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `${g[6]! >> 8}.${g[6]! & 0xff}.${g[7]! >> 8}.${g[7]! & 0xff}`;
  }
  // The interface half is zeros, the longest run there can be: RFC 5952 puts the "::" there, after
  // any zero groups the prefix ends with.
  let n = 4;
  while (n > 0 && g[n - 1] === 0) n--;
  let key = '';
  for (let i = 0; i < n; i++) key += (i === 0 ? '' : ':') + g[i]!.toString(16);
  return `${key}::/64`;
}

/** The eight 16-bit groups of an address isIP calls IPv6 (no zone id); a dotted IPv4 tail is two groups. */
function ipv6Groups(address: string): number[] {
  const groups: number[] = [];
  let gapAt = -1;
  let value = 0;
  let digits = 0;
  for (let i = 0; i < address.length; i++) {
    const c = address.charCodeAt(i);
    if (c === 0x3a /* : */) {
      if (digits > 0) groups.push(value);
      value = 0;
      digits = 0;
      if (address.charCodeAt(i + 1) === 0x3a) {
        gapAt = groups.length;
        i++;
      }
    } else if (c === 0x2e /* . */) {
      // The group being read was the first octet of a dotted IPv4 tail: read the tail as decimal.
      const v4 = [0, 0, 0, 0];
      let octet = 0;
      for (let j = address.lastIndexOf(':') + 1; j < address.length; j++) {
        const d = address.charCodeAt(j);
        if (d === 0x2e) octet++;
        else v4[octet] = v4[octet]! * 10 + d - 0x30;
      }
      groups.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      digits = 0;
      break;
    } else {
      value = value * 16 + (c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x57);
      digits++;
    }
  }
  if (digits > 0) groups.push(value);
  if (gapAt !== -1) groups.splice(gapAt, 0, ...new Array<number>(8 - groups.length).fill(0));
  return groups;
}

// ---------------------------------------------------------------------------------------------
// Private / special-purpose address table (IANA special-purpose registries, RFC 6890 and successors).

type AddressClass =
  | 'unspecified'
  | 'loopback'
  | 'private network'
  | 'shared address space (CGNAT)'
  | 'link-local'
  | 'multicast'
  | 'reserved'
  | 'documentation'
  | 'unique local (ULA)'
  | 'site-local';

const V4: Array<[string, number, AddressClass]> = [
  ['0.0.0.0', 8, 'unspecified'],
  ['10.0.0.0', 8, 'private network'],
  ['100.64.0.0', 10, 'shared address space (CGNAT)'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'private network'],
  ['192.0.0.0', 24, 'reserved'],
  ['192.0.2.0', 24, 'documentation'],
  ['192.88.99.0', 24, 'reserved'],
  ['192.168.0.0', 16, 'private network'],
  ['198.18.0.0', 15, 'reserved'],
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'],
];

const V6: Array<[string, number, AddressClass]> = [
  ['::', 128, 'unspecified'],
  ['::1', 128, 'loopback'],
  ['::', 96, 'reserved'], // IPv4-compatible (deprecated)
  ['64:ff9b:1::', 48, 'private network'], // local-use NAT64
  ['100::', 64, 'reserved'], // discard-only
  ['2001::', 32, 'reserved'], // Teredo: tunnels to arbitrary IPv4
  ['2001:10::', 28, 'reserved'],
  ['2001:20::', 28, 'reserved'],
  ['2001:db8::', 32, 'documentation'],
  ['3fff::', 20, 'documentation'],
  ['fc00::', 7, 'unique local (ULA)'],
  ['fe80::', 10, 'link-local'],
  ['fec0::', 10, 'site-local'],
  ['ff00::', 8, 'multicast'],
];

function buildTable(): Array<[BlockList, AddressClass]> {
  const byClass = new Map<AddressClass, BlockList>();
  const add = (net: string, prefix: number, cls: AddressClass, type: 'ipv4' | 'ipv6'): void => {
    let list = byClass.get(cls);
    if (!list) byClass.set(cls, (list = new BlockList()));
    list.addSubnet(net, prefix, type);
  };
  for (const [net, prefix, cls] of V4) add(net, prefix, cls, 'ipv4');
  for (const [net, prefix, cls] of V6) add(net, prefix, cls, 'ipv6');
  // Unspecified and loopback first, so `::` and `::1` are not reported as merely "reserved".
  const order: AddressClass[] = ['unspecified', 'loopback'];
  return [...byClass.entries()].sort(([a], [b]) => {
    const ia = order.indexOf(a);
    const ib = order.indexOf(b);
    return (ia === -1 ? 99 : ia) - (ib === -1 ? 99 : ib);
  }).map(([cls, list]) => [list, cls]);
}

const TABLE = buildTable();

/** The IPv4 address carried inside an IPv6 one where the IPv6 form is only a wrapper around it:
 *  IPv4-mapped (::ffff:a.b.c.d), NAT64 well-known prefix (64:ff9b::/96) and 6to4 (2002::/16). */
function embeddedIPv4(bytes: Buffer): string | null {
  const zeros = (from: number, to: number): boolean => bytes.subarray(from, to).every((b) => b === 0);
  if (zeros(0, 10) && bytes[10] === 0xff && bytes[11] === 0xff) return [...bytes.subarray(12, 16)].join('.');
  if (bytes.readUInt32BE(0) === 0x0064ff9b && zeros(4, 12)) return [...bytes.subarray(12, 16)].join('.');
  if (bytes.readUInt16BE(0) === 0x2002) return [...bytes.subarray(2, 6)].join('.');
  return null;
}

/** Why an address must not be dialled on behalf of a client (`'loopback'`, `'private network'` …),
 *  or null for an ordinary public unicast address. Non-addresses are classed as `'reserved'`. */
export function classifyAddress(ip: string): AddressClass | null {
  let address = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  let family = isIP(address);
  if (family === 0 || address.includes('%')) return 'reserved';
  if (family === 6) {
    const bytes = ipToBytes(address);
    if (!bytes) return 'reserved';
    const v4 = embeddedIPv4(bytes);
    if (v4 !== null) {
      address = v4;
      family = 4;
    }
  }
  const type = family === 4 ? 'ipv4' : 'ipv6';
  for (const [list, cls] of TABLE) if (list.check(address, type)) return cls;
  return null;
}

/** Loopback, private, link-local, multicast, unspecified, CGNAT, ULA, documentation and other
 *  special-purpose ranges — including IPv4 ones wrapped in IPv6 (mapped, NAT64, 6to4). */
export function isPrivateAddress(ip: string): boolean {
  return classifyAddress(ip) !== null;
}

// ---------------------------------------------------------------------------------------------
// Resolution.

export type ResolvedVia = 'connectTo' | 'dns' | 'literal';

export interface Destination {
  /** Canonical requested host: use it for SNI, Host and certificate verification. */
  host: string;
  /** The one address to dial — the one that was checked. */
  address: string;
  family: IpVersion;
  /** Port to dial (a connectTo entry may change it). */
  port: number;
  via: ResolvedVia;
  /** Every address the name resolved to, all of which passed the check, in resolver order. */
  addresses: ReadonlyArray<{ address: string; family: IpVersion }>;
}

export type DestinationErrorReason = 'invalid-host' | 'private-address' | 'unresolvable' | 'bad-connect-to';

export class DestinationError extends Error {
  constructor(
    readonly reason: DestinationErrorReason,
    message: string,
    readonly host: string,
    readonly port: number,
    readonly address?: string,
  ) {
    super(message);
    this.name = 'DestinationError';
  }
}

export type LookupAll = (hostname: string) => Promise<ReadonlyArray<{ address: string; family: number }>>;

export const systemLookup: LookupAll = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

export interface ConnectTarget {
  host: string;
  port: number;
}

/** `connectTo` keyed by canonical `host:port`, so lookups are exact whatever case or brackets the
 *  config used. Compile once at start-up. */
export type ConnectToTable = ReadonlyMap<string, ConnectTarget>;

/** `host:port` (IPv6 in brackets, port 1–65535), or null. */
export function parseHostPort(value: string): { host: string; port: number } | null {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(value.trim());
  if (!m) return null;
  const c = canonicalHost(m[1]!);
  const port = Number(m[2]);
  if (!c || port < 1 || port > 65535) return null;
  return { host: c.host, port };
}

export function compileConnectTo(record: Readonly<Record<string, string>> | undefined): ConnectToTable {
  const table = new Map<string, ConnectTarget>();
  for (const [from, to] of Object.entries(record ?? {})) {
    const key = parseHostPort(from);
    const target = parseHostPort(to);
    if (!key) throw new Error(`connectTo: "${from}" is not host:port`);
    if (!target) throw new Error(`connectTo["${from}"]: "${to}" is not host:port`);
    table.set(formatHostPort(key.host, key.port), target);
  }
  return table;
}

export interface ResolveOptions {
  connectTo?: ConnectToTable | Readonly<Record<string, string>>;
  denyPrivateAddresses: boolean;
  lookup?: LookupAll;
}

function familyOf(address: string): IpVersion {
  return isIP(address) === 6 ? 6 : 4;
}

/**
 * Where to dial for `host:port`. A connectTo entry wins (its target is trusted as configured, even if
 * private). Otherwise the name is resolved and, with denyPrivateAddresses, refused if ANY answer is a
 * private address — an attacker controlling DNS could otherwise mix one public and one private answer.
 * Throws DestinationError with a message fit for the client and the audit log.
 */
export async function resolveDestination(host: string, port: number, opts: ResolveOptions): Promise<Destination> {
  const canon = canonicalHost(host);
  if (!canon) throw new DestinationError('invalid-host', `"${host}" is not a valid host name`, host, port);
  const name = canon.host;
  const lookup = opts.lookup ?? systemLookup;
  const table = opts.connectTo instanceof Map ? opts.connectTo : compileConnectTo(opts.connectTo as Record<string, string>);

  const target = table.get(formatHostPort(name, port));
  if (target) {
    let address = target.host;
    if (isIP(address) === 0) {
      const answers = await lookupOrThrow(lookup, address, name, port);
      address = answers[0]!.address;
    }
    const family = familyOf(address);
    return { host: name, address, family, port: target.port, via: 'connectTo', addresses: [{ address, family }] };
  }

  if (canon.ip !== 0) {
    const cls = classifyAddress(name);
    if (opts.denyPrivateAddresses && cls !== null) {
      throw new DestinationError(
        'private-address',
        `${name} is a private address (${cls}); name it in connectTo to allow it`,
        name,
        port,
        name,
      );
    }
    return { host: name, address: name, family: canon.ip, port, via: 'literal', addresses: [{ address: name, family: canon.ip }] };
  }

  const answers = await lookupOrThrow(lookup, name, name, port);
  const addresses = answers.map((a) => ({ address: a.address, family: familyOf(a.address) }));
  if (opts.denyPrivateAddresses) {
    for (const { address } of addresses) {
      const cls = classifyAddress(address);
      if (cls !== null) {
        throw new DestinationError(
          'private-address',
          `${name} resolves to ${address}, a private address (${cls}); name ${formatHostPort(name, port)} in connectTo to allow it`,
          name,
          port,
          address,
        );
      }
    }
  }
  const first = addresses[0]!;
  return { host: name, address: first.address, family: first.family, port, via: 'dns', addresses };
}

async function lookupOrThrow(
  lookup: LookupAll,
  hostname: string,
  host: string,
  port: number,
): Promise<ReadonlyArray<{ address: string; family: number }>> {
  let answers: ReadonlyArray<{ address: string; family: number }>;
  try {
    answers = await lookup(hostname);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new DestinationError('unresolvable', `cannot resolve ${hostname}: ${code}`, host, port);
  }
  const valid = answers.filter((a) => isIP(a.address) !== 0);
  if (valid.length === 0) throw new DestinationError('unresolvable', `cannot resolve ${hostname}: no addresses`, host, port);
  return valid;
}

/** A `lookup` for net/tls/undici that always answers with the checked address, so a library that
 *  insists on resolving the name itself still dials what resolveDestination approved. */
export function pinnedLookup(dest: Pick<Destination, 'address' | 'family'>): LookupFunction {
  return ((_hostname: string, options: unknown, callback?: unknown) => {
    const cb = (typeof options === 'function' ? options : callback) as (
      err: NodeJS.ErrnoException | null,
      address: string | Array<{ address: string; family: number }>,
      family?: number,
    ) => void;
    const all = typeof options === 'object' && options !== null && (options as { all?: boolean }).all === true;
    if (all) cb(null, [{ address: dest.address, family: dest.family }]);
    else cb(null, dest.address, dest.family);
  }) as LookupFunction;
}

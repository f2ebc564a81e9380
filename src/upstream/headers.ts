// Header rewriting between client and upstream (RFC 9110 §7.6.1 hop-by-hop fields).

/** Never forwarded in either direction; plus whatever the Connection header lists. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Set by aigate itself: client-supplied values would let a client forge its origin. */
const SET_BY_PROXY = ['host', 'x-real-ip', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded'];

/**
 * Client request fields never sent upstream as the client gave them: hop-by-hop, set by aigate,
 * and Content-Length (undici sets it from the body actually sent) and Expect (the body is already
 * read). One set, one lookup per field.
 */
const NOT_FORWARDED = new Set([...HOP_BY_HOP, ...SET_BY_PROXY, 'content-length', 'expect']);

export type HeaderMap = Record<string, string | string[]>;

const NONE_LISTED: ReadonlySet<string> = new Set();

function connectionListed(value: string | string[] | undefined): ReadonlySet<string> {
  if (value === undefined) return NONE_LISTED;
  const out = new Set<string>();
  for (const v of Array.isArray(value) ? value : [value]) {
    for (const token of v.split(',')) {
      const t = token.trim().toLowerCase();
      if (t) out.add(t);
    }
  }
  return out;
}

/**
 * Headers to send upstream, from the client's raw header list (keeps repeated fields).
 * Content-Length is dropped (undici sets it from the body actually sent), and so is Expect (the
 * body is already read). `set` (lower-case names) replaces every client value of the same name:
 * a tenant restriction must not be mergeable with a value of the client's choosing.
 */
export function upstreamRequestHeaders(
  rawHeaders: string[],
  opts: {
    host: string;
    clientIp: string;
    dropContentEncoding: boolean;
    proto: 'https' | 'http';
    set?: ReadonlyArray<readonly [string, string]> | undefined;
    /** The client reads trailers aigate relays (HTTP/2): its `te: trailers` goes upstream. */
    trailers?: boolean;
  },
): HeaderMap {
  // Each name lower-cased once (the Connection header, if any, must be read before the rest).
  const names = new Array<string>(rawHeaders.length >> 1);
  let listed: Set<string> | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = (names[i >> 1] = rawHeaders[i]!.toLowerCase());
    if (name === 'connection') {
      listed ??= new Set();
      for (const t of connectionListed(rawHeaders[i + 1])) listed.add(t);
    }
  }
  const out: HeaderMap = {};
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = names[i >> 1]!;
    // HTTP/2 pseudo-headers (:method, :path, :authority, :scheme) are the request line, not fields.
    if (name.charCodeAt(0) === 0x3a) continue;
    if (NOT_FORWARDED.has(name) || listed?.has(name)) {
      // gRPC servers refuse a call without `te: trailers` (the client reads trailers; the only TE
      // value HTTP/2 allows). Kept only where aigate relays trailers (an HTTP/2 client): saying
      // it on behalf of an HTTP/1.1 client, whose trailers are dropped, would be a lie.
      if (!(name === 'te' && opts.trailers === true && !listed?.has('te') && rawHeaders[i + 1]!.trim().toLowerCase() === 'trailers')) continue;
    }
    if (opts.dropContentEncoding && name === 'content-encoding') continue;
    const value = rawHeaders[i + 1]!;
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[name] = [prev, value];
  }
  out['host'] = opts.host;
  out['x-real-ip'] = opts.clientIp;
  out['x-forwarded-for'] = opts.clientIp;
  out['x-forwarded-proto'] = opts.proto;
  if (opts.set) for (const [name, value] of opts.set) out[name] = value;
  return out;
}

/** Upstream response headers minus hop-by-hop fields, ready for `res.writeHead`. */
export function clientResponseHeaders(headers: Record<string, string | string[] | undefined>): HeaderMap {
  const listed = connectionListed(headers['connection']);
  const out: HeaderMap = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || listed.has(name)) continue;
    out[name] = value;
  }
  return out;
}

// Which RPC protocol a request speaks, from its Content-Type and headers, and the per-message
// compression it negotiated. Sources: grpc PROTOCOL-HTTP2.md and PROTOCOL-WEB.md, and the Connect
// protocol reference (connectrpc.com/docs/protocol).

export type RpcProtocol = 'grpc' | 'grpc-web' | 'connect';
export type Codec = 'proto' | 'json' | 'other';

export interface EnvelopeChannel {
  kind: 'envelopes';
  protocol: RpcProtocol;
  codec: Codec;
  /** application/grpc-web-text: the body is base64 around the envelopes. */
  base64: boolean;
  /** Negotiated per-message compression, lower-case; 'identity' when none. */
  encoding: string;
  /** The request's Content-Type, echoed on refusals (gRPC wants its own back). */
  contentType: string;
}

/** A Connect unary call: a plain body (Content-Encoding compresses it whole). */
export interface ConnectUnaryChannel {
  kind: 'connect-unary';
  codec: Codec;
}

/** A Connect unary GET: the message rides in the query string. */
export interface ConnectGetChannel {
  kind: 'connect-get';
  codec: Codec;
  /** The `message` parameter, still base64url or percent-decoded text. */
  message: string;
  base64: boolean;
  compression: string;
}

export type RpcChannel = EnvelopeChannel | ConnectUnaryChannel | ConnectGetChannel;

/** Per-message compressions aigate can undo to inspect; any other is refused, not forwarded. */
export const MESSAGE_ENCODINGS: ReadonlySet<string> = new Set(['identity', 'gzip', 'deflate']);

type Headers = Record<string, string | string[] | undefined>;

function header(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

function codecOf(sub: string): Codec {
  if (sub === '' || sub === 'proto') return 'proto';
  return sub === 'json' ? 'json' : 'other';
}

/** The RPC channel of a request, or null for an ordinary HTTP request. */
export function rpcChannel(method: string | undefined, headers: Headers, query: string): RpcChannel | null {
  const contentType = header(headers, 'content-type') ?? '';
  const mime = contentType.split(';')[0]!.trim().toLowerCase();
  const slash = mime.indexOf('/');
  const sub = mime.slice(slash + 1);
  if (mime.startsWith('application/grpc-web-text')) return envelopes('grpc-web', sub.slice('grpc-web-text'.length), true, headers, 'grpc-encoding', contentType);
  if (mime.startsWith('application/grpc-web')) return envelopes('grpc-web', sub.slice('grpc-web'.length), false, headers, 'grpc-encoding', contentType);
  if (mime.startsWith('application/grpc')) return envelopes('grpc', sub.slice('grpc'.length), false, headers, 'grpc-encoding', contentType);
  if (mime.startsWith('application/connect+')) return envelopes('connect', '+' + sub.slice('connect+'.length), false, headers, 'connect-content-encoding', contentType);
  if (method === 'GET' && query.includes('=')) {
    const get = connectGet(query);
    if (get !== null) return get;
  }
  if (header(headers, 'connect-protocol-version') !== undefined || mime === 'application/proto') {
    if (mime === 'application/proto' || mime === 'application/json') return { kind: 'connect-unary', codec: mime === 'application/json' ? 'json' : 'proto' };
  }
  return null;
}

function envelopes(protocol: RpcProtocol, suffix: string, base64: boolean, headers: Headers, encodingHeader: string, contentType: string): EnvelopeChannel | null {
  // `application/grpc`, `application/grpc+proto`, `application/grpc+json`; anything else after the
  // protocol name (application/grpcfoo) is not this protocol.
  if (suffix !== '' && !suffix.startsWith('+')) return null;
  const encoding = (header(headers, encodingHeader) ?? 'identity').trim().toLowerCase() || 'identity';
  return { kind: 'envelopes', protocol, codec: codecOf(suffix.slice(1)), base64, encoding, contentType };
}

/** The query parameters a Connect server reads from a GET; each given at most once, or the request is refused. */
const CONNECT_GET_PARAMS = ['connect', 'encoding', 'message', 'base64', 'compression'];

/**
 * A GET whose query holds a `message` and its `encoding` is a Connect GET, whatever its `connect`
 * parameter says: connect-es and connect-go decode the message without one (they check it only
 * with requireConnectProtocolHeader), so `connect=v1` cannot be what decides whether it is inspected.
 * Throws ConnectGetError when one of the parameters is given twice: servers differ on which one
 * they read (a Go server drops a pair holding `;` and reads the next), so aigate could inspect
 * another message than the one decoded.
 */
function connectGet(query: string): ConnectGetChannel | null {
  const params = new URLSearchParams(query.startsWith('?') ? query.slice(1) : query);
  if (!params.has('message') || !params.has('encoding')) return null;
  for (const name of CONNECT_GET_PARAMS) {
    if (params.getAll(name).length > 1) throw new ConnectGetError(`the ${name} parameter is given more than once: send each Connect GET parameter once`);
  }
  return {
    kind: 'connect-get',
    codec: codecOf(params.get('encoding') ?? 'proto'),
    message: params.get('message') ?? '',
    base64: params.get('base64') === '1',
    compression: (params.get('compression') ?? 'identity').toLowerCase() || 'identity',
  };
}

/** A Connect GET whose query string servers could read differently. */
export class ConnectGetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConnectGetError';
  }
}

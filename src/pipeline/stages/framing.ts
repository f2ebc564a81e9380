// Request headers that decide how the body is framed or read, checked before anything reads it.
// What the inspector reads must be what the upstream reads: where Node's view of a header and the
// raw header lines forwarded upstream could disagree, the request is refused instead.
//
// What Node does with each such header given twice (node:_http_incoming matchKnownFields, llhttp):
//   Content-Length       refused by llhttp (HPE_UNEXPECTED_CONTENT_LENGTH), answered in client-error.ts
//   Transfer-Encoding    joined with ", " (one list, as RFC 9110 §5.3 says): checked as a list below
//   Content-Encoding     joined with ", ": inspection undoes the whole list, the upstream gets both
//                        lines, which mean the same list — nothing to refuse
//   Content-Type         the first kept in req.headers, both forwarded: refused; so is one value
//                        listing two media types, or giving a parameter (boundary, charset) twice
//   Host                 the first kept; RFC 9112 §3.2 requires a 400: refused
//   Content-Disposition  joined; the inspector never reads it on a request (multipart parts carry
//                        their own): nothing to refuse
import type { IncomingMessage } from 'node:http';
import { repeatedParameter } from '../../inspect/views.js';
import { ProxyError } from '../errors.js';

/** The longest piece of a header value quoted back in an error message. */
const SHOWN = 64;

function shown(value: string): string {
  return value.length > SHOWN ? `${value.slice(0, SHOWN)}…` : value;
}

/**
 * Throws the answer for a request whose body framing or media type aigate cannot read the way the
 * upstream would: `not_implemented` (501) for a transfer coding other than chunked, `bad_request`
 * (400) for the rest. Both close the connection: the body that follows is never read.
 */
export function assertReadableFraming(req: IncomingMessage): void {
  const te = req.headers['transfer-encoding'];
  if (te !== undefined) checkTransferEncoding(te);
  const raw = req.rawHeaders;
  let contentTypes = 0;
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 12 && name.toLowerCase() === 'content-type') contentTypes++;
    else if (name.length === 4 && name.toLowerCase() === 'host') hosts++;
  }
  if (contentTypes > 1) {
    throw refuse('bad_request', 'Content-Type given more than once: send one Content-Type header with one media type');
  }
  if (hosts > 1) throw refuse('bad_request', 'Host given more than once (RFC 9112 §3.2): send one Host header');
  const ct = req.headers['content-type'];
  if (ct !== undefined && ct.includes(',') && hasListComma(ct)) {
    // A Fetch-standard parser reads the last media type of such a list, aigate's inspector the first.
    throw refuse('bad_request', `Content-Type "${shown(ct)}" lists more than one media type: send exactly one`);
  }
  const repeated = ct !== undefined && ct.includes(';') ? repeatedParameter(ct) : undefined;
  if (repeated !== undefined) {
    // The inspector reads the first boundary or charset; parsers that keep parameters in a map
    // (Django's parse_header, the content-type package) read the last.
    throw refuse('bad_request', `Content-Type "${shown(ct!)}" gives the ${repeated} parameter more than once: send it once`);
  }
}

function checkTransferEncoding(value: string): void {
  // Empty list elements are allowed and ignored (RFC 9110 §5.6.1); codings are case-insensitive.
  const codings = value
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '');
  const chunkedAt = codings.indexOf('chunked');
  if (codings.length === 0 || chunkedAt !== codings.length - 1) {
    // RFC 9112 §6.3: without chunked last (once) the body's length cannot be known: 400, close.
    throw refuse('bad_request', `Transfer-Encoding "${shown(value)}" must end with chunked, applied once (RFC 9112 §6.1)`);
  }
  if (codings.length > 1) {
    throw refuse(
      'not_implemented',
      `Transfer-Encoding "${shown(value)}" is not implemented: send the body with Transfer-Encoding: chunked alone (compress it with Content-Encoding instead)`,
    );
  }
}

/** True when `value` has a comma outside a quoted-string (a parameter value may hold one). */
function hasListComma(value: string): boolean {
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === ',') return true;
  }
  return false;
}

function refuse(type: 'bad_request' | 'not_implemented', message: string): ProxyError {
  return new ProxyError(type, message, { connection: 'close' });
}

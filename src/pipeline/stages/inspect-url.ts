// URL inspection: the upstream reads the request path and query string, so a secret there leaves
// as surely as one in the body. They are scanned by the body's inspector (one detector for every
// channel) as a form-encoded text: the raw text as sent, and its percent-decoded reading, so
// `%67hp_…` is seen as `ghp_…`. Runs after routing and the rate limiter (a refused URL costs a
// token, as a refused body does) and before the body is read, in both modes, upgrades included.
// Forward mode also scans the host a client names, since it leaves in the DNS query, SNI and Host:
// an absolute-form request's here, with its URL; a CONNECT target once it is allowed and before it
// is resolved (server/forward.ts).
//
// Actions: block → 403 naming the rule (never the value); monitor → forwarded, audited; redact →
// treated as block. A URL is an address, not a message: a path segment rewritten to
// `[REDACTED:…]` names another resource (a 404 at best, a different object at worst), and a
// credential in a query value is usually how the request authenticates, so a rewritten one fails
// anyway — after the request was sent. Refusing says plainly what happened and sends nothing.
import { InspectError, type Inspector, type ScanFinding } from '../../inspect/index.js';
import { ProxyError } from '../errors.js';
import type { Stage } from '../exchange.js';
import type { Action } from '../../config/schema.js';
import type { Finding, Flow } from '../flow.js';

/** Form decoding (`%XX`, and `+` as a space in the query) is the reading that reveals the most. */
const AS_FORM = 'application/x-www-form-urlencoded';

export function blockUrlMessage(findings: readonly Pick<ScanFinding, 'rule'>[], where = 'the request URL'): string {
  const n = findings.length;
  const rules = [...new Set(findings.map((f) => f.rule))];
  return `request blocked: ${n} secret${n === 1 ? '' : 's'} found in ${where} (${rules.join(', ')}); send credentials in a header or the body, never in ${where}`;
}

/**
 * Scans `text` — a part of the URL the upstream (or a resolver) will read — records its findings
 * on the flow and throws `sensitive_content` when one of them blocks. `where` names the part in the
 * refusal ("the request URL", "the host name").
 */
export async function inspectUrlPart(inspector: Inspector, flow: Flow, text: string, action: Action, where: string): Promise<void> {
  let outcome;
  try {
    // latin1: Node hands the request target over one character per byte, so this is the bytes sent.
    outcome = await inspector.inspectBody(Buffer.from(text, 'latin1'), { contentType: AS_FORM, action });
  } catch (err) {
    if (err instanceof InspectError) throw new ProxyError('bad_request', `${where} cannot be inspected: ${err.message}`);
    throw err;
  }
  if (outcome.findings.length === 0) return;
  const findings: Finding[] = outcome.findings.map((f) => ({
    rule: f.rule,
    line: 1,
    action: f.action === 'redact' ? 'block' : f.action,
    fingerprint: f.fingerprint,
  }));
  flow.findings.push(...findings);
  const blocking = findings.filter((f) => f.action === 'block');
  if (blocking.length > 0) throw new ProxyError('sensitive_content', blockUrlMessage(blocking, where));
}

export function inspectUrlStage(inspector: Inspector): Stage {
  return (ex) => {
    // An absolute-form request (plain http:// on the forward listener) named its host in this URL,
    // and it leaves in the DNS query and Host header; a tunnelled request's host was checked once,
    // at its CONNECT (server/forward.ts).
    const host = ex.destination?.scheme === 'http' ? ex.flow.hostAsSent : null;
    const url = host === null ? ex.rawPath + ex.query : `//${host}${ex.rawPath}${ex.query}`;
    return inspectUrlPart(inspector, ex.flow, url, ex.target!.action, 'the request URL');
  };
}

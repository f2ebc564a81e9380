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
import { observeRememberedScan } from '../../inspect/timed.js';
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
  await scanUrlPart(inspector, flow, text, action, where);
}

/** inspectUrlPart's work; resolves true when `text` holds nothing at all (no finding of any action). */
async function scanUrlPart(inspector: Inspector, flow: Flow, text: string, action: Action, where: string): Promise<boolean> {
  let outcome;
  try {
    // latin1: Node hands the request target over one character per byte, so this is the bytes sent.
    outcome = await inspector.inspectBody(Buffer.from(text, 'latin1'), { contentType: AS_FORM, action });
  } catch (err) {
    if (err instanceof InspectError) throw new ProxyError('bad_request', `${where} cannot be inspected: ${err.message}`);
    throw err;
  }
  if (outcome.findings.length === 0) return true;
  const findings: Finding[] = outcome.findings.map((f) => ({
    rule: f.rule,
    line: 1,
    action: f.action === 'redact' ? 'block' : f.action,
    fingerprint: f.fingerprint,
  }));
  flow.findings.push(...findings);
  const blocking = findings.filter((f) => f.action === 'block');
  if (blocking.length > 0) throw new ProxyError('sensitive_content', blockUrlMessage(blocking, where));
  return false;
}

/** URLs longer than this are scanned every time, never remembered. */
export const REMEMBERED_URL_LENGTH = 2048;
/** How many clean URLs a stage remembers; past it, it forgets them all and starts again. */
export const REMEMBERED_URLS = 1024;

/**
 * URLs the inspector found nothing in, by the action they were scanned under. A client sends the
 * same few URLs again and again (`/openai/chat/completions`), and the verdict on a text depends
 * only on the text and the inspector: a URL proven clean once is clean the next time, so it is
 * not scanned again (a 1 KiB request's URL scan cost ~6% of its work, bench/instructions.mjs).
 * Only clean verdicts are kept: a URL with any finding, even monitor-only, is scanned each time so
 * that each of its requests is audited with its findings. Bounded in count and length, so
 * clients sending ever new URLs cost memory only up to the bound.
 */
class CleanUrls {
  private readonly byAction = new Map<Action, Set<string>>();
  private size = 0;

  has(action: Action, url: string): boolean {
    return this.byAction.get(action)?.has(url) === true;
  }

  add(action: Action, url: string): void {
    if (url.length > REMEMBERED_URL_LENGTH) return;
    if (this.size >= REMEMBERED_URLS) {
      this.byAction.clear();
      this.size = 0;
    }
    let set = this.byAction.get(action);
    if (set === undefined) this.byAction.set(action, (set = new Set()));
    if (!set.has(url)) {
      set.add(url);
      this.size++;
    }
  }
}

export function inspectUrlStage(inspector: Inspector): Stage {
  // One per stage, so one per pipeline: a pipeline built for a new config starts with none.
  const clean = new CleanUrls();
  return (ex) => {
    // An absolute-form request (plain http:// on the forward listener) named its host in this URL,
    // and it leaves in the DNS query and Host header; a tunnelled request's host was checked once,
    // at its CONNECT (server/forward.ts).
    const host = ex.destination?.scheme === 'http' ? ex.flow.hostAsSent : null;
    const url = host === null ? ex.rawPath + ex.query : `//${host}${ex.rawPath}${ex.query}`;
    const action = ex.target!.action;
    const started = process.hrtime.bigint();
    if (clean.has(action, url)) {
      observeRememberedScan(inspector, Number(process.hrtime.bigint() - started) / 1e9);
      return;
    }
    return scanUrlPart(inspector, ex.flow, url, action, 'the request URL').then((nothing) => {
      if (nothing) clean.add(action, url);
    });
  };
}

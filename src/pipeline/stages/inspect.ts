// Inspection stage (SPEC §5): the body read by the previous stage is decoded and scanned before a
// byte goes upstream. block → 403 naming rule and line (never the value); redact → the redacted,
// identity-encoded body replaces it; monitor → forwarded as sent. Findings go to the audit line.
// inspectMessage is the same mapping for every channel (a WebSocket message is judged as a body).
import { InspectError, type InspectBodyMeta, type InspectDecision, type InspectOutcome, type Inspector, type ScanFinding } from '../../inspect/index.js';
import { ProxyError } from '../errors.js';
import type { Exchange, Stage } from '../exchange.js';
import type { Finding } from '../flow.js';
import { formatBytes } from './read-body.js';

/** More than this many findings are summarised as "and N more" in the 403 message. */
const LISTED_FINDINGS = 10;

export function blockMessage(findings: readonly Pick<ScanFinding, 'rule' | 'line'>[], what = 'request'): string {
  const listed = findings.slice(0, LISTED_FINDINGS).map((f) => `${f.rule} line ${f.line}`);
  if (findings.length > LISTED_FINDINGS) listed.push(`and ${findings.length - LISTED_FINDINGS} more`);
  const n = findings.length;
  // Classified or protected code is not a secret: such a refusal counts "sensitive items".
  const noun = findings.every((f) => !/^(?:classification|protected-code):/.test(f.rule)) ? 'secret' : 'sensitive item';
  return `${what} blocked: ${n} ${noun}${n === 1 ? '' : 's'} found (${listed.join(', ')})`;
}

/** A finding as audited: rule, line, action, fingerprint, and for protected code its source — never the value. */
export function auditFinding(f: ScanFinding): Finding {
  const out: Finding = { rule: f.rule, line: f.line, action: f.action, fingerprint: f.fingerprint };
  if (f.source !== undefined) out.source = f.source;
  return out;
}

export interface MessageVerdict {
  decision: InspectDecision;
  /** As audited: rule, line, action, fingerprint — never the value. */
  findings: Finding[];
  /** What to forward: the message as sent, or redacted (identity-encoded) under 'redact'. */
  body: Buffer;
  /** Under 'block': the answer (sensitive_content, naming each blocking rule and line). */
  refusal?: ProxyError;
  /** The rule ids that blocked it, each once, in order of appearance. */
  blockingRules?: string[];
}

/**
 * Scans one message (an HTTP body, a WebSocket message) and maps the outcome to what aigate does.
 * Throws ProxyError: body_too_large past `maxBodyBytes` once decoded, bad_request when undecodable.
 */
export async function inspectMessage(
  inspector: Inspector,
  body: Buffer,
  meta: InspectBodyMeta,
  maxBodyBytes: number,
  what = 'request',
): Promise<MessageVerdict> {
  let outcome;
  try {
    outcome = await inspector.inspectBody(body, meta);
  } catch (err) {
    throw inspectFailure(err, maxBodyBytes, what);
  }
  return verdictOf(outcome, body, what);
}

/** What an inspector's refusal to read a message is answered with. */
function inspectFailure(err: unknown, maxBodyBytes: number, what: string): unknown {
  if (err instanceof InspectError) {
    if (err.kind === 'too_large') {
      return new ProxyError('body_too_large', `decoded ${what} body exceeds the ${formatBytes(maxBodyBytes)} limit (inspect.maxBodyBytes)`);
    }
    return new ProxyError('bad_request', `${what} body cannot be inspected: ${err.message}`);
  }
  return err;
}

function verdictOf(outcome: InspectOutcome, body: Buffer, what: string): MessageVerdict {
  const findings = outcome.findings.map(auditFinding);
  const verdict: MessageVerdict = { decision: outcome.decision, findings, body };
  if (outcome.decision === 'block') {
    const blocking = outcome.findings.filter((f) => f.action === 'block');
    verdict.refusal = new ProxyError('sensitive_content', blockMessage(blocking, what));
    verdict.blockingRules = [...new Set(blocking.map((f) => f.rule))];
  } else if (outcome.decision === 'redact') verdict.body = outcome.redactedBody!;
  return verdict;
}

export function inspectStage(inspector: Inspector, maxBodyBytes: number): Stage {
  // The inspector's promise, continued directly: no async wrapper of its own around it.
  return (ex) => {
    if (ex.body.length === 0) return;
    const headers = ex.req.headers;
    const body = ex.body;
    const meta = { contentType: headers['content-type'], contentEncoding: headers['content-encoding'], action: ex.target!.action };
    const fail = (err: unknown): never => {
      throw inspectFailure(err, maxBodyBytes, 'request');
    };
    let pending: Promise<InspectOutcome>;
    try {
      pending = inspector.inspectBody(body, meta);
    } catch (err) {
      return fail(err); // as a rejection would be: an inspector is async, but nothing requires it
    }
    return pending.then((outcome) => apply(ex, verdictOf(outcome, body, 'request')), fail);
  };
}

function apply(ex: Exchange, verdict: MessageVerdict): void {
  const { flow } = ex;
  // Appended: the URL's findings (inspect-url.ts) are already there.
  for (const f of verdict.findings) flow.findings.push(f);
  switch (verdict.decision) {
    case 'block':
      throw verdict.refusal!;
    case 'redact':
      ex.body = verdict.body;
      ex.bodyDecoded = true;
      flow.decision = 'redact';
      return;
    default:
      return;
  }
}

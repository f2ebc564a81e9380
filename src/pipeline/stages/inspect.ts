// Inspection stage (SPEC §5): the body read by the previous stage is decoded and scanned before a
// byte goes upstream. block → 403 naming rule and line (never the value); redact → the redacted,
// identity-encoded body replaces it; monitor → forwarded as sent. Findings go to the audit line.
import { InspectError, type Inspector, type ScanFinding } from '../../inspect/index.js';
import { ProxyError } from '../errors.js';
import type { Stage } from '../exchange.js';
import { formatBytes } from './read-body.js';

/** More than this many findings are summarised as "and N more" in the 403 message. */
const LISTED_FINDINGS = 10;

export function blockMessage(findings: readonly ScanFinding[]): string {
  const listed = findings.slice(0, LISTED_FINDINGS).map((f) => `${f.rule} line ${f.line}`);
  if (findings.length > LISTED_FINDINGS) listed.push(`and ${findings.length - LISTED_FINDINGS} more`);
  const n = findings.length;
  return `request blocked: ${n} secret${n === 1 ? '' : 's'} found (${listed.join(', ')})`;
}

export function inspectStage(inspector: Inspector, maxBodyBytes: number): Stage {
  return async (ex) => {
    if (ex.body.length === 0) return;
    const headers = ex.req.headers;
    let outcome;
    try {
      outcome = await inspector.inspectBody(ex.body, {
        contentType: headers['content-type'],
        contentEncoding: headers['content-encoding'],
        action: ex.target!.action,
      });
    } catch (err) {
      if (err instanceof InspectError) {
        if (err.kind === 'too_large') {
          throw new ProxyError('body_too_large', `decoded request body exceeds the ${formatBytes(maxBodyBytes)} limit (inspect.maxBodyBytes)`);
        }
        throw new ProxyError('bad_request', `request body cannot be inspected: ${err.message}`);
      }
      throw err;
    }
    const { flow } = ex;
    // Appended: the URL's findings (inspect-url.ts) are already there.
    for (const f of outcome.findings) flow.findings.push({ rule: f.rule, line: f.line, action: f.action, fingerprint: f.fingerprint });
    switch (outcome.decision) {
      case 'block':
        throw new ProxyError('sensitive_content', blockMessage(outcome.findings.filter((f) => f.action === 'block')));
      case 'redact':
        ex.body = outcome.redactedBody!;
        ex.bodyDecoded = true;
        flow.decision = 'redact';
        return;
      default:
        return;
    }
  };
}

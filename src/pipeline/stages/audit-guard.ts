// `audit.onWriteError: deny`: a request the audit log cannot record is not let through. Checked
// after routing and proxy authentication (so the refusal's own audit line, kept in memory until the
// log works again, names the route and user) and before the rate limiter and the body.
import type { AuditLog } from '../../audit/log.js';
import { ProxyError } from '../errors.js';
import type { Stage } from '../exchange.js';

/** Throws `audit_unavailable` while the audit log refuses traffic (failing, under `deny`). */
export function assertAuditWritable(audit: AuditLog): void {
  if (audit.refusesTraffic()) {
    throw new ProxyError(
      'audit_unavailable',
      'request refused: the audit log cannot be written, and this proxy refuses traffic it cannot record (audit.onWriteError: deny); try again shortly',
    );
  }
}

export function auditGuardStage(audit: AuditLog): Stage {
  return () => assertAuditWritable(audit);
}

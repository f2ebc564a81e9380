// `audit.format: ocsf` — an audit record as an OCSF 1.8 event (checked in
// test/unit/audit-formats.test.ts against the published schema files vendored in test/fixtures):
// HTTP Activity (class 4002) for a flow without findings, Detection Finding (class 2004) for one
// with findings — one event per flow either way, the HTTP request as the finding's evidence. The
// proxy's decision is the security-control profile's action/disposition; what OCSF has no
// attribute for goes in `unmapped.aigate`. The hash chain's members are appended after this
// mapping, at the top level.
import type { ConfigEvent } from './log.js';
import { createRequire } from 'node:module';
import type { AuditRecord } from './log.js';

export const OCSF_VERSION = '1.8.0';
const { version: AIGATE_VERSION } = createRequire(import.meta.url)('../../package.json') as { version: string };

/** HTTP Activity activity ids (OCSF events/network/http_activity.json). */
const HTTP_ACTIVITY: Record<string, number> = { CONNECT: 1, DELETE: 2, GET: 3, HEAD: 4, OPTIONS: 5, POST: 6, PUT: 7, TRACE: 8, PATCH: 9 };
/** severity_id: 1 Informational, 2 Low, 3 Medium, 4 High. */
const SEVERITY: Record<AuditRecord['decision'], number> = { allow: 1, redact: 2, rate_limited: 2, block: 3, deny: 3, error: 4 };
const REFUSED = new Set(['block', 'deny', 'rate_limited']);

const metadata = (uid?: string) => ({ version: OCSF_VERSION, ...(uid !== undefined ? { uid } : {}), log_name: 'audit', profiles: ['security_control'], product: { name: 'aigate', vendor_name: 'aigate', version: AIGATE_VERSION } });

export function toOcsf(r: AuditRecord): Record<string, unknown> {
  const { time, event, id, mode, client, route, method, host, path, status, decision, reason, bytesIn, bytesOut, durationMs, findings, ...rest } = r;
  const refused = REFUSED.has(decision);
  const src = { ip: client.ip };
  const actor = client.user !== null ? { actor: { user: { name: client.user } } } : {};
  const dst = host !== null ? { dst_endpoint: { hostname: host } } : {};
  const request = {
    ...(method !== null ? { http_method: method } : {}),
    ...(path !== null ? { url: { path, ...(host !== null ? { hostname: host } : {}) } } : {}),
    length: bytesIn,
  };
  const response = status > 0 ? { http_response: { code: status, length: bytesOut } } : {};
  const common = {
    time: Date.parse(time),
    severity_id: SEVERITY[decision],
    status_id: decision === 'error' || refused || status >= 400 ? 2 : 1, // 1 Success, 2 Failure
    ...(status > 0 ? { status_code: String(status) } : {}),
    ...(reason !== null ? { status_detail: reason } : {}),
    duration: Math.round(durationMs),
    // security_control profile: action 1 Allowed / 2 Denied; disposition 1 Allowed / 2 Blocked.
    action_id: refused ? 2 : 1,
    disposition_id: refused ? 2 : 1,
    metadata: metadata(id),
    unmapped: { aigate: { event, mode, route, decision, bytesIn, bytesOut, durationMs, findings, ...(client.credential !== undefined ? { credential: client.credential } : {}), ...rest } },
  };
  if (findings.length === 0) {
    const activity = method !== null ? (HTTP_ACTIVITY[method] ?? 99) : 99;
    return {
      class_uid: 4002,
      class_name: 'HTTP Activity',
      category_uid: 4,
      category_name: 'Network Activity',
      activity_id: activity,
      activity_name: method ?? 'Other',
      type_uid: 4002 * 100 + activity,
      ...common,
      src_endpoint: src,
      ...dst,
      ...actor,
      http_request: request,
      ...response,
    };
  }
  const rules = [...new Set(findings.map((f) => f.rule))];
  return {
    class_uid: 2004,
    class_name: 'Detection Finding',
    category_uid: 2,
    category_name: 'Findings',
    activity_id: 1, // Create
    activity_name: 'Create',
    type_uid: 2004 * 100 + 1,
    ...common,
    is_alert: refused,
    finding_info: { uid: id, title: `Sensitive content in a request to an AI service: ${rules.join(', ')}`, types: rules },
    evidences: [{ src_endpoint: src, ...dst, ...actor, http_request: request, ...response }],
  };
}

/** A chain record (checkpoint, chain-end) in OCSF: a Base Event (class 0) whose activity_name names it. */
export function ocsfChainEvent(event: string, time: string): Record<string, unknown> {
  return {
    class_uid: 0,
    category_uid: 0,
    activity_id: 99,
    activity_name: event,
    type_uid: 99,
    severity_id: 1,
    time: Date.parse(time),
    metadata: metadata(),
  };
}

/** A configuration event (a reload) in OCSF: a Base Event whose status says whether it was applied. */
export function ocsfConfigEvent(e: ConfigEvent, time: string): Record<string, unknown> {
  return {
    ...ocsfChainEvent(e.event, time),
    status_id: e.outcome === 'applied' ? 1 : 2,
    status: e.outcome === 'applied' ? 'Success' : 'Failure',
    ...(e.reason ? { status_detail: e.reason, message: e.reason } : {}),
    unmapped: { config: e.config, ...(e.sha256 ? { sha256: e.sha256 } : {}) },
  };
}

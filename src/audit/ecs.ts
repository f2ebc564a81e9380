// `audit.format: ecs` — an audit record as an Elastic Common Schema document (ECS 9.4, checked in
// test/unit/audit-formats.test.ts against the published field mappings vendored in test/fixtures).
// Standard fields where ECS has one (@timestamp, event.*, source.ip, user.name, url.*, http.*,
// rule.id, observer.*); everything aigate-specific under the `aigate` namespace, as ECS asks of
// custom fields. The hash chain's members (chain, seq, prev, hash) are appended to the line after
// this mapping, at the top level, in every format.
import type { ConfigEvent } from './log.js';
import { isIP } from 'node:net';
import type { AuditRecord } from './log.js';

export const ECS_VERSION = '9.4.0';

const DENIED = new Set(['block', 'deny', 'rate_limited']);

export function toEcs(r: AuditRecord): Record<string, unknown> {
  const { time, event, id, mode: _m, client, route: _r, method, host, path, status, decision, reason, bytesIn, bytesOut, durationMs, findings, ...rest } = r;
  const refused = DENIED.has(decision);
  const doc: Record<string, unknown> = {
    '@timestamp': time,
    ecs: { version: ECS_VERSION },
    event: {
      kind: findings.length > 0 ? 'alert' : 'event',
      category: findings.length > 0 ? ['network', 'web', 'intrusion_detection'] : ['network', 'web'],
      type: decision === 'error' ? ['error'] : refused ? ['access', 'denied'] : ['access', 'allowed'],
      action: event,
      outcome: decision === 'error' || refused || status >= 400 ? 'failure' : 'success',
      // ECS durations are nanoseconds.
      duration: Math.round(durationMs * 1e6),
      id,
      dataset: 'aigate.audit',
      module: 'aigate',
      ...(reason !== null ? { reason } : {}),
    },
    observer: { product: 'aigate', vendor: 'aigate', type: 'proxy' },
  };
  if (isIP(client.ip)) doc.source = { ip: client.ip };
  if (client.user !== null) doc.user = { name: client.user };
  if (host !== null || path !== null) doc.url = { ...(host !== null ? { domain: host } : {}), ...(path !== null ? { path } : {}) };
  doc.http = {
    request: { ...(method !== null ? { method } : {}), bytes: bytesIn },
    response: { ...(status > 0 ? { status_code: status } : {}), bytes: bytesOut },
  };
  if (findings.length > 0) doc.rule = { id: [...new Set(findings.map((f) => f.rule))] };
  doc.aigate = { mode: r.mode, route: r.route, decision, findings, ...(client.credential !== undefined ? { credential: client.credential } : {}), ...rest };
  return doc;
}

/** A chain record (checkpoint, chain-end) in ECS: `event.action` names it. */
export function ecsChainEvent(event: string, time: string): Record<string, unknown> {
  return { '@timestamp': time, ecs: { version: ECS_VERSION }, event: { kind: 'event', action: event, dataset: 'aigate.audit', module: 'aigate' } };
}

/** A configuration event (a reload) in ECS: outcome and reason in `event.*`, the file in `file.*`. */
export function ecsConfigEvent(e: ConfigEvent, time: string): Record<string, unknown> {
  return {
    '@timestamp': time,
    ecs: { version: ECS_VERSION },
    event: { kind: 'event', category: ['configuration'], type: ['change'], action: e.event, outcome: e.outcome === 'applied' ? 'success' : 'failure', ...(e.reason ? { reason: e.reason } : {}), dataset: 'aigate.audit', module: 'aigate' },
    file: { path: e.config, ...(e.sha256 ? { hash: { sha256: e.sha256 } } : {}) },
    ...(e.reason ? { message: e.reason } : {}),
  };
}

// audit.format ecs / ocsf (SPEC §11): the mappings are valid against the published schemas
// (vendored in test/fixtures, sources in the README there), the lines they produce are chained and
// verify like aigate's own, and listeners (the dashboard) keep getting the plain record.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { toEcs } from '../../src/audit/ecs.js';
import { AuditLog, type AuditRecord } from '../../src/audit/log.js';
import { toOcsf } from '../../src/audit/ocsf.js';
import { verifyAuditFiles } from '../../src/audit/verify.js';
import { EcsSchema, OcsfSchema } from '../support/schemas.js';

const FIXTURES = resolve(import.meta.dirname, '../fixtures');
export const ocsf = new OcsfSchema(process.env.AIGATE_OCSF_ROOT ?? join(FIXTURES, 'ocsf-1.8.0'));
const ecs = new EcsSchema(join(FIXTURES, 'ecs-9.4.0'));

function record(over: Partial<AuditRecord> = {}): AuditRecord {
  return {
    time: '2026-12-07T08:00:00.123Z',
    event: 'request',
    id: 'f-1',
    mode: 'gateway',
    client: { ip: '10.0.0.7', user: 'alice' },
    route: 'openai',
    method: 'POST',
    host: 'api.openai.com',
    path: '/v1/chat/completions',
    status: 200,
    decision: 'allow',
    reason: null,
    bytesIn: 812,
    bytesOut: 2048,
    durationMs: 153.25,
    findings: [],
    ...over,
  };
}

const blocked = record({
  decision: 'block',
  status: 403,
  reason: 'sensitive_content',
  findings: [
    { rule: 'aws-access-key', line: 3, action: 'block', fingerprint: 'ab12' },
    { rule: 'github-pat', line: 9, action: 'block', fingerprint: 'cd34' },
  ],
});
const variants: Array<[string, AuditRecord]> = [
  ['allowed request', record()],
  ['blocked request with findings', blocked],
  ['redacted (monitor) finding', record({ decision: 'redact', findings: [{ rule: 'email', line: 1, action: 'redact', fingerprint: 'ef' }] })],
  ['upstream error, no user', record({ decision: 'error', status: 502, reason: 'upstream_unavailable', client: { ip: '::1', user: null } })],
  ['rate limited', record({ decision: 'rate_limited', status: 429, reason: 'rate_limited' })],
  ['forward-mode CONNECT denied, no path', record({ event: 'connect', mode: 'forward', method: 'CONNECT', path: null, route: null, decision: 'deny', status: 403 })],
  ['client gone before a status', record({ status: 0, method: null, path: null, aborted: true })],
  ['vendor key fingerprinted', record({ client: { ip: '10.0.0.7', user: null, credential: '0123456789abcdef' } })],
];

describe('audit.format: ecs', () => {
  it.each(variants)('%s: every field is an ECS 9.4 field of its published type, enumerations allowed', (_name, r) => {
    const doc = toEcs(r);
    expect(ecs.validate(doc)).toEqual([]);
  });

  it('maps the request to the fields SIEMs query: @timestamp, event.*, source.ip, user.name, url.path, http.*, duration in ns', () => {
    expect(toEcs(blocked)).toMatchObject({
      '@timestamp': '2026-12-07T08:00:00.123Z',
      event: { kind: 'alert', category: ['network', 'web', 'intrusion_detection'], type: ['access', 'denied'], outcome: 'failure', duration: 153_250_000, id: 'f-1', reason: 'sensitive_content' },
      source: { ip: '10.0.0.7' },
      user: { name: 'alice' },
      url: { domain: 'api.openai.com', path: '/v1/chat/completions' },
      http: { request: { method: 'POST', bytes: 812 }, response: { status_code: 403, bytes: 2048 } },
      rule: { id: ['aws-access-key', 'github-pat'] },
      aigate: { decision: 'block', route: 'openai', mode: 'gateway' },
    });
  });

  it('keeps the vendor-key fingerprint as aigate.credential (ECS has no field for it)', () => {
    const r = record({ client: { ip: '10.0.0.7', user: null, credential: '0123456789abcdef' } });
    expect(toEcs(r)).toMatchObject({ aigate: { credential: '0123456789abcdef' } });
    expect(toOcsf(r)).toMatchObject({ unmapped: { aigate: { credential: '0123456789abcdef' } } });
  });

  it('the validator catches a wrong type and an unknown field (it can fail)', () => {
    expect(ecs.validate({ event: { duration: 1.5 }, source: { ip: 'not-an-ip' }, bogus: 1, aigate: { anything: true } })).toEqual([
      'event.duration: 1.5 is not of ECS type long',
      'source.ip: "not-an-ip" is not of ECS type ip',
      'bogus: not an ECS field',
    ]);
    expect(ecs.validate({ event: { kind: 'request' } })[0]).toMatch(/^event.kind: "request" is not an allowed value/);
  });
});

describe('audit.format: ocsf', () => {
  it.each(variants)('%s: a valid OCSF 1.8 event of its class', (_name, r) => {
    const doc = toOcsf(r);
    const cls = r.findings.length > 0 ? 'detection_finding' : 'http_activity';
    expect(doc.class_uid).toBe(r.findings.length > 0 ? 2004 : 4002);
    expect(ocsf.validateEvent(doc, cls)).toEqual([]);
  });

  it('the validator catches a missing required attribute and a wrong type (it can fail)', () => {
    const doc = toOcsf(record());
    delete doc.metadata;
    doc.time = 'yesterday';
    expect(ocsf.validateEvent(doc, 'http_activity')).toEqual(['http_activity.metadata: required', 'http_activity.time: "yesterday" is not a timestamp_t']);
  });
});

describe('formatted lines in the audit file', () => {
  it.each(['ecs', 'ocsf'] as const)('%s: lines are chained and verify; chain records are in the format; listeners get the plain record', async (format) => {
    const file = join(mkdtempSync(join(tmpdir(), 'aigate-format-')), 'audit.log');
    const log = new AuditLog({ file, stdout: false, format, chainKey: 'k' });
    const heard: AuditRecord[] = [];
    log.onRecord((r) => heard.push(r));
    log.write(record());
    log.write(blocked);
    log.close();
    expect(heard.map((r) => r.id)).toEqual(['f-1', 'f-1']);
    expect(heard[0]).not.toHaveProperty('@timestamp');
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(3);
    if (format === 'ecs') {
      expect(lines[0]).toHaveProperty('@timestamp');
      expect(lines[2]).toMatchObject({ event: { action: 'chain-end' }, seq: 2 });
    } else {
      expect(lines.map((l) => l.class_uid)).toEqual([4002, 2004, 0]);
      expect(lines[2]).toMatchObject({ activity_name: 'chain-end' });
    }
    expect((await verifyAuditFiles([file], { key: Buffer.from('k'), liveSeconds: 0, allowUnended: false })).ok).toBe(true);
    // Without chain-end the chain is reported as cut, in these formats too.
    const { writeFileSync } = await import('node:fs');
    writeFileSync(file, readFileSync(file, 'utf8').split('\n').slice(0, 2).join('\n') + '\n');
    expect((await verifyAuditFiles([file], { key: Buffer.from('k'), liveSeconds: 0, allowUnended: false })).problems[0]).toMatch(/without a chain-end/);
  });
});

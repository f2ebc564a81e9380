// The audit line's JSON is written field by field (record-json.ts) for speed: it must be exactly
// JSON.stringify of the record, whatever its strings hold and whichever optional fields it has.
// The path and host masking remembers what it left unchanged, and never what it masked.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuditLog, toRecord } from '../../src/audit/log.js';
import { recordJson } from '../../src/audit/record-json.js';
import { Flow, type Client, type Decision } from '../../src/pipeline/flow.js';
import { Rng } from '../corpus/secrets.js';

/** Strings JSON.stringify escapes, and some it does not. */
const PIECES = ['a', '/v1/chat', ' ', '"', '\\', '\n', '\u0000', '\u001f', '\u007f', 'é', '€', '😀', '\ud800', '\udfff', 'x\ud83d', '\u2028', '%2F', '</script>'];

function text(rng: Rng): string {
  let s = '';
  const n = rng.below(6);
  for (let i = 0; i < n; i++) s += PIECES[rng.below(PIECES.length)];
  return s;
}

function flow(rng: Rng, i: number): Flow {
  const client: Client = { ip: rng.below(2) ? '127.0.0.1' : text(rng), user: rng.below(2) ? null : text(rng) };
  if (rng.below(3) === 0) client.credential = text(rng);
  const f = new Flow(rng.below(2) ? 'gateway' : 'forward', client, rng.below(4) === 0 ? null : text(rng), rng.below(4) === 0 ? null : text(rng));
  f.route = rng.below(4) === 0 ? null : text(rng);
  f.host = rng.below(4) === 0 ? null : text(rng);
  f.status = [0, 200, 403, 499, 502][rng.below(5)]!;
  f.decision = (['allow', 'redact', 'block', 'deny', 'rate_limited', 'error'] as Decision[])[rng.below(6)]!;
  if (rng.below(2)) f.reason = 'sensitive_content';
  f.bytesIn = rng.below(1 << 20);
  f.bytesOut = i;
  if (rng.below(3) === 0) f.findings.push({ rule: text(rng), line: rng.below(100), action: 'block', fingerprint: 'abcd', ...(rng.below(2) ? { source: text(rng) } : {}) });
  if (rng.below(4) === 0) f.aborted = true;
  if (rng.below(4) === 0) f.error = text(rng);
  if (rng.below(4) === 0) f.attemptedUser = text(rng);
  if (rng.below(4) === 0) f.parent = text(rng);
  if (rng.below(4) === 0) f.messages = { in: 1, out: 2, forwarded: 1, blocked: 0, redacted: 0, monitored: rng.below(3) };
  if (rng.below(3) === 0) f.protocol = 'h2';
  return f;
}

describe('recordJson', () => {
  it('equals JSON.stringify on records of every shape and string', () => {
    const rng = new Rng(2020);
    for (let i = 0; i < 5000; i++) {
      const record = toRecord(flow(rng, i));
      expect(recordJson(record)).toBe(JSON.stringify(record));
    }
  });

  it('falls back to the client object as it is when it is not { ip, user[, credential] }', () => {
    const odd = [{ user: null, ip: '1.2.3.4' }, { ip: '1.2.3.4', user: 'a', extra: 1 }, { ip: '1.2.3.4', user: 'a', zone: 'b' }, { ip: 4, user: null }];
    for (const client of odd) {
      const record = toRecord(new Flow('gateway', client as unknown as Client, 'GET', '/'));
      expect(recordJson(record)).toBe(JSON.stringify(record));
    }
  });

  it('non-finite numbers are written as JSON.stringify writes them', () => {
    const record = toRecord(new Flow('gateway', { ip: '::1', user: null }, 'GET', '/'));
    record.bytesIn = NaN;
    record.durationMs = Infinity;
    record.status = -0;
    expect(recordJson(record)).toBe(JSON.stringify(record));
  });
});

describe('audit lines', () => {
  it('are the records as JSON.stringify writes them, chained, with path and host masked', () => {
    const dir = mkdtempSync(join(tmpdir(), 'aigate-record-json-'));
    const file = join(dir, 'audit.log');
    const log = new AuditLog({ file, stdout: false, checkpointSeconds: 0 });
    log.maskPath = (t) => t.replaceAll('ghp_secret', '[REDACTED:github-pat]');
    const records = [];
    for (const path of ['/v1/chat', '/x/ghp_secret']) {
      const f = new Flow('gateway', { ip: '127.0.0.1', user: null }, 'POST', path);
      f.host = 'api.openai.com';
      records.push(log.writeFlow(f));
    }
    log.close();
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.slice(0, 2).map((l) => l.path)).toEqual(['/v1/chat', '/x/[REDACTED:github-pat]']);
    for (const [i, r] of records.entries()) {
      const { chain: _c, seq: _s, hash: _h, ...rest } = lines[i]!;
      expect(rest).toEqual(JSON.parse(JSON.stringify(r)));
    }
  });
});

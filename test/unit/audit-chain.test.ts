// The audit hash chain (SPEC §11): every way of tampering with a set of audit files is named by
// `verifyAuditFiles` at the first line it breaks, and a clean set — rotated, compressed, restarted,
// two processes interleaved in one file — always verifies.
import { gzipSync } from 'node:zlib';
import { mkdtempSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuditLog, type AuditRecord } from '../../src/audit/log.js';
import { orderRotated, verifyAuditFiles, type VerifyOptions } from '../../src/audit/verify.js';
import { runAuditVerify } from '../../src/commands/audit.js';
import { configSchema } from '../../src/config/schema.js';

function record(id: string, decision: AuditRecord['decision'] = 'allow'): AuditRecord {
  return {
    time: new Date().toISOString(),
    event: 'request',
    id,
    mode: 'gateway',
    client: { ip: '127.0.0.1', user: null },
    route: 'openai',
    method: 'POST',
    host: 'api.openai.com',
    path: '/openai/chat/completions',
    status: 200,
    decision,
    reason: null,
    bytesIn: 10,
    bytesOut: 20,
    durationMs: 1.5,
    findings: [],
  };
}

const KEY = 'k3y-for-tests';
const opts = (extra: Partial<VerifyOptions> = {}): VerifyOptions => ({ key: Buffer.from(KEY), liveSeconds: 0, allowUnended: false, ...extra });

/**
 * A clean set: process A writes, the file is rotated (rename + reopen) and the rotated one
 * compressed, process B starts beside A (two workers, one file), A stops, A' restarts, all stop.
 */
function cleanSet(): { dir: string; files: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'aigate-chain-'));
  const file = join(dir, 'audit.log');
  const a = new AuditLog({ file, stdout: false, chainKey: KEY });
  for (let i = 0; i < 5; i++) a.write(record(`a${i}`));
  a.flush();
  renameSync(file, `${file}.2`);
  a.reopen();
  const b = new AuditLog({ file, stdout: false, chainKey: KEY });
  for (let i = 0; i < 4; i++) {
    a.write(record(`a${5 + i}`, 'block'));
    b.write(record(`b${i}`));
    a.flush();
    b.flush();
  }
  a.close();
  renameSync(file, `${file}.1`);
  b.reopen();
  const a2 = new AuditLog({ file, stdout: false, chainKey: KEY });
  for (let i = 0; i < 3; i++) {
    b.write(record(`b${4 + i}`));
    a2.write(record(`c${i}`));
  }
  b.close();
  a2.close();
  writeFileSync(`${file}.2.gz`, gzipSync(readFileSync(`${file}.2`)));
  unlinkSync(`${file}.2`);
  return { dir, files: [`${file}.2.gz`, `${file}.1`, file] };
}

const linesOf = (f: string) => readFileSync(f, 'utf8').split('\n').slice(0, -1);
const writeLines = (f: string, lines: string[]) => writeFileSync(f, lines.map((l) => `${l}\n`).join(''));

describe('audit hash chain', () => {
  it('every line carries chain, seq and hash; the first line of a chain in a rotated-to file names prev', () => {
    const { files } = cleanSet();
    const lines = linesOf(files[1]!).map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const l of lines) {
      expect(l.chain).toMatch(/^[A-Za-z0-9_-]{12}$/);
      expect(typeof l.seq).toBe('number');
      expect(l.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(Object.keys(l).at(-1)).toBe('hash');
    }
    // Chain A continues from audit.log.2 with seq 5 and names the last hash written there.
    expect(lines[0]).toMatchObject({ id: 'a5', seq: 5 });
    expect(lines[0]!.prev).toMatch(/^[0-9a-f]{64}$/);
    expect(lines.find((l) => l.id === 'b0')).toMatchObject({ seq: 0 });
    expect(lines.find((l) => l.id === 'b0')!.prev).toBeUndefined();
    expect(lines.filter((l) => l.event === 'chain-end')).toHaveLength(1);
  });

  it('a clean set across rotation, compression, restart and two interleaved processes verifies, in any order given', async () => {
    const { files } = cleanSet();
    const r = await verifyAuditFiles(files, opts());
    expect(r.problems).toEqual([]);
    expect(r).toMatchObject({ ok: true, chains: 3, warnings: [] });
    expect(orderRotated([files[2]!, files[0]!, files[1]!])).toEqual(files);
    expect(orderRotated(['x/audit.log', 'x/audit.log-20261207', 'x/audit.log-20261206.gz'])).toEqual(['x/audit.log-20261206.gz', 'x/audit.log-20261207', 'x/audit.log']);
  });

  it('the newest files alone verify (older ones gone to retention), with a warning that the chains start mid-way', async () => {
    const { files } = cleanSet();
    const r = await verifyAuditFiles(files.slice(1), opts());
    expect(r.ok).toBe(true);
    expect(r.warnings.join('\n')).toMatch(/starts at seq 5; its earlier lines are in older files not given/);
  });

  it('one line deleted', async () => {
    const { files } = cleanSet();
    const lines = linesOf(files[1]!);
    writeLines(files[1]!, [...lines.slice(0, 2), ...lines.slice(3)]);
    const r = await verifyAuditFiles(files, opts());
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatch(new RegExp(`^${files[1]}:\\d+: chain \\S+ seq \\d+ where \\d+ was expected: line\\(s\\) missing`));
  });

  it('one line edited (a decision turned from block to allow)', async () => {
    const { files } = cleanSet();
    const lines = linesOf(files[1]!);
    expect(lines[2]).toContain('"decision":"block"');
    lines[2] = lines[2]!.replace('"decision":"block"', '"decision":"allow"');
    writeLines(files[1]!, lines);
    const r = await verifyAuditFiles(files, opts());
    expect(r.problems[0]).toBe(`${files[1]}:3: chain ${(JSON.parse(lines[2]!) as { chain: string }).chain} seq ${(JSON.parse(lines[2]!) as { seq: number }).seq}: hash does not match: line modified`);
  });

  it('an edited line whose hash is recomputed without the key is still caught', async () => {
    const { files } = cleanSet();
    const { chainHash, unsealLine } = await import('../../src/audit/chain.js');
    const lines = linesOf(files[1]!);
    const edited = lines[2]!.replace('"decision":"block"', '"decision":"allow"');
    const { unsealed } = unsealLine(edited)!;
    lines[2] = `${unsealed.slice(0, -1)},"hash":"${chainHash(Buffer.from('guessed'), '', unsealed)}"}`;
    writeLines(files[1]!, lines);
    const r = await verifyAuditFiles(files, opts());
    expect(r.problems[0]).toMatch(new RegExp(`^${files[1]}:3: .*hash does not match`));
  });

  it('two lines swapped', async () => {
    const { files } = cleanSet();
    const lines = linesOf(files[1]!);
    // lines 0 and 2 are both chain A's (A and B alternate)
    [lines[0], lines[2]] = [lines[2]!, lines[0]!];
    writeLines(files[1]!, lines);
    const r = await verifyAuditFiles(files, opts());
    expect(r.problems[0]).toMatch(new RegExp(`^${files[1]}:1: chain \\S+ seq 6 where 5 was expected`));
  });

  it('a line inserted (copied from elsewhere)', async () => {
    const { files } = cleanSet();
    const lines = linesOf(files[1]!);
    writeLines(files[1]!, [...lines.slice(0, 3), lines[0]!, ...lines.slice(3)]);
    const r = await verifyAuditFiles(files, opts());
    expect(r.problems[0]).toMatch(new RegExp(`^${files[1]}:4: chain \\S+ seq 5 after seq 6: line inserted`));
  });

  it('the tail cut (chain-end and the lines before it gone)', async () => {
    const { files } = cleanSet();
    const lines = linesOf(files[2]!);
    writeLines(files[2]!, lines.slice(0, -3));
    const r = await verifyAuditFiles(files, opts());
    expect(r.ok).toBe(false);
    expect(r.problems.join('\n')).toMatch(/without a chain-end: its tail was cut/);
    // A tail cut in the middle of a line is named as such.
    writeFileSync(files[2]!, readFileSync(files[2]!, 'utf8').slice(0, -10));
    const r2 = await verifyAuditFiles(files, opts());
    expect(r2.problems[0]).toMatch(/last line has no newline: the file was cut/);
  });

  it('a rotated file missing from the middle of the set', async () => {
    const { files } = cleanSet();
    const r = await verifyAuditFiles([files[0]!, files[2]!], opts());
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatch(new RegExp(`^${files[2]}:\\d+: chain \\S+ (seq \\d+ where \\d+ was expected|first appears at seq \\d+: its earlier lines are missing)`));
  });

  it('the wrong key, or none, fails on the first line and says why', async () => {
    const { files } = cleanSet();
    expect((await verifyAuditFiles(files, opts({ key: Buffer.from('other') }))).problems[0]).toMatch(/:1: .*hash does not match: line modified \(or it was written under another audit.chainKey\)/);
    expect((await verifyAuditFiles(files, opts({ key: null }))).problems[0]).toMatch(/pass the config that has it/);
  });

  it('a live chain (no chain-end yet) verifies with --live while recent; stale, or without --live, it fails unless --allow-unended', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aigate-chain-'));
    const file = join(dir, 'audit.log');
    const log = new AuditLog({ file, stdout: false });
    log.write(record('x'));
    log.flush();
    expect((await verifyAuditFiles([file], opts({ key: null, liveSeconds: 121 }))).ok).toBe(true);
    expect((await verifyAuditFiles([file], opts({ key: null }))).ok).toBe(false);
    const later = Date.now() + 10 * 60_000;
    const stale = await verifyAuditFiles([file], opts({ key: null, now: later, liveSeconds: 121 }));
    expect(stale.problems[0]).toMatch(/^.*audit\.log:1: chain \S+ stops at seq 0 without a chain-end/);
    const allowed = await verifyAuditFiles([file], opts({ key: null, now: later, allowUnended: true }));
    expect(allowed.ok).toBe(true);
    expect(allowed.warnings[0]).toMatch(/without a chain-end/);
    log.close();
  });

  it('checkpoints keep a live chain fresh while no traffic comes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aigate-chain-'));
    const file = join(dir, 'audit.log');
    const log = new AuditLog({ file, stdout: false, checkpointSeconds: 0.05 as number });
    await expect.poll(() => readFileSync(file, 'utf8'), { timeout: 5000 }).toMatch(/"event":"checkpoint","chain":"[^"]+","seq":0,"hash"/);
    log.close();
    expect((await verifyAuditFiles([file], opts({ key: null }))).ok).toBe(true);
  });

  it('the audit file is created with mode 0640, or audit.fileMode', () => {
    const dir = mkdtempSync(join(tmpdir(), 'aigate-chain-'));
    const log = new AuditLog({ file: join(dir, 'a.log'), stdout: false });
    expect(statSync(join(dir, 'a.log')).mode & 0o777).toBe(0o640);
    renameSync(join(dir, 'a.log'), join(dir, 'a.log.1'));
    log.reopen();
    expect(statSync(join(dir, 'a.log')).mode & 0o777).toBe(0o640);
    log.close();
    const mode = configSchema.parse({ audit: { fileMode: '0600' } }).audit.fileMode;
    expect(mode).toBe(0o600);
    expect(configSchema.parse({ audit: { fileMode: 640 } }).audit.fileMode).toBe(0o640);
    expect(configSchema.safeParse({ audit: { fileMode: '0999' } }).success).toBe(false);
    const other = new AuditLog({ file: join(dir, 'b.log'), stdout: false, fileMode: mode });
    expect(statSync(join(dir, 'b.log')).mode & 0o777).toBe(0o600);
    other.close();
  });

  it('aigate audit verify: exit 0 with a summary, 1 with FILE:LINE, 2 for usage errors', async () => {
    const { files } = cleanSet();
    const config = configSchema.parse({ audit: { chainKey: KEY } });
    const out: string[] = [];
    const err: string[] = [];
    const io = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) } };
    expect(await runAuditVerify({ files: [...files].reverse(), config, allowUnended: false, keepOrder: false, ...io })).toBe(0);
    expect(out.join('')).toMatch(/^ok: \d+ lines in 3 file\(s\), 3 chain\(s\), HMAC-SHA256\n$/);
    out.length = 0;
    expect(await runAuditVerify({ files: [...files].reverse(), config, allowUnended: false, keepOrder: true, ...io })).toBe(1);
    expect(await runAuditVerify({ files: [], config, allowUnended: false, keepOrder: false, ...io })).toBe(2);
    expect(await runAuditVerify({ files: ['/nonexistent/audit.log'], config, allowUnended: false, keepOrder: false, ...io })).toBe(2);
    expect(err.join('')).toMatch(/no such file: \/nonexistent\/audit.log/);
  });
});

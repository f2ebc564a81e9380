// The audit writer: lines are buffered and written in batches, and nothing buffered is lost when
// the process ends, flushes, rotates or cannot write.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ChainSealer } from '../../src/audit/chain.js';
import { AuditLog, FLUSH_BYTES, RETRY_AFTER_MS, isoTime, type AuditRecord } from '../../src/audit/log.js';

function record(i: number): AuditRecord {
  return {
    time: new Date(0).toISOString(),
    event: 'request',
    id: `id-${String(i).padStart(4, '0')}`,
    mode: 'gateway',
    client: { ip: '127.0.0.1', user: null },
    route: 'openai',
    method: 'POST',
    host: 'api.openai.com',
    path: '/openai/chat/completions',
    status: 200,
    decision: 'allow',
    reason: null,
    bytesIn: 1024,
    bytesOut: 512,
    durationMs: 1.5,
    findings: [],
  };
}

const ids = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as AuditRecord).id);

function tempFile(): string {
  return join(mkdtempSync(join(tmpdir(), 'aigate-audit-')), 'audit.log');
}

describe('audit log writer', () => {
  it('writes a batch as soon as it holds FLUSH_BYTES, in order, whole lines only', () => {
    const file = tempFile();
    const log = new AuditLog({ file, stdout: false });
    // Lines as written (sealed into the hash chain): their lengths grow with the seq's digits.
    const sealer = new ChainSealer(null);
    let n = 0;
    for (let bytes = 0; bytes < FLUSH_BYTES; n++) bytes += sealer.seal(JSON.stringify(record(n))).length;
    for (let i = 0; i < n - 1; i++) log.write(record(i));
    expect(readFileSync(file, 'utf8')).toBe(''); // still buffered
    log.write(record(n - 1));
    // Synchronously, without waiting for a timer or the thread pool.
    expect(ids(file)).toEqual(Array.from({ length: n }, (_, i) => record(i).id));
    log.close();
  });

  it('flush() writes what is buffered at once (the drain and SIGTERM path)', () => {
    const file = tempFile();
    const log = new AuditLog({ file, stdout: false });
    log.write(record(1));
    log.write(record(2));
    log.flush();
    expect(ids(file)).toEqual(['id-0001', 'id-0002']);
    log.close();
  });

  it('buffered lines are written when the process dies of an uncaught exception', () => {
    const file = tempFile();
    const script = `
      const { AuditLog } = await import(${JSON.stringify(pathToFileURL(resolve('dist/audit/log.js')).href)});
      const log = new AuditLog({ file: ${JSON.stringify(file)}, stdout: false });
      for (let i = 0; i < 3; i++) log.write({ id: 'crash-' + i });
      setImmediate(() => { throw new Error('a bug'); });
    `;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(child.stderr).toContain('a bug');
    expect(child.status).not.toBe(0);
    expect(ids(file)).toEqual(['crash-0', 'crash-1', 'crash-2']);
  });

  it('reopen() sends later lines to a new file and earlier ones to the rotated file', () => {
    const file = tempFile();
    const log = new AuditLog({ file, stdout: false });
    log.write(record(1));
    renameSync(file, `${file}.1`);
    log.reopen();
    log.write(record(2));
    log.flush();
    expect(ids(`${file}.1`)).toEqual(['id-0001']);
    expect(ids(file)).toEqual(['id-0002']);
    log.close();
  });

  it('reopen() that cannot open the new file reports it and keeps writing to the old one', () => {
    const file = tempFile();
    const errors: string[] = [];
    const log = new AuditLog({ file, stdout: false }, { onError: (err) => errors.push((err as NodeJS.ErrnoException).code ?? '') });
    renameSync(file, `${file}.1`);
    mkdirSync(file); // the path is now a directory: open(…, 'a') fails with EISDIR
    expect(() => log.reopen()).not.toThrow();
    log.write(record(3));
    log.flush();
    expect(ids(`${file}.1`)).toEqual(['id-0003']);
    // sonic-boom reports a failed synchronous open on the next tick.
    return new Promise<void>((done) =>
      setImmediate(() => {
        expect(errors).toEqual(['EISDIR']);
        log.close();
        done();
      }),
    );
  });

  it('reopen() with the stdout sink on leaves stdout alone (it has no file to reopen)', () => {
    const log = new AuditLog({ file: tempFile(), stdout: true });
    expect(() => log.reopen()).not.toThrow();
    log.close();
  });

  it('a sink that cannot write (disk full) reports once and does not throw', () => {
    const errors: string[] = [];
    const log = new AuditLog({ file: '/dev/full', stdout: false }, { onError: (err) => errors.push((err as NodeJS.ErrnoException).code ?? '') });
    for (let round = 0; round < 3; round++) {
      log.write(record(round));
      expect(() => log.flush()).not.toThrow();
    }
    expect(errors).toEqual(['ENOSPC']);
    log.close();
  });

  describe('a failing file', () => {
    afterEach(() => {
      vi.useRealTimers();
      vi.restoreAllMocks();
    });

    /** A log on `dir/audit.log` → /dev/full (every write: ENOSPC) that has failed once, and its hook calls. */
    function failedLog() {
      const file = tempFile();
      symlinkSync('/dev/full', file);
      const calls: string[] = [];
      const log = new AuditLog(
        { file, stdout: false },
        { onError: (err) => calls.push(`error ${(err as NodeJS.ErrnoException).code}`), onRecovered: (_sink, dropped) => calls.push(`recovered ${dropped}`) },
      );
      log.write(record(1));
      log.flush();
      expect(log.isFailing()).toBe(true);
      return { file, log, calls };
    }

    it('writes its kept lines once it works again and reports the recovery', () => {
      const { file, log, calls } = failedLog();
      // The disk has room again and the path names a regular file (logrotate's HUP reopens it).
      unlinkSync(file);
      log.reopen();
      log.flush();
      expect(log.isFailing()).toBe(false);
      expect(calls).toEqual(['error ENOSPC', 'recovered 0']);
      expect(ids(file)).toEqual(['id-0001']);
      log.close();
    });

    it('tries its kept lines again every RETRY_AFTER_MS with no new line (no traffic may come while it fails)', () => {
      vi.useFakeTimers();
      const writes = vi.spyOn(fs, 'writeSync');
      const { log, calls } = failedLog();
      const before = writes.mock.calls.length;
      vi.advanceTimersByTime(RETRY_AFTER_MS);
      const once = writes.mock.calls.length;
      expect(once).toBeGreaterThan(before);
      vi.advanceTimersByTime(RETRY_AFTER_MS);
      expect(writes.mock.calls.length).toBeGreaterThan(once);
      expect(calls).toEqual(['error ENOSPC']); // one report per failing spell
      log.close();
      const closed = writes.mock.calls.length;
      vi.advanceTimersByTime(10 * RETRY_AFTER_MS);
      expect(writes.mock.calls.length).toBe(closed); // a closed log stops trying
    });
  });
});

describe('isoTime', () => {
  it('equals Date#toISOString, across seconds, days and years, in any order', () => {
    const times = [0, 1, 9, 10, 99, 100, 999, 1000, 1001, Date.UTC(2026, 11, 31, 23, 59, 59, 999), Date.UTC(2027, 0, 1), Date.UTC(2024, 1, 29, 12, 0, 0, 5)];
    let t = Date.UTC(2026, 10, 29, 8, 0, 0, 0);
    for (let i = 0; i < 5000; i++) times.push((t += 1 + ((i * 7919) % 1500)));
    times.push(5, Date.UTC(2026, 10, 29, 8, 0, 0, 0)); // backwards
    for (const ms of times) expect(isoTime(ms)).toBe(new Date(ms).toISOString());
  });
});

// `aigate fingerprint build` and `stats` as an operator runs them: .gitignore and vendored code
// skipped, the index described, and bad input refused with a reason and the right exit status.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeIndex } from '../../src/fingerprint/index-file.js';
import { runCli } from '../support/cli.js';

const NM = resolve(import.meta.dirname, '../../node_modules');

describe('aigate fingerprint', () => {
  it('build indexes the sources (not ignored, vendored or non-source files); stats describes the index', async () => {
    const repo = mkdtempSync(join(tmpdir(), 'aigate-fp-'));
    mkdirSync(join(repo, 'src'));
    mkdirSync(join(repo, 'vendor'));
    mkdirSync(join(repo, 'generated'));
    copyFileSync(join(NM, 'ws/lib/receiver.js'), join(repo, 'src/receiver.js'));
    copyFileSync(join(NM, 'ws/lib/sender.js'), join(repo, 'vendor/sender.js'));
    copyFileSync(join(NM, 'ws/lib/websocket.js'), join(repo, 'generated/websocket.js'));
    writeFileSync(join(repo, '.gitignore'), 'generated/\n');
    writeFileSync(join(repo, 'README.md'), '# not code\n');
    const out = join(repo, 'pricing.idx');
    const build = await runCli(['fingerprint', 'build', repo, '--label', 'pricing', '--out', out], { cwd: repo });
    expect(build.stderr).toBe('');
    expect(build.code).toBe(0);
    expect(build.stdout).toMatch(/pricing\.idx: label pricing, 1 files, \d+ lines, \d+ fingerprints/);
    expect(decodeIndex(readFileSync(out)).files.map((f) => f.path)).toEqual([join(repo, 'src/receiver.js').slice(repo.length + 1)]);

    const stats = await runCli(['fingerprint', 'stats', out]);
    expect(stats.code).toBe(0);
    expect(stats.stdout).toContain('findings: protected-code:pricing');

    const bytes = readFileSync(out);
    writeFileSync(out, bytes.subarray(0, bytes.length - 10));
    const cut = await runCli(['fingerprint', 'stats', out]);
    expect(cut.code).toBe(1);
    expect(cut.stderr).toContain('truncated or was altered');
  });

  it('refuses a bad label, a missing path and a tree without sources', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aigate-fp-'));
    expect((await runCli(['fingerprint', 'build', dir, '--label', 'a b', '--out', join(dir, 'x')])).code).toBe(2);
    const missing = await runCli(['fingerprint', 'build', join(dir, 'nope'), '--label', 'x', '--out', join(dir, 'x')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no such file or directory');
    const empty = await runCli(['fingerprint', 'build', dir, '--label', 'x', '--out', join(dir, 'x')]);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('no source files');
  });
});

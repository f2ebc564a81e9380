// `aigate scan` as a developer runs it: the built binary over the repository itself (which must be
// clean: we dogfood the pre-commit hook), over a file with a secret, and over stdin.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';

const ROOT = resolve(import.meta.dirname, '../..');

describe('aigate scan (binary)', () => {
  it('the repository\'s own sources, config, docs and benches are clean', async () => {
    const { code, stdout, stderr } = await runCli(['scan', 'src', 'config', 'bench', 'scripts', 'README.md', 'docs', 'Dockerfile'], { cwd: ROOT });
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^aigate scan: \d+ files scanned, 0 findings in 0 files(, \d+ skipped)?\n$/);
    expect(code).toBe(0);
  });

  it('a file with a secret: path:line:col rule-id masked-value, exit 1, value never printed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aigate-scan-'));
    const secret = `Qz-${randomBytes(12).toString('base64url')}`;
    writeFileSync(join(dir, 'settings.py'), `import os\n\nDEBUG = False\nDB_PASSWORD = "${secret}"\n`);
    const { code, stdout } = await runCli(['scan', dir]);
    expect(code).toBe(1);
    expect(stdout).toMatch(new RegExp(`^${join(dir, 'settings.py').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:4:16 generic-password \\S+$`, 'm'));
    expect(stdout).not.toContain(secret);
  });

  it('a file in UTF-16 or UTF-32 with a byte-order mark (PowerShell writes UTF-16LE) is read as such, not skipped as binary', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aigate-scan-'));
    const secret = `Qz-${randomBytes(12).toString('base64url')}`;
    const text = `\ufeff# deploy\r\nDB_PASSWORD = "${secret}"\r\n`;
    const utf32 = Buffer.alloc(text.length * 4);
    [...text].forEach((c, i) => utf32.writeUInt32LE(c.codePointAt(0)!, i * 4));
    writeFileSync(join(dir, 'a.env'), Buffer.from(text, 'utf16le'));
    writeFileSync(join(dir, 'b.env'), Buffer.from(text, 'utf16le').swap16());
    writeFileSync(join(dir, 'c.env'), utf32);
    const { code, stdout, stderr } = await runCli(['scan', dir]);
    expect(stderr).toBe('aigate scan: 3 files scanned, 3 findings in 3 files\n');
    expect(code).toBe(1);
    expect(stdout.trim().split('\n').map((l) => l.replace(/^.*\//, '').split(' ').slice(0, 2).join(' '))).toEqual([
      'a.env:2:16 generic-password',
      'b.env:2:16 generic-password',
      'c.env:2:16 generic-password',
    ]);
    expect(stdout).not.toContain(secret);
  });

  it('stdin with --json; a missing path is exit 2', async () => {
    const secret = `Wx-${randomBytes(12).toString('base64url')}`;
    const { code, stdout } = await runCli(['scan', '--json', '-'], { input: `export API_KEY="${secret}"\n` });
    expect(code).toBe(1);
    const finding = JSON.parse(stdout.trim().split('\n')[0]!) as Record<string, unknown>;
    expect(finding).toMatchObject({ line: 1, rule: expect.stringMatching(/api-key/) });
    expect(stdout).not.toContain(secret);
    expect((await runCli(['scan', '/nonexistent/path'])).code).toBe(2);
  });
});

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

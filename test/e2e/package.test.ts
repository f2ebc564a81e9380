// Installing aigate outside this clone, as a user or a pre-commit framework would: `npm pack` of a
// clean copy of the tracked sources (so `prepare` must build dist/ itself), `npm install` of the
// tarball into an empty project, and the installed `aigate` binary and git hook at work.
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const npmFlags = ['--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'];

let bin = '';
let hook = '';

/** Runs a command; resolves with its exit code and output instead of throwing on a non-zero exit. */
async function sh(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }) {
  try {
    const { stdout, stderr } = await run(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'aigate-pack-'));
  const src = join(dir, 'src');
  const { stdout: tracked } = await run('git', ['ls-files', '-z'], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
  for (const f of tracked.split('\0').filter(Boolean)) {
    if (!existsSync(join(ROOT, f))) continue;
    mkdirSync(dirname(join(src, f)), { recursive: true });
    cpSync(join(ROOT, f), join(src, f));
  }
  // The build needs the dev dependencies; the copy has no dist/ of its own.
  symlinkSync(join(ROOT, 'node_modules'), join(src, 'node_modules'), 'dir');
  expect(existsSync(join(src, 'dist'))).toBe(false);
  const pack = await run('npm', ['pack', '--json', '--pack-destination', dir, ...npmFlags], { cwd: src, maxBuffer: 16 * 1024 * 1024 });
  const [info] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const files = info!.files.map((f) => f.path);
  expect(files).toContain('dist/cli.js');
  expect(files).toContain('LICENSE');
  expect(files.some((f) => f.startsWith('src/') || f.startsWith('test/'))).toBe(false);

  const project = join(dir, 'project');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), '{"name":"uses-aigate","version":"1.0.0","private":true}\n');
  await run('npm', ['install', ...npmFlags, join(dir, info!.filename)], { cwd: project, maxBuffer: 16 * 1024 * 1024 });
  bin = join(project, 'node_modules/.bin/aigate');
  hook = join(project, 'node_modules/aigate/scripts/pre-commit');
}, 240_000);

describe('installed from the packed tarball', () => {
  it('the aigate binary runs: --version, and scan finds a secret', async () => {
    const version = await sh(bin, ['--version'], { cwd: tmpdir() });
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const dir = mkdtempSync(join(tmpdir(), 'aigate-pack-scan-'));
    writeFileSync(join(dir, 'app.py'), 'DB_PASSWORD = "Zq8vLm2pRt7x"\n');
    const scan = await sh(bin, ['scan', 'app.py'], { cwd: dir });
    expect(scan.code).toBe(1);
    expect(scan.stdout).toContain('app.py:1:16 generic-password');
  });

  it('the shipped pre-commit hook passes a clean commit, refuses a secret, and fails closed without the binary', async () => {
    const repo = mkdtempSync(join(tmpdir(), 'aigate-hook-'));
    const git = (...args: string[]) => run('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { cwd: repo });
    await git('init', '-q');
    writeFileSync(join(repo, 'clean.ts'), 'export const answer = 42;\n');
    mkdirSync(join(repo, 'dir with space'));
    writeFileSync(join(repo, 'dir with space', 'notes.md'), 'nothing secret here\n');
    await git('add', '.');
    const clean = await sh(hook, [], { cwd: repo, env: { AIGATE: bin } });
    expect(clean.stderr).toBe('');
    expect(clean.code).toBe(0);

    writeFileSync(join(repo, 'dir with space', 'settings.py'), 'DB_PASSWORD = "Zq8vLm2pRt7x"\n');
    await git('add', '.');
    const dirty = await sh(hook, [], { cwd: repo, env: { AIGATE: bin } });
    expect(dirty.code).toBe(1);
    expect(dirty.stdout).toContain('dir with space/settings.py:1:16 generic-password');
    expect(dirty.stderr).toContain('secrets found');

    const missing = await sh(hook, [], { cwd: repo, env: { AIGATE: join(repo, 'no-such-aigate') } });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('cannot run');
    expect(missing.stderr).not.toContain('secrets found');
    expect(readdirSync(repo)).not.toContain('no-such-aigate');
  });
});

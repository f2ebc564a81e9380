// `aigate scan` (SPEC §1) through runScan, in-process: files, directories with .gitignore,
// skipped directories and binary files, stdin, --json, and the exit statuses.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runScan } from '../../src/commands/scan.js';
import { configSchema } from '../../src/config/schema.js';
import { Rng, make } from '../corpus/secrets.js';

const rng = new Rng(5);
const GH = make.githubPat(rng);
let dir = '';

class Sink {
  text = '';
  write(s: string): boolean {
    this.text += s;
    return true;
  }
}

async function scan(paths: string[], opts: { json?: boolean; stdin?: string; config?: object } = {}) {
  const stdout = new Sink();
  const stderr = new Sink();
  const code = await runScan({
    paths,
    json: opts.json ?? false,
    stdout,
    stderr,
    stdin: Readable.from([Buffer.from(opts.stdin ?? '')]),
    config: opts.config ? configSchema.parse(opts.config) : undefined,
  });
  return { code, out: stdout.text, err: stderr.text };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'aigate-scan-'));
  const w = (rel: string, data: string | Buffer): void => {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), data);
  };
  w('src/app.py', `import os\n\nDB_PASSWORD = "Zq8vLm2pRt7x"\nkey = os.environ["API_KEY"]\n`);
  w('src/clean.ts', 'export const add = (a: number, b: number) => a + b;\n');
  w('src/deep/config.yaml', `github:\n  token: ${GH}\n`);
  w('.gitignore', 'secrets.env\nbuild/\n');
  w('secrets.env', 'API_TOKEN=f8a7b6c5d4e3f2a1b0c9d8e7\n');
  w('build/out.js', 'const password = "Zq8vLm2pRt7x";\n');
  w('src/.gitignore', 'local.txt\n');
  w('src/local.txt', 'password: Zq8vLm2pRt7x\n');
  w('node_modules/pkg/index.js', 'const password = "Zq8vLm2pRt7x";\n');
  w('.git/config', 'password = "Zq8vLm2pRt7x"\n');
  w('src/image.bin', Buffer.concat([Buffer.from([0, 1, 2, 0]), Buffer.from('password = "Zq8vLm2pRt7x"')]));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('aigate scan', () => {
  it('walks a directory honouring .gitignore and skipping .git, node_modules and binary files', async () => {
    const { code, out, err } = await scan([dir]);
    expect(err).toBe('aigate scan: 5 files scanned, 2 findings in 2 files, 1 skipped\n');
    expect(code).toBe(1);
    expect(out.trim().split('\n')).toEqual([
      `${join(dir, 'src/app.py')}:3:16 generic-password …7x`,
      `${join(dir, 'src/deep/config.yaml')}:2:10 github-pat ghp_…${GH.slice(-4)}`,
    ]);
  });

  it('prints one JSON object per finding with --json, never the secret', async () => {
    const { code, out } = await scan([join(dir, 'src/app.py')], { json: true });
    expect(code).toBe(1);
    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ path: join(dir, 'src/app.py'), line: 3, col: 16, rule: 'generic-password', masked: '…7x' });
    expect(lines[0]!.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(out).not.toContain('Zq8vLm2pRt7x');
  });

  it('scans a file named on the command line even when it is ignored', async () => {
    const { code, out } = await scan([join(dir, 'secrets.env')]);
    expect(code).toBe(1);
    expect(out).toContain('secrets.env:1:11 generic-token');
  });

  it('scans a directory named on the command line even when an enclosing .gitignore ignores it', async () => {
    const { code, out, err } = await scan([join(dir, 'build')]);
    expect(out).toBe(`${join(dir, 'build/out.js')}:1:19 generic-password …7x\n`);
    expect(err).toBe('aigate scan: 1 file scanned, 1 finding in 1 file\n');
    expect(code).toBe(1);
  });

  it('reads stdin for - or no path', async () => {
    expect((await scan(['-'], { stdin: `x\n${GH}\n` })).out).toBe(`<stdin>:2:1 github-pat ghp_…${GH.slice(-4)}\n`);
    expect((await scan([], { stdin: 'nothing to see\n' })).code).toBe(0);
  });

  it('exits 0 when clean, 2 on a read error or a bad custom rule', async () => {
    expect((await scan([join(dir, 'src/clean.ts')])).code).toBe(0);
    const missing = await scan([join(dir, 'nope.txt')]);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain(`cannot read ${join(dir, 'nope.txt')}: no such file or directory`);
    const bad = await scan([dir], { config: { inspect: { rules: { custom: [{ id: 'bad', pattern: 'acme(a+)+' }] } } } });
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/inspect\.rules\.custom\[0\]\.pattern/);
  });

  it('uses the configured rules', async () => {
    const { code } = await scan([join(dir, 'src/app.py')], { config: { inspect: { rules: { disable: ['generic-password'] } } } });
    expect(code).toBe(0);
  });
});

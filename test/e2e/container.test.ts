// The container image's build and start path, without a Docker engine: copy exactly what the
// Dockerfile's build stage COPYs into a clean directory, run the same build script, and start
// the runtime tree the image would ship.
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { spawnCli } from '../support/cli.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');

/** Sources COPY'd into the build stage (the first FROM … AS build up to the next FROM). */
function buildStageCopies(): string[] {
  const stage = dockerfile.split(/^FROM /m)[1] ?? '';
  const sources: string[] = [];
  for (const line of stage.split('\n')) {
    const m = /^COPY\s+(?!--from)(.+)$/.exec(line.trim());
    if (!m) continue;
    const parts = m[1]!.split(/\s+/).filter((p) => !p.startsWith('--'));
    sources.push(...parts.slice(0, -1));
  }
  return sources;
}

describe('container image', () => {
  it('Dockerfile: multi-stage, supported Node LTS, non-root, the three ports, a HEALTHCHECK on /healthz', () => {
    expect(dockerfile.match(/^FROM /gm)).toHaveLength(2);
    expect(dockerfile).toMatch(/^ARG NODE_VERSION=(2[4-9]|[3-9]\d)$/m);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^EXPOSE 8443 3128 9090$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK[\s\S]*\/healthz/m);
    expect(dockerfile).toMatch(/scripts\/container-build\.sh/);
    expect(readFileSync(join(ROOT, '.dockerignore'), 'utf8')).toMatch(/^\*\.key$/m);
  });

  it(
    'the build script turns a clean copy of the build context into a runtime tree that starts and serves /healthz',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'aigate-image-'));
      const src = join(dir, 'src');
      for (const p of buildStageCopies()) cpSync(join(ROOT, p), join(src, p), { recursive: true });
      const app = join(dir, 'app');
      const build = await run('sh', [join(src, 'scripts/container-build.sh'), src, app], { maxBuffer: 16 * 1024 * 1024 });
      expect(build.stdout).toContain('runtime tree ready');

      // production dependencies only, nothing secret baked in
      const modules = readdirSync(join(app, 'node_modules'));
      expect(modules).toContain('undici');
      expect(modules).not.toContain('vitest');
      expect(modules).not.toContain('typescript');
      expect(readdirSync(join(app, 'certs'))).toEqual([]);
      expect(existsSync(join(app, 'dist/cli.js'))).toBe(true);

      // start it as the container would (certs and config mounted), on free ports
      const certs = await run(process.execPath, [join(app, 'dist/cli.js'), 'certs', 'init', '--dir', join(app, 'certs')]);
      expect(certs.stdout).toContain('ca.crt');
      const config = readFileSync(join(app, 'config/aigate.yaml'), 'utf8').replace(/port: (8443|3128|9090)/g, 'port: 0');
      writeFileSync(join(app, 'config/test.yaml'), config);
      const proc = spawnCli(['start', '--config', 'config/test.yaml'], { cwd: app, cliPath: join(app, 'dist/cli.js') });
      try {
        const started = await proc.logLine('aigate started');
        const health = await request(`${started['admin'] as string}/healthz`);
        expect(health.statusCode).toBe(200);
        await health.body.dump();
      } finally {
        proc.child.kill('SIGTERM');
      }
      expect(await proc.exited).toBe(0);
    },
    240_000,
  );
});

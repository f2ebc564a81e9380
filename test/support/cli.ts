// Runs the built `aigate` binary (dist/cli.js) as a child process: start-up errors, signals and
// multi-process behaviour are only real in a real process. `npm test` builds dist/ first.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { onTestFinished } from 'vitest';

export const CLI = resolve(import.meta.dirname, '../../dist/cli.js');

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs aigate to completion. */
export function runCli(args: string[], opts: { cwd?: string; input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` (npm test does)`);
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

export interface RunningCli {
  child: ChildProcess;
  stderr(): string;
  /** Resolves with the first JSON log line on stderr whose msg matches. */
  logLine(msg: string): Promise<Record<string, unknown>>;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

/** Starts a long-running aigate (e.g. `start`); stderr carries its JSON operational log. */
export function spawnCli(
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; cliPath?: string; /** Runs under `ulimit -n` (file descriptors). */ ulimitNofile?: number } = {},
): RunningCli {
  const argv = [opts.cliPath ?? CLI, ...args];
  const [cmd, cmdArgs] =
    opts.ulimitNofile === undefined
      ? [process.execPath, argv]
      : ['bash', ['-c', `ulimit -n ${opts.ulimitNofile} && exec "$0" "$@"`, process.execPath, ...argv]];
  const child = spawn(cmd, cmdArgs, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  // A test that times out never reaches its own cleanup (its `finally` waits on a promise that
  // will not settle): the process must not outlive the test. A --workers primary's workers exit
  // with it.
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let err = '';
  const waiters: Array<{ msg: string; resolve: (v: Record<string, unknown>) => void }> = [];
  const lines: Record<string, unknown>[] = [];
  let partial = '';
  child.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
    partial += c.toString();
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      try {
        const obj = JSON.parse(line) as Record<string, unknown>;
        lines.push(obj);
        for (const w of [...waiters]) if (obj['msg'] === w.msg) (waiters.splice(waiters.indexOf(w), 1), w.resolve(obj));
      } catch {
        // not a log line (e.g. the dev-certs notice)
      }
    }
  });
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  return {
    child,
    stderr: () => err,
    exited,
    logLine: (msg) => {
      const found = lines.find((l) => l['msg'] === msg);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        waiters.push({ msg, resolve });
        void exited.then((code) => reject(new Error(`aigate exited (${code}) before logging "${msg}":\n${err}`)));
      });
    },
  };
}

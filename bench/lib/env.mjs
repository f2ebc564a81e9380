// What a bench run needs on the machine, and what it says about the machine and the versions.
import { execFileSync } from 'node:child_process';
import { cpus, release, totalmem, availableParallelism } from 'node:os';
import { versionOf, which } from './proc.mjs';

const TOOLS = [
  { cmd: 'nginx', pkg: 'nginx', why: 'fake upstream and the reverse proxy aigate is compared with' },
  { cmd: 'wrk', pkg: 'wrk', why: 'HTTP load generator' },
  { cmd: 'redis-server', pkg: 'redis-server', why: 'S4: the Redis rate-limit store' },
];

/** Exits with a clear message when a tool is missing. */
export function requireTools() {
  const missing = TOOLS.filter((t) => !which(t.cmd));
  if (missing.length === 0) return;
  process.stderr.write(
    `bench: missing ${missing.map((t) => `${t.cmd} (${t.why})`).join(', ')}.\n` +
      `Install them with:  bash bench/setup.sh   (apt-get install ${missing.map((t) => t.pkg).join(' ')})\n`,
  );
  process.exit(2);
}

export function machine() {
  const cpu = cpus();
  return {
    nproc: availableParallelism(),
    cpuModel: cpu[0]?.model?.trim() ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
  };
}

export function versions() {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no', '--', 'src'], { encoding: 'utf8' }).trim();
    if (dirty) commit += ' (+ uncommitted changes in src/)';
  } catch {
    // not a git checkout
  }
  return {
    aigate: commit,
    node: process.version,
    nginx: versionOf('nginx', ['-v'], (s) => s.trim().replace(/^nginx version: nginx\//, '')),
    wrk: versionOf('wrk', ['-v'], (s) => s.split('\n')[0].replace(/\s*Copyright.*$/, '').replace(/^wrk /, '').trim()),
    redis: versionOf('redis-server', ['--version'], (s) => (/v=(\S+)/.exec(s)?.[1] ?? s.trim())),
    openssl: process.versions.openssl,
    mitmproxy: which('mitmdump') ? versionOf('mitmdump', ['--version'], (s) => (/Mitmproxy: (\S+)/.exec(s)?.[1] ?? null)) : null,
  };
}

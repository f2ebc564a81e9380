// Child processes of a bench run: started, tracked, and always stopped — by their own pid, on
// normal exit, on error and on Ctrl-C. Also free ports, readiness waits and RSS readings.
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

const children = new Set();

/** Spawns a tracked child. `stop` sends `stopSignal` and waits (SIGKILL after `graceMs`). */
export function startChild(cmd, args, { stopSignal = 'SIGTERM', graceMs = 5000, env, stdio = ['ignore', 'ignore', 'pipe'], name = cmd } = {}) {
  const child = spawn(cmd, args, { stdio, env: env ? { ...process.env, ...env } : process.env });
  const entry = { child, name, stopSignal, graceMs, stderr: '' };
  child.stderr?.on('data', (d) => {
    entry.stderr += d.toString();
    if (entry.stderr.length > 200_000) entry.stderr = entry.stderr.slice(-100_000);
  });
  child.on('exit', () => children.delete(entry));
  children.add(entry);
  entry.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  entry.stop = () => stopEntry(entry);
  return entry;
}

async function stopEntry(entry) {
  const { child } = entry;
  if (child.exitCode !== null || child.signalCode !== null) return entry.exited;
  child.kill(entry.stopSignal);
  const timer = setTimeout(() => child.kill('SIGKILL'), entry.graceMs);
  const result = await entry.exited;
  clearTimeout(timer);
  return result;
}

export async function stopAll() {
  await Promise.all([...children].map((e) => stopEntry(e)));
}

/** Last-resort cleanup when the process is going away without `stopAll` (uncaught error). */
process.on('exit', () => {
  for (const e of children) {
    try {
      // nginx: SIGTERM to the master makes it stop its workers too; SIGKILL would orphan them.
      e.child.kill(e.stopSignal === 'SIGQUIT' ? 'SIGTERM' : 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Ports handed out by this run: the kernel may give a just-released port 0 binding out again. */
const given = new Set();

export async function freePort() {
  for (;;) {
    const port = await new Promise((resolve, reject) => {
      const srv = net.createServer();
      srv.on('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const { port } = srv.address();
        srv.close(() => resolve(port));
      });
    });
    // Two servers told the same port: the second fails to bind while the first answers in its place.
    if (!given.has(port)) {
      given.add(port);
      return port;
    }
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Waits until a TLS handshake on 127.0.0.1:port succeeds (the server is serving, not just bound). */
export async function waitForTls(port, { servername = 'localhost', timeoutMs = 10_000, entry } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false });
      s.setTimeout(1000, () => (s.destroy(), resolve(false)));
      s.on('secureConnect', () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (entry && entry.child.exitCode !== null) throw new Error(`${entry.name} exited during start-up:\n${entry.stderr.slice(-2000)}`);
    if (Date.now() > deadline) throw new Error(`nothing serving TLS on 127.0.0.1:${port} after ${timeoutMs} ms${entry ? `\n${entry.stderr.slice(-2000)}` : ''}`);
    await sleep(50);
  }
}

/** Resident set size of one process, KiB. */
export function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

/**
 * CPU seconds (user + system) used so far by the given processes; a pid that is gone counts 0.
 * Unlike req/s under a shared 2-core load, CPU per request barely moves with what else runs.
 */
export function cpuSeconds(pids) {
  let ticks = 0;
  for (const pid of pids) {
    try {
      // Fields after the command name (which may contain spaces), from field 3: utime is 14, stime 15.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // exited
    }
  }
  return ticks / CLK_TCK;
}

/** Pids of a process's direct children (nginx workers under their master). */
export function childPids(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** First line of a command's version output (stdout or stderr), or null when the command is missing. */
export function versionOf(cmd, args, pick = (s) => s.split('\n')[0]) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error) return null;
  return pick(`${r.stdout ?? ''}${r.stderr ?? ''}`);
}

export function which(cmd) {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin', '/sbin'])) {
    try {
      accessSync(`${dir}/${cmd}`, constants.X_OK);
      return `${dir}/${cmd}`;
    } catch {
      // not here
    }
  }
  return null;
}

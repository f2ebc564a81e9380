// Runs wrk (Debian's package) with a POST Lua script and parses what it prints.
import { spawn } from 'node:child_process';

const UNIT_MS = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

function toMs(text) {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  return m ? Number(m[1]) * UNIT_MS[m[2]] : NaN;
}

export function parseWrk(out) {
  const pct = {};
  for (const m of out.matchAll(/^\s+(50|75|90|99)%\s+(\S+)/gm)) pct[m[1]] = toMs(m[2]);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const total = /(\d+) requests in ([\d.]+)(\w+)/.exec(out);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  return {
    rps: rps ? Number(rps[1]) : 0,
    requests: total ? Number(total[1]) : 0,
    p50: pct['50'],
    p90: pct['90'],
    p99: pct['99'],
    errors: {
      connect: socket ? Number(socket[1]) : 0,
      read: socket ? Number(socket[2]) : 0,
      write: socket ? Number(socket[3]) : 0,
      timeout: socket ? Number(socket[4]) : 0,
      non2xx: non2xx ? Number(non2xx[1]) : 0,
    },
  };
}

/** One wrk run; resolves with the parsed figures (and the raw output for the log). */
export function runWrk({ url, lua, connections = 32, threads = 1, seconds = 8, timeoutS = 5 }) {
  const args = ['-t', String(threads), '-c', String(connections), '-d', `${seconds}s`, '--timeout', `${timeoutS}s`, '--latency', '-s', lua, url];
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    // wrk stops itself after -d; this is only a guard against a hung wrk.
    const guard = setTimeout(() => child.kill('SIGKILL'), (seconds + timeoutS + 15) * 1000);
    child.on('error', reject);
    child.on('exit', () => {
      clearTimeout(guard);
      const r = parseWrk(out);
      resolve({ ...r, raw: out });
    });
  });
}

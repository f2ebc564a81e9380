// Runs h2load (Debian's nghttp2-client) for HTTP/2 load and parses what it prints. h2load gives
// mean/sd request times, not percentiles: p50 is reported as the mean, p99 is left out.
import { spawn } from 'node:child_process';

const UNIT_MS = { us: 0.001, ms: 1, s: 1000 };

function toMs(text) {
  const m = /^([\d.]+)(us|ms|s)$/.exec(text.trim());
  return m ? Number(m[1]) * UNIT_MS[m[2]] : NaN;
}

export function parseH2load(out) {
  const rps = /finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out);
  const reqs = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(out);
  const status = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
  const time = /time for request:\s+(\S+)\s+(\S+)\s+(\S+)/.exec(out);
  const protocol = /Application protocol: (\S+)/.exec(out);
  return {
    rps: rps ? Number(rps[1]) : 0,
    requests: reqs ? Number(reqs[4]) : 0,
    p50: time ? toMs(time[3]) : NaN,
    p99: NaN,
    protocol: protocol ? protocol[1] : null,
    errors: {
      failed: reqs ? Number(reqs[5]) : 0,
      errored: reqs ? Number(reqs[6]) : 0,
      non2xx: status ? Number(status[2]) + Number(status[3]) + Number(status[4]) : 0,
    },
  };
}

/** One h2load run: `connections` h2 connections with `streams` concurrent streams each, POSTing `bodyFile`. */
export function runH2load({ url, bodyFile, connections = 4, streams = 8, seconds = 8 }) {
  const args = ['-c', String(connections), '-m', String(streams), '-D', String(seconds), '-d', bodyFile, '-H', 'content-type: application/json', url];
  return new Promise((resolve, reject) => {
    const child = spawn('h2load', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const guard = setTimeout(() => child.kill('SIGKILL'), (seconds + 20) * 1000);
    child.on('error', reject);
    child.on('exit', () => {
      clearTimeout(guard);
      resolve({ ...parseH2load(out), raw: out });
    });
  });
}

// A private redis-server for S4, on a free loopback port, no persistence.
import net from 'node:net';
import { freePort, sleep, startChild } from './proc.mjs';

function ping(port) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(500, () => done(false));
    s.on('error', () => done(false));
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

export async function startRedis() {
  const port = await freePort();
  const entry = startChild('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    name: 'redis-server',
  });
  const deadline = Date.now() + 10_000;
  while (!(await ping(port))) {
    if (entry.child.exitCode !== null || Date.now() > deadline) throw new Error(`redis-server did not start on ${port}: ${entry.stderr}`);
    await sleep(20);
  }
  return { ...entry, url: `redis://127.0.0.1:${port}`, port };
}

/** Script runs (EVALSHA + EVAL) the server has counted: the limiter's round trips. */
export async function scriptCalls({ port }) {
  const info = await command(port, 'INFO commandstats\r\n');
  let calls = 0;
  for (const m of info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)) calls += Number(m[1]);
  return calls;
}

/** One inline command on a fresh connection; resolves with the whole (bulk) reply text. */
function command(port, line) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let buf = '';
    s.setTimeout(2000, () => {
      s.destroy();
      reject(new Error('redis-server did not answer'));
    });
    s.on('error', reject);
    s.on('connect', () => s.write(line));
    s.on('data', (d) => {
      buf += d.toString();
      const m = /^\$(\d+)\r\n/.exec(buf);
      if (m && Buffer.byteLength(buf) >= m[0].length + Number(m[1]) + 2) {
        s.destroy();
        resolve(buf.slice(m[0].length));
      }
    });
  });
}

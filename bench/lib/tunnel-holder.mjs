// Soak tunnels (their own process): COUNT CONNECT tunnels through the forward listener, each with
// a completed TLS handshake against aigate's minted certificate (an IDE between two prompts),
// then held idle. Prints `open N failed M` once they are up, and `closed N` when aigate has
// closed them all (its drain on SIGTERM), then exits.
//   node bench/lib/tunnel-holder.mjs FORWARD_PORT HOST CA_FILE COUNT [PARALLEL]
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

const [port, host, caFile, count, parallel = '32'] = process.argv.slice(2);
const ca = readFileSync(caFile);
const TOTAL = Number(count);
const held = new Set();
let failed = 0;
let closed = 0;

function openOne() {
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), '127.0.0.1');
    const fail = () => (socket.destroy(), resolve(false));
    socket.setTimeout(15_000, fail);
    socket.once('error', fail);
    let head = '';
    socket.on('data', function onData(c) {
      head += c.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      if (!head.startsWith('HTTP/1.1 200')) return fail();
      const t = tls.connect({ socket, servername: host, ca, ALPNProtocols: ['http/1.1'] });
      t.once('error', fail);
      t.once('secureConnect', () => {
        socket.setTimeout(0);
        t.on('error', () => undefined);
        held.add(t);
        t.once('close', () => {
          held.delete(t);
          closed++;
          if (reported && held.size === 0) finish();
        });
        resolve(true);
      });
    });
    socket.write(`CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\n\r\n`);
  });
}

let reported = false;
const finish = () => {
  process.stdout.write(`closed ${closed}\n`);
  process.exit(0);
};
let next = 0;
await Promise.all(
  Array.from({ length: Number(parallel) }, async () => {
    while (next < TOTAL) {
      next++;
      if (!(await openOne())) failed++;
    }
  }),
);
reported = true;
process.stdout.write(`open ${held.size} failed ${failed}\n`);
if (held.size === 0) finish();
process.on('SIGTERM', () => {
  for (const t of held) t.destroy();
  process.exit(0);
});
setInterval(() => undefined, 1000);

// S6 client (its own process): opens COUNT SSE streams, each on its own TLS connection as separate
// IDEs would, waits for the first event on each, prints `open N failed M`, then keeps them all
// open and idle until it is told to stop (SIGTERM) — bounded by a deadline in any case.
//   node bench/lib/sse-holder.mjs PORT SERVERNAME CA_FILE PATH COUNT [PARALLEL]
import { readFileSync } from 'node:fs';
import { request } from 'node:https';

const [port, servername, caFile, path, count, parallel = '64'] = process.argv.slice(2);
const ca = readFileSync(caFile);
const BODY = JSON.stringify({ model: 'claude-bench', stream: true, messages: [{ role: 'user', content: 'hold' }] });
const open = [];
let failed = 0;

function openOne() {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: Number(port),
        path,
        method: 'POST',
        agent: false,
        ca,
        servername,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY), host: servername },
      },
      (res) => {
        res.once('data', () => resolve(true));
        res.on('error', () => undefined);
      },
    );
    req.setTimeout(15_000, () => {
      req.destroy();
      resolve(false);
    });
    req.on('error', () => resolve(false));
    req.end(BODY);
    open.push(req);
  });
}

let next = 0;
const total = Number(count);
await Promise.all(
  Array.from({ length: Number(parallel) }, async () => {
    while (next < total) {
      next++;
      if (!(await openOne())) failed++;
    }
  }),
);
process.stdout.write(`open ${total - failed} failed ${failed}\n`);
const stop = () => {
  for (const r of open) r.destroy();
  process.exit(0);
};
process.on('SIGTERM', stop);
setTimeout(stop, 120_000).unref();
setInterval(() => undefined, 1000);

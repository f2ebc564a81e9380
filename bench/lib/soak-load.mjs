// Soak load (its own process): exactly TOTAL POST requests through the gateway on CONNECTIONS
// keep-alive connections, each response read to the end — a fixed count, unlike wrk's fixed
// duration, so the audit log can be checked line for line against what was sent. Prints
// `progress N` every STEP completed requests and `done N failed M` at the end.
//   node bench/lib/soak-load.mjs PORT CA_FILE PATH BODY_FILE TOTAL CONNECTIONS
import { readFileSync } from 'node:fs';
import { Pool } from 'undici';

const [port, caFile, path, bodyFile, total, connections] = process.argv.slice(2);
const TOTAL = Number(total);
const STEP = 10_000;
const body = readFileSync(bodyFile);
const pool = new Pool(`https://localhost:${port}`, { connections: Number(connections), pipelining: 1, connect: { ca: readFileSync(caFile) } });
const headers = { 'content-type': 'application/json', authorization: 'Bearer bench-not-a-secret' };
let sent = 0;
let done = 0;
let failed = 0;
const statuses = {};

async function loop() {
  while (sent < TOTAL) {
    sent++;
    try {
      const res = await pool.request({ method: 'POST', path, body, headers });
      await res.body.dump();
      statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
    } catch (err) {
      failed++;
      statuses[err.code ?? 'error'] = (statuses[err.code ?? 'error'] ?? 0) + 1;
    }
    if (++done % STEP === 0) process.stdout.write(`progress ${done}\n`);
  }
}

await Promise.all(Array.from({ length: Number(connections) }, loop));
await pool.close();
process.stdout.write(`done ${done} failed ${failed} statuses ${JSON.stringify(statuses)}\n`);

// Forward latency of a clean Connect streaming message (issue 14: "forwarded within 1 ms of
// arriving when clean"): the time from the client writing one gzip-compressed envelope on an open
// client stream to the upstream having it whole, through aigate (a child process, as deployed:
// gateway, inspection, rate limiter and audit on) and, for reference, straight to the upstream.
// Client and upstream share this process and its clock; each message is written only once the
// previous one arrived, so every figure is one message alone, never a queue.
//   npx tsc -p tsconfig.build.json && node bench/rpc.mjs [--messages N] [--json]
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { Agent, request } from 'undici';
import { startAigate } from './lib/aigate.mjs';
import { makePki } from './lib/pki.mjs';
import { stopAll } from './lib/proc.mjs';
import { pct, sorted } from './lib/stats.mjs';

const { values: args } = parseArgs({ options: { messages: { type: 'string' }, json: { type: 'boolean', default: false } } });
const N = Number(args.messages ?? 500);
const dir = mkdtempSync(join(tmpdir(), 'aigate-bench-rpc-'));

/** A protobuf Prompt { text = 1 } of about 1 KiB of code, gzip-compressed in a Connect envelope. */
function message(i) {
  const text = Buffer.from(`// message ${i}\n${'function add(a, b) {\n  return a + b;\n}\n'.repeat(24)}`);
  const len = [];
  for (let n = text.length; ; n >>= 7) {
    if (n < 0x80) { len.push(n); break; }
    len.push((n & 0x7f) | 0x80);
  }
  const proto = Buffer.concat([Buffer.from([0x0a, ...len]), text]);
  const data = gzipSync(proto);
  const env = Buffer.alloc(5 + data.length);
  env[0] = 1;
  env.writeUInt32BE(data.length, 1);
  data.copy(env, 5);
  return env;
}

/** An upstream that counts whole envelopes as their bytes arrive, and answers at the stream's end. */
function startUpstream(tls) {
  let onEnvelope = () => {};
  const server = createServer(tls, (req, res) => {
    let pending = Buffer.alloc(0);
    req.on('data', (chunk) => {
      const now = performance.now();
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
        pending = pending.subarray(5 + pending.readUInt32BE(1));
        onEnvelope(now);
      }
    });
    req.on('end', () => {
      const end = Buffer.from('{}');
      const env = Buffer.alloc(5 + end.length);
      env[0] = 2;
      env.writeUInt32BE(end.length, 1);
      end.copy(env, 5);
      res.writeHead(200, { 'content-type': 'application/connect+proto' }).end(env);
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ port: server.address().port, server, next: () => new Promise((r) => (onEnvelope = r)) })),
  );
}

async function run(url, dispatcher, upstream, count) {
  const body = new PassThrough();
  const response = request(url, {
    method: 'POST',
    dispatcher,
    body,
    headers: { 'content-type': 'application/connect+proto', 'connect-protocol-version': '1', 'connect-content-encoding': 'gzip' },
  });
  const latencies = [];
  for (let i = 0; i < count; i++) {
    const env = message(i);
    const arrived = upstream.next();
    const t = performance.now();
    body.write(env);
    latencies.push((await arrived) - t);
  }
  body.end();
  const res = await response;
  await res.body.arrayBuffer();
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
  return latencies;
}

const fmt = (n) => n.toFixed(3);
try {
  const pki = makePki(dir);
  const upstream = await startUpstream(pki.openai);
  const aigate = await startAigate(dir, pki, { upstream: upstream.port, sse: upstream.port }, { name: 'rpc', rateLimit: 'memory' });
  const viaAigate = new Agent({ connect: { ca: pki.proxyCaPem, servername: 'localhost' } });
  const direct = new Agent({ connect: { ca: pki.vendorCaPem, servername: 'api.openai.com' } });
  const path = '/aigate.test.Chat/Upload';
  // Warm-up (JIT, pools, TLS sessions), not measured.
  await run(`https://127.0.0.1:${aigate.gatewayPort}/openai${path}`, viaAigate, upstream, 100);
  await run(`https://127.0.0.1:${upstream.port}${path}`, direct, upstream, 100);
  const results = {};
  for (const [name, url, d] of [
    ['direct', `https://127.0.0.1:${upstream.port}${path}`, direct],
    ['aigate', `https://127.0.0.1:${aigate.gatewayPort}/openai${path}`, viaAigate],
  ]) {
    const s = sorted(await run(url, d, upstream, N));
    results[name] = { messages: N, p50: pct(s, 50), p90: pct(s, 90), p99: pct(s, 99), max: s[s.length - 1] };
  }
  await viaAigate.close();
  await direct.close();
  upstream.server.close();
  if (args.json) {
    process.stdout.write(`${JSON.stringify(results)}\n`);
  } else {
    const envBytes = message(0).length;
    process.stdout.write(`Clean Connect client-stream message (~1.1 KiB of code, gzip: ${envBytes}-byte envelope), client write → upstream has it whole, ${N} messages one at a time:\n\n`);
    process.stdout.write('| path | p50 ms | p90 ms | p99 ms | max ms |\n| --- | --- | --- | --- | --- |\n');
    for (const [name, r] of Object.entries(results)) process.stdout.write(`| ${name} | ${fmt(r.p50)} | ${fmt(r.p90)} | ${fmt(r.p99)} | ${fmt(r.max)} |\n`);
    process.stdout.write(`\nAdded by aigate at the median: ${fmt(results.aigate.p50 - results.direct.p50)} ms.\n`);
  }
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}

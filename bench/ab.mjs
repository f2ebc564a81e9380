#!/usr/bin/env node
// A/B of aigate variants on one load, against the bare Node proxy as the yardstick: contenders
// interleaved in short rounds (this machine's speed drifts over tens of seconds), req/s as a ratio
// to the bare proxy in the same round, and CPU µs per request of each process.
//
//   npm run build && node bench/ab.mjs [--body small|large] [--connections 32] [--rounds 6] [--seconds 2] VARIANT...
//   variants: full (as `npm run bench`'s aigate), norules, nolimit, noaudit, minimal, inline
//             (scanThreads 0), threads1, threads2, redis (the Redis limiter), syslog (full + audit.syslog
//             over TCP to a discarding receiver), and `build`
//             (--cli PATH: another build's dist/cli.js; --build-limiter memory|redis|off)
// A variant on the Redis limiter gets its own redis-server: its CPU counts in the variant's µs/req,
// and the table says how many script calls (EVALSHA) each request cost.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { VARIANTS as AIGATE_VARIANTS, startAigate } from './lib/aigate.mjs';
import { startBareProxy } from './lib/bare.mjs';
import { writeBodies } from './lib/bodies.mjs';
import { requireTools } from './lib/env.mjs';
import { startNginx, upstreamConfig } from './lib/nginx.mjs';
import { scriptCalls, startRedis } from './lib/redis.mjs';
import { makePki } from './lib/pki.mjs';
import { startSyslogReceiver } from './lib/syslog.mjs';
import { cpuSeconds, freePort, stopAll } from './lib/proc.mjs';
import { median } from './lib/stats.mjs';
import { runWrk } from './lib/wrk.mjs';

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    body: { type: 'string', default: 'small' },
    rounds: { type: 'string', default: '6' },
    seconds: { type: 'string', default: '2' },
    cli: { type: 'string' },
    connections: { type: 'string', default: '32' },
    'build-limiter': { type: 'string', default: 'memory' },
  },
});
const VARIANTS = { ...AIGATE_VARIANTS, build: { rateLimit: args['build-limiter'], cli: args.cli } };
const names = positionals.length ? positionals : ['full'];
for (const n of names) if (!VARIANTS[n]) throw new Error(`unknown variant ${n}; one of ${Object.keys(VARIANTS).join(', ')}`);
if (names.includes('build') && !args.cli) throw new Error('variant build needs --cli PATH/dist/cli.js');

process.chdir(resolve(fileURLToPath(new URL('..', import.meta.url))));
requireTools();
const dir = mkdtempSync(join(tmpdir(), 'aigate-ab-'));
try {
  const pki = makePki(dir);
  const body = writeBodies(dir, process.cwd())[args.body];
  const ports = { upstream: await freePort(), sse: await freePort(), bare: await freePort() };
  if (names.some((n) => VARIANTS[n].syslog)) ports.syslog = (await startSyslogReceiver()).port;
  await startNginx(dir, 'upstream', upstreamConfig(dir, pki, ports.upstream), ports.upstream);
  const bare = await startBareProxy(pki, { port: ports.bare, upstreamPort: ports.upstream });
  const contenders = [{ name: 'bare', pids: () => [bare.child.pid], port: ports.bare }];
  for (const n of names) {
    const redis = VARIANTS[n].rateLimit === 'redis' ? await startRedis() : undefined;
    const a = await startAigate(dir, pki, ports, { name: n, ...VARIANTS[n], redisUrl: redis?.url });
    const pids = redis ? [a.pid, redis.child.pid] : [a.pid];
    contenders.push({ name: n, pids: () => pids, port: a.gatewayPort, redis });
  }
  const url = (c) => `https://127.0.0.1:${c.port}/openai/chat/completions`;
  for (const c of contenders) await runWrk({ url: url(c), lua: body.lua, connections: 32, seconds: 2 });
  const results = Object.fromEntries(contenders.map((c) => [c.name, []]));
  for (let r = 0; r < Number(args.rounds); r++) {
    for (let i = 0; i < contenders.length; i++) {
      const c = contenders[(i + r) % contenders.length];
      const cpu0 = cpuSeconds(c.pids());
      const calls0 = c.redis ? await scriptCalls(c.redis) : 0;
      const w = await runWrk({ url: url(c), lua: body.lua, connections: Number(args.connections), seconds: Number(args.seconds) });
      const cpuUs = ((cpuSeconds(c.pids()) - cpu0) * 1e6) / w.requests;
      const callsPerReq = c.redis ? ((await scriptCalls(c.redis)) - calls0) / w.requests : undefined;
      results[c.name].push({ rps: w.rps, p50: w.p50, p99: w.p99, cpuUs, callsPerReq });
    }
  }
  console.log(`${args.body} body, ${args.connections} connections, ${args.rounds} rounds × ${args.seconds} s (medians)`);
  for (const c of contenders) {
    const rs = results[c.name];
    const ratio = median(rs.map((x, i) => x.rps / results.bare[i].rps));
    const f = (k, d = 0) => median(rs.map((x) => x[k])).toFixed(d);
    const calls = c.redis ? `  Redis calls ${f('callsPerReq', 3)}/req` : '';
    console.log(`${c.name.padEnd(10)} ${f('rps').padStart(6)} req/s  × bare ${ratio.toFixed(2)}  CPU ${f('cpuUs').padStart(5)} µs/req  p50 ${f('p50', 2)} ms  p99 ${f('p99', 2)} ms${calls}`);
  }
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}

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
//   --protocol h1 (default: wrk, --connections) | h2 (h2load, --h2-connections × --streams streams,
//   S1h2's 4 × 8) | both (every contender under each load, interleaved). Over h2 the yardsticks are
//   the bare proxy on node:http2's compatibility API (`bare h2`, the same handler) and on its
//   stream API (`bare h2stream`). --nginx adds the guide's nginx (one worker) under each load, for
//   the ratios `npm run bench` reports.
// A variant on the Redis limiter gets its own redis-server: its CPU counts in the variant's µs/req,
// and the table says how many script calls (EVALSHA) each request cost.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FINGERPRINT_INDEX, VARIANTS as AIGATE_VARIANTS, startAigate } from './lib/aigate.mjs';
import { buildIndex, MISS_ROOTS } from './lib/fingerprint-index.mjs';
import { startBareProxy } from './lib/bare.mjs';
import { writeBodies } from './lib/bodies.mjs';
import { requireTools } from './lib/env.mjs';
import { proxyConfig, startNginx, upstreamConfig } from './lib/nginx.mjs';
import { scriptCalls, startRedis } from './lib/redis.mjs';
import { makePki } from './lib/pki.mjs';
import { startSyslogReceiver } from './lib/syslog.mjs';
import { childPids, cpuSeconds, freePort, stopAll } from './lib/proc.mjs';
import { median } from './lib/stats.mjs';
import { runWrk } from './lib/wrk.mjs';
import { runH2load } from './lib/h2load.mjs';

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    body: { type: 'string', default: 'small' },
    rounds: { type: 'string', default: '6' },
    seconds: { type: 'string', default: '2' },
    cli: { type: 'string' },
    connections: { type: 'string', default: '32' },
    'build-limiter': { type: 'string', default: 'memory' },
    protocol: { type: 'string', default: 'h1' },
    'h2-connections': { type: 'string', default: '4' },
    streams: { type: 'string', default: '8' },
    nginx: { type: 'boolean', default: false },
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
  const protocols = args.protocol === 'both' ? ['h1', 'h2'] : [args.protocol];
  for (const p of protocols) if (p !== 'h1' && p !== 'h2') throw new Error(`--protocol h1, h2 or both, not ${p}`);
  const ports = { upstream: await freePort(), sse: await freePort() };
  if (names.some((n) => VARIANTS[n].syslog)) ports.syslog = (await startSyslogReceiver()).port;
  if (names.some((n) => VARIANTS[n].fingerprints)) await buildIndex(join(dir, FINGERPRINT_INDEX), 'bench', MISS_ROOTS, 1_000_000);
  await startNginx(dir, 'upstream', upstreamConfig(dir, pki, ports.upstream), ports.upstream);
  // Each contender is a front door and a load: wrk over HTTP/1.1 or h2load over HTTP/2.
  const contenders = [];
  const bares = protocols.includes('h1') ? ['h1'] : [];
  if (protocols.includes('h2')) bares.push('h2', 'h2stream');
  for (const mode of bares) {
    const port = await freePort();
    const bare = await startBareProxy(pki, { port, upstreamPort: ports.upstream, mode });
    contenders.push({ name: mode === 'h1' ? 'bare' : `bare ${mode}`, protocol: mode === 'h1' ? 'h1' : 'h2', pids: () => [bare.child.pid], port });
  }
  if (args.nginx) {
    ports.nginx = await freePort();
    const nginx = await startNginx(dir, 'proxy', proxyConfig(dir, pki, ports), ports.nginx);
    const pids = () => [nginx.child.pid, ...childPids(nginx.child.pid)];
    for (const protocol of protocols) contenders.push({ name: protocols.length > 1 ? `nginx ${protocol}` : 'nginx', protocol, pids, port: ports.nginx });
  }
  for (const n of names) {
    const redis = VARIANTS[n].rateLimit === 'redis' ? await startRedis() : undefined;
    const a = await startAigate(dir, pki, ports, { name: n, ...VARIANTS[n], redisUrl: redis?.url });
    const pids = redis ? [a.pid, redis.child.pid] : [a.pid];
    for (const protocol of protocols) contenders.push({ name: protocols.length > 1 ? `${n} ${protocol}` : n, protocol, pids: () => pids, port: a.gatewayPort, redis });
  }
  const url = (c) => `https://127.0.0.1:${c.port}/openai/chat/completions`;
  const load = (c, seconds) =>
    c.protocol === 'h2'
      ? runH2load({ url: url(c), bodyFile: body.file, connections: Number(args['h2-connections']), streams: Number(args.streams), seconds }).then((r) => {
          if (r.protocol !== 'h2' || r.requests === 0) throw new Error(`${c.name}: h2load got ${r.protocol}, ${r.requests} requests\n${r.raw}`);
          return r;
        })
      : runWrk({ url: url(c), lua: body.lua, connections: Number(args.connections), seconds });
  for (const c of contenders) await load(c, 2);
  const results = Object.fromEntries(contenders.map((c) => [c.name, []]));
  for (let r = 0; r < Number(args.rounds); r++) {
    for (let i = 0; i < contenders.length; i++) {
      const c = contenders[(i + r) % contenders.length];
      const cpu0 = cpuSeconds(c.pids());
      const calls0 = c.redis ? await scriptCalls(c.redis) : 0;
      const w = await load(c, Number(args.seconds));
      const cpuUs = ((cpuSeconds(c.pids()) - cpu0) * 1e6) / w.requests;
      const callsPerReq = c.redis ? ((await scriptCalls(c.redis)) - calls0) / w.requests : undefined;
      results[c.name].push({ rps: w.rps, p50: w.p50, p99: w.p99, cpuUs, callsPerReq });
    }
  }
  const loads = protocols.map((p) => (p === 'h1' ? `HTTP/1.1 ${args.connections} connections (wrk)` : `HTTP/2 ${args['h2-connections']} connections × ${args.streams} streams (h2load)`));
  console.log(`${args.body} body, ${loads.join(' / ')}, ${args.rounds} rounds × ${args.seconds} s (medians, min–max)`);
  for (const c of contenders) {
    const rs = results[c.name];
    const base = results[c.protocol === 'h2' ? 'bare h2' : 'bare'];
    const ratio = median(rs.map((x, i) => x.rps / base[i].rps));
    const f = (k, d = 0) => median(rs.map((x) => x[k])).toFixed(d);
    const range = (k) => `${Math.min(...rs.map((x) => x[k])).toFixed(0)}–${Math.max(...rs.map((x) => x[k])).toFixed(0)}`;
    const calls = c.redis ? `  Redis calls ${f('callsPerReq', 3)}/req` : '';
    const bareName = c.protocol === 'h2' ? 'bare h2' : 'bare';
    console.log(
      `${c.name.padEnd(14)} ${f('rps').padStart(6)} req/s (${range('rps')})  × ${bareName} ${ratio.toFixed(2)}  CPU ${f('cpuUs').padStart(5)} µs/req (${range('cpuUs')})  p50 ${f('p50', 2)} ms  p99 ${f('p99', 2)} ms${calls}`,
    );
  }
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}

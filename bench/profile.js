#!/usr/bin/env node
// CPU profile of aigate under S1 (or S2) load: the same nginx fake upstream and aigate config as
// `npm run bench`, aigate started with `node --cpu-prof`, wrk for --seconds, then a summary of
// where the time went (self time by function and by module). The .cpuprofile is kept and its path
// printed: open it in Chrome DevTools (Performance → Load profile) or speedscope for a flame graph.
//
// --h2 loads it over HTTP/2 instead (h2load, --h2-connections × --streams, S1h2's 4 × 8).
//
//   npm run build && node bench/profile.js [--body small|large] [--seconds 10] [--variant full|norules|off|minimal|redis|…] [--h2]
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { VARIANTS as AIGATE_VARIANTS, startAigate } from './lib/aigate.mjs';
import { writeBodies } from './lib/bodies.mjs';
import { formatSummary, summarise } from './lib/cpuprofile-top.mjs';
import { requireTools } from './lib/env.mjs';
import { startNginx, upstreamConfig } from './lib/nginx.mjs';
import { makePki } from './lib/pki.mjs';
import { freePort, stopAll } from './lib/proc.mjs';
import { startRedis } from './lib/redis.mjs';
import { runWrk } from './lib/wrk.mjs';
import { runH2load } from './lib/h2load.mjs';

const { values: args } = parseArgs({
  options: {
    body: { type: 'string', default: 'small' },
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    variant: { type: 'string', default: 'full' },
    top: { type: 'string', default: '30' },
    h2: { type: 'boolean', default: false },
    'h2-connections': { type: 'string', default: '4' },
    streams: { type: 'string', default: '8' },
  },
});
const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
process.chdir(ROOT);
requireTools();

// `off` (limiter and rules off, audit on) is this script's own; the rest are the shared variants.
const VARIANTS = { ...AIGATE_VARIANTS, off: { rateLimit: 'off', rules: 'none' } };
const dir = mkdtempSync(join(tmpdir(), 'aigate-profile-'));
const profDir = join(dir, 'prof');
try {
  const pki = makePki(dir);
  const bodies = writeBodies(dir, ROOT);
  const ports = { upstream: await freePort(), nginx: 0, sse: await freePort() };
  await startNginx(dir, 'upstream', upstreamConfig(dir, pki, ports.upstream), ports.upstream);
  const variant = VARIANTS[args.variant];
  if (!variant) throw new Error(`unknown variant ${args.variant}; one of ${Object.keys(VARIANTS).join(', ')}`);
  const redis = variant.rateLimit === 'redis' ? await startRedis() : undefined;
  const aigate = await startAigate(dir, pki, ports, {
    name: `profile-${args.variant}`,
    ...variant,
    redisUrl: redis?.url,
    nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profDir],
  });
  const url = `https://127.0.0.1:${aigate.gatewayPort}/openai/chat/completions`;
  const body = bodies[args.body];
  const load = (seconds) =>
    args.h2
      ? runH2load({ url, bodyFile: body.file, connections: Number(args['h2-connections']), streams: Number(args.streams), seconds })
      : runWrk({ url, lua: body.lua, connections: Number(args.connections), seconds });
  await load(3);
  const r = await load(Number(args.seconds));
  const shape = args.h2 ? `HTTP/2 ${args['h2-connections']} connections × ${args.streams} streams` : `${args.connections} connections`;
  console.log(`aigate (${args.variant}) under ${args.body} load, ${shape}, ${args.seconds} s: ${Math.round(r.rps)} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms (profiling on: slower than without)\n`);
  await aigate.stop();
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error('aigate wrote no .cpuprofile (did it exit cleanly?)');
  const keep = join(tmpdir(), `aigate-${args.variant}-${args.body}${args.h2 ? '-h2' : ''}-${Date.now()}.cpuprofile`);
  copyFileSync(join(profDir, file), keep);
  console.log(formatSummary(summarise(JSON.parse(readFileSync(keep, 'utf8')), Number(args.top))));
  console.log(`\nprofile kept: ${keep}`);
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}

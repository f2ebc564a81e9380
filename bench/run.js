#!/usr/bin/env node
// `npm run bench`: aigate against nginx (the guide's proxy) and against going direct, on loopback,
// in one run — issue 7's scenarios S1–S6 plus the component benches of issues 3, 4 and 5.
//
//   bash bench/setup.sh               # once (uses sudo when not root): nginx, wrk, redis-server from Debian's packages
//                                      (mitmproxy, optional: S1/S2 compare with mitmdump when it is installed)
//   npm run bench                      # full run (~8 min on 2 cores), rewrites BENCHMARKS.md
//   npm run bench -- --quick           # smoke run (~1 min), prints only
//   npm run bench:soak                 # the soak alone (issue #19): 500k requests, 2,000 idle tunnels, SIGTERM
//   options: --only S1,S3,soak,sections  --rounds N  --seconds N  --streams N  --keep (keep the temp dir)
//            --soak-requests N  --soak-tunnels N  --no-write (do not touch BENCHMARKS.md)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { FINGERPRINT_INDEX, startAigate } from './lib/aigate.mjs';
import { startBareProxy } from './lib/bare.mjs';
import { writeBodies } from './lib/bodies.mjs';
import { buildIndex, MISS_ROOTS } from './lib/fingerprint-index.mjs';
import { machine, requireTools, versions } from './lib/env.mjs';
import { proxyConfig, startNginx, upstreamConfig } from './lib/nginx.mjs';
import { startMitmproxy } from './lib/mitmproxy.mjs';
import { makePki, OPENAI } from './lib/pki.mjs';
import { freePort, startChild, stopAll, waitForTls } from './lib/proc.mjs';
import { startRedis } from './lib/redis.mjs';
import { renderReport } from './lib/report.mjs';
import * as S from './lib/scenarios.mjs';
import { runSections } from './lib/sections.mjs';
import { soak } from './lib/soak.mjs';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    rounds: { type: 'string' },
    seconds: { type: 'string' },
    streams: { type: 'string' },
    'soak-requests': { type: 'string' },
    'soak-tunnels': { type: 'string' },
    keep: { type: 'boolean', default: false },
    'no-write': { type: 'boolean', default: false },
  },
});
const quick = args.quick;
const opts = {
  quick,
  rounds: Number(args.rounds ?? (quick ? 1 : 3)),
  seconds: Number(args.seconds ?? (quick ? 2 : 8)),
  sseIterations: quick ? 30 : 200,
  handshakes: quick ? 30 : 200,
  streams: Number(args.streams ?? (quick ? 200 : 2000)),
  soakRequests: Number(args['soak-requests'] ?? (quick ? 20_000 : 500_000)),
  soakTunnels: Number(args['soak-tunnels'] ?? (quick ? 200 : 2000)),
};
const only = args.only ? new Set(args.only.split(',').map((s) => s.trim())) : null;
const wants = (name) => !only || only.has(name);
const log = (msg) => process.stderr.write(`${msg}\n`);

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
process.chdir(ROOT);
requireTools();

const startedAt = new Date();
const dir = mkdtempSync(join(tmpdir(), 'aigate-bench-'));
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    log(`\n${sig}: stopping everything this bench started`);
    void stopAll().finally(() => {
      if (!args.keep) rmSync(dir, { recursive: true, force: true });
      process.exit(130);
    });
  });
}

/** One request through a front door; the bench refuses to measure a door that does not answer 200. */
async function preflight(name, { port, servername, ca, path, body }) {
  const dispatcher = new Agent({ connect: { ca, servername } });
  try {
    const res = await request(`https://127.0.0.1:${port}${path}`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', host: servername },
      dispatcher,
    });
    const text = await res.body.text();
    if (res.statusCode !== 200 || !text.includes('chatcmpl-bench')) {
      throw new Error(`preflight ${name} ${path}: status ${res.statusCode}: ${text.slice(0, 500)}`);
    }
  } finally {
    await dispatcher.close();
  }
}

async function main() {
  log(`aigate bench${quick ? ' (quick)' : ''}: temp dir ${dir}`);
  const pki = makePki(dir);
  const bodies = writeBodies(dir, ROOT);
  const ports = { upstream: await freePort(), nginx: await freePort(), sse: await freePort(), sseH2: await freePort() };

  const procs = { aigate: {} };
  procs.upstream = await startNginx(dir, 'upstream', upstreamConfig(dir, pki, ports.upstream), ports.upstream);
  procs.sse = startChild(process.execPath, ['bench/lib/sse-server.mjs', String(ports.sse), pki.files.anthropicCert, pki.files.anthropicKey], { name: 'sse server' });
  await waitForTls(ports.sse, { entry: procs.sse });
  if (wants('S3h2')) {
    procs.sseH2 = startChild(process.execPath, ['bench/lib/sse-server.mjs', String(ports.sseH2), pki.files.anthropicCert, pki.files.anthropicKey, 'h2'], { name: 'sse server (h2)' });
    await waitForTls(ports.sseH2, { entry: procs.sseH2 });
  }
  procs.nginx = await startNginx(dir, 'proxy', proxyConfig(dir, pki, ports), ports.nginx);
  if (wants('S1') || wants('S2')) {
    ports.bare = await freePort();
    procs.bare = await startBareProxy(pki, { port: ports.bare, upstreamPort: ports.upstream });
    ports.mitmproxy = await freePort();
    procs.mitmproxy = await startMitmproxy(dir, pki, { port: ports.mitmproxy, upstreamPort: ports.upstream });
    if (!procs.mitmproxy) log('mitmdump not found (apt-get install mitmproxy): mitmproxy left out of S1 and S2');
  }
  if (wants('S1h2')) {
    // The floor for HTTP/2 in Node: the same bare proxy on node:http2 (S1h2's reference).
    ports.bareH2 = await freePort();
    procs.bareH2 = await startBareProxy(pki, { port: ports.bareH2, upstreamPort: ports.upstream, mode: 'h2' });
  }
  const needRedis = wants('S4');
  if (needRedis) procs.redis = await startRedis();
  // The soak starts its own aigate: a run of the soak alone needs none of these.
  const loadScenarios = ['S1', 'S1h2', 'S2', 'S2early', 'S3', 'S3h2', 'S4', 'S5'].some(wants);
  const variants = !loadScenarios ? [] : [
    { name: 'full', rateLimit: 'memory', forward: true },
    { name: 'norules', rateLimit: 'memory', rules: 'none' },
    { name: 'off', rateLimit: 'off' },
    // S4's three contenders are processes with the same history (warm-up, then S4 only): the
    // main aigate has also carried S1–S3 by then, which alone moved its req/s by several per cent.
    ...(wants('S4') ? [{ name: 'memory', rateLimit: 'memory' }] : []),
    ...(needRedis ? [{ name: 'redis', rateLimit: 'redis', redisUrl: procs.redis.url }] : []),
    // Multi-process mode, for reference: on 2 cores it competes with wrk and the upstream.
    ...(wants('S1') || wants('S2') ? [{ name: 'workers2', rateLimit: 'memory', args: ['--workers', '2'] }] : []),
    // `full` with a 1M-line protected-code index the S2 body is not in (issue #16).
    ...(wants('S2') ? [{ name: 'fingerprints', rateLimit: 'memory', fingerprints: true }] : []),
  ];
  if (variants.some((v) => v.fingerprints)) {
    const index = await buildIndex(join(dir, FINGERPRINT_INDEX), 'bench', MISS_ROOTS, 1_000_000);
    log(`protected-code index: ${index.lines} lines, ${index.mib.toFixed(1)} MiB`);
  }
  for (const v of variants) procs.aigate[v.name] = await startAigate(dir, pki, ports, v);
  log(`upstream nginx :${ports.upstream}, sse :${ports.sse}, nginx proxy :${ports.nginx}, aigate ${variants.map((v) => `${v.name} :${procs.aigate[v.name].gatewayPort}`).join(', ')}`);

  for (const [kind, body] of [['small', bodies.small.body], ['large', bodies.large.body]]) {
    await preflight(`direct ${kind}`, { port: ports.upstream, servername: OPENAI, ca: pki.vendorCaPem, path: '/v1/chat/completions', body });
    await preflight(`nginx ${kind}`, { port: ports.nginx, servername: 'localhost', ca: pki.proxyCaPem, path: '/openai/chat/completions', body });
    if (procs.bare) await preflight(`bare node proxy ${kind}`, { port: ports.bare, servername: 'localhost', ca: pki.proxyCaPem, path: '/openai/chat/completions', body });
    // Reverse mode keeps the path: the upstream's own.
    if (procs.mitmproxy) await preflight(`mitmproxy ${kind}`, { port: ports.mitmproxy, servername: 'localhost', ca: pki.proxyCaPem, path: '/v1/chat/completions', body });
    for (const v of variants) {
      await preflight(`aigate ${v.name} ${kind}`, { port: procs.aigate[v.name].gatewayPort, servername: 'localhost', ca: pki.proxyCaPem, path: '/openai/chat/completions', body });
    }
  }

  const ctx = { opts, pki, bodies, ports, procs, log, dir };
  const results = {};
  if (loadScenarios) {
    log('warm-up');
    await S.warmUp(ctx);
  }
  const scenario = async (name, title, fn) => {
    if (!wants(name)) return;
    log(`${name}: ${title}`);
    results[name] = await fn(ctx);
  };
  await scenario('S1', 'small chat request, 32 connections', S.S1);
  await scenario('S1h2', 'small chat request over HTTP/2, 32 streams on 4 connections (h2load)', S.S1h2);
  await scenario('S2', 'large request (256 KiB), 32 connections', S.S2);
  await scenario('S2early', 'upstream answers before reading the body', S.S2early);
  await scenario('S3', 'SSE first event and stream time', S.S3);
  await scenario('S3h2', 'SSE first event and stream time over HTTP/2 (one h2 session, one stream at a time)', S.S3h2);
  await scenario('S4', 'rate limiter off / memory / redis', S.S4);
  await scenario('S5', 'forward mode: CONNECT + interception', S.S5);

  // The load-bearing aigates are done: S6 measures a fresh process on a quiet machine.
  for (const a of Object.values(procs.aigate)) await a.stop();
  if (procs.redis) await procs.redis.stop();
  if (wants('S6')) {
    log(`S6: RSS with ${opts.streams} idle SSE streams`);
    // Every stream comes from 127.0.0.1: limits.connectionsPerClient (512) would refuse most of them.
    const fresh = await startAigate(dir, pki, ports, { name: 'memory', rateLimit: 'memory', limits: { connectionsPerClient: 0 } });
    results.S6 = await S.S6(ctx, fresh);
    await fresh.stop();
  }
  if (wants('soak')) {
    log(`soak: ${opts.soakRequests} requests through the gateway with ${opts.soakTunnels} idle tunnels open, then SIGTERM`);
    results.soak = await soak(ctx, { requests: opts.soakRequests, tunnels: opts.soakTunnels });
  }
  await stopAll();

  const sections = wants('sections') ? await runSections({ quick, log }) : [];
  const md = renderReport({ opts, machine: machine(), versions: versions(), results, sections, startedAt, durationS: (Date.now() - startedAt) / 1000 });
  process.stdout.write(`\n${md}\n`);
  if (!quick && !only && !args['no-write']) {
    writeFileSync(join(ROOT, 'BENCHMARKS.md'), `${md}\n`);
    log('wrote BENCHMARKS.md');
  }
}

try {
  await main();
} catch (err) {
  log(`bench failed: ${err.stack ?? err}`);
  process.exitCode = 1;
} finally {
  await stopAll();
  if (args.keep) log(`kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}

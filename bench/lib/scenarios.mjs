// The scenarios S1–S6 of issue 7. Each returns plain figures; report.mjs turns them into tables.
// Contenders are interleaved round by round (and the order rotated each round), so a drift of the
// machine (thermal, other tenants) lands on every contender alike.
import { spawn } from 'node:child_process';
import { ANTHROPIC, OPENAI } from './pki.mjs';
import { childPids, cpuSeconds, rssKiB, sleep } from './proc.mjs';
import { handshakeKinds, handshakeTimes, tunnelDispatchers, undiciLoad } from './forward.mjs';
import { sseRun, sseRunH2, sseAgent, streamOnce } from './sse-client.mjs';
import { pct, sorted } from './stats.mjs';
import { runWrk } from './wrk.mjs';
import { runH2load } from './h2load.mjs';

async function interleave(ctx, contenders, fn) {
  const out = Object.fromEntries(contenders.map((c) => [c.name, []]));
  for (let r = 0; r < ctx.opts.rounds; r++) {
    const order = contenders.map((_, i) => contenders[(i + r) % contenders.length]);
    for (const c of order) {
      const result = await fn(c, r);
      out[c.name].push(result);
      ctx.log(`  round ${r + 1}/${ctx.opts.rounds} ${c.name.padEnd(22)} ${describe(result)}`);
    }
  }
  return out;
}

function describe(r) {
  if (r && typeof r.rps === 'number') {
    const errs = r.errors ? Object.entries(r.errors).filter(([, v]) => v > 0) : [];
    const cpu = Number.isFinite(r.cpuUsPerRequest) ? `  cpu ${Math.round(r.cpuUsPerRequest)} µs/req` : '';
    return `${Math.round(r.rps)} req/s  p50 ${fmt(r.p50)} ms  p99 ${fmt(r.p99)} ms${cpu}${errs.length ? `  errors ${errs.map(([k, v]) => `${k}=${v}`).join(' ')}` : ''}`;
  }
  return '';
}
const fmt = (n) => (Number.isFinite(n) ? n.toFixed(2) : '-');

/** A process and its children (nginx's workers, aigate --workers' workers). */
const tree = (pid) => [pid, ...childPids(pid)];

/**
 * wrk contenders for a path under each front door. `pids` are the processes whose CPU time a
 * request through that door costs (the door itself; for the Redis limiter, redis-server too).
 */
/** Contender names of the aigate processes, and their variants' names in run.js (procs.aigate). */
const AIGATES = {
  aigate: 'full',
  'aigate (no rules)': 'norules',
  'aigate (limiter off)': 'off',
  'aigate (memory)': 'memory',
  'aigate (redis)': 'redis',
  'aigate --workers 2': 'workers2',
  'aigate + 1M-line index': 'fingerprints',
};
const nameOf = (variant) => Object.keys(AIGATES).find((name) => AIGATES[name] === variant);

function httpContenders(ctx, { direct = true, bare = false, mitmproxy = false, aigates = ['aigate'] } = {}) {
  const { ports, procs } = ctx;
  const list = [];
  if (direct) list.push({ name: 'direct', url: (p) => `https://127.0.0.1:${ports.upstream}/v1/${p}`, pids: () => [] });
  list.push({ name: 'nginx', url: (p) => `https://127.0.0.1:${ports.nginx}/openai/${p}`, pids: () => tree(procs.nginx.child.pid) });
  if (bare && procs.bare) list.push({ name: 'bare Node proxy', url: (p) => `https://127.0.0.1:${ports.bare}/openai/${p}`, pids: () => [procs.bare.child.pid] });
  // Reverse mode forwards the path as it comes: the upstream's own.
  if (mitmproxy && procs.mitmproxy) list.push({ name: 'mitmproxy', url: (p) => `https://127.0.0.1:${ports.mitmproxy}/v1/${p}`, pids: () => tree(procs.mitmproxy.child.pid) });
  for (const a of aigates) {
    const proc = procs.aigate[AIGATES[a]];
    const extra = AIGATES[a] === 'redis' && procs.redis ? [procs.redis.child.pid] : [];
    list.push({ name: a, url: (p) => `https://127.0.0.1:${proc.gatewayPort}/openai/${p}`, pids: () => [...tree(proc.pid), ...extra] });
  }
  return list;
}

function wrkScenario(ctx, contenders, { body, path = 'chat/completions', connections = 32, seconds = ctx.opts.seconds }) {
  return interleave(ctx, contenders, async (c) => {
    const pids = c.pids?.() ?? [];
    const cpu0 = cpuSeconds(pids);
    const r = await runWrk({ url: c.url(path), lua: body.lua, connections, seconds });
    const cpu = cpuSeconds(pids) - cpu0;
    return { ...r, cpuUsPerRequest: pids.length && r.requests ? (cpu * 1e6) / r.requests : NaN };
  });
}

/** Short unmeasured load on every front door: JIT, TLS session caches, upstream pools. */
export async function warmUp(ctx) {
  const all = httpContenders(ctx, { bare: true, aigates: Object.keys(ctx.procs.aigate).map(nameOf) });
  for (const c of all) {
    for (const body of [ctx.bodies.small, ctx.bodies.large]) {
      await runWrk({ url: c.url('chat/completions'), lua: body.lua, connections: 8, seconds: ctx.opts.quick ? 1 : 2 });
    }
  }
}

const withWorkers = (ctx, list) => (ctx.procs.aigate.workers2 ? [...list, 'aigate --workers 2'] : list);

export const S1 = (ctx) => wrkScenario(ctx, httpContenders(ctx, { bare: true, mitmproxy: true, aigates: withWorkers(ctx, ['aigate']) }), { body: ctx.bodies.small });

/**
 * S1 over HTTP/2 (issue 15): the same 1 KiB POST, 32 streams on 4 connections (h2load), against
 * nginx (`listen … ssl http2`), the bare proxy on node:http2 (Node's floor for HTTP/2) and
 * aigate's gateway; interleaved with nginx and aigate over HTTP/1.1 as S1 loads them (wrk, 32
 * connections), so the protocols are compared within one run's rounds.
 */
export const S1h2 = (ctx) => {
  const { ports, procs } = ctx;
  const doors = httpContenders(ctx, { direct: false }).filter((c) => c.name === 'nginx' || c.name === 'aigate');
  const contenders = [
    ...doors,
    ...(procs.bareH2 ? [{ name: 'bare Node proxy (h2)', url: (p) => `https://127.0.0.1:${ports.bareH2}/openai/${p}`, pids: () => [procs.bareH2.child.pid] }] : []),
    ...doors.map((c) => ({ ...c, name: `${c.name} over HTTP/1.1 (wrk)`, h1: true })),
  ];
  return interleave(ctx, contenders, async (c) => {
    const pids = c.pids?.() ?? [];
    const cpu0 = cpuSeconds(pids);
    const url = c.url('chat/completions');
    const r = c.h1
      ? await runWrk({ url, lua: ctx.bodies.small.lua, connections: 32, seconds: ctx.opts.seconds })
      : await runH2load({ url, bodyFile: ctx.bodies.small.file, connections: 4, streams: 8, seconds: ctx.opts.seconds });
    const cpu = cpuSeconds(pids) - cpu0;
    if (!c.h1 && r.protocol !== 'h2') throw new Error(`S1h2 ${c.name}: h2load negotiated ${r.protocol}\n${r.raw}`);
    return { ...r, cpuUsPerRequest: pids.length && r.requests ? (cpu * 1e6) / r.requests : NaN };
  });
};

export async function S2(ctx) {
  const aigates = ['aigate', 'aigate (no rules)', ...(ctx.procs.aigate.fingerprints ? ['aigate + 1M-line index'] : [])];
  const throughput = await wrkScenario(ctx, httpContenders(ctx, { bare: true, mitmproxy: true, aigates: withWorkers(ctx, aigates) }), { body: ctx.bodies.large });
  // What the scan adds to one 256 KiB request: one connection, one request at a time.
  ctx.log('  S2 latency, 1 connection:');
  const single = await wrkScenario(ctx, httpContenders(ctx, { direct: false, aigates: ['aigate', 'aigate (no rules)'] }), {
    body: ctx.bodies.large,
    connections: 1,
    seconds: Math.max(2, Math.round(ctx.opts.seconds / 2)),
  });
  return { throughput, single };
}

/** Issue 7's trap: an upstream that answers before reading a 256 KiB body, keep-alive clients. */
export function S2early(ctx) {
  return wrkScenario(ctx, httpContenders(ctx), {
    body: ctx.bodies.large,
    path: 'early/chat/completions',
    connections: 8,
    seconds: Math.max(2, Math.round(ctx.opts.seconds / 2)),
  });
}

export function S3(ctx) {
  const { ports, procs, pki } = ctx;
  const query = 'v1/messages?events=10&gap=1';
  const contenders = [
    { name: 'direct', port: ports.sse, servername: ANTHROPIC, ca: pki.vendorCaPem, path: `/${query}` },
    { name: 'nginx', port: ports.nginx, servername: 'localhost', ca: pki.proxyCaPem, path: `/anthropic/${query}` },
    { name: 'aigate', port: procs.aigate.full.gatewayPort, servername: 'localhost', ca: pki.proxyCaPem, path: `/anthropic/${query}` },
  ];
  return interleave(ctx, contenders, (c) => sseRun(c, { iterations: ctx.opts.sseIterations }));
}

/**
 * S3 over HTTP/2 (issue 15): the same SSE stream, one at a time on one h2 session. `direct` is the
 * same SSE endpoint served over h2 (ports.sseH2); nginx and aigate speak h2 to the client and
 * HTTP/1.1 to the SSE upstream, as in S3.
 */
export function S3h2(ctx) {
  const { ports, procs, pki } = ctx;
  const query = 'v1/messages?events=10&gap=1';
  const contenders = [
    { name: 'direct', port: ports.sseH2, servername: ANTHROPIC, ca: pki.vendorCaPem, path: `/${query}` },
    { name: 'nginx', port: ports.nginx, servername: 'localhost', ca: pki.proxyCaPem, path: `/anthropic/${query}` },
    { name: 'aigate', port: procs.aigate.full.gatewayPort, servername: 'localhost', ca: pki.proxyCaPem, path: `/anthropic/${query}` },
  ];
  return interleave(ctx, contenders, (c) => sseRunH2(c, { iterations: ctx.opts.sseIterations }));
}

/**
 * The limiters differ by a few per cent, less than this machine drifts over a few seconds: S4
 * interleaves three times as many rounds, each a third as long, so drift cancels out.
 */
export const S4 = (ctx) =>
  wrkScenario(
    { ...ctx, opts: { ...ctx.opts, rounds: ctx.opts.rounds * 3 } },
    httpContenders(ctx, { direct: false, aigates: ['aigate (limiter off)', 'aigate (memory)', 'aigate (redis)'] }).filter((c) => c.name !== 'nginx'),
    { body: ctx.bodies.small, seconds: Math.max(2, Math.round(ctx.opts.seconds / 3)) },
  );

export async function S5(ctx) {
  const { ports, procs, pki } = ctx;
  const a = procs.aigate.full;
  const kinds = handshakeKinds({ upstreamPort: ports.upstream, gatewayPort: a.gatewayPort, forwardPort: a.forwardPort, vendorCa: pki.vendorCaPem, proxyCa: pki.proxyCaPem, host: OPENAI });
  ctx.log(`  handshakes: ${ctx.opts.handshakes} of each kind, interleaved`);
  const handshakes = await handshakeTimes(kinds, ctx.opts.handshakes);
  const d = tunnelDispatchers({ gatewayPort: a.gatewayPort, forwardPort: a.forwardPort, proxyCa: pki.proxyCaPem, connections: 32 });
  const body = ctx.bodies.small.body;
  try {
    // Warm both (tunnels opened, leaf minted, pools full).
    for (const k of ['gateway', 'tunnel']) await undiciLoad({ ...d[k], body, seconds: 1, connections: 32 });
    const contenders = [
      { name: 'gateway (undici client)', ...d.gateway },
      { name: 'forward tunnel (undici ProxyAgent)', ...d.tunnel },
    ];
    const load = await interleave(ctx, contenders, async (c) => {
      const r = await undiciLoad({ dispatcher: c.dispatcher, url: c.url, body, seconds: ctx.opts.seconds, connections: 32 });
      const s = sorted(r.lat);
      return { rps: r.rps, p50: pct(s, 50), p99: pct(s, 99), errors: { failed: r.errors } };
    });
    return { handshakes, load };
  } finally {
    await Promise.all([d.gateway.dispatcher.close(), d.tunnel.dispatcher.close()]);
  }
}

/** Opens `count` idle SSE streams through a front door from a separate process; resolves when open. */
function holdStreams(ctx, { port, servername, caFile, path, count }) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bench/lib/sse-holder.mjs', String(port), servername, caFile, path, String(count)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('S6: streams did not open within 90 s'));
    }, 90_000);
    child.stdout.once('data', (d) => {
      clearTimeout(timer);
      const m = /open (\d+) failed (\d+)/.exec(d.toString());
      resolve({
        open: Number(m?.[1] ?? 0),
        failed: Number(m?.[2] ?? count),
        stop: () =>
          new Promise((r) => {
            child.once('exit', r);
            child.kill('SIGTERM');
          }),
      });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`S6 holder exited (${code}) before the streams were open`));
    });
  });
}

async function settledRss(pids) {
  const samples = [];
  for (let i = 0; i < 5; i++) {
    await sleep(500);
    samples.push(pids.reduce((sum, pid) => sum + rssKiB(pid), 0));
  }
  samples.sort((x, y) => x - y);
  return samples[2];
}

/** RSS over baseline with N idle SSE streams; aigate in a fresh process, nginx's worker for reference. */
export async function S6(ctx, freshAigate) {
  const { pki, ports } = ctx;
  const count = ctx.opts.streams;
  const path = (prefix) => `${prefix}/v1/messages?hold=1`;
  const fronts = [
    { name: 'aigate', port: freshAigate.gatewayPort, pids: () => [freshAigate.pid], prefix: '/anthropic' },
    { name: 'nginx (worker)', port: ports.nginx, pids: () => childPids(ctx.procs.nginx.child.pid), prefix: '/anthropic' },
  ];
  const out = {};
  for (const f of fronts) {
    // Warm-up: a few streams opened and finished, so lazily built parts exist in the baseline.
    const c = { name: f.name, port: f.port, servername: 'localhost', ca: pki.proxyCaPem, path: `${f.prefix}/v1/messages?events=3&gap=1` };
    const agent = sseAgent(c);
    for (let i = 0; i < 50; i++) await streamOnce(c, agent);
    agent.destroy();
    await sleep(1000);
    const base = await settledRss(f.pids());
    const held = await holdStreams(ctx, { port: f.port, servername: 'localhost', caFile: pki.files.proxyCa, path: path(f.prefix), count });
    await sleep(1000);
    const loaded = await settledRss(f.pids());
    await held.stop();
    out[f.name] = { streams: held.open, failed: held.failed, baseKiB: base, loadedKiB: loaded, perStreamKiB: (loaded - base) / Math.max(1, held.open) };
    ctx.log(`  ${f.name}: ${held.open} streams open (${held.failed} failed), RSS ${base} → ${loaded} KiB, ${out[f.name].perStreamKiB.toFixed(1)} KiB/stream`);
    await sleep(1000);
  }
  return out;
}

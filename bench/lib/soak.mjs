// Soak (issue #19): a long run through one fresh aigate with SOAK_TUNNELS idle intercepted tunnels
// held open through forward mode the whole time, then SIGTERM. It shows (1) whether RSS stays flat
// after warm-up, and (2) that the audit log has exactly one line per request and per tunnel —
// every request counted by a fixed-count client, every tunnel closed and audited by the drain.
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { startAigate } from './aigate.mjs';
import { OPENAI } from './pki.mjs';
import { rssKiB } from './proc.mjs';

/** Runs a child that prints lines; `onLine` sees each; resolves with the exit code. */
function runChild(args, onLine) {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const rl = createInterface({ input: child.stdout });
  rl.on('line', onLine);
  const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited };
}

function holdTunnels(forwardPort, caFile, count) {
  let onOpen;
  const opened = new Promise((resolve) => (onOpen = resolve));
  let closedCount;
  const holder = runChild(['bench/lib/tunnel-holder.mjs', String(forwardPort), OPENAI, caFile, String(count)], (line) => {
    const open = /^open (\d+) failed (\d+)/.exec(line);
    if (open) onOpen({ open: Number(open[1]), failed: Number(open[2]) });
    const closed = /^closed (\d+)/.exec(line);
    if (closed) closedCount = Number(closed[1]);
  });
  void holder.exited.then(() => onOpen({ open: 0, failed: count }));
  return { opened, exited: holder.exited.then(() => closedCount), kill: () => holder.child.kill('SIGKILL') };
}

/** Counts the audit file's flow lines by kind; the hash chain's own lines (checkpoint, chain-end) apart. */
async function countAudit(file) {
  const counts = { lines: 0, request200: 0, requestOther: 0, connect200: 0, connectOther: 0, other: 0, chain: 0, ids: new Set() };
  const rl = createInterface({ input: createReadStream(file) });
  for await (const line of rl) {
    if (!line) continue;
    const r = JSON.parse(line);
    if (r.event === 'checkpoint' || r.event === 'chain-end') {
      counts.chain++;
      continue;
    }
    counts.lines++;
    counts.ids.add(r.id);
    if (r.event === 'request') counts[r.status === 200 && !r.aborted ? 'request200' : 'requestOther']++;
    else if (r.event === 'connect') counts[r.status === 200 ? 'connect200' : 'connectOther']++;
    else counts.other++;
  }
  counts.uniqueIds = counts.ids.size;
  delete counts.ids;
  return counts;
}

export async function soak(ctx, { requests, tunnels, connections = 32 }) {
  const { dir, pki, ports, bodies, log } = ctx;
  const a = await startAigate(dir, pki, ports, {
    name: 'soak',
    rateLimit: 'memory',
    forward: true,
    // Every client here is 127.0.0.1: the per-client cap would refuse most of the tunnels.
    limits: { connectionsPerClient: 0 },
    // Tunnels must stay through the whole run (timeouts.idle would close them, audited, earlier).
    timeouts: { idle: '1h', drain: '5s' },
  });
  let stderr = '';
  a.child.stderr.on('data', (d) => (stderr += d));
  const holder = holdTunnels(a.forwardPort, pki.files.proxyCa, tunnels);
  const held = await holder.opened;
  log(`  soak: ${held.open} idle tunnels open (${held.failed} failed), sending ${requests} requests on ${connections} connections`);

  const samples = [];
  let done = 0;
  const t0 = Date.now();
  const sample = () => samples.push({ t: (Date.now() - t0) / 1000, done, rssKiB: rssKiB(a.pid) });
  sample();
  const sampler = setInterval(sample, 1000);
  let summary = '';
  const load = runChild(
    ['bench/lib/soak-load.mjs', String(a.gatewayPort), pki.files.proxyCa, '/openai/chat/completions', bodies.small.file, String(requests), String(connections)],
    (line) => {
      const m = /^progress (\d+)/.exec(line);
      if (m) {
        done = Number(m[1]);
        if (done % 50_000 === 0) log(`    ${done} requests, RSS ${Math.round(rssKiB(a.pid) / 1024)} MiB`);
      }
      if (line.startsWith('done ')) summary = line;
    },
  );
  await load.exited;
  const loadS = (Date.now() - t0) / 1000;
  clearInterval(sampler);
  sample();
  const m = /^done (\d+) failed (\d+) statuses (.*)$/.exec(summary);
  const sent = Number(m?.[1] ?? 0);
  const failed = Number(m?.[2] ?? sent);

  const stopAt = Date.now();
  const { code, signal } = await a.stop();
  const exitMs = Date.now() - stopAt;
  // aigate's own account of the stop: drain start, 'aigate stopped', and whether the backstop
  // (a handle still open after the drain) had to end the process.
  const stopLog = Object.fromEntries(
    stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => {
        try {
          return JSON.parse(l);
        } catch {
          return {};
        }
      })
      .filter((l) => /^(draining|aigate stopped|still running)/.test(l.msg ?? ''))
      .map((l) => [l.msg.split(':')[0].split(' ').slice(0, 2).join(' '), l]),
  );
  const drainMs = stopLog['draining'] && stopLog['aigate stopped'] ? Date.parse(stopLog['aigate stopped'].time) - Date.parse(stopLog['draining'].time) : null;
  const backstop = stopLog['still running'] ? stopLog['still running'].resources : null;
  const closedTunnels = await Promise.race([holder.exited, new Promise((r) => setTimeout(() => r(undefined), 10_000))]);
  holder.kill();
  const audit = await countAudit(join(dir, 'audit-soak.log'));

  // Warm-up: the first 10% of the requests (JIT, pools, caches, the tunnels' TLS state settled).
  // RSS saws with V8's collections (tens of MiB on this load), so one sample says little: the
  // comparison is the median over the next 10% of the requests against the median over the last
  // 10%, and the trend is the least-squares slope over everything after warm-up.
  const warm = samples.find((s) => s.done >= requests * 0.1) ?? samples[0];
  const after = samples.filter((s) => s.t >= warm.t);
  const end = samples[samples.length - 1];
  const median = (xs) => {
    const v = xs.map((s) => s.rssKiB).sort((x, y) => x - y);
    return v.length ? v[Math.floor(v.length / 2)] : NaN;
  };
  const warmWindow = median(samples.filter((s) => s.done >= requests * 0.1 && s.done <= requests * 0.2));
  const endWindow = median(samples.filter((s) => s.done >= requests * 0.9));
  const slope = (() => {
    const n = after.length;
    if (n < 2) return NaN;
    const mx = after.reduce((x, s) => x + s.done, 0) / n;
    const my = after.reduce((x, s) => x + s.rssKiB, 0) / n;
    const sxy = after.reduce((x, s) => x + (s.done - mx) * (s.rssKiB - my), 0);
    const sxx = after.reduce((x, s) => x + (s.done - mx) ** 2, 0);
    return sxx ? (sxy / sxx) * 100_000 : NaN; // KiB per 100k requests
  })();
  const result = {
    requests: sent,
    failed,
    statuses: m ? JSON.parse(m[3]) : {},
    tunnels: held.open,
    tunnelsFailed: held.failed,
    closedTunnels: closedTunnels ?? null,
    loadS,
    rps: sent / loadS,
    rss: {
      startKiB: samples[0].rssKiB,
      warmKiB: warm.rssKiB,
      warmAtRequests: warm.done,
      endKiB: end.rssKiB,
      maxAfterWarmKiB: Math.max(...after.map((s) => s.rssKiB)),
      minAfterWarmKiB: Math.min(...after.map((s) => s.rssKiB)),
      warmWindowKiB: warmWindow,
      endWindowKiB: endWindow,
      slopeKiBPer100k: slope,
    },
    samples: samples.map((s) => [Math.round(s.t), s.done, s.rssKiB]),
    exit: { code, signal, ms: exitMs, drainMs, backstop },
    audit,
  };
  log(
    `  soak: ${sent} requests in ${loadS.toFixed(0)} s (${Math.round(result.rps)} req/s, ${failed} failed); RSS ${mib(result.rss.startKiB)} at start, median ${mib(warmWindow)} after warm-up → ${mib(endWindow)} MiB over the last 10% (max ${mib(result.rss.maxAfterWarmKiB)}, trend ${(slope / 1024).toFixed(1)} MiB per 100k requests); ` +
      `SIGTERM → exit ${code ?? signal} in ${exitMs} ms (drain ${drainMs} ms${backstop ? `, backstop: ${backstop.join(',')}` : ''}); audit ${audit.lines} lines = ${audit.request200} requests + ${audit.connect200} tunnels (+${audit.requestOther + audit.connectOther + audit.other} other; ${audit.chain} hash-chain lines)`,
  );
  return result;
}

const mib = (kib) => (kib / 1024).toFixed(0);

// Turns the figures of a run into the Markdown that is printed and written to BENCHMARKS.md.
import { median, pct, sorted, summary } from './stats.mjs';

const n0 = (v) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '–');
const n2 = (v) => (Number.isFinite(v) ? v.toFixed(2) : '–');
const x2 = (v) => (Number.isFinite(v) ? `${v.toFixed(2)}×` : '–');
const spread = (s, f) => `${f(s.median)} (${f(s.min)}–${f(s.max)})`;

function table(head, rows) {
  return [`| ${head.join(' | ')} |`, `| ${head.map((h, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** Median over rounds of (value / reference value in the same round). */
function roundRatio(runs, refRuns, key = 'rps') {
  if (!runs || !refRuns) return NaN;
  return median(runs.map((r, i) => r[key] / refRuns[i]?.[key]));
}

function errorsOf(runs) {
  const total = {};
  for (const r of runs) for (const [k, v] of Object.entries(r.errors ?? {})) if (v > 0) total[k] = (total[k] ?? 0) + v;
  const parts = Object.entries(total).map(([k, v]) => `${k} ${v}`);
  return parts.length ? parts.join(', ') : '0';
}

/** A wrk-style table: req/s, p50, p99 with spread, ratios to `ref` and `base` where present. */
export function loadTable(results, { ref = 'nginx', base = 'direct', baseLabel = '× direct', refLabel = '× nginx' } = {}) {
  const hasRef = Boolean(results[ref]);
  const hasBase = Boolean(results[base]);
  const rows = Object.entries(results).map(([name, runs]) => {
    const rps = summary(runs.map((r) => r.rps));
    const p50 = summary(runs.map((r) => r.p50));
    const p99 = summary(runs.map((r) => r.p99));
    const cpu = median(runs.map((r) => r.cpuUsPerRequest));
    return [
      name,
      spread(rps, n0),
      n2(p50.median),
      spread(p99, n2),
      ...(hasRef ? [x2(roundRatio(runs, results[ref]))] : []),
      ...(hasBase ? [x2(roundRatio(runs, results[base]))] : []),
      n0(cpu),
      errorsOf(runs),
    ];
  });
  return table(['contender', 'req/s median (min–max)', 'p50 ms', 'p99 ms median (min–max)', ...(hasRef ? [refLabel] : []), ...(hasBase ? [baseLabel] : []), 'CPU µs/req', 'errors'], rows);
}

const signed = (v, digits = 2) => (Number.isFinite(v) ? `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(digits)}` : '–');

function sseTable(results) {
  const d = results['direct'];
  const all = (runs, k) => runs.flatMap((r) => r[k]);
  const rows = Object.entries(results).map(([name, runs]) => {
    const first = sorted(all(runs, 'first'));
    const total = sorted(all(runs, 'total'));
    const roundFirst = summary(runs.map((r) => median(r.first)));
    const addFirst = d ? median(runs.map((r, i) => median(r.first) - median(d[i].first))) : NaN;
    const addTotal = d ? median(runs.map((r, i) => median(r.total) - median(d[i].total))) : NaN;
    return [name, spread(roundFirst, n2), n2(pct(first, 99)), name === 'direct' ? '–' : signed(addFirst), n2(pct(total, 50)), n2(pct(total, 99)), name === 'direct' ? '–' : signed(addTotal), String(first.length)];
  });
  return table(['path', 'first event p50 ms (round min–max)', 'first event p99 ms', 'first event vs direct ms', 'stream total p50 ms', 'total p99 ms', 'total vs direct ms', 'streams'], rows);
}

function handshakeTable(h) {
  const direct = sorted(h['direct TLS to upstream']);
  const rows = Object.entries(h).map(([name, v]) => {
    const s = sorted(v);
    return [name, n2(pct(s, 50)), n2(pct(s, 99)), x2(pct(s, 50) / pct(direct, 50)), String(s.length)];
  });
  return table(['connection set-up', 'p50 ms', 'p99 ms', '× direct (p50)', 'n'], rows);
}

function memoryTable(m) {
  const rows = Object.entries(m).map(([name, r]) => [name, String(r.streams) + (r.failed ? ` (${r.failed} failed)` : ''), n0(r.baseKiB / 1024), n0(r.loadedKiB / 1024), n2(r.perStreamKiB)]);
  return table(['front door', 'idle SSE streams', 'RSS baseline MiB', 'RSS with streams MiB', 'KiB per stream'], rows);
}

/** Targets of issue 7, judged on this run's figures. */
export function targets(r) {
  const out = [];
  const add = (name, value, ok, detail) => out.push({ name, value, ok, detail });
  if (r.S1) {
    const ratio = roundRatio(r.S1['aigate'], r.S1['nginx']);
    add('S1 ≥ 0.5× nginx req/s (one process vs one worker)', x2(ratio), ratio >= 0.5);
    const p99 = roundRatio(r.S1['aigate'], r.S1['nginx'], 'p99');
    add('S1 p99 within 2× nginx', x2(p99), p99 <= 2);
    if (r.S1['mitmproxy']) {
      const m = roundRatio(r.S1['aigate'], r.S1['mitmproxy']);
      add('S1 ≥ 10× mitmproxy req/s (issue 20)', x2(m), m >= 10);
    }
  }
  if (r.S1h2) {
    const t = r.S1h2;
    const h1 = t['aigate over HTTP/1.1 (wrk)'];
    const nginxH1 = t['nginx over HTTP/1.1 (wrk)'];
    if (h1 && nginxH1) {
      const own = roundRatio(t['aigate'], h1);
      add('S1h2 ≥ aigate\'s own HTTP/1.1 S1 req/s (issue 15)', `${x2(own)}`, own >= 1);
      const h2Nginx = roundRatio(t['aigate'], t['nginx']);
      const h1Nginx = roundRatio(h1, nginxH1);
      add('S1h2 × nginx h2 no worse than S1 × nginx (issue 15)', `${x2(h2Nginx)} vs ${x2(h1Nginx)}`, h2Nginx >= h1Nginx);
    }
  }
  if (r.S2) {
    const t = r.S2.throughput;
    const ratio = roundRatio(t['aigate'], t['nginx']);
    add('S2 ≥ 0.5× nginx req/s (256 KiB, inspected)', x2(ratio), ratio >= 0.5);
    if (t['aigate (no rules)']) {
      const rules = roundRatio(t['aigate'], t['aigate (no rules)']);
      add('S2 all rules ≥ 0.8× no rules (issue 20)', x2(rules), rules >= 0.8);
    }
    if (t['mitmproxy']) {
      const m = roundRatio(t['aigate'], t['mitmproxy']);
      add('S2 ≥ 2× mitmproxy req/s (issue 20)', x2(m), m >= 2);
    }
  }
  if (r.S2early) {
    const a = r.S2early['aigate'];
    const stalled = a.some((x) => x.requests === 0 || x.errors.timeout > 0);
    add('Trap: no stall on early answers with keep-alive', stalled ? 'stalled' : `${n0(median(a.map((x) => x.rps)))} req/s, 0 timeouts`, !stalled);
  }
  if (r.S3) {
    const d = r.S3['direct'];
    const add1 = median(r.S3['aigate'].map((x, i) => median(x.first) - median(d[i].first)));
    add('S3 first event ≤ 2 ms later than direct', `${signed(add1)} ms`, add1 <= 2);
  }
  if (r.S3h2) {
    const d = r.S3h2['direct'];
    const add1 = median(r.S3h2['aigate'].map((x, i) => median(x.first) - median(d[i].first)));
    add('S3h2 first event over HTTP/2 ≤ 2 ms later than direct (issue 15)', `${signed(add1)} ms`, add1 <= 2);
  }
  if (r.S4) {
    const cost = 1 - roundRatio(r.S4['aigate (redis)'], r.S4['aigate (limiter off)']);
    add('S4 Redis limiter costs < 10% of S1 req/s', `${(cost * 100).toFixed(1)}%`, cost < 0.1);
  }
  if (r.S6) {
    const k = r.S6['aigate'].perStreamKiB;
    add('S6 < 100 KiB per idle stream', `${n2(k)} KiB`, k < 100);
  }
  if (r.soak) {
    const k = r.soak.rss;
    const growth = (k.endWindowKiB - k.warmWindowKiB) / k.warmWindowKiB;
    add('Soak: RSS flat after warm-up (median of the last 10% of requests within 10% of the 10% after warm-up)', `${n0(k.warmWindowKiB / 1024)} → ${n0(k.endWindowKiB / 1024)} MiB (${signed(growth * 100)}%)`, growth <= 0.1);
    const a = r.soak.audit;
    const exact = a.request200 === r.soak.requests && a.connect200 === r.soak.tunnels && a.lines === r.soak.requests + r.soak.tunnels && a.uniqueIds === a.lines;
    add('Soak: exactly one audit line per request and tunnel', `${a.lines} lines for ${r.soak.requests} + ${r.soak.tunnels}`, exact);
    add('Soak: SIGTERM exits 0 within drain + 1 s', `exit ${r.soak.exit.code ?? r.soak.exit.signal} in ${n0(r.soak.exit.ms)} ms`, r.soak.exit.code === 0 && r.soak.exit.ms <= 6000);
  }
  return out;
}

/** The soak's figures: load, RSS over time, the drain, the audit count. */
function soakSection(s) {
  const mib = (kib) => n0(kib / 1024);
  const rows = [
    ['requests (fixed count, 32 keep-alive connections)', `${s.requests} (${s.failed} failed; statuses ${JSON.stringify(s.statuses)})`],
    ['idle intercepted tunnels held open throughout', `${s.tunnels} (${s.tunnelsFailed} failed to open)`],
    ['load duration', `${n0(s.loadS)} s (${n0(s.rps)} req/s)`],
    ['RSS at start (tunnels open)', `${mib(s.rss.startKiB)} MiB`],
    [`RSS after warm-up (${s.rss.warmAtRequests} requests)`, `${mib(s.rss.warmKiB)} MiB`],
    ['RSS at the end of the load', `${mib(s.rss.endKiB)} MiB`],
    ['RSS min / max after warm-up', `${mib(s.rss.minAfterWarmKiB)} / ${mib(s.rss.maxAfterWarmKiB)} MiB`],
    ['RSS median, 10–20% of the requests / last 10%', `${mib(s.rss.warmWindowKiB)} / ${mib(s.rss.endWindowKiB)} MiB`],
    ['RSS trend after warm-up (least squares)', `${(s.rss.slopeKiBPer100k / 1024).toFixed(1)} MiB per 100k requests`],
    ['SIGTERM → exit', `exit ${s.exit.code ?? s.exit.signal} in ${n0(s.exit.ms)} ms (drain ${n0(s.exit.drainMs)} ms by aigate's log; timeouts.drain 5 s${s.exit.backstop ? `; backstop fired: ${s.exit.backstop.join(', ')}` : ''})`],
    ['tunnels the client saw closed by the drain', String(s.closedTunnels ?? 'unknown')],
    ['audit lines', `${s.audit.lines}: ${s.audit.request200} requests (200), ${s.audit.connect200} tunnels (connect 200), ${s.audit.requestOther + s.audit.connectOther + s.audit.other} other; ${s.audit.uniqueIds} distinct ids`],
  ];
  const step = Math.max(1, Math.ceil(s.samples.length / 12));
  const curve = s.samples.filter((_, i) => i % step === 0 || i === s.samples.length - 1).map(([t, done, kib]) => `${t} s: ${done} req, ${mib(kib)} MiB`);
  return `${table(['', 'this run'], rows)}\n\nRSS over time (sampled every second; every ${step}th shown): ${curve.join(' · ')}`;
}

export function renderReport({ opts, machine, versions, results: r, sections, startedAt, durationS }) {
  const md = [];
  md.push('# aigate benchmarks');
  md.push('');
  md.push(
    `Produced by \`npm run bench\` (${opts.quick ? '**--quick smoke run**, not representative' : `${opts.rounds} rounds, ${opts.seconds} s per load`}) on ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC in ${Math.round(durationS)} s. ` +
      'Install the tools once with `bash bench/setup.sh`. Everything runs on 127.0.0.1: an nginx fake upstream (TLS + SNI, answers after reading the body), ' +
      'a Node SSE upstream, nginx as the guide\'s reverse proxy (1 worker) and aigate (1 process) with inspection, rate limiting (memory store unless stated) and the audit log on. ' +
      'Contenders are interleaved round by round; figures are medians over rounds with the spread (min–max), ratios are medians of the per-round ratios. ' +
      'The load generator shares the 2 cores with the servers, so only the ratios within one run mean anything.',
  );
  md.push('');
  md.push(`**Machine:** ${machine.nproc} CPUs (${machine.cpuModel}), ${machine.memoryGiB} GiB RAM, Linux ${machine.kernel}  `);
  md.push(`**Versions:** aigate ${versions.aigate}, node ${versions.node} (OpenSSL ${versions.openssl}), nginx ${versions.nginx}, wrk ${versions.wrk}, redis ${versions.redis}${versions.mitmproxy ? `, mitmproxy ${versions.mitmproxy}` : ''}`);
  md.push('');
  const t = targets(r);
  if (t.length) {
    md.push('## Targets (issue 7)');
    md.push('');
    md.push(table(['target', 'this run', 'met'], t.map((x) => [x.name, x.value, x.ok ? 'yes' : '**no**'])));
    md.push('');
  }
  if (r.S1h2) {
    md.push('## S1 over HTTP/2 — 1 KiB JSON POST, 32 streams on 4 connections (h2load)');
    md.push('');
    md.push('h2load reports mean request time (shown as p50), no percentiles. The `over HTTP/1.1 (wrk)` rows are S1\'s load, interleaved with the HTTP/2 runs: the targets compare the protocols round by round.');
    md.push('');
    md.push(loadTable(r.S1h2));
    md.push('');
    if (r.S1h2['bare Node proxy (h2)']) {
      md.push('`bare Node proxy (h2)` is S1\'s bare proxy on node:http2 (the same handler through its compatibility API): the floor for HTTP/2 in Node, as `bare Node proxy` is for HTTP/1.1.');
      md.push('');
    }
  }
  if (r.S1) {
    md.push('## S1 — small chat request (1 KiB JSON POST, 32 connections, wrk)');
    md.push('');
    md.push(loadTable(r.S1));
    md.push('');
    if (r.S1['bare Node proxy']) {
      md.push('`bare Node proxy` (bench/lib/bare-proxy.mjs) is the floor for any Node proxy on this path: TLS in, body read, one undici dispatch, response streamed back — no routing, inspection, limiter, audit or metrics.');
      md.push('');
    }
    if (r.S1['mitmproxy']) {
      md.push('`mitmproxy` (bench/lib/mitmproxy.mjs) is Debian\'s mitmdump in reverse mode before the same upstream, TLS both ways with the same front certificate, no addons: a TLS-inspecting proxy that inspects nothing by itself.');
      md.push('');
    }
    if (r.S1['aigate --workers 2']) {
      md.push('`aigate --workers 2` is multi-process mode (node:cluster, memory limiter per worker) for reference: the targets compare one process with one nginx worker, and on 2 cores its workers share the CPUs with wrk and the upstream.');
      md.push('');
    }
  }
  if (r.S2) {
    md.push('## S2 — large request (256 KiB JSON of escaped source code, 32 connections)');
    md.push('');
    md.push(loadTable(r.S2.throughput));
    md.push('');
    if (r.S2.throughput['aigate + 1M-line index']) {
      md.push('`aigate + 1M-line index` is `aigate` with `inspect.fingerprints` loaded: an index of ~1 million lines of code that is not in the body (bench/lib/fingerprint-index.mjs). Like a conversation an agent resends every turn, the body is the same each time: its lookups are remembered (src/inspect/lookup-memo.ts); `node bench/fingerprint-inspect.mjs` measures a body never seen before.');
      md.push('');
    }
    const on = r.S2.single['aigate'];
    const off = r.S2.single['aigate (no rules)'];
    md.push('One connection, one request at a time — the latency the scan adds to a 256 KiB request (aigate with all rules vs aigate with `rules.builtin: none`):');
    md.push('');
    md.push(loadTable(r.S2.single, { ref: 'nginx', base: 'aigate (no rules)', baseLabel: '× no rules' }));
    md.push('');
    if (on && off) {
      md.push(`Scan adds p50 **${signed(median(on.map((x, i) => x.p50 - off[i].p50)))} ms**, p99 **${signed(median(on.map((x, i) => x.p99 - off[i].p99)))} ms** per 256 KiB request (medians of per-round differences).`);
      md.push('');
    }
  }
  if (r.S2early) {
    md.push('## S2 trap — upstream answers before reading the 256 KiB body (nginx `return 200`), keep-alive clients');
    md.push('');
    md.push(loadTable(r.S2early));
    md.push('');
    md.push('A stall would show as ~0 req/s and wrk timeouts; `test/e2e/early-response.test.ts` pins the behaviour.');
    md.push('');
  }
  if (r.S3) {
    md.push('## S3 — SSE streaming (11 events 1 ms apart, one stream at a time over keep-alive)');
    md.push('');
    md.push(sseTable(r.S3));
    md.push('');
  }
  if (r.S3h2) {
    md.push('## S3 over HTTP/2 — SSE streaming, one stream at a time on one h2 session');
    md.push('');
    md.push('`direct` is the same SSE endpoint served over h2; nginx and aigate speak h2 to the client and HTTP/1.1 to the SSE upstream.');
    md.push('');
    md.push(sseTable(r.S3h2));
    md.push('');
  }
  if (r.S4) {
    md.push('## S4 — rate limiter on S1 load (one process each)');
    md.push('');
    md.push(loadTable(r.S4, { ref: 'aigate (limiter off)', refLabel: '× limiter off' }));
    md.push('');
    const cpu = (name) => median((r.S4[name] ?? []).map((x) => x.cpuUsPerRequest));
    const off = cpu('aigate (limiter off)');
    const extra = (name) => `${signed(cpu(name) - off, 0)} µs (${signed(((cpu(name) - off) / off) * 100)}%)`;
    md.push(
      `CPU per request, which a shared 2-core machine disturbs far less than req/s: the memory limiter adds ${extra('aigate (memory)')}, ` +
        `the Redis limiter ${extra('aigate (redis)')} counting redis-server's CPU with aigate's.`,
    );
    md.push('');
  }
  if (r.S5) {
    md.push('## S5 — forward mode');
    md.push('');
    md.push('Connection set-up, sequential, new TCP connection and full TLS handshake each time (leaf from the minter\'s cache):');
    md.push('');
    md.push(handshakeTable(r.S5.handshakes));
    md.push('');
    md.push('Small requests (1 KiB) on 32 keep-alive connections, same Node client (undici) for both:');
    md.push('');
    md.push(loadTable(r.S5.load, { ref: 'gateway (undici client)', refLabel: '× gateway' }));
    md.push('');
  }
  if (r.S6) {
    md.push(`## S6 — memory with ${opts.streams} idle open SSE streams`);
    md.push('');
    md.push(memoryTable(r.S6));
    md.push('');
    md.push('aigate in a fresh process; each stream is its own client TLS connection and its own upstream TLS connection.');
    md.push('');
  }
  if (r.soak) {
    md.push('## Soak — fixed-count load with idle tunnels open, then SIGTERM');
    md.push('');
    md.push(soakSection(r.soak));
    md.push('');
    md.push('A fresh aigate (inspection, memory limiter, audit log on); the 1 KiB chat request through the gateway by a fixed-count undici client (bench/lib/soak-load.mjs), the tunnels CONNECT + TLS through the forward listener from another process (bench/lib/tunnel-holder.mjs). The audit file is counted line by line after the process exited.');
    md.push('');
  }
  for (const s of sections) {
    md.push(`## ${s.title}`);
    md.push('');
    md.push(`\`${s.command}\`${s.note ? ` — ${s.note}` : ''}`);
    md.push('');
    md.push('```');
    md.push(s.output.trimEnd());
    md.push('```');
    md.push('');
  }
  return md.join('\n');
}

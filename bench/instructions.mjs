#!/usr/bin/env node
// Instructions per request, counted by valgrind (callgrind): a repeatable yardstick for the
// per-request work on a host whose speed drifts ±20% between runs (bench/ab.mjs needs many rounds
// to see 5%; this sees 1–2%). Each contender runs under callgrind with instrumentation off; after a
// warm-up (so the JIT has settled) it is switched on for --requests requests, made by a local
// undici client over --connections keep-alive connections, then off again. Counts are per thread:
// the event loop (JavaScript, TLS, HTTP parsing) apart from the rest (background JIT, GC helpers,
// scan threads). Instructions are not time — cache misses, system calls and wake-ups cost time
// without many instructions — so this ranks changes to the work done, and bench/ab.mjs says what
// they are worth in req/s.
//
// --top N also prints the N functions with the most instructions of their own on the event loop,
// JavaScript included (node --perf-basic-prof names the JIT code callgrind only knows by address).
//
// --bearer sends `Authorization: Bearer bench-not-a-secret` with each request, as S1's wrk does
// (aigate then fingerprints the vendor key: stages/credential.ts).
//
// --variant fingerprints is `inline` with a 1M-line protected-code index loaded that the S2 body is
// not in (bench/lib/fingerprint-index.mjs; issue #16): what the lookups add to a request.
//
// --h2 makes the requests over HTTP/2 instead: node:http2 client sessions (--connections of them)
// with --streams streams in flight on each, as S1h2's h2load does; the bare proxy then runs on
// node:http2 (--bare-mode h2: compatibility API, h2stream: stream API).
//
//   npm run build && node bench/instructions.mjs [--body small|large] [--requests 1000]
//        [--variant full]... [--cli OTHER/dist/cli.js]... [--bare] [--top 40] [--bearer] [--h2 [--streams 8] [--bare-mode h2|h2stream]]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connect as h2connect } from 'node:http2';
import { Agent, request } from 'undici';
import { FINGERPRINT_INDEX, VARIANTS, aigateConfig } from './lib/aigate.mjs';
import { buildIndex, MISS_ROOTS } from './lib/fingerprint-index.mjs';
import { writeBodies } from './lib/bodies.mjs';
import { requireTools } from './lib/env.mjs';
import { startNginx, upstreamConfig } from './lib/nginx.mjs';
import { OPENAI, makePki } from './lib/pki.mjs';
import { startSyslogReceiver } from './lib/syslog.mjs';
import { freePort, startChild, stopAll, which } from './lib/proc.mjs';

const { values: args } = parseArgs({
  options: {
    body: { type: 'string', default: 'small' },
    requests: { type: 'string', default: '1000' },
    warmup: { type: 'string', default: '5000' },
    connections: { type: 'string', default: '4' },
    variant: { type: 'string', multiple: true },
    cli: { type: 'string', multiple: true },
    bare: { type: 'boolean', default: false },
    top: { type: 'string', default: '0' },
    h2: { type: 'boolean', default: false },
    streams: { type: 'string', default: '8' },
    'bare-mode': { type: 'string', default: 'h2' },
    bearer: { type: 'boolean', default: false },
  },
});
const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
process.chdir(ROOT);
requireTools();
for (const tool of ['valgrind', 'callgrind_control', 'callgrind_annotate']) {
  if (!which(tool)) throw new Error(`${tool} not found (apt-get install valgrind)`);
}

// Contenders: each --variant of this build, the `full` variant of each --cli build, the bare proxy.
const contenders = [
  ...(args.variant ?? (args.cli || args.bare ? [] : ['full'])).map((v) => ({ label: v, variant: v, cli: 'dist/cli.js' })),
  ...(args.cli ?? []).map((cli) => ({ label: cli, variant: 'full', cli })),
  ...(args.bare ? [{ label: args.h2 ? `bare Node proxy (${args['bare-mode']})` : 'bare Node proxy', bare: true }] : []),
];
const top = Number(args.top);
const authorization = args.bearer ? { authorization: 'Bearer bench-not-a-secret' } : {};
const dir = mkdtempSync(join(tmpdir(), 'aigate-instr-'));
try {
  const pki = makePki(dir);
  const body = readFileSync(writeBodies(dir, ROOT)[args.body].file);
  const ports = { upstream: await freePort(), sse: await freePort() };
  if (contenders.some((c) => VARIANTS[c.variant]?.syslog)) ports.syslog = (await startSyslogReceiver()).port;
  if (contenders.some((c) => VARIANTS[c.variant]?.fingerprints)) await buildIndex(join(dir, FINGERPRINT_INDEX), 'bench', MISS_ROOTS, 1_000_000);
  await startNginx(dir, 'upstream', upstreamConfig(dir, pki, ports.upstream), ports.upstream);
  const shape = args.h2 ? `HTTP/2 connections × ${args.streams} streams` : 'connections';
  console.log(`${args.body} body${args.bearer ? ' with a Bearer key' : ''}, ${args.requests} requests over ${args.connections} ${shape} after ${args.warmup} to warm up`);
  for (const c of contenders) {
    const r = await measure(c, pki, ports, body);
    const fmt = (x) => Math.round(x).toLocaleString('en-US').padStart(10);
    console.log(`${c.label.padEnd(28)} ${fmt(r.main)} instructions/request on the event loop, ${fmt(r.other)} on other threads`);
    if (top > 0) console.log(`${r.top}\n`);
  }
} finally {
  await stopAll();
  // AIGATE_BENCH_KEEP=1 keeps the callgrind files (callgrind_annotate --tree=caller FILE).
  if (process.env.AIGATE_BENCH_KEEP) console.log(`kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}

/** The command line of a contender listening on `port`. */
function commandLine(c, pki, ports, port) {
  if (c.bare) {
    const mode = args.h2 ? args['bare-mode'] : 'h1';
    return ['bench/lib/bare-proxy.mjs', String(port), pki.files.frontCert, pki.files.frontKey, String(ports.upstream), pki.files.vendorCa, OPENAI, mode];
  }
  const variant = VARIANTS[c.variant];
  if (!variant) throw new Error(`unknown variant ${c.variant}; one of ${Object.keys(VARIANTS).join(', ')}`);
  const config = join(dir, `${slug(c.label)}.yaml`);
  const cfg = aigateConfig(dir, pki, ports, { name: slug(c.label), ...variant });
  cfg.listen.gateway.port = port;
  writeFileSync(config, JSON.stringify(cfg));
  return [...(variant.nodeArgs ?? []), c.cli, 'start', '--config', config];
}

function slug(label) {
  return label.replace(/[^a-z0-9]+/gi, '-');
}

async function measure(c, pki, ports, body) {
  const port = await freePort();
  const out = join(dir, `${slug(c.label)}.callgrind`);
  const entry = startChild(
    'valgrind',
    [
      '--tool=callgrind',
      '--smc-check=all', // the JIT writes code: valgrind must see it change
      '--instr-atstart=no',
      '--separate-threads=yes',
      `--callgrind-out-file=${out}`,
      process.execPath,
      // The perf map names JIT code; V8's own log that comes with it goes to the temp dir.
      ...(top > 0 ? ['--perf-basic-prof', '--no-logfile-per-isolate', `--logfile=${join(dir, 'v8.log')}`] : []),
      ...commandLine(c, pki, ports, port),
    ],
    { name: `${c.label} (callgrind)`, env: { AIGATE_LOG_LEVEL: 'warn' }, graceMs: 60_000 },
  );
  const connections = Number(args.connections);
  const url = `https://127.0.0.1:${port}/openai/chat/completions`;
  const client = args.h2 ? h2Client(url, pki, connections, Number(args.streams), body, c.label) : h1Client(url, pki, connections, body, c.label);
  const send = client.send;
  // Start-up under valgrind takes tens of seconds: try until the listener answers.
  for (let tries = 0; ; tries++) {
    try {
      await send(1);
      break;
    } catch (err) {
      if (entry.child.exitCode !== null || tries > 600) throw new Error(`${c.label} did not start under valgrind:\n${entry.stderr.slice(-2000)}`, { cause: err });
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  await send(Number(args.warmup));
  const instrument = (onOff) => {
    const r = spawnSync('callgrind_control', ['-i', onOff, String(entry.child.pid)], { encoding: 'utf8' });
    if (r.status !== 0 || !r.stdout.includes('OK')) throw new Error(`callgrind_control -i ${onOff} failed: ${r.stdout}${r.stderr}`);
  };
  instrument('on');
  await send(Number(args.requests));
  instrument('off');
  await client.close();
  await entry.stop();

  // One file per thread; `-01` is the main thread, the event loop.
  const files = readdirSync(dir).filter((f) => f.startsWith(`${slug(c.label)}.callgrind-`));
  if (files.length === 0) throw new Error(`no callgrind output for ${c.label}`);
  const n = Number(args.requests);
  let main = 0;
  let other = 0;
  for (const f of files) {
    const total = [...readFileSync(join(dir, f), 'utf8').matchAll(/^totals:\s+(\d+)/gm)].reduce((a, m) => a + Number(m[1]), 0);
    if (f.endsWith('-01')) main += total / n;
    else other += total / n;
  }
  return { main, other, top: top > 0 ? topFunctions(`${out}-01`, `/tmp/perf-${entry.child.pid}.map`, n) : '' };
}

/** Requests over HTTP/1.1: undici, `connections` keep-alive connections, one request at a time on each. */
function h1Client(url, pki, connections, body, label) {
  const dispatcher = new Agent({ connect: { ca: pki.proxyCaPem, servername: 'localhost' }, connections });
  const send = async (count) => {
    let next = 0;
    const worker = async () => {
      while (next++ < count) {
        const res = await request(url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...authorization }, dispatcher });
        await res.body.dump();
        if (res.statusCode !== 200) throw new Error(`${label}: status ${res.statusCode}`);
      }
    };
    await Promise.all(Array.from({ length: connections }, worker));
  };
  return { send, close: () => dispatcher.close() };
}

/** Requests over HTTP/2: node:http2, `connections` sessions with `streams` requests in flight on each. */
function h2Client(url, pki, connections, streams, body, label) {
  const { origin, pathname } = new URL(url);
  let sessions = [];
  const session = (i) => {
    const s = sessions[i];
    if (s && !s.closed && !s.destroyed) return s;
    const fresh = h2connect(origin, { ca: pki.proxyCaPem, servername: 'localhost' });
    fresh.on('error', () => undefined);
    sessions[i] = fresh;
    return fresh;
  };
  const one = (s) =>
    new Promise((resolve, reject) => {
      const stream = s.request({ ':method': 'POST', ':path': pathname, 'content-type': 'application/json', ...authorization });
      let status = 0;
      stream.on('response', (h) => (status = h[':status']));
      stream.on('data', () => undefined);
      stream.on('end', () => (status === 200 ? resolve() : reject(new Error(`${label}: status ${status}`))));
      stream.on('error', reject);
      stream.end(body);
    });
  const send = async (count) => {
    let next = 0;
    const worker = async (i) => {
      while (next++ < count) await one(session(i));
    };
    await Promise.all(Array.from({ length: connections * streams }, (_, w) => worker(w % connections)));
  };
  return {
    send,
    close: async () => {
      await Promise.all(sessions.map((s) => new Promise((r) => (s.closed ? r() : s.close(r)))));
      sessions = [];
    },
  };
}

/** Top functions by own instructions per request, JIT code named from node's perf map. */
function topFunctions(file, perfMap, n) {
  if (existsSync(perfMap)) {
    const entries = readFileSync(perfMap, 'utf8')
      .split('\n')
      .map((l) => /^([0-9a-f]+) ([0-9a-f]+) (.*)$/.exec(l))
      .filter(Boolean)
      .map((m) => ({ start: parseInt(m[1], 16), size: parseInt(m[2], 16), name: m[3].replace(/\s+/g, '_') }))
      .sort((a, b) => a.start - b.start);
    const nameOf = (addr) => {
      let lo = 0;
      let hi = entries.length - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (entries[mid].start <= addr) lo = mid + 1;
        else hi = mid - 1;
      }
      const e = entries[hi];
      return e && addr < e.start + e.size ? e.name : null;
    };
    const named = readFileSync(file, 'utf8').replace(/^((?:c?fn)=\(\d+\) )0x([0-9a-f]+)$/gm, (line, head, hex) => {
      const name = nameOf(parseInt(hex, 16));
      return name ? head + name : line;
    });
    writeFileSync(file, named);
    rmSync(perfMap, { force: true });
  }
  const r = spawnSync('callgrind_annotate', ['--inclusive=no', file], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const rows = r.stdout
    .split('\n')
    .map((l) => /^\s*([\d,]+) \([\s\d.]+%\)\s+(?:\?\?\?:)?(.*)$/.exec(l))
    .filter((m) => m && !m[2].startsWith('PROGRAM TOTALS'))
    .slice(0, top);
  return rows.map((m) => `  ${Math.round(Number(m[1].replaceAll(',', '')) / n).toLocaleString('en-US').padStart(8)}  ${m[2].slice(0, 150)}`).join('\n');
}

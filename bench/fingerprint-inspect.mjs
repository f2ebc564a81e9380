#!/usr/bin/env node
// What inspect.fingerprints costs the inspector (issue #16): the S2 body (256 KiB of undici source
// in one chat message, bench/lib/bodies.mjs) inspected without indexes, with a ~1-million-line
// index whose code is not in the body (the common case: a lookup that misses), and with an index
// of the very code the body holds (every lookup hits: findings, block); and the S1 body (1 KiB).
// CPU time of this process, median of the runs. Reports; asserts nothing.
//   npm run build && node bench/fingerprint-inspect.mjs [--lines 1000000] [--rounds 40]
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = resolve(import.meta.dirname, '..');
const { IndexBuilder, DEFAULT_BUILD } = await import(join(ROOT, 'dist/fingerprint/build.js'));
const { encodeIndex } = await import(join(ROOT, 'dist/fingerprint/index-file.js'));
const { createInspector } = await import(join(ROOT, 'dist/inspect/index.js'));
const { loadProtectedCode, ProtectedCode } = await import(join(ROOT, 'dist/inspect/protected.js'));
const { configSchema } = await import(join(ROOT, 'dist/config/schema.js'));
const { writeBodies } = await import(join(ROOT, 'bench/lib/bodies.mjs'));

const { values: args } = parseArgs({ options: { lines: { type: 'string', default: '1000000' }, rounds: { type: 'string', default: '40' } } });
const LINES = Number(args.lines);
const ROUNDS = Number(args.rounds);
const NM = join(ROOT, 'node_modules');
const dir = mkdtempSync(join(tmpdir(), 'aigate-fp-inspect-'));

function sources(d) {
  const out = [];
  const walk = (p) => {
    for (const e of readdirSync(p, { withFileTypes: true })) {
      const q = join(p, e.name);
      if (e.isDirectory()) walk(q);
      else if (/\.(js|mjs|cjs|ts)$/.test(e.name) && !e.name.endsWith('.d.ts') && !e.name.endsWith('.min.js') && statSync(q).size < 2_000_000) out.push(q);
    }
  };
  walk(d);
  return out.sort();
}

/** An index of about `lines` lines from `roots`, copies renamed (as fingerprint-eval.mjs --big does). */
function buildIndex(file, label, roots, lines) {
  const files = roots.flatMap((r) => sources(join(NM, r)));
  const b = new IndexBuilder({ ...DEFAULT_BUILD, label });
  let n = 0;
  // The first copy whole, then renamed copies up to `lines`.
  for (let copy = 0; copy === 0 || n < lines; copy++) {
    for (const f of files) {
      const text = readFileSync(f, 'utf8');
      n += text.split('\n').length;
      b.add(`${copy}/${f.slice(NM.length + 1)}`, copy === 0 ? text : text.replace(/[A-Za-z_]\w*/g, (id) => `${id}${copy}`));
      if (copy > 0 && n >= lines) break;
    }
  }
  const bytes = encodeIndex(b.build());
  writeFileSync(file, bytes);
  return { lines: n, mib: bytes.length / 1048576 };
}

const bodies = writeBodies(dir, ROOT);
const body = bodies.large.body;
const missIndex = join(dir, 'miss.fp');
const hitIndex = join(dir, 'hit.fp');
let t = performance.now();
const miss = buildIndex(missIndex, 'big', ['typescript/lib', 'openai/src', '@anthropic-ai/sdk/src', 'node-forge/lib', 'ioredis/built', 'ws/lib'], LINES);
console.log(`index without the body's code: ${miss.lines} lines, ${miss.mib.toFixed(1)} MiB, built in ${((performance.now() - t) / 1000).toFixed(1)} s`);
t = performance.now();
const hit = buildIndex(hitIndex, 'undici', ['undici/lib'], 0);
console.log(`index of the body's code (undici/lib): ${hit.lines} lines, ${hit.mib.toFixed(1)} MiB`);

function inspector(fingerprints) {
  t = performance.now();
  const ins = createInspector(configSchema.parse({ inspect: { fingerprints } }).inspect, { fingerprintKey: 'bench' });
  return { ins, loadMs: performance.now() - t };
}

async function cpuPerCall(ins, sent = body) {
  const meta = { contentType: 'application/json', action: 'block' };
  let out;
  for (let i = 0; i < 5; i++) out = await ins.inspectBody(sent, meta);
  const times = [];
  for (let i = 0; i < ROUNDS; i++) {
    const before = process.cpuUsage();
    await ins.inspectBody(sent, meta);
    const u = process.cpuUsage(before);
    times.push((u.user + u.system) / 1000);
  }
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)], p90: times[Math.floor(times.length * 0.9)], out };
}

const base = await cpuPerCall(inspector([]).ins);
console.log(`S2 body (${body.length} bytes), no index:           ${base.ms.toFixed(2)} ms CPU per body (p90 ${base.p90.toFixed(2)}), decision ${base.out.decision}`);
const m = inspector([{ file: missIndex }]);
const withMiss = await cpuPerCall(m.ins);
console.log(`  + ${(miss.lines / 1e6).toFixed(2)}M-line index, no match:   ${withMiss.ms.toFixed(2)} ms (p90 ${withMiss.p90.toFixed(2)}), +${(((withMiss.ms - base.ms) / base.ms) * 100).toFixed(0)}%; index loaded in ${m.loadMs.toFixed(0)} ms; decision ${withMiss.out.decision}`);
for (const f of withMiss.out.findings) console.log(`    (no code of the index is in the body, yet: ${f.rule} line ${f.line} ${f.source})`);
// The lookup alone (ProtectedCode.find on the prompt's message, as the inspector calls it for
// each JSON string): what the index adds, apart from the inspector's full path that indexes
// require (its keyword fast path cannot prove a body free of protected code).
const message = JSON.parse(body).messages.at(-1).content;
const lookupCpu = (code) => {
  for (let i = 0; i < 5; i++) code.find(message);
  const times = [];
  for (let i = 0; i < ROUNDS; i++) {
    const before = process.cpuUsage();
    code.find(message);
    const u = process.cpuUsage(before);
    times.push((u.user + u.system) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
};
const missCode = new ProtectedCode(loadProtectedCode(configSchema.parse({ inspect: { fingerprints: [{ file: missIndex }] } }).inspect.fingerprints));
console.log(`  lookup alone (${message.length} characters of code, 1M-line index, no match): ${lookupCpu(missCode).toFixed(2)} ms CPU`);
const h = inspector([{ file: hitIndex }]);
const withHit = await cpuPerCall(h.ins);
console.log(`  + index of the body's own code:    ${withHit.ms.toFixed(2)} ms (p90 ${withHit.p90.toFixed(2)}), +${(((withHit.ms - base.ms) / base.ms) * 100).toFixed(0)}%; decision ${withHit.out.decision}, ${withHit.out.findings.length} findings`);

// S1's body: 1 KiB of chat (prose and a little code), where per-call overheads show.
const small = bodies.small.body;
const noIndex = inspector([]).ins;
const s0 = await cpuPerCall(noIndex, small);
const s1 = await cpuPerCall(m.ins, small);
console.log(`S1 body (${small.length} bytes): ${(s0.ms * 1000).toFixed(0)} µs CPU without an index, ${(s1.ms * 1000).toFixed(0)} µs with the 1M-line index`);

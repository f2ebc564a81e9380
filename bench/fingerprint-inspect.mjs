#!/usr/bin/env node
// What inspect.fingerprints costs the inspector (issue #16): the S2 body (256 KiB of undici source
// in one chat message, bench/lib/bodies.mjs) inspected without indexes, with a ~1-million-line
// index whose code is not in the body (the common case: a lookup that misses), and with an index
// of the very code the body holds (every lookup hits: findings, block); and the S1 body (1 KiB).
// CPU time of this process, median of the runs; each body is new unless said (a body resent is
// answered from the lookups remembered, src/inspect/lookup-memo.ts). Reports; asserts nothing.
//   npm run build && node bench/fingerprint-inspect.mjs [--lines 1000000] [--rounds 40] [--no-anchors]
// (--no-anchors: the indexes built without line anchors, src/fingerprint/build.ts, as before them)
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = resolve(import.meta.dirname, '..');
const { createInspector } = await import(join(ROOT, 'dist/inspect/index.js'));
const { loadProtectedCode, ProtectedCode } = await import(join(ROOT, 'dist/inspect/protected.js'));
const { configSchema } = await import(join(ROOT, 'dist/config/schema.js'));
const { writeBodies } = await import(join(ROOT, 'bench/lib/bodies.mjs'));
const { buildIndex, HIT_ROOTS, MISS_ROOTS } = await import(join(ROOT, 'bench/lib/fingerprint-index.mjs'));
const { resetWork, work } = await import(join(ROOT, 'dist/fingerprint/work.js'));

const { values: args } = parseArgs({ options: { lines: { type: 'string', default: '1000000' }, rounds: { type: 'string', default: '40' }, 'no-anchors': { type: 'boolean', default: false } } });
const PARAMS = args['no-anchors'] ? { lineAnchors: false } : {};
const LINES = Number(args.lines);
const ROUNDS = Number(args.rounds);
const dir = mkdtempSync(join(tmpdir(), 'aigate-fp-inspect-'));

const bodies = writeBodies(dir, ROOT);
const body = bodies.large.body;
const missIndex = join(dir, 'miss.fp');
const hitIndex = join(dir, 'hit.fp');
let t = performance.now();
const miss = await buildIndex(missIndex, 'big', MISS_ROOTS, LINES, PARAMS);
console.log(`index without the body's code: ${miss.lines} lines, ${miss.mib.toFixed(1)} MiB, built in ${((performance.now() - t) / 1000).toFixed(1)} s`);
t = performance.now();
const hit = await buildIndex(hitIndex, 'undici', HIT_ROOTS, 0, PARAMS);
console.log(`index of the body's code (undici/lib): ${hit.lines} lines, ${hit.mib.toFixed(1)} MiB`);

function inspector(fingerprints) {
  t = performance.now();
  const ins = createInspector(configSchema.parse({ inspect: { fingerprints } }).inspect, { fingerprintKey: 'bench' });
  return { ins, loadMs: performance.now() - t };
}

/**
 * CPU per inspectBody of `bodyAt(i)`. The same body each time is a conversation resent (its lookups
 * remembered, lookup-memo.ts); `fresh` gives each call a body never seen (the message's first line
 * differs), so every string is looked up.
 */
async function cpuPerCall(ins, sent = body, { fresh = false } = {}) {
  const meta = { contentType: 'application/json', action: 'block' };
  const bodyAt = (i) => (fresh ? Buffer.from(sent.toString().replace('"role":"user","content":"', `"role":"user","content":"// request ${i}\\n`)) : sent);
  let out;
  for (let i = 0; i < 5; i++) out = await ins.inspectBody(bodyAt(-i - 1), meta);
  const times = [];
  for (let i = 0; i < ROUNDS; i++) {
    const b = bodyAt(i);
    const before = process.cpuUsage();
    await ins.inspectBody(b, meta);
    const u = process.cpuUsage(before);
    times.push((u.user + u.system) / 1000);
  }
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)], p90: times[Math.floor(times.length * 0.9)], out };
}

const base = await cpuPerCall(inspector([]).ins);
console.log(`S2 body (${body.length} bytes), no index:           ${base.ms.toFixed(2)} ms CPU per body (p90 ${base.p90.toFixed(2)}), decision ${base.out.decision}`);
const m = inspector([{ file: missIndex }]);
const baseFresh = await cpuPerCall(inspector([]).ins, body, { fresh: true });
const withMiss = await cpuPerCall(m.ins, body, { fresh: true });
console.log(`  + ${(miss.lines / 1e6).toFixed(2)}M-line index, no match:   ${withMiss.ms.toFixed(2)} ms (p90 ${withMiss.p90.toFixed(2)}), +${(((withMiss.ms - baseFresh.ms) / baseFresh.ms) * 100).toFixed(0)}% over ${baseFresh.ms.toFixed(2)} ms without it (each body new); index loaded in ${m.loadMs.toFixed(0)} ms; decision ${withMiss.out.decision}`);
const resent = await cpuPerCall(m.ins);
console.log(`    the same body resent:            ${resent.ms.toFixed(2)} ms (p90 ${resent.p90.toFixed(2)}), +${(((resent.ms - base.ms) / base.ms) * 100).toFixed(0)}% (its lookups remembered)`);
for (const f of withMiss.out.findings) console.log(`    (no code of the index is in the body, yet: ${f.rule} line ${f.line} ${f.source})`);
// The lookup alone (ProtectedCode.find on the prompt's message, as the inspector calls it for
// each JSON string): what the index adds, apart from the inspector's full path that indexes
// require (its keyword fast path cannot prove a body free of protected code).
const message = JSON.parse(body).messages.at(-1).content;
const lookupCpu = (code) => {
  // A new text each time: a text looked up before is answered from memory.
  for (let i = 0; i < 5; i++) code.find(`// warm-up ${i}\n${message}`);
  const times = [];
  for (let i = 0; i < ROUNDS; i++) {
    const text = `// round ${i}\n${message}`;
    const before = process.cpuUsage();
    code.find(text);
    const u = process.cpuUsage(before);
    times.push((u.user + u.system) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
};
const missCode = new ProtectedCode(loadProtectedCode(configSchema.parse({ inspect: { fingerprints: [{ file: missIndex }] } }).inspect.fingerprints));
const lookupMs = lookupCpu(missCode);
// Its work (src/fingerprint/work.ts), which the host's speed does not move; a text not looked up
// before (not answered from the memo).
resetWork();
missCode.find(`// counted\n${message}`);
console.log(`  lookup alone (${message.length} characters of code, 1M-line index, no match): ${lookupMs.toFixed(2)} ms CPU; ${work.lookups} k-grams looked up, ${work.steps} searches, ${work.hits} hits`);
const h = inspector([{ file: hitIndex }]);
const withHit = await cpuPerCall(h.ins);
console.log(`  + index of the body's own code:    ${withHit.ms.toFixed(2)} ms (p90 ${withHit.p90.toFixed(2)}), +${(((withHit.ms - base.ms) / base.ms) * 100).toFixed(0)}%; decision ${withHit.out.decision}, ${withHit.out.findings.length} findings`);

// S1's body: 1 KiB of chat (prose and a little code), where per-call overheads show.
const small = bodies.small.body;
const noIndex = inspector([]).ins;
const s0 = await cpuPerCall(noIndex, small);
const s1 = await cpuPerCall(m.ins, small);
console.log(`S1 body (${small.length} bytes): ${(s0.ms * 1000).toFixed(0)} µs CPU without an index, ${(s1.ms * 1000).toFixed(0)} µs with the 1M-line index`);

#!/usr/bin/env node
// inspectBody on the bench's own 256 KiB S2 body (bench/lib/bodies.mjs), CPU per call, for one or
// more builds in the same process, interleaved round by round: a shared host's drift lands on every
// build alike. Each ROOT is a checkout with `npm run build` done (its dist/ is loaded).
//
//   node bench/inspect-ab.mjs [--rounds 7] ROOT...      e.g. node bench/inspect-ab.mjs /work/main .
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writeBodies } from './lib/bodies.mjs';

const { values: args, positionals } = parseArgs({ allowPositionals: true, options: { rounds: { type: 'string', default: '7' } } });
const roots = (positionals.length ? positionals : ['.']).map((r) => resolve(r));
const dir = mkdtempSync(join(tmpdir(), 'aigate-inspect-ab-'));
const body = readFileSync(writeBodies(dir, roots[0]).large.file);
rmSync(dir, { recursive: true, force: true });
const meta = { contentType: 'application/json', action: 'block' };
const subjects = [];
for (const root of roots) {
  const { createInspector } = await import(join(root, 'dist/inspect/index.js'));
  const { configSchema } = await import(join(root, 'dist/config/schema.js'));
  subjects.push({ root, inspector: createInspector(configSchema.parse({}).inspect, { fingerprintKey: 'bench' }), samples: [] });
}
for (let r = 0; r < Number(args.rounds); r++) {
  for (const s of subjects) {
    for (let i = 0; i < 20; i++) await s.inspector.inspectBody(body, meta);
    const t = process.cpuUsage();
    for (let i = 0; i < 200; i++) await s.inspector.inspectBody(body, meta);
    const d = process.cpuUsage(t);
    s.samples.push((d.user + d.system) / 200);
  }
}
console.log(`inspectBody, ${body.length} bytes (the S2 body), CPU µs per call, ${args.rounds} interleaved rounds of 200`);
for (const s of subjects) {
  const v = s.samples.sort((a, b) => a - b);
  console.log(`${s.root.padEnd(28)} median ${v[v.length >> 1].toFixed(0).padStart(6)}   min ${v[0].toFixed(0).padStart(6)}   max ${v[v.length - 1].toFixed(0).padStart(6)}`);
}

#!/usr/bin/env node
// Scanner throughput (issue 3): the detector alone, on one core, no HTTP.
//   npm run build && node bench/scanner.mjs [--seconds 2] [--mb 4]
// Clean code is real source from installed packages (node_modules, sorted, first N MB); JSON
// bodies are OpenAI chat requests whose message content is that code. Reports MB/s from the
// median run, by CPU time of this process (what one core delivers; robust when the machine is
// shared) and by wall time, and for bodies the per-request latency the scan adds (p50/p99, wall).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const { createInspector } = await import(join(ROOT, 'dist/inspect/index.js'));
const { configSchema } = await import(join(ROOT, 'dist/config/schema.js'));

const { values: args } = parseArgs({
  options: { seconds: { type: 'string', default: '2' }, mb: { type: 'string', default: '4' } },
});
const SECONDS = Number(args.seconds);
const TARGET = Number(args.mb) * 1024 * 1024;

function collectCode(limit) {
  const roots = ['undici/lib', 'yaml/dist', 'pino/lib', 'ioredis/built', 'commander/lib', 'prom-client/lib', 'zod/v4/core', 'openai/src', 'typescript/lib/typescript.js']
    .map((r) => join(ROOT, 'node_modules', r));
  const parts = [];
  let total = 0;
  const walk = (p) => {
    if (total >= limit) return;
    let st;
    try {
      st = statSync(p);
    } catch {
      return;
    }
    if (st.isDirectory()) {
      for (const name of readdirSync(p).sort()) walk(join(p, name));
    } else if (/\.(?:[cm]?js|ts)$/.test(p) && !p.endsWith('.d.ts')) {
      const text = readFileSync(p, 'utf8').slice(0, limit - total);
      parts.push(text);
      total += text.length;
    }
  };
  for (const r of roots) walk(r);
  return parts.join('\n');
}

function cpuMs(start) {
  const u = process.cpuUsage(start);
  return (u.user + u.system) / 1000;
}

/** Runs `fn` (sync or async) repeatedly for `seconds`; per-call wall and CPU milliseconds, sorted. */
async function measure(fn, seconds) {
  for (let i = 0; i < 3; i++) await fn();
  const wall = [];
  const cpu = [];
  const until = performance.now() + seconds * 1000;
  do {
    const c = process.cpuUsage();
    const t = performance.now();
    await fn();
    wall.push(performance.now() - t);
    cpu.push(cpuMs(c));
  } while (performance.now() < until || wall.length < 5);
  return { wall: wall.sort((a, b) => a - b), cpu: cpu.sort((a, b) => a - b) };
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const mbps = (bytes, ms) => bytes / 1024 / 1024 / (ms / 1000);

const inspector = createInspector(configSchema.parse({}).inspect, { fingerprintKey: 'bench' });
const code = collectCode(TARGET);
const codeBytes = Buffer.byteLength(code);

function chatBody(size) {
  const base = { model: 'gpt-4o', stream: true, messages: [{ role: 'system', content: 'You are a coding assistant.' }, { role: 'user', content: '' }] };
  const overhead = Buffer.byteLength(JSON.stringify(base));
  let content = '';
  let offset = 0;
  // Grow the content until the encoded body reaches the size (escapes make it longer than the text).
  while (Buffer.byteLength(JSON.stringify({ ...base, messages: [base.messages[0], { role: 'user', content }] })) < size) {
    const need = Math.max(64, Math.floor((size - overhead - Buffer.byteLength(JSON.stringify(content))) * 0.9));
    content += code.slice(offset % code.length, (offset % code.length) + need);
    offset += need;
  }
  let body = JSON.stringify({ ...base, messages: [base.messages[0], { role: 'user', content }] });
  while (Buffer.byteLength(body) > size) {
    content = content.slice(0, content.length - Math.max(1, Buffer.byteLength(body) - size));
    body = JSON.stringify({ ...base, messages: [base.messages[0], { role: 'user', content }] });
  }
  return Buffer.from(body);
}

const lines = [];
const row = (name, bytes, t, latency) => {
  lines.push(
    `${name.padEnd(38)} ${(bytes / 1024).toFixed(0).padStart(6)} KiB ` +
      `${mbps(bytes, pct(t.cpu, 50)).toFixed(0).padStart(5)} MB/s cpu ${mbps(bytes, pct(t.wall, 50)).toFixed(0).padStart(5)} MB/s wall` +
      (latency ? `   p50 ${pct(t.wall, 50).toFixed(2)} ms  p99 ${pct(t.wall, 99).toFixed(2)} ms` : ''),
  );
};

const findings = inspector.scanText(code).length;
row(`clean code, scanText (${findings} findings)`, codeBytes, await measure(() => inspector.scanText(code), SECONDS), false);

for (const [label, size] of [['1 KiB', 1024], ['256 KiB', 256 * 1024], ['4 MiB', 4 * 1024 * 1024]]) {
  const body = chatBody(size);
  const meta = { contentType: 'application/json', action: 'block' };
  row(`JSON body ${label}, inspectBody`, body.length, await measure(() => inspector.inspectBody(body, meta), SECONDS), size <= 256 * 1024);
}
{
  const body = chatBody(256 * 1024);
  const gz = gzipSync(body);
  const meta = { contentType: 'application/json', contentEncoding: 'gzip', action: 'block' };
  row('JSON body 256 KiB gzip, inspectBody', body.length, await measure(() => inspector.inspectBody(gz, meta), SECONDS), true);
}
{
  const secret = 'password = "' + 'Zq8' + 'vLm2pRt7!x' + '"\n';
  const base = chatBody(256 * 1024 - 4096).toString();
  const content = JSON.parse(base).messages[1].content;
  const withSecrets = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: secret.repeat(20) + content }] });
  const body = Buffer.from(withSecrets);
  const meta = { contentType: 'application/json', action: 'redact' };
  row('JSON body 256 KiB, 20 secrets, redact', body.length, await measure(() => inspector.inspectBody(body, meta), SECONDS), true);
}

console.log(`node ${process.version}, one core, ${SECONDS} s per case, median run (MB = MiB; cpu = bytes per CPU-second of this process)`);
console.log(lines.join('\n'));

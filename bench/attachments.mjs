#!/usr/bin/env node
// What encoded attachments cost the scanner (issue 14, part 3): inspectBody alone, no HTTP, on
// bodies an AI tool sends with an image or a file attached, against a build without attachment
// decoding (`--base OTHER/dist`, e.g. a worktree at the previous commit) when given.
//   npm run build && node bench/attachments.mjs [--runs 7] [--base OTHER/dist]
// Reports the median CPU milliseconds per body (CPU time of this process: robust on a shared host).
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '7' }, base: { type: 'string' } } });
const RUNS = Number(args.runs);

async function inspectorFrom(dist) {
  const { createInspector } = await import(join(dist, 'inspect/index.js'));
  const { configSchema } = await import(join(dist, 'config/schema.js'));
  return createInspector(configSchema.parse({ inspect: { maxBodyBytes: '64mb' } }).inspect, { fingerprintKey: 'bench' });
}

const b64 = (s) => Buffer.from(s).toString('base64');
const png = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), randomBytes(4 * 1024 * 1024)]).toString('base64');
const code = Array.from({ length: 6000 }, (_, i) => `  total += weigh(items[${i}], "row ${i}"); // recompute the key`).join('\n');
const env = Array.from({ length: 20_000 }, (_, i) => `SETTING_${i}=value-${i}`).join('\n');
const anthropic = (source, text) => ({ model: 'claude-x', max_tokens: 64, messages: [{ role: 'user', content: [{ type: 'document', source }, { type: 'text', text }] }] });
const BODIES = {
  'chat 1 KiB, no keyword': { model: 'gpt-4o', messages: [{ role: 'user', content: 'Please explain how the closures work in this snippet. '.repeat(18) }] },
  'chat 1 KiB, model name + ids': { model: 'claude-3-5-sonnet-20241022', metadata: { user_id: 'user_01XFDUDYJgAACzvnptvVoYEL' }, messages: [{ role: 'user', content: 'Please explain how the closures work in this snippet. '.repeat(18) }] },
  'code 370 KiB': { model: 'gpt-4o', messages: [{ role: 'user', content: code }] },
  'image 5.6 MB (base64 source)': anthropic({ type: 'base64', media_type: 'image/png', data: png }, 'what is this key'),
  'image 5.6 MB (data URL)': { model: 'gpt-4o', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } }] }] },
  'image 5.7 MB (MIME lines in prose)': { messages: [{ role: 'user', content: `attached:\n${png.match(/.{1,76}/g).join('\r\n')}\n` }] },
  'text file 480 KiB (base64 source)': anthropic({ type: 'base64', media_type: 'text/plain', data: b64(env) }, 'explain this config'),
};

function cpuMs(fn) {
  const before = process.cpuUsage();
  return fn().then(() => {
    const used = process.cpuUsage(before);
    return (used.user + used.system) / 1000;
  });
}

async function measure(inspector, body) {
  const n = body.length > 1e6 ? 5 : body.length > 1e5 ? 30 : 2000;
  const once = async () => {
    for (let i = 0; i < n; i++) await inspector.inspectBody(body, { contentType: 'application/json', action: 'redact' });
  };
  await once();
  const runs = [];
  for (let r = 0; r < RUNS; r++) runs.push((await cpuMs(once)) / n);
  runs.sort((a, b) => a - b);
  return runs[Math.floor(runs.length / 2)];
}

const current = await inspectorFrom(join(ROOT, 'dist'));
const base = args.base ? await inspectorFrom(resolve(args.base)) : null;
console.log(`${'body'.padEnd(36)} ${'bytes'.padStart(9)}  ${'ms/body'.padStart(9)}${base ? `  ${'base ms'.padStart(9)}` : ''}  decision`);
for (const [name, value] of Object.entries(BODIES)) {
  const body = Buffer.from(JSON.stringify(value));
  const ms = await measure(current, body);
  const baseMs = base ? await measure(base, body) : null;
  const { decision } = await current.inspectBody(body, { contentType: 'application/json', action: 'redact' });
  console.log(`${name.padEnd(36)} ${String(body.length).padStart(9)}  ${ms.toFixed(3).padStart(9)}${base ? `  ${baseMs.toFixed(3).padStart(9)}` : ''}  ${decision}`);
}

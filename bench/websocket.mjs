#!/usr/bin/env node
// WebSocket messages through aigate (issue #14 part 1): what inspecting each client message costs
// over the blind relay (`websocket: relay`), and the memory an idle WebSocket holds.
//   npm run build && node bench/websocket.mjs [--messages 2000] [--idle 1000]
// - round trip of one 10 KiB message (an OpenAI Responses `response.create` event whose input is
//   real source code), client → aigate → echo upstream → aigate → client, one at a time, with
//   permessage-deflate off and on (context takeover): p50/p99 for direct, relay and inspect;
// - RSS of a fresh aigate per idle inspected WebSocket: just opened, and after one message each
//   with permessage-deflate (its zlib contexts are then allocated and kept, RFC 7692 takeover).
// aigate and the upstream run in their own processes; the clients run here.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { startAigate } from './lib/aigate.mjs';
import { ANTHROPIC, makePki } from './lib/pki.mjs';
import { freePort, rssKiB, sleep, startChild, stopAll, waitForTls } from './lib/proc.mjs';
import { pct, sorted } from './lib/stats.mjs';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
process.chdir(ROOT);
const { values: args } = parseArgs({ options: { messages: { type: 'string', default: '2000' }, idle: { type: 'string', default: '1000' } } });
const MESSAGES = Number(args.messages);
const IDLE = Number(args.idle);
const log = (m) => process.stderr.write(`${m}\n`);

/** A 10 KiB response.create event whose input text is aigate's own source (clean code). */
function tenKiBMessage() {
  let code = '';
  for (const f of readdirSync(join(ROOT, 'src/inspect')).sort()) if (f.endsWith('.ts')) code += readFileSync(join(ROOT, 'src/inspect', f), 'utf8');
  const event = (text) => JSON.stringify({ type: 'response.create', model: 'gpt-5-codex', input: [{ role: 'user', content: [{ type: 'input_text', text }] }] });
  let n = 10 * 1024 - event('').length;
  while (Buffer.byteLength(event(code.slice(0, n))) > 10 * 1024) n--;
  return event(code.slice(0, n));
}

function openWs(url, { ca, deflate }) {
  return new Promise((res, rej) => {
    const ws = new WebSocket(url, { ca, servername: url.includes('127.0.0.1') ? ANTHROPIC : 'localhost', perMessageDeflate: deflate ? { threshold: 0 } : false });
    ws.once('open', () => res(ws));
    ws.once('error', rej);
  });
}

async function roundTrips(url, opts, message, n) {
  const ws = await openWs(url, opts);
  const lat = [];
  for (let i = 0; i < n + 100; i++) {
    const t = process.hrtime.bigint();
    const echoed = new Promise((r) => ws.once('message', r));
    ws.send(message);
    const got = await echoed;
    if (got.length !== Buffer.byteLength(message)) throw new Error(`echo of ${got.length} bytes, sent ${Buffer.byteLength(message)}`);
    if (i >= 100) lat.push(Number(process.hrtime.bigint() - t) / 1e6); // the first 100 warm up
  }
  ws.close();
  const s = sorted(lat);
  return { p50: pct(s, 50), p99: pct(s, 99) };
}

async function settledRss(pid) {
  const samples = [];
  for (let i = 0; i < 5; i++) {
    await sleep(400);
    samples.push(rssKiB(pid));
  }
  return samples.sort((a, b) => a - b)[2];
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'aigate-bench-ws-'));
  try {
    const pki = makePki(dir);
    const ports = { upstream: await freePort(), sse: await freePort() };
    const upstream = startChild(process.execPath, ['bench/lib/ws-server.mjs', String(ports.sse), pki.files.anthropicCert, pki.files.anthropicKey], { name: 'ws server' });
    await waitForTls(ports.sse, { entry: upstream, servername: ANTHROPIC });
    // The anthropic route reaches the echo server; a second route to it relays blind.
    const routes = [{ name: 'relay', prefix: '/relay/', upstream: `https://${ANTHROPIC}`, websocket: 'relay' }];
    const aigate = await startAigate(dir, pki, ports, { name: 'ws', rateLimit: 'memory', routes });
    const message = tenKiBMessage();
    const fronts = [
      { name: 'direct', base: `wss://127.0.0.1:${ports.sse}`, ca: pki.vendorCaPem },
      { name: 'aigate relay', base: `wss://localhost:${aigate.gatewayPort}/relay`, ca: pki.proxyCaPem },
      { name: 'aigate inspect', base: `wss://localhost:${aigate.gatewayPort}/anthropic`, ca: pki.proxyCaPem },
    ];
    const rows = [];
    for (const deflate of [false, true]) {
      for (const f of fronts) {
        const r = await roundTrips(`${f.base}/${deflate ? 'deflate' : 'plain'}`, { ca: f.ca, deflate }, message, MESSAGES);
        rows.push({ front: f.name, deflate, ...r });
        log(`  ${f.name}, deflate ${deflate ? 'on' : 'off'}: p50 ${r.p50.toFixed(3)} ms, p99 ${r.p99.toFixed(3)} ms`);
      }
    }
    await aigate.stop();

    // Memory: a fresh aigate per front, warmed by a few connections, then IDLE held open.
    const memory = {};
    for (const [name, prefix] of [['relay', 'relay'], ['inspect', 'anthropic']]) {
      const fresh = await startAigate(dir, pki, ports, { name: `ws-idle-${name}`, rateLimit: 'memory', routes });
      const url = `wss://localhost:${fresh.gatewayPort}/${prefix}/deflate`;
      for (let i = 0; i < 20; i++) {
        const ws = await openWs(url, { ca: pki.proxyCaPem, deflate: true });
        await new Promise((r) => (ws.once('message', r), ws.send(message)));
        ws.close();
      }
      await sleep(1000);
      const base = await settledRss(fresh.pid);
      const held = [];
      for (let i = 0; i < IDLE; i++) held.push(await openWs(url, { ca: pki.proxyCaPem, deflate: true }));
      const opened = await settledRss(fresh.pid);
      await Promise.all(held.map((ws) => new Promise((r) => (ws.once('message', r), ws.send(message)))));
      const used = await settledRss(fresh.pid);
      for (const ws of held) ws.terminate();
      await fresh.stop();
      memory[name] = { opened: (opened - base) / IDLE, used: (used - base) / IDLE };
      log(`  ${IDLE} idle WebSockets, ${name}: RSS ${base} → ${opened} KiB just opened (${memory[name].opened.toFixed(1)} KiB each), ${used} KiB after one deflated message each (${memory[name].used.toFixed(1)} KiB each)`);
    }
    await upstream.stop();

    const md = [
      `WebSocket, one 10 KiB message round trip (${MESSAGES} sequential, after 100 warm-up), ms:`,
      '',
      '| front | deflate | p50 | p99 |',
      '| --- | --- | ---: | ---: |',
      ...rows.map((r) => `| ${r.front} | ${r.deflate ? 'on' : 'off'} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} |`),
      '',
      `Idle WebSockets (${IDLE} per front, permessage-deflate negotiated), KiB of aigate RSS each:`,
      '',
      '| front | just opened | after one message |',
      '| --- | ---: | ---: |',
      ...Object.entries(memory).map(([name, m]) => `| aigate ${name} | ${m.opened.toFixed(1)} | ${m.used.toFixed(1)} |`),
    ].join('\n');
    process.stdout.write(`${md}\n`);
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

try {
  await main();
} catch (err) {
  log(`bench failed: ${err.stack ?? err}`);
  process.exitCode = 1;
}

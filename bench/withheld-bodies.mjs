#!/usr/bin/env node
// Memory held by uploads that withhold their last byte (issue #19 item 11): N connections from one
// address each POST a body of SIZE declared bytes and send all but the last one, then wait. Prints
// aigate's RSS before and at its peak, what the clients were answered, and the proxy's own count of
// held body bytes where it has one. A measurement, not a test: RSS depends on the allocator and GC.
//
//   npm run build && node bench/withheld-bodies.mjs [--uploads 150] [--mib 7] [--cli PATH/dist/cli.js]
//   (--cli: another build, e.g. one made from an older commit, to compare)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { parseArgs } from 'node:util';
import { startAigate } from './lib/aigate.mjs';
import { makePki } from './lib/pki.mjs';
import { freePort, rssKiB, sleep, stopAll } from './lib/proc.mjs';

const { values: args } = parseArgs({
  options: {
    uploads: { type: 'string', default: '150' },
    mib: { type: 'string', default: '7' },
    cli: { type: 'string' },
  },
});
const uploads = Number(args.uploads);
const size = Number(args.mib) * 1024 * 1024;

const dir = mkdtempSync(join(tmpdir(), 'aigate-withheld-'));
try {
  const pki = makePki(dir);
  const ports = { upstream: await freePort(), sse: await freePort() };
  const ag = await startAigate(dir, pki, ports, { name: 'withheld', rateLimit: 'memory', ...(args.cli ? { cli: args.cli } : {}) });
  await sleep(1000);
  const idle = rssKiB(ag.pid);

  const answers = new Map();
  let peak = idle;
  const sockets = [];
  let sent = 0;
  const done = Array.from({ length: uploads }, () =>
    new Promise((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: ag.gatewayPort, servername: 'localhost', ca: pki.proxyCaPem }, () => {
        s.write(`POST /openai/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\n\r\n`);
        s.write(Buffer.alloc(size - 1, 'a'), () => {
          sent++;
          resolve();
        });
      });
      sockets.push(s);
      let head = '';
      s.on('data', (d) => {
        if (head.includes('\r\n')) return;
        head += d.toString('latin1');
        const status = head.split(' ')[1];
        answers.set(status, (answers.get(status) ?? 0) + 1);
        resolve(); // answered: its body need not be sent
      });
      s.on('error', (err) => {
        answers.set(err.code ?? 'error', (answers.get(err.code ?? 'error') ?? 0) + 1);
        resolve();
      });
      s.on('close', () => resolve());
    }),
  );
  const sampler = setInterval(() => (peak = Math.max(peak, rssKiB(ag.pid))), 100);
  await Promise.all(done);
  await sleep(3000); // the last bytes in flight land; RSS settles
  peak = Math.max(peak, rssKiB(ag.pid));
  clearInterval(sampler);

  let held = 'n/a';
  const metrics = await fetch(`http://127.0.0.1:${ag.adminPort}/metrics`).then((r) => r.text());
  const m = /^aigate_buffered_body_bytes (\d+)/m.exec(metrics);
  if (m) held = `${(Number(m[1]) / 1024 / 1024).toFixed(1)} MiB`;
  console.log(
    JSON.stringify({
      uploads,
      bodyMiB: Number(args.mib),
      bodiesFullySentButLastByte: sent,
      answers: Object.fromEntries(answers),
      rssIdleMB: Math.round(idle / 1024),
      rssPeakMB: Math.round(peak / 1024),
      bufferedBodyBytes: held,
    }),
  );
  for (const s of sockets) s.destroy();
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}

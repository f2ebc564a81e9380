#!/usr/bin/env node
// A real user's proxy login during a flood of wrong ones (issue #19 item 10): N CONNECTs with
// distinct wrong passwords from 127.0.0.1, then alice's from 127.0.0.2 (another client address);
// prints how long alice waited for her 200 and what the flood was answered. A measurement, not a
// test (bcrypt's pace depends on the machine and its load).
//
//   npm run build && node bench/login-flood.mjs [--flood 300] [--cost 10] [--cli PATH/dist/cli.js]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import bcrypt from 'bcryptjs';
import { aigateConfig } from './lib/aigate.mjs';
import { makePki } from './lib/pki.mjs';
import { freePort, startChild, stopAll } from './lib/proc.mjs';

const { values: args } = parseArgs({
  options: {
    flood: { type: 'string', default: '300' },
    cost: { type: 'string', default: '10' },
    cli: { type: 'string', default: 'dist/cli.js' },
  },
});

const dir = mkdtempSync(join(tmpdir(), 'aigate-login-flood-'));
try {
  const pki = makePki(dir);
  const users = join(dir, 'users.htpasswd');
  writeFileSync(users, `alice:${bcrypt.hashSync('wonderland', Number(args.cost))}\n`);
  const config = aigateConfig(dir, pki, { upstream: await freePort(), sse: await freePort() }, { name: 'flood', rateLimit: 'memory', forward: true });
  config.auth = { usersFile: users, required: true };
  const file = join(dir, 'aigate.yaml');
  writeFileSync(file, JSON.stringify(config));
  const ag = startChild(process.execPath, [args.cli, 'start', '--config', file], { name: 'aigate', env: { AIGATE_LOG_LEVEL: 'info' } });
  const forwardPort = await new Promise((resolve, reject) => {
    ag.child.stderr.on('data', () => {
      const line = ag.stderr.split('\n').find((l) => l.includes('aigate started'));
      if (line) resolve(Number(new URL(JSON.parse(line).forward).port));
    });
    ag.child.once('exit', () => reject(new Error(ag.stderr)));
  });

  const connect = (from, user, password) =>
    new Promise((resolve) => {
      const s = net.connect({ port: forwardPort, host: '127.0.0.1', localAddress: from }, () => {
        const auth = Buffer.from(`${user}:${password}`).toString('base64');
        s.write(`CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\nProxy-Authorization: Basic ${auth}\r\n\r\n`);
      });
      s.once('data', (d) => {
        resolve(d.toString('latin1').split(' ')[1]);
        s.destroy();
      });
      s.on('error', () => resolve('error'));
    });

  const floodAnswers = {};
  const flood = Array.from({ length: Number(args.flood) }, (_, i) =>
    connect('127.0.0.1', 'alice', `wrong-${i}`).then((status) => (floodAnswers[status] = (floodAnswers[status] ?? 0) + 1)),
  );
  await new Promise((r) => setTimeout(r, 500)); // the flood is in
  const started = performance.now();
  const alice = await connect('127.0.0.2', 'alice', 'wonderland');
  const aliceMs = Math.round(performance.now() - started);
  await Promise.all(flood);
  console.log(JSON.stringify({ flood: Number(args.flood), cost: Number(args.cost), alice, aliceWaitedMs: aliceMs, floodAnswers }));
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}

// The component benches other issues own (scanner throughput, rate-limit check cost, leaf
// minting) run unchanged as child processes of the same `npm run bench`; their output becomes a
// section of the report. A missing or failing one is reported, never fatal.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

const SECTIONS = [
  { title: 'Scanner throughput (issue 3)', script: 'bench/scanner.mjs', args: () => [] },
  { title: 'Rate-limit check cost per store (issue 4)', script: 'bench/ratelimit.mjs', args: (quick) => (quick ? ['--n', '2000'] : []) },
  { title: 'Leaf minting for forward mode (issue 5)', script: 'bench/mint.mjs', args: () => [] },
  { title: 'Connect streaming message forward latency (issue 14)', script: 'bench/rpc.mjs', args: (quick) => (quick ? ['--messages', '100'] : []) },
  { title: 'WebSocket message inspection and idle memory (issue 14)', script: 'bench/websocket.mjs', args: (quick) => (quick ? ['--messages', '200', '--idle', '100'] : ['--messages', '2000', '--idle', '1000']) },
];

function runScript(script, args, timeoutMs) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out, err });
    });
  });
}

export async function runSections({ quick, log }) {
  const out = [];
  for (const s of SECTIONS) {
    const args = s.args(quick);
    const command = `node ${[s.script, ...args].join(' ')}`;
    if (!existsSync(s.script)) {
      out.push({ title: s.title, command, output: `${s.script} is not in this checkout yet.` });
      continue;
    }
    log(`${s.title}: ${command}`);
    const t = Date.now();
    let r = await runScript(s.script, args, 180_000);
    // Once more on failure: a build running at the same moment can leave dist/ half written.
    if (r.code !== 0) r = await runScript(s.script, args, 180_000);
    const ok = r.code === 0;
    out.push({
      title: s.title,
      command,
      note: ok ? `${((Date.now() - t) / 1000).toFixed(0)} s` : `failed (${r.signal ?? `exit ${r.code}`})`,
      output: ok ? r.out : `${r.out}\n${r.err}`.trim().split('\n').slice(-30).join('\n'),
    });
  }
  return out;
}

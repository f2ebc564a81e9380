// Summarises a V8 .cpuprofile: top functions by self time, and self time grouped by where the
// code lives (node internals by module, npm packages, aigate's own dist/ folders, GC, idle).
//   node bench/lib/cpuprofile-top.mjs FILE.cpuprofile [--top 25] [--callers writev]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

export function summarise(profile, top = 25) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  // Self time from the samples and their time deltas (more exact than hitCount × interval).
  const { samples = [], timeDeltas = [] } = profile;
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i];
    self.set(id, (self.get(id) ?? 0) + (timeDeltas[i + 1] ?? timeDeltas[i] ?? 0));
  }
  const totalUs = [...self.values()].reduce((a, b) => a + b, 0);
  const fns = new Map();
  const groups = new Map();
  for (const [id, us] of self) {
    const n = byId.get(id);
    const cf = n.callFrame;
    const name = cf.functionName || '(anonymous)';
    const where = shortUrl(cf.url);
    const key = `${name} ${where}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
    fns.set(key, (fns.get(key) ?? 0) + us);
    const g = group(cf);
    groups.set(g, (groups.get(g) ?? 0) + us);
  }
  const busyUs = totalUs - (groups.get('(idle)') ?? 0);
  const rows = (m) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => ({ name: k, ms: us / 1000, pctTotal: (100 * us) / totalUs, pctBusy: (100 * us) / busyUs }));
  return { totalMs: totalUs / 1000, busyMs: busyUs / 1000, functions: rows(fns), groups: rows(groups) };
}

function shortUrl(url) {
  if (!url) return '';
  return url
    .replace(/^file:\/\/.*?\/node_modules\//, 'npm:')
    .replace(/^file:\/\/.*?\/dist\//, 'dist/')
    .replace(/^node:/, 'node:');
}

function group(cf) {
  const { url, functionName } = cf;
  if (!url) {
    if (/^\((garbage collector|idle|program|root)\)$/.test(functionName)) return functionName;
    return '(native / builtin)';
  }
  let m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return `npm:${m[1]}`;
  m = /\/dist\/([^/]+)\//.exec(url);
  if (m) return `aigate dist/${m[1]}/`;
  if (/\/dist\/[^/]+\.js$/.test(url)) return 'aigate dist/*.js';
  m = /^node:internal\/([^/]+(?:\/[^/]+)?)/.exec(url);
  if (m) return `node:internal/${m[1].replace(/\.js$/, '')}`;
  m = /^node:([^/]+)/.exec(url);
  if (m) return `node:${m[1]}`;
  return url;
}

/** Call paths (up to `depth` frames) that lead to functions named `name`, by self time. */
export function callers(profile, name, { depth = 8, top = 8 } = {}) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const paths = new Map();
  let total = 0;
  for (const n of profile.nodes) {
    if (n.callFrame.functionName !== name || !n.hitCount) continue;
    const chain = [];
    for (let id = parent.get(n.id), i = 0; id !== undefined && i < depth; id = parent.get(id), i++) {
      const cf = byId.get(id).callFrame;
      chain.push(`${cf.functionName || '(anonymous)'} ${shortUrl(cf.url)}${cf.url ? `:${cf.lineNumber + 1}` : ''}`);
    }
    const key = chain.join('\n      <- ');
    paths.set(key, (paths.get(key) ?? 0) + n.hitCount);
    total += n.hitCount;
  }
  return [...paths.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([path, hits]) => `${((100 * hits) / total).toFixed(1).padStart(5)}% of ${name}\n      <- ${path}`)
    .join('\n');
}

export function formatSummary(s) {
  const line = (r) => `${r.ms.toFixed(0).padStart(8)} ms ${(r.name.startsWith('(idle)') ? '' : `${r.pctBusy.toFixed(1)}%`).padStart(6)}  ${r.name}`;
  return [
    `profile: ${s.totalMs.toFixed(0)} ms sampled, ${s.busyMs.toFixed(0)} ms busy (not idle); % of busy time`,
    '',
    'self time by where the code lives:',
    ...s.groups.map(line),
    '',
    'top functions by self time:',
    ...s.functions.map(line),
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '25' }, callers: { type: 'string' } },
  });
  if (!positionals[0]) {
    process.stderr.write('usage: node bench/lib/cpuprofile-top.mjs FILE.cpuprofile [--top N] [--callers FUNCTION]\n');
    process.exit(2);
  }
  const profile = JSON.parse(readFileSync(positionals[0], 'utf8'));
  console.log(values.callers ? callers(profile, values.callers, { top: Number(values.top) }) : formatSummary(summarise(profile, Number(values.top))));
}

// Protected-code indexes for the benches (issue #16): about `lines` lines of JavaScript from
// node_modules, the first copy of each file whole and then renamed copies (as fingerprint-eval.mjs
// --big does), built by the product's own IndexBuilder (dist/: needs `npm run build`).
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
const NM = join(ROOT, 'node_modules');

/** Code that is not in the S2 body (bench/lib/bodies.mjs: undici's sources): every lookup misses. */
export const MISS_ROOTS = ['typescript/lib', 'openai/src', '@anthropic-ai/sdk/src', 'node-forge/lib', 'ioredis/built', 'ws/lib'];
/** The S2 body's own code: every lookup hits. */
export const HIT_ROOTS = ['undici/lib'];

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

/**
 * Writes an index of `roots` to `file` (renamed copies up to `lines` lines); its size and lines.
 * `params`: build parameters other than the defaults (`{ lineAnchors: false }`: as before them).
 */
export async function buildIndex(file, label, roots, lines, params = {}) {
  const { IndexBuilder, DEFAULT_BUILD } = await import(join(ROOT, 'dist/fingerprint/build.js'));
  const { encodeIndex } = await import(join(ROOT, 'dist/fingerprint/index-file.js'));
  const files = roots.flatMap((r) => sources(join(NM, r)));
  const b = new IndexBuilder({ ...DEFAULT_BUILD, ...params, label });
  let n = 0;
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

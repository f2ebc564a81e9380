// `aigate fingerprint build PATH... --label NAME --out FILE [--exclude PATH]...` and
// `aigate fingerprint stats FILE` (SPEC §11 "Sensitive code"): builds the protected-code index the
// proxy and `aigate scan` load with inspect.fingerprints, and describes one.
import { isUtf8 } from 'node:buffer';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, extname, relative } from 'node:path';
import { DEFAULT_BUILD, IndexBuilder } from '../fingerprint/build.js';
import { decodeIndex, encodeIndex, IndexFileError } from '../fingerprint/index-file.js';
import type { Output } from './scan.js';
import { walkDirectory } from './walk.js';

/** Source files by extension; everything else (data, docs, images) is not code to protect. */
const SOURCE_EXTENSIONS = new Set(
  ('js mjs cjs jsx ts mts cts tsx vue svelte py pyi go rs java kt kts scala groovy c h cc cpp cxx hh hpp hxx cs fs ' +
    'swift m mm rb php pl pm lua r dart ex exs erl hrl hs ml mli clj cljs sql sh bash zsh ps1 tf hcl proto sol zig nim jl')
    .split(' ')
    .map((e) => `.${e}`),
);
/** Vendored, generated or built code: not the company's own, and often public. */
const SKIP_DIRS = new Set(['.git', 'node_modules', 'vendor', 'third_party', 'third-party', 'dist', 'build', 'out', 'target', '.venv', 'venv', '__pycache__', 'bower_components', 'Pods', '.gradle', '.next', 'coverage']);
const MAX_FILE_BYTES = 2 * 1024 * 1024;

export interface FingerprintBuildOptions {
  paths: string[];
  label: string;
  out: string;
  exclude: string[];
  stdout: Output;
  stderr: Output;
}

function isSource(path: string): boolean {
  const name = basename(path);
  return SOURCE_EXTENSIONS.has(extname(name).toLowerCase()) && !/\.min\.[a-z]+$/.test(name);
}

/** Every source file under `paths` (files named explicitly are taken whatever their extension). */
async function eachSource(paths: string[], onText: (path: string, text: string) => void, stderr: Output): Promise<{ errors: number; skipped: number }> {
  let errors = 0;
  let skipped = 0;
  const take = async (path: string, explicit: boolean) => {
    if (!explicit && !isSource(path)) return;
    try {
      if (statSync(path).size > MAX_FILE_BYTES) {
        skipped++;
        return;
      }
      const buf = await readFile(path);
      if (buf.subarray(0, 8000).includes(0) || !isUtf8(buf)) {
        skipped++;
        return;
      }
      onText(path, buf.toString('utf8'));
    } catch (err) {
      errors++;
      stderr.write(`aigate fingerprint: cannot read ${path}: ${(err as Error).message}\n`);
    }
  };
  for (const p of paths) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch (err) {
      errors++;
      stderr.write(`aigate fingerprint: cannot read ${p}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}\n`);
      continue;
    }
    if (!isDir) await take(p, true);
    else
      await walkDirectory(p, {
        skipDirs: SKIP_DIRS,
        onFile: (f) => take(f, false),
        onError: (f, err) => {
          errors++;
          stderr.write(`aigate fingerprint: cannot read ${f}: ${(err as Error).message}\n`);
        },
      });
  }
  return { errors, skipped };
}

export async function runFingerprintBuild(opts: FingerprintBuildOptions): Promise<number> {
  if (!/^[A-Za-z0-9_.-]+$/.test(opts.label)) {
    opts.stderr.write('aigate fingerprint build: --label must be letters, digits, _ . - (it becomes the rule id protected-code:<label>)\n');
    return 2;
  }
  const started = Date.now();
  const builder = new IndexBuilder({ ...DEFAULT_BUILD, label: opts.label });
  let files = 0;
  const base = process.cwd();
  const read = await eachSource(
    opts.paths,
    (path, text) => {
      files++;
      // Paths as the operator named them, relative where possible: they appear in audit lines.
      builder.add(relative(base, path) || path, text);
    },
    opts.stderr,
  );
  const excluded = await eachSource(opts.exclude, (_path, text) => builder.exclude(text), opts.stderr);
  if (read.errors + excluded.errors > 0) return 2;
  if (files === 0) {
    opts.stderr.write(`aigate fingerprint build: no source files under ${opts.paths.join(', ')}\n`);
    return 2;
  }
  const bytes = encodeIndex(builder.build());
  writeFileSync(opts.out, bytes, { mode: 0o640 });
  const index = decodeIndex(bytes);
  opts.stdout.write(
    `${opts.out}: label ${opts.label}, ${files} files, ${index.files.reduce((n, f) => n + f.lines, 0)} lines, ${index.hashes.length} fingerprints, ` +
      `${(bytes.length / 1048576).toFixed(1)} MiB, ${((Date.now() - started) / 1000).toFixed(1)} s` +
      (read.skipped > 0 ? ` (${read.skipped} binary or large files skipped)` : '') +
      '\n',
  );
  return 0;
}

export function runFingerprintStats(opts: { file: string; stdout: Output; stderr: Output }): number {
  let index;
  try {
    index = decodeIndex(readFileSync(opts.file));
  } catch (err) {
    const why = err instanceof IndexFileError ? err.message : (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    opts.stderr.write(`aigate fingerprint stats: ${opts.file}: ${why}\n`);
    return 1;
  }
  const lines = index.files.reduce((n, f) => n + f.lines, 0);
  const perFile = new Uint32Array(index.files.length);
  for (const id of index.fileIds) perFile[id]!++;
  const top = [...perFile.keys()].sort((a, b) => perFile[b]! - perFile[a]!).slice(0, 5);
  opts.stdout.write(
    [
      `index:        ${opts.file}`,
      `label:        ${index.label} (findings: protected-code:${index.label})`,
      `files:        ${index.files.length} (${lines} lines)`,
      `fingerprints: ${index.hashes.length} (k = ${index.k} tokens, window ${index.w})`,
      `most fingerprinted: ${top.map((i) => `${index.files[i]!.path} (${perFile[i]})`).join(', ')}`,
      '',
    ].join('\n'),
  );
  return 0;
}

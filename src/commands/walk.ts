// Walks a directory tree the way `git` sees it: .gitignore files honoured (each directory's own
// and its ancestors' up to the repository root), .git and node_modules skipped, symbolic links and
// special files not followed, entries in name order so output is stable from run to run. Shared by
// `aigate scan` and `aigate fingerprint build`.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ignore, { type Ignore } from 'ignore';

export interface WalkOptions {
  onFile(path: string): Promise<void> | void;
  onError(path: string, err: unknown): void;
  /** Directory names skipped wherever they are (default: .git and node_modules). */
  skipDirs?: ReadonlySet<string>;
}

const SKIP_DIRS: ReadonlySet<string> = new Set(['.git', 'node_modules']);

interface IgnoreLayer {
  base: string;
  rules: Ignore;
}

function toPosix(p: string): string {
  return sep === '/' ? p : p.split(sep).join('/');
}

async function loadIgnore(dir: string): Promise<IgnoreLayer | null> {
  try {
    const text = await readFile(join(dir, '.gitignore'), 'utf8');
    return { base: dir, rules: ignore().add(text) };
  } catch {
    return null;
  }
}

function isIgnored(layers: readonly IgnoreLayer[], path: string, isDir: boolean): boolean {
  for (const layer of layers) {
    const rel = toPosix(relative(layer.base, path));
    if (rel === '' || rel.startsWith('..')) continue;
    if (layer.rules.ignores(isDir ? `${rel}/` : rel)) return true;
  }
  return false;
}

/** .gitignore files of the directories above `dir`, up to the repository root (the one with .git). */
async function ancestorLayers(dir: string): Promise<IgnoreLayer[]> {
  const chain: string[] = [];
  let d = dirname(dir);
  for (let i = 0; i < 64; i++) {
    if (existsSync(join(d, '.git'))) {
      chain.push(d);
      break;
    }
    chain.push(d);
    const parent = dirname(d);
    if (parent === d) return []; // not inside a repository: parents' ignore files do not apply
    d = parent;
  }
  const layers: IgnoreLayer[] = [];
  for (const c of chain.reverse()) {
    const layer = await loadIgnore(c);
    if (layer) layers.push(layer);
  }
  return layers;
}

/**
 * Depth-first over `root`. A directory named by the caller is walked even when an enclosing
 * .gitignore ignores it (`aigate scan build/` means it): then only its own .gitignore files apply.
 */
export async function walkDirectory(root: string, opts: WalkOptions): Promise<void> {
  const skipDirs = opts.skipDirs ?? SKIP_DIRS;
  const abs = resolve(root);
  const ancestors = await ancestorLayers(abs);
  const stack: Array<{ dir: string; layers: IgnoreLayer[] }> = [{ dir: root, layers: isIgnored(ancestors, abs, true) ? [] : ancestors }];
  while (stack.length > 0) {
    const { dir, layers: parentLayers } = stack.pop()!;
    const own = await loadIgnore(dir);
    const layers = own ? [...parentLayers, { base: resolve(own.base), rules: own.rules }] : parentLayers;
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      opts.onError(dir, err);
      continue;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const subdirs: string[] = [];
    for (const e of entries) {
      const path = join(dir, e.name);
      const entryAbs = resolve(path);
      if (e.isDirectory()) {
        if (!skipDirs.has(e.name) && !isIgnored(layers, entryAbs, true)) subdirs.push(path);
      } else if (e.isFile()) {
        if (!isIgnored(layers, entryAbs, false)) await opts.onFile(path);
      }
      // Symbolic links and special files are not followed: no loops, no devices.
    }
    for (const d of subdirs.reverse()) stack.push({ dir: d, layers });
  }
}

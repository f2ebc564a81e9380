// `aigate scan [--config FILE] [--json] [PATH... | -]` (SPEC §1): the proxy's detector over files,
// directories (recursively, honouring .gitignore, skipping .git, node_modules and binary files) or
// stdin. Prints `path:line:col rule-id masked-value` per finding, or one JSON object per line.
// Exit status: 0 no findings, 1 findings, 2 usage or read error (a read error wins: a pre-commit
// hook must not pass because a file could not be read).
import { isUtf8 } from 'node:buffer';
import { existsSync } from 'node:fs';
import { lstat, open, readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ignore, { type Ignore } from 'ignore';
import { configSchema, type Config } from '../config/schema.js';
import { createInspector, type Inspector, type ScanFinding } from '../inspect/index.js';
import { markedWideText } from '../inspect/views.js';

export interface Output {
  write(chunk: string): unknown;
}

export interface ScanOptions {
  /** Loaded configuration (`--config`); defaults to the schema defaults. */
  config?: Config | undefined;
  /** Files and directories; empty or `-` means stdin. */
  paths: string[];
  json: boolean;
  stdout: Output;
  stderr: Output;
  /** Defaults to process.stdin. */
  stdin?: AsyncIterable<Buffer | string> | undefined;
}

/** Files larger than this are skipped with a warning (a generated bundle, a database dump). */
export const MAX_SCAN_FILE_BYTES = 64 * 1024 * 1024;
const SKIP_DIRS = new Set(['.git', 'node_modules']);
const BINARY_SNIFF_BYTES = 8000;

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

function looksBinary(buf: Buffer): boolean {
  // A UTF-16/32 text file is full of NULs; its byte-order mark says it is text.
  return markedWideText(buf.subarray(0, 4)) === null && buf.subarray(0, BINARY_SNIFF_BYTES).includes(0);
}

async function readStdin(stdin: AsyncIterable<Buffer | string>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stdin) chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
  return Buffer.concat(chunks);
}

class Scan {
  findings = 0;
  errors = 0;

  constructor(
    private readonly inspector: Inspector,
    private readonly opts: ScanOptions,
  ) {}

  report(path: string, findings: readonly ScanFinding[]): void {
    for (const f of findings) {
      this.findings++;
      if (this.opts.json) {
        const { rule, description, line, col, masked, action, fingerprint } = f;
        this.opts.stdout.write(`${JSON.stringify({ path, line, col, rule, description, masked, action, fingerprint })}\n`);
      } else {
        this.opts.stdout.write(`${path}:${f.line}:${f.col} ${f.rule} ${f.masked}\n`);
      }
    }
  }

  error(path: string, err: unknown): void {
    this.errors++;
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file or directory' : e.message;
    this.opts.stderr.write(`aigate scan: cannot read ${path}: ${why}\n`);
  }

  scanBuffer(path: string, buf: Buffer): void {
    const text = markedWideText(buf) ?? buf.toString(isUtf8(buf) ? 'utf8' : 'latin1');
    this.report(path, this.inspector.scanText(text));
  }

  async scanFile(path: string, explicit: boolean): Promise<void> {
    try {
      const st = await stat(path);
      if (st.size > MAX_SCAN_FILE_BYTES) {
        this.opts.stderr.write(`aigate scan: skipped ${path}: larger than ${MAX_SCAN_FILE_BYTES} bytes\n`);
        return;
      }
      const head = Buffer.alloc(Math.min(BINARY_SNIFF_BYTES, st.size));
      const fh = await open(path, 'r');
      try {
        await fh.read(head, 0, head.length, 0);
      } finally {
        await fh.close();
      }
      if (looksBinary(head)) {
        if (explicit) this.opts.stderr.write(`aigate scan: skipped ${path}: binary file\n`);
        return;
      }
      this.scanBuffer(path, await readFile(path));
    } catch (err) {
      this.error(path, err);
    }
  }

  /** Depth-first, entries in name order, so output is stable from run to run. */
  async scanDirectory(root: string): Promise<void> {
    const stack: Array<{ dir: string; layers: IgnoreLayer[] }> = [
      { dir: root, layers: await ancestorLayers(resolve(root)) },
    ];
    while (stack.length > 0) {
      const { dir, layers: parentLayers } = stack.pop()!;
      const own = await loadIgnore(dir);
      const layers = own ? [...parentLayers, { base: resolve(own.base), rules: own.rules }] : parentLayers;
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        this.error(dir, err);
        continue;
      }
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      const subdirs: string[] = [];
      for (const e of entries) {
        const path = join(dir, e.name);
        const abs = resolve(path);
        if (e.isDirectory()) {
          if (!SKIP_DIRS.has(e.name) && !isIgnored(layers, abs, true)) subdirs.push(path);
        } else if (e.isFile()) {
          if (!isIgnored(layers, abs, false)) await this.scanFile(path, false);
        }
        // Symbolic links and special files are not followed: no loops, no devices.
      }
      for (const d of subdirs.reverse()) stack.push({ dir: d, layers });
    }
  }
}

export async function runScan(opts: ScanOptions): Promise<number> {
  const config = opts.config ?? configSchema.parse({});
  let inspector: Inspector;
  try {
    inspector = createInspector(config.inspect, { fingerprintKey: config.audit.fingerprintKey });
  } catch (err) {
    opts.stderr.write(`aigate scan: ${(err as Error).message}\n`);
    return 2;
  }
  const scan = new Scan(inspector, opts);
  const paths = opts.paths.length > 0 ? opts.paths : ['-'];
  let stdinUsed = false;
  for (const path of paths) {
    if (path === '-') {
      if (stdinUsed) continue;
      stdinUsed = true;
      try {
        scan.scanBuffer('<stdin>', await readStdin(opts.stdin ?? process.stdin));
      } catch (err) {
        scan.error('<stdin>', err);
      }
      continue;
    }
    let st;
    try {
      st = await lstat(path).then((l) => (l.isSymbolicLink() ? stat(path) : l));
    } catch (err) {
      scan.error(path, err);
      continue;
    }
    if (st.isDirectory()) await scan.scanDirectory(path);
    else await scan.scanFile(path, true);
  }
  if (scan.errors > 0) return 2;
  return scan.findings > 0 ? 1 : 0;
}

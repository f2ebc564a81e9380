// `aigate scan [--config FILE] [--json] [PATH... | -]` (SPEC §1): the proxy's detector over files,
// directories (recursively, honouring .gitignore, skipping .git, node_modules and binary files) or
// stdin. Prints `path:line:col rule-id masked-value` per finding, or one JSON object per line.
// Exit status: 0 no findings, 1 findings, 2 usage or read error (a read error wins: a pre-commit
// hook must not pass because a file could not be read).
import { isUtf8 } from 'node:buffer';
import { lstat, open, readFile, stat } from 'node:fs/promises';
import { configSchema, type Config } from '../config/schema.js';
import { createInspector, type Inspector, type ScanFinding } from '../inspect/index.js';
import { markedWideText } from '../inspect/views.js';
import { walkDirectory } from './walk.js';

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
  /** No summary line on stderr. */
  quiet?: boolean | undefined;
}

/** Files larger than this are skipped with a warning (a generated bundle, a database dump). */
export const MAX_SCAN_FILE_BYTES = 64 * 1024 * 1024;
const BINARY_SNIFF_BYTES = 8000;

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
  files = 0;
  skipped = 0;
  private readonly filesWithFindings = new Set<string>();

  constructor(
    private readonly inspector: Inspector,
    private readonly opts: ScanOptions,
  ) {}

  report(path: string, findings: readonly ScanFinding[]): void {
    this.files++;
    if (findings.length > 0) this.filesWithFindings.add(path);
    for (const f of findings) {
      this.findings++;
      if (this.opts.json) {
        const { rule, description, line, col, masked, action, fingerprint, source } = f;
        this.opts.stdout.write(`${JSON.stringify({ path, line, col, rule, description, masked, action, fingerprint, ...(source !== undefined ? { source } : {}) })}\n`);
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
        this.skipped++;
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
        this.skipped++;
        if (explicit) this.opts.stderr.write(`aigate scan: skipped ${path}: binary file\n`);
        return;
      }
      this.scanBuffer(path, await readFile(path));
    } catch (err) {
      this.error(path, err);
    }
  }

  async scanDirectory(root: string): Promise<void> {
    await walkDirectory(root, {
      onFile: (path) => this.scanFile(path, false),
      onError: (path, err) => this.error(path, err),
    });
  }

  /** `aigate scan: 12 files scanned, 2 findings in 1 file, 1 skipped, 1 unreadable` */
  summary(): string {
    const n = (count: number, what: string) => `${count} ${what}${count === 1 ? '' : 's'}`;
    const parts = [`${n(this.files, 'file')} scanned`, `${n(this.findings, 'finding')} in ${n(this.filesWithFindings.size, 'file')}`];
    if (this.skipped > 0) parts.push(`${this.skipped} skipped`);
    if (this.errors > 0) parts.push(`${this.errors} unreadable`);
    return `aigate scan: ${parts.join(', ')}\n`;
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
  if (!opts.quiet) opts.stderr.write(scan.summary());
  if (scan.errors > 0) return 2;
  return scan.findings > 0 ? 1 : 0;
}

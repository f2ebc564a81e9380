// `aigate audit verify FILE...` (SPEC §11): checks the hash chains of a set of audit files.
// Exit status: 0 every chain intact, 1 a chain broken (the first break is named FILE:LINE), 2 usage
// or configuration error.
import { existsSync } from 'node:fs';
import { orderRotated, verifyAuditFiles } from '../audit/verify.js';
import type { Config } from '../config/schema.js';
import type { Output } from './scan.js';

export interface AuditVerifyOptions {
  files: string[];
  /** The configuration whose `audit.chainKey` and `audit.checkpointSeconds` apply. */
  config?: Config | undefined;
  /** Accept chains that stop without chain-end (a process killed) as warnings. */
  allowUnended: boolean;
  /** The set includes the file a running aigate writes: its chains need no chain-end yet. */
  live?: boolean;
  /** Keep the order given instead of sorting by rotation suffix. */
  keepOrder: boolean;
  stdout: Output;
  stderr: Output;
  now?: number;
}

export async function runAuditVerify(opts: AuditVerifyOptions): Promise<number> {
  if (opts.files.length === 0) {
    opts.stderr.write('aigate audit verify: name at least one audit file\n');
    return 2;
  }
  const missing = opts.files.filter((f) => !existsSync(f));
  if (missing.length > 0) {
    opts.stderr.write(`aigate audit verify: no such file: ${missing.join(', ')}\n`);
    return 2;
  }
  const files = opts.keepOrder ? opts.files : orderRotated(opts.files);
  const key = opts.config?.audit.chainKey ? Buffer.from(opts.config.audit.chainKey) : null;
  const checkpoint = opts.config?.audit.checkpointSeconds ?? 60;
  // Twice the checkpoint interval (plus the write buffer's delay): a live chain has written within it.
  const liveSeconds = opts.live && checkpoint > 0 ? 2 * checkpoint + 1 : 0;
  if (opts.live && checkpoint === 0) opts.stderr.write('warning: audit.checkpointSeconds is 0: --live cannot tell a running chain from a cut one\n');
  const result = await verifyAuditFiles(files, { key, liveSeconds, allowUnended: opts.allowUnended, ...(opts.now !== undefined ? { now: opts.now } : {}) });
  for (const w of result.warnings) opts.stderr.write(`warning: ${w}\n`);
  for (const p of result.problems) opts.stdout.write(`${p}\n`);
  if (!result.ok) return 1;
  opts.stdout.write(`ok: ${result.lines} lines in ${files.length} file(s), ${result.chains} chain(s), ${key ? 'HMAC-SHA256' : 'SHA-256 (no chainKey)'}\n`);
  return 0;
}

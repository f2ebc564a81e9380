// `aigate audit verify`: follows every chain (chain.ts) through a set of audit files, oldest first,
// and names the first line that breaks one. Files are streamed line by line (gzip through
// node:zlib), so memory stays bounded by the longest line and the number of chains, whatever the
// size of the files.
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { chainHash, unsealLine } from './chain.js';

/** A longer line is not one aigate wrote (records are bounded): reported instead of buffered. */
export const MAX_LINE_CHARS = 16 * 1024 * 1024;

export interface VerifyOptions {
  /** `audit.chainKey`, or null when the lines were hashed with plain SHA-256. */
  key: Buffer | null;
  /**
   * The set includes the file a running aigate writes: a chain without `chain-end` whose last line
   * is at most this old is a running process (it writes a checkpoint every
   * `audit.checkpointSeconds`), not a cut tail. 0 (the default, for archives): every chain must end.
   */
  liveSeconds: number;
  /** Report chains without `chain-end` (killed processes) as warnings rather than failures. */
  allowUnended: boolean;
  now?: number;
}

export interface VerifyResult {
  ok: boolean;
  /** `FILE:LINE: what` — the first break in a chain, then any chain that stops without its end. */
  problems: string[];
  warnings: string[];
  lines: number;
  chains: number;
}

interface ChainState {
  next: number;
  prev: string;
  ended: boolean;
  lastAt: string;
  lastTime: number;
}

interface LineFields {
  chain: string;
  seq: number;
  prev?: string;
  event?: string;
  time: number;
}

/**
 * Oldest first: `audit.log.2.gz, audit.log.1, audit.log` (logrotate's numbered suffixes, with or
 * without `.gz`) and `audit.log-20261206.gz, audit.log` (dateext). Names that do not share a base
 * keep the order given.
 */
export function orderRotated(files: string[]): string[] {
  const parse = (f: string) => {
    const m = /^(.*?)(?:\.(\d+)|-(\d{8,10}))?(?:\.gz)?$/.exec(f)!;
    return { base: m[1]!, n: m[2] === undefined ? null : Number(m[2]), date: m[3] ?? null };
  };
  const parsed = files.map((f, i) => ({ f, i, ...parse(f) }));
  const bases = new Set(parsed.map((p) => p.base));
  if (bases.size !== 1) return [...files];
  // Numbered: bigger is older. Dated: smaller is older. The live file (no suffix) is the newest.
  const rank = (p: (typeof parsed)[number]): [number, number | string] =>
    p.n !== null ? [0, -p.n] : p.date !== null ? [1, p.date] : [2, p.i];
  return parsed
    .sort((a, b) => {
      const [ka, va] = rank(a);
      const [kb, vb] = rank(b);
      if (ka !== kb) return ka - kb;
      return va < vb ? -1 : va > vb ? 1 : 0;
    })
    .map((p) => p.f);
}

/** Lines of a file (gunzipped when it is gzip), with whether the last one ended in a newline. */
async function* readLines(file: string): AsyncGenerator<{ text: string; complete: boolean }> {
  const raw = createReadStream(file);
  const head = await new Promise<Buffer | null>((resolve, reject) => {
    raw.once('readable', () => {
      const chunk = raw.read(2) as Buffer | null;
      if (chunk) raw.unshift(chunk);
      resolve(chunk);
    });
    raw.once('error', reject);
    raw.once('end', () => resolve(null));
  });
  const gzip = head !== null && head[0] === 0x1f && head[1] === 0x8b;
  const stream: Readable = gzip ? raw.pipe(createGunzip()) : raw;
  if (gzip) raw.on('error', (err) => stream.destroy(err));
  stream.setEncoding('utf8');
  let rest = '';
  for await (const chunk of stream as AsyncIterable<string>) {
    let start = 0;
    let nl = chunk.indexOf('\n');
    while (nl !== -1) {
      const text = rest + chunk.slice(start, nl);
      rest = '';
      yield { text, complete: true };
      start = nl + 1;
      nl = chunk.indexOf('\n', start);
    }
    rest += chunk.slice(start);
    if (rest.length > MAX_LINE_CHARS) throw new LineTooLong();
  }
  if (rest !== '') yield { text: rest, complete: false };
}

class LineTooLong extends Error {}

function fieldsOf(line: string): LineFields | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return 'not JSON';
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return 'not a JSON object';
  const o = parsed as Record<string, unknown>;
  if (typeof o.chain !== 'string' || o.chain === '') return 'no chain id';
  if (typeof o.seq !== 'number' || !Number.isSafeInteger(o.seq) || o.seq < 0) return 'no valid seq';
  if (o.prev !== undefined && typeof o.prev !== 'string') return 'prev is not a string';
  // aigate: time (ISO); ECS: @timestamp (ISO); OCSF: time (epoch ms).
  const t = o.time ?? o['@timestamp'];
  return {
    chain: o.chain,
    seq: o.seq,
    ...(o.prev !== undefined ? { prev: o.prev as string } : {}),
    ...(chainEventOf(o) !== undefined ? { event: chainEventOf(o) } : {}),
    time: typeof t === 'number' ? t : typeof t === 'string' ? Date.parse(t) : NaN,
  };
}

/** `checkpoint` / `chain-end` for a chain record in any format (aigate, ECS, OCSF), else undefined. */
function chainEventOf(o: Record<string, unknown>): string | undefined {
  const ecsEvent = typeof o.event === 'object' && o.event !== null ? (o.event as Record<string, unknown>).action : undefined;
  const name = typeof o.event === 'string' ? o.event : ecsEvent ?? (o.class_uid === 0 ? o.activity_name : undefined);
  return name === 'chain-end' || name === 'checkpoint' ? name : undefined;
}

export async function verifyAuditFiles(files: string[], opts: VerifyOptions): Promise<VerifyResult> {
  const now = opts.now ?? Date.now();
  const chains = new Map<string, ChainState>();
  const result: VerifyResult = { ok: true, problems: [], warnings: [], lines: 0, chains: 0 };
  const fail = (at: string, what: string): VerifyResult => {
    result.ok = false;
    result.problems.push(`${at}: ${what}`);
    result.chains = chains.size;
    return result;
  };

  for (const [fileIndex, file] of files.entries()) {
    let n = 0;
    let blankAt = 0;
    try {
      for await (const { text, complete } of readLines(file)) {
        n++;
        const at = `${file}:${n}`;
        if (text === '') {
          blankAt ||= n;
          continue;
        }
        if (blankAt) return fail(`${file}:${blankAt}`, 'blank line (inserted, or a line erased)');
        if (!complete) return fail(at, 'last line has no newline: the file was cut in the middle of a line');
        const sealed = unsealLine(text);
        if (!sealed) return fail(at, 'no chain hash at the end of the line: inserted or modified');
        const f = fieldsOf(text);
        if (typeof f === 'string') return fail(at, `${f}: inserted or modified`);
        const state = chains.get(f.chain);
        let prev: string;
        if (!state) {
          if (f.seq === 0) {
            if (f.prev !== undefined) return fail(at, `chain ${f.chain} seq 0 names a previous hash: modified`);
            prev = '';
          } else if (f.prev === undefined) {
            return fail(at, `chain ${f.chain} first appears at seq ${f.seq} without naming its previous hash: the lines before it were deleted`);
          } else if (fileIndex > 0) {
            return fail(at, `chain ${f.chain} first appears at seq ${f.seq}: its earlier lines are missing (a rotated file not given or deleted, or lines deleted)`);
          } else {
            // The set starts in the middle of this chain (older files were not given, or were
            // removed by retention): trusted from here on.
            prev = f.prev;
            result.warnings.push(`${at}: chain ${f.chain} starts at seq ${f.seq}; its earlier lines are in older files not given`);
          }
        } else {
          if (state.ended) return fail(at, `chain ${f.chain} continues after its chain-end: line inserted`);
          if (f.seq > state.next) {
            return fail(at, `chain ${f.chain} seq ${f.seq} where ${state.next} was expected: line(s) missing (deleted, out of order, or a rotated file missing)`);
          }
          if (f.seq < state.next) {
            return fail(at, `chain ${f.chain} seq ${f.seq} after seq ${state.next - 1}: line inserted, duplicated or out of order`);
          }
          if (f.prev !== undefined && f.prev !== state.prev) {
            return fail(at, `chain ${f.chain} seq ${f.seq} names a previous hash that is not that of seq ${f.seq - 1} (${state.lastAt}): modified`);
          }
          prev = state.prev;
        }
        if (chainHash(opts.key, prev, sealed.unsealed) !== sealed.hash) {
          const keyHint = state ? '' : opts.key ? ' (or it was written under another audit.chainKey)' : ' (or it was written with an audit.chainKey: pass the config that has it)';
          return fail(at, `chain ${f.chain} seq ${f.seq}: hash does not match: line modified${keyHint}`);
        }
        chains.set(f.chain, {
          next: f.seq + 1,
          prev: sealed.hash,
          ended: f.event === 'chain-end',
          lastAt: at,
          lastTime: f.time,
        });
        result.lines++;
      }
    } catch (err) {
      if (err instanceof LineTooLong) return fail(`${file}:${n + 1}`, `line longer than ${MAX_LINE_CHARS} characters: not an audit line`);
      const e = err as NodeJS.ErrnoException;
      return fail(file, `cannot read: ${e.code ?? e.message}`);
    }
  }

  result.chains = chains.size;
  for (const [id, s] of chains) {
    if (s.ended) continue;
    if (opts.liveSeconds > 0 && Number.isFinite(s.lastTime) && now - s.lastTime <= opts.liveSeconds * 1000) continue; // still running
    const what = `chain ${id} stops at seq ${s.next - 1} without a chain-end: its tail was cut, a newer file is missing, or its process was killed`;
    if (opts.allowUnended) result.warnings.push(`${s.lastAt}: ${what}`);
    else {
      result.ok = false;
      result.problems.push(`${s.lastAt}: ${what}`);
    }
  }
  return result;
}

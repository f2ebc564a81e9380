// Tamper evidence for the audit trail (SPEC §11): every line carries its chain, a sequence number
// and a hash over the previous line's hash and its own bytes as written.
//
// One chain per AuditLog, that is per process: with `--workers N` each worker writes its own chain
// into the shared file, and `aigate audit verify` follows each chain separately. The chain id is
// random (not host/pid/time): it is in every line, so it is kept short, and two hosts or a reused
// pid can never collide.
//
// A line is the record's JSON with `"chain"`, `"seq"` (and, on the first line a chain writes into a
// file, `"prev"`) appended, then `"hash"` last:
//
//   hash = HMAC-SHA256(audit.chainKey, prevHash + "\n" + line-without-its-hash-member)   (hex)
//   or SHA-256 of the same text without a key.
//
// `line-without-its-hash-member` is the written line with its trailing `,"hash":"<64 hex>"` cut out,
// so the verifier hashes the exact bytes written — no canonical JSON to agree on, and any format
// (aigate, ECS, OCSF) is chained the same way. The previous hash is an input rather than a field on
// every line (64 bytes a line saved); it is written out as `prev` only where a reader starts
// without it: the first line of a chain in each file, so a rotated file names the last hash of the
// file before it and can be verified on its own.
//
// Seq 0 starts a chain (a process started). A clean stop writes `event: "chain-end"`; a running
// chain writes `event: "checkpoint"` every `audit.checkpointSeconds`, so verify can tell a live
// chain (last line recent) from one whose tail was cut or whose process was killed (no chain-end,
// last line old). Without a key anybody can recompute the hashes: the chain then only shows
// accidental edits, truncation and lost files; with a key, a party without it cannot forge them.
import * as crypto from 'node:crypto';
import { createHash, createHmac, randomBytes } from 'node:crypto';

/** `,"hash":"` + 64 hex + `"}` */
const HASH_MEMBER_LENGTH = 9 + 64 + 2;
const HASH_MEMBER = /,"hash":"[0-9a-f]{64}"\}$/;

export type ChainEvent = 'checkpoint' | 'chain-end';

/** crypto.hash (Node 20.12+): one call, no Hash object, for the unkeyed chain of every line. */
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;

export function chainHash(key: Buffer | null, prev: string, unsealed: string): string {
  // One string, hashed in one call: three update() calls cost more than the concatenation.
  const text = `${prev}\n${unsealed}`;
  if (key) return createHmac('sha256', key).update(text).digest('hex');
  return oneShot ? oneShot('sha256', text, 'hex') : createHash('sha256').update(text).digest('hex');
}

/** The writer's side: seals each JSON object into a chained line. */
export class ChainSealer {
  readonly id = randomBytes(9).toString('base64url');
  private seq = 0;
  private prev = '';
  /** The next line is the first of this chain in its file: it names the previous hash. */
  private namePrev = false;

  constructor(private readonly key: Buffer | null) {}

  /** `json` is one JSON object (`{…}`, not empty); returns the line to write, newline included. */
  seal(json: string): string {
    let open = `${json.slice(0, -1)},"chain":"${this.id}","seq":${this.seq}`;
    if (this.namePrev && this.seq > 0) open += `,"prev":"${this.prev}"`;
    const hash = chainHash(this.key, this.prev, `${open}}`);
    this.prev = hash;
    this.seq++;
    this.namePrev = false;
    return `${open},"hash":"${hash}"}\n`;
  }

  /** The sinks moved to a new file (rotation): its first line of this chain names the previous hash. */
  newFile(): void {
    this.namePrev = true;
  }

  /** The line for a chain record (checkpoint, chain-end), sealed. */
  sealEvent(event: ChainEvent, time: string): string {
    return this.seal(JSON.stringify({ time, event }));
  }
}

/** The text a hash was computed over: the line without its hash member, or null if it has none. */
export function unsealLine(line: string): { unsealed: string; hash: string } | null {
  if (!HASH_MEMBER.test(line)) return null;
  const cut = line.length - HASH_MEMBER_LENGTH;
  return { unsealed: `${line.slice(0, cut)}}`, hash: line.slice(cut + 9, cut + 9 + 64) };
}

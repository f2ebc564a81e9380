// An audit record's JSON text, written out field by field: exactly what JSON.stringify(record)
// gives for a record toRecord made (same keys, same order, same escapes), at a fraction of the
// generic serialiser's work — it is on every request's path (bench/instructions.mjs: ~16k
// instructions of a ~400k request went to JSON.stringify for a 400-byte line).
import type { AuditRecord } from './log.js';
import type { Client } from '../pipeline/flow.js';

/** `s` as a JSON string: as written when nothing in it needs an escape, else JSON.stringify's. */
function str(s: string | null): string {
  if (s === null) return 'null';
  // The length read once: strings come in many representations (flat, sliced, concatenated), and
  // a property load that sees them all is a slow megamorphic lookup, once per character here.
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    // JSON.stringify escapes these (and a lone surrogate: any surrogate is left to it).
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(s);
  }
  return `"${s}"`;
}

function num(n: number): string {
  return Number.isFinite(n) ? `${n}` : 'null';
}

function clientJson(c: Client): string {
  // The shape every listener builds ({ ip, user }, then the credential stage's fingerprint);
  // anything else is left to JSON.stringify, whose key order is the object's own.
  const keys = Object.keys(c);
  const n = keys.length;
  if (n < 2 || n > 3 || keys[0] !== 'ip' || keys[1] !== 'user' || (n === 3 && keys[2] !== 'credential')) return JSON.stringify(c);
  const { ip, user, credential } = c;
  if (typeof ip !== 'string' || (user !== null && typeof user !== 'string') || (n === 3 && typeof credential !== 'string')) return JSON.stringify(c);
  return n === 3 ? `{"ip":${str(ip)},"user":${str(user)},"credential":${str(credential!)}}` : `{"ip":${str(ip)},"user":${str(user)}}`;
}

/** JSON.stringify(record) for a record made by toRecord (then masked): its keys in toRecord's order. */
export function recordJson(r: AuditRecord): string {
  // time (isoTime), id (a UUID) and the enumerations (event, mode, decision, reason) are aigate's
  // own ASCII words and digits: nothing in them to escape.
  let s =
    `{"time":"${r.time}","event":"${r.event}","id":"${r.id}","mode":"${r.mode}","client":${clientJson(r.client)}` +
    `,"route":${str(r.route)},"method":${str(r.method)},"host":${str(r.host)},"path":${str(r.path)},"status":${num(r.status)}` +
    `,"decision":"${r.decision}","reason":${r.reason === null ? 'null' : `"${r.reason}"`},"bytesIn":${num(r.bytesIn)},"bytesOut":${num(r.bytesOut)}` +
    `,"durationMs":${num(r.durationMs)},"findings":${r.findings.length === 0 ? '[]' : JSON.stringify(r.findings)}`;
  if (r.aborted !== undefined) s += `,"aborted":${JSON.stringify(r.aborted)}`;
  if (r.error !== undefined) s += `,"error":${str(r.error)}`;
  if (r.attemptedUser !== undefined) s += `,"attemptedUser":${str(r.attemptedUser)}`;
  if (r.parent !== undefined) s += `,"parent":${str(r.parent)}`;
  if (r.messages !== undefined) s += `,"messages":${JSON.stringify(r.messages)}`;
  if (r.protocol !== undefined) s += `,"protocol":${str(r.protocol)}`;
  return `${s}}`;
}

// Secrets the tests send through aigate: random each run (so a fingerprint seen in one test says
// nothing in another) and valid (a GitHub classic token whose CRC32 checksum verifies, so the
// github-pat rule must report it).
import { randomBytes } from 'node:crypto';
import { base62, crc32 } from '../../src/inspect/checksum.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A fresh, checksum-valid GitHub personal access token (classic). */
export function githubToken(): string {
  const body = Array.from(randomBytes(30), (b) => ALPHABET[b % 62]).join('');
  return `gh${'p_'}${body}${base62(crc32(body), 6)}`;
}

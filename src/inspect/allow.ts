// What is not a secret although it sits where one could: placeholders, references to the
// environment or a secret store, documented example values, hashes and public material. Shared by
// all rules; generic (keyword = "value") rules add stop words and entropy on top (rules/generic.ts).
import { createHash } from 'node:crypto';

const asciiCounts = new Int32Array(128);

/** Shannon entropy in bits per character. */
export function shannonEntropy(s: string): number {
  const n = s.length;
  if (n === 0) return 0;
  let other: Map<number, number> | null = null;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 128) asciiCounts[c]!++;
    else {
      other ??= new Map();
      other.set(c, (other.get(c) ?? 0) + 1);
    }
  }
  let h = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128) continue;
    const k = asciiCounts[c]!;
    if (k === 0) continue; // already counted
    const p = k / n;
    h -= p * Math.log2(p);
    asciiCounts[c] = 0;
  }
  if (other) {
    for (const k of other.values()) {
      const p = k / n;
      h -= p * Math.log2(p);
    }
  }
  return h;
}

/**
 * Documented example values, stored as SHA-256 prefixes so that this repository does not itself
 * contain key-shaped strings: AWS's AKIAIOSFODNN7EXAMPLE and its secret, the Azurite storage
 * emulator key, jwt.io's sample token, GitHub's docs token, Google's docs API key, Mailgun's docs key,
 * and the example tokens and client credentials of RFC 6749 (OAuth 2.0) and RFC 6750.
 */
const DOCUMENTED_EXAMPLES = new Set([
  '1a5d44a2dca19669d72edf4c4f1c27c4',
  '78314b11be2e581549ac1c4f616563fa',
  '0011cc25eb4320717494d2703e8cba85',
  '7f75367e7881255134e1375e723d1dea',
  '3543c50b0cb9cea8e55eb1f529b79f04',
  'bc3ae723f57c6b9e3fd80b699fcc420f',
  '1021ad463a161d69de63ef74566407b9',
  '9c846fdf0fa8955c377d0301542ee20e',
  '6c96130f130ab0d6d158397e24d2bcc1',
  '00cf4c781dc37003f7c7dd7d4c9a6ef1',
  'ca7459e2b26776de081b9a07e40227fd',
  '9e309cccd311ea64d04133daf7760f71',
  'ad71fb4165536675d80a8bbfe957697e',
  'b8e148545b13c78bc74da2f1a7275dd7',
]);

/** Lengths of the documented examples: only a value of one of these lengths is hashed. */
const DOCUMENTED_LENGTHS = new Set([10, 15, 20, 22, 28, 36, 39, 40, 88, 155]);

export function isDocumentedExample(value: string): boolean {
  if (!DOCUMENTED_LENGTHS.has(value.length)) return false;
  return DOCUMENTED_EXAMPLES.has(createHash('sha256').update(value).digest('hex').slice(0, 32));
}

// Markers long enough not to occur by chance inside random key material.
const STRONG_MARKERS =
  /example|placeholder|changeme|change[_-]me|redacted|dummy|sample|not[_-]?a[_-]?real|notreal|lorem|ipsum|xxxxx|\*\*\*|…|insert[_-]?(?:your|here)|replace[_-]?(?:me|with|this)|your[_-]?(?:own[_-]?)?(?:api|secret|token|key|pass|access|client|app|auth|private|account|personal|bot|webhook|stripe|slack|github|aws|openai|real)|_here(?:$|[^a-z])|(?:^|[^a-z])here[_-]|goes[_-]?here|fixme|secret123|password1|p@ssw0rd|passw0rd|qwerty/i;

// Short words: only as whole words (neighbours are not letters), e.g. `test-key`, `my_fake_123`.
const WEAK_WORDS = /(?:^|[^a-z])(?:test|testing|fake|demo|mock|temp|todo|foo|bar|baz|abc|xyz|sample|none|null|nil|undefined|tbd|tbc)(?:$|[^a-z])/i;

/** A run of the same character, or of a short cycle: `aaaaaaaa`, `abababab`, `01010101`. */
function hasLongRepeat(s: string, min: number): boolean {
  let run = 1;
  for (let i = 1; i < s.length; i++) {
    if (s.charCodeAt(i) === s.charCodeAt(i - 1)) {
      if (++run >= min) return true;
    } else run = 1;
  }
  return false;
}

/**
 * Placeholders and documented examples. `random: true` for values whose characters are random by
 * construction (a fixed-format token body, a generated password), where what is short is chance,
 * not a placeholder: no weak words (`…3foo7…` is in 0.16% of random OpenAI keys), no `...` (an
 * Azure secret's alphabet has `.`), and a run must be 10 characters, not 6 (six equal hex digits
 * are in 0.006% of 64-digit keys). A hand-typed placeholder in such a format has low entropy,
 * which the rule's own validator refuses.
 */
export function isPlaceholder(value: string, opts: { random?: boolean } = {}): boolean {
  const random = opts.random === true;
  if (STRONG_MARKERS.test(value) || (!random && value.includes('...'))) return true;
  if (!random && value.length <= 256 && WEAK_WORDS.test(value)) return true;
  if (hasLongRepeat(value, random ? 10 : 6)) return true;
  if (/^<[^<>]*>$|^\[[A-Za-z _-]*\]$|^\{[A-Za-z _-]*\}$/.test(value)) return true;
  return isDocumentedExample(value);
}

// A value that names where the secret lives instead of being it.
const REFERENCE =
  /\$\{[^}]{0,200}\}|\{\d{1,2}\}|\$\(|\{\{|\}\}|%\(|^\$[A-Za-z_][A-Za-z0-9_]*$|^%[A-Za-z_][A-Za-z0-9_]*%$|^#\{|^<%|^![A-Za-z_]{1,32}[ \t]|^!(?:Ref|Sub|GetAtt|ImportValue)$|^(?:ENC|enc)\[|^vault:|^arn:aws[a-z-]*:|^projects\/[^/]+\/secrets\/|^ref\+|^op:\/\/|^@Microsoft\.KeyVault|^(?:env|secret|secrets|ssm|file|aws-secretsmanager|gcp-secretmanager)[:.]|^process\.env\b|^os\.(?:environ|getenv)\b|^System\.getenv\b|^ENV\[|^getenv\(|^env\(|\bsecretKeyRef\b/;

export function isReference(value: string): boolean {
  return REFERENCE.test(value);
}

/** Hash digests with their algorithm tag, password hashes, SRI strings, UUIDs. */
const HASH_LIKE =
  /^(?:sha1|sha224|sha256|sha384|sha512|md5|blake2b?|xxh64)[:=-][A-Za-z0-9+/=_-]{16,}$|^\$(?:2[abxy]?|5|6|argon2(?:id|i|d)|scrypt|pbkdf2[a-z0-9-]*)\$|^pbkdf2_sha\d+\$|^\{(?:SSHA|SHA|SSHA256|SSHA512|bcrypt|crypt|MD5|SMD5|PBKDF2)\}/i;

export function isHashLike(value: string): boolean {
  return HASH_LIKE.test(value);
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Public keys and certificates, which are meant to be shared. */
export function isPublicMaterial(value: string): boolean {
  return (
    /^(?:ssh-(?:rsa|dss|ed25519)|ecdsa-sha2-nistp\d+|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) AAAA/.test(value) ||
    /-----BEGIN (?:CERTIFICATE|PUBLIC KEY|RSA PUBLIC KEY|X509 CRL|CERTIFICATE REQUEST|NEW CERTIFICATE REQUEST|PGP PUBLIC KEY BLOCK|SSH2 PUBLIC KEY)-----/.test(value)
  );
}

export function charClasses(s: string): { lower: boolean; upper: boolean; digit: boolean; symbol: boolean; space: boolean } {
  let lower = false;
  let upper = false;
  let digit = false;
  let symbol = false;
  let space = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 97 && c <= 122) lower = true;
    else if (c >= 65 && c <= 90) upper = true;
    else if (c >= 48 && c <= 57) digit = true;
    else if (c === 32 || c === 9) space = true;
    else symbol = true;
  }
  return { lower, upper, digit, symbol, space };
}

/**
 * Entropy close to what random characters from the value's own alphabet would give: hex is judged
 * against 4 bits per character, base62 against ~5.9, and short values against log2(length).
 */
export function looksRandom(value: string, ratio = 0.75): boolean {
  const c = charClasses(value);
  let alphabet: number;
  if (/^[0-9a-f]+$/.test(value) || /^[0-9A-F]+$/.test(value)) alphabet = 16;
  else alphabet = (c.lower ? 26 : 0) + (c.upper ? 26 : 0) + (c.digit ? 10 : 0) + (c.symbol ? 4 : 0);
  const max = Math.log2(Math.max(2, Math.min(alphabet, value.length)));
  return shannonEntropy(value) >= ratio * max;
}

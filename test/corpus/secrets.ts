// Fake but format-valid secrets, built at test time from a seeded PRNG so that no live-looking
// credential is ever committed (GitHub push protection and scanners would rightly flag them):
// prefixes are assembled from pieces, bodies are random, checksums are computed.
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { base62, crc32 } from '../../src/inspect/checksum.js';

export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 1;
  }
  /** mulberry32 */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [0, k); a property, so `rng.below` can be handed around on its own. */
  readonly below = (k: number): number => Math.floor(this.next() * k);
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
  str(alphabet: string, n: number): string {
    let out = '';
    for (let i = 0; i < n; i++) out += alphabet[Math.floor(this.next() * alphabet.length)]!;
    return out;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(this.next() * 256);
    return b;
  }
}

export const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
export const UPPER_ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
export const HEX = '0123456789abcdef';
export const B64 = `${ALNUM}+/`;
export const B64URL = `${ALNUM}-_`;
export const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
export const DIGITS = '0123456789';

/** Random string from `alphabet` that has at least one char of each class present in the alphabet. */
function mixed(rng: Rng, alphabet: string, n: number): string {
  for (;;) {
    const s = rng.str(alphabet, n);
    const ok =
      (!/[A-Z]/.test(alphabet) || /[A-Z]/.test(s)) &&
      (!/[a-z]/.test(alphabet) || /[a-z]/.test(s)) &&
      (!/[0-9]/.test(alphabet) || /[0-9]/.test(s));
    if (ok) return s;
  }
}

const P = {
  // Split so that no committed line carries a complete token prefix next to a body.
  ghp: 'gh' + 'p_',
  gho: 'gh' + 'o_',
  ghu: 'gh' + 'u_',
  ghs: 'gh' + 's_',
  ghr: 'gh' + 'r_',
  githubPat: 'github' + '_pat_',
  glpat: 'gl' + 'pat-',
  glrt: 'gl' + 'rt-',
  xoxb: 'xo' + 'xb-',
  xoxp: 'xo' + 'xp-',
  xapp: 'xa' + 'pp-',
  skLive: 'sk' + '_live_',
  rkLive: 'rk' + '_live_',
  whsec: 'wh' + 'sec_',
  skProj: 's' + 'k-proj-',
  sk: 's' + 'k-',
  skAnt: 's' + 'k-ant-api03-',
  npm: 'np' + 'm_',
  pypi: 'pypi-' + 'AgEIcHlwaS5vcmc',
  sg: 'S' + 'G.',
  aiza: 'AI' + 'za',
  gocspx: 'GOC' + 'SPX-',
  hvs: 'hv' + 's.',
  shpat: 'shp' + 'at_',
  dop: 'do' + 'p_v1_',
  hf: 'h' + 'f_',
  gsk: 'gs' + 'k_',
  xai: 'xa' + 'i-',
  akia: 'AK' + 'IA',
  asia: 'AS' + 'IA',
};

export function githubClassic(rng: Rng, prefix: keyof typeof P = 'ghp', valid = true): string {
  const body = rng.str(ALNUM, 30);
  let sum = base62(crc32(body), 6);
  if (!valid) sum = sum.slice(0, 5) + (sum[5] === 'A' ? 'B' : 'A');
  return P[prefix] + body + sum;
}

export function npmToken(rng: Rng): string {
  const body = rng.str(ALNUM, 30);
  return P.npm + body + base62(crc32(body), 6);
}

function b64(buf: Buffer): string {
  return buf.toString('base64');
}

export interface PemKeys {
  rsa: string;
  pkcs8: string;
  ec: string;
  ed25519: string;
  encrypted: string;
  dsa: string;
  openssh: string;
  publicKey: string;
  ecPublicKey: string;
  sshPublic: string;
}

let keyCache: PemKeys | null = null;

/** Real key pairs in every PEM flavour the rule knows, generated once per process (never written to disk). */
export function pemKeys(): PemKeys {
  if (keyCache) return keyCache;
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ed = generateKeyPairSync('ed25519');
  const dsaBody = b64(Buffer.concat([Buffer.from([0x30, 0x82, 0x01, 0xbb]), new Rng(7).bytes(440)]));
  const opensshBody = b64(Buffer.concat([Buffer.from('openssh-key-v1\0'), new Rng(9).bytes(380)]));
  const wrap = (label: string, body: string): string =>
    `-----BEGIN ${label}-----\n${body.match(/.{1,64}/g)!.join('\n')}\n-----END ${label}-----`;
  keyCache = {
    rsa: rsa.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString().trim(),
    pkcs8: rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString().trim(),
    ec: ec.privateKey.export({ type: 'sec1', format: 'pem' }).toString().trim(),
    ed25519: ed.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString().trim(),
    encrypted: rsa.privateKey
      .export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'corpus' })
      .toString()
      .trim(),
    dsa: wrap('DSA PRIVATE KEY', dsaBody),
    openssh: wrap('OPENSSH PRIVATE KEY', opensshBody),
    publicKey: rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString().trim(),
    ecPublicKey: ec.publicKey.export({ type: 'spki', format: 'pem' }).toString().trim(),
    sshPublic: `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${b64(new Rng(3).bytes(32)).slice(0, 43)} dev@laptop`,
  };
  return keyCache;
}

export function jwt(rng: Rng): string {
  const enc = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const header = enc({ alg: rng.pick(['HS256', 'RS256', 'ES256']), typ: 'JWT' });
  const payload = enc({
    sub: `user_${rng.str(DIGITS, 6)}`,
    iss: rng.pick(['https://auth.internal.acme.io', 'accounts.acme.dev']),
    exp: 1_900_000_000 + rng.int(0, 1_000_000),
    scope: rng.pick(['read write', 'admin', 'repo']),
  });
  const sig = createHmac('sha256', rng.bytes(16)).update(`${header}.${payload}`).digest('base64url');
  return `${header}.${payload}.${sig}`;
}

/** Password-like: letters, digits and a few symbols, with at least a digit. */
export function password(rng: Rng, n = rng.int(10, 18)): string {
  const s = mixed(rng, `${ALNUM}!#%*-_+`, n);
  return /\d/.test(s) ? s : `${s}7`;
}

export function urlPassword(rng: Rng): string {
  return mixed(rng, ALNUM, rng.int(12, 20));
}

export const make = {
  awsKeyId: (rng: Rng) => rng.pick([P.akia, P.asia]) + rng.str(BASE32, 16),
  awsSecret: (rng: Rng) => mixed(rng, B64, 40),
  gcpApiKey: (rng: Rng) => P.aiza + 'Sy' + rng.str(B64URL, 33),
  gcpOauth: (rng: Rng) => P.gocspx + mixed(rng, B64URL, 28),
  azureStorageKey: (rng: Rng) => b64(rng.bytes(64)),
  azureSharedKey: (rng: Rng) => b64(rng.bytes(32)),
  azureSasSig: (rng: Rng) => encodeURIComponent(b64(rng.bytes(32))),
  azureAdSecret: (rng: Rng) => rng.str(ALNUM, 3) + rng.str(DIGITS, 1) + 'Q~' + mixed(rng, `${ALNUM}_.~-`, 34),
  githubPat: (rng: Rng) => githubClassic(rng, 'ghp'),
  githubOauth: (rng: Rng) => githubClassic(rng, 'gho'),
  githubApp: (rng: Rng) => githubClassic(rng, rng.pick(['ghu', 'ghs'] as const)),
  githubRefresh: (rng: Rng) => githubClassic(rng, 'ghr'),
  githubFineGrained: (rng: Rng) => P.githubPat + mixed(rng, ALNUM, 22) + '_' + mixed(rng, ALNUM, 59),
  gitlabPat: (rng: Rng) => P.glpat + mixed(rng, `${ALNUM}_-`, 20),
  gitlabRunner: (rng: Rng) => P.glrt + mixed(rng, `${ALNUM}_-`, 20),
  slackBot: (rng: Rng) => `${P.xoxb}${rng.str(DIGITS, 12)}-${rng.str(DIGITS, 13)}-${mixed(rng, ALNUM, 24)}`,
  slackUser: (rng: Rng) =>
    `${P.xoxp}${rng.str(DIGITS, 12)}-${rng.str(DIGITS, 12)}-${rng.str(DIGITS, 13)}-${rng.str(HEX, 32)}`,
  slackApp: (rng: Rng) => `${P.xapp}1-A${rng.str(UPPER_ALNUM, 10)}-${rng.str(DIGITS, 13)}-${rng.str(HEX, 64)}`,
  slackWebhook: (rng: Rng) =>
    `hooks.slack.com/services/T${rng.str(UPPER_ALNUM, 8)}/B${rng.str(UPPER_ALNUM, 10)}/${mixed(rng, ALNUM, 24)}`,
  stripeSecret: (rng: Rng) => P.skLive + mixed(rng, ALNUM, rng.pick([24, 99])),
  stripeRestricted: (rng: Rng) => P.rkLive + mixed(rng, ALNUM, 99),
  stripeWebhook: (rng: Rng) => P.whsec + mixed(rng, ALNUM, 32),
  openaiProject: (rng: Rng) =>
    P.skProj + mixed(rng, `${ALNUM}_-`, 74) + 'T3Blbk' + 'FJ' + mixed(rng, `${ALNUM}_-`, 74),
  openaiLegacy: (rng: Rng) => P.sk + mixed(rng, ALNUM, 20) + 'T3Blbk' + 'FJ' + mixed(rng, ALNUM, 20),
  anthropic: (rng: Rng) => P.skAnt + mixed(rng, `${ALNUM}_-`, 93) + 'AA',
  huggingface: (rng: Rng) => P.hf + mixed(rng, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 34),
  groq: (rng: Rng) => P.gsk + mixed(rng, ALNUM, 52),
  xai: (rng: Rng) => P.xai + mixed(rng, ALNUM, 80),
  npm: (rng: Rng) => npmToken(rng),
  pypi: (rng: Rng) => P.pypi + mixed(rng, B64URL, rng.int(120, 180)),
  sendgrid: (rng: Rng) => `${P.sg}${mixed(rng, `${ALNUM}_-`, 22)}.${mixed(rng, `${ALNUM}_-`, 43)}`,
  twilioKeySid: (rng: Rng) => 'SK' + rng.str(HEX, 32),
  twilioAuthToken: (rng: Rng) => rng.str(HEX, 32),
  mailgun: (rng: Rng) => 'key-' + rng.str(HEX, 32),
  vault: (rng: Rng) => P.hvs + mixed(rng, `${ALNUM}_-`, 90),
  datadogApi: (rng: Rng) => rng.str(HEX, 32),
  datadogApp: (rng: Rng) => rng.str(HEX, 40),
  shopify: (rng: Rng) => P.shpat + rng.str(HEX, 32),
  digitalocean: (rng: Rng) => P.dop + rng.str(HEX, 64),
  jwt,
  opaque: (rng: Rng, n = rng.int(24, 40)) => mixed(rng, ALNUM, n),
  hexKey: (rng: Rng, n = 32) => rng.str(HEX, n),
  password,
  urlPassword,
};

// Credentials recognised by their structure rather than a vendor prefix: PEM/OpenSSH private key
// blocks, JSON Web Tokens, passwords inside connection URLs and HTTP Authorization values.
import { charClasses, isDocumentedExample, isPlaceholder, isReference, looksRandom, shannonEntropy } from '../allow.js';
import type { Rule } from './types.js';

const BASE64_LINE = /^[A-Za-z0-9+/=]*$/;

/**
 * A PEM body: lines of base64 separated by real newlines or `\n` escapes (a key pasted inside a
 * JSON or shell string). Without an END line (a truncated paste still leaks key material) the
 * secret ends after the last line that is pure base64, so trailing prose is not swallowed.
 */
function validatePem(value: string): boolean | string {
  const hasEnd = /-----END[ A-Z0-9]{1,40}-----$/.test(value);
  const headerEnd = value.indexOf('-----', 11) + 5;
  const bodyText = hasEnd ? value.slice(headerEnd, value.lastIndexOf('-----END')) : value.slice(headerEnd);
  const lines = bodyText.split(/\\r\\n|\\n|\r?\n/);
  let kept = value.length;
  if (!hasEnd) {
    // Cut at the first line that is not base64 (trailing prose) once there is key material.
    let offset = headerEnd;
    let material = 0;
    for (const line of lines) {
      const t = line.trim();
      const isHeader = /^[A-Za-z-]{1,32}: /.test(t);
      if (!isHeader && !BASE64_LINE.test(t)) break;
      if (!isHeader) material += t.length;
      offset += line.length;
      offset = advancePastBreak(value, offset);
      kept = offset;
    }
    if (material < 128) return false;
  }
  const body = lines
    .filter((l) => !/^[A-Za-z-]{1,32}: /.test(l.trim()))
    .join('')
    .replace(/[\s=]/g, '');
  if (body.length < 64) return false;
  if (/x{8,}|A{16,}|EXAMPLE|REDACTED|\.\.\./i.test(body)) return false;
  if (shannonEntropy(body) < 4.5) return false;
  return hasEnd ? true : value.slice(0, kept).replace(/(?:\\r\\n|\\n|\s)+$/, '');
}

function advancePastBreak(s: string, i: number): number {
  if (s.startsWith('\\r\\n', i)) return i + 4;
  if (s.startsWith('\\n', i)) return i + 2;
  if (s.startsWith('\r\n', i)) return i + 2;
  if (s.startsWith('\n', i)) return i + 1;
  return i;
}

function base64UrlJson(segment: string): unknown {
  try {
    return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

function validateJwt(value: string): boolean {
  const [header, payload, signature] = value.split('.');
  if (signature?.startsWith('eyJ')) return false; // a signature is random bytes, not base64 JSON
  const h = base64UrlJson(header ?? '');
  if (typeof h !== 'object' || h === null || Array.isArray(h)) return false;
  const alg = (h as { alg?: unknown }).alg;
  if (typeof alg !== 'string' || alg.toLowerCase() === 'none') return false;
  const p = base64UrlJson(payload ?? '');
  if (typeof p !== 'object' || p === null) return false;
  // jwt.io's and similar docs samples.
  const claims = p as { sub?: unknown; name?: unknown };
  if (claims.sub === '1234567890' && claims.name === 'John Doe') return false;
  return !isDocumentedExample(value);
}

// Passwords in URLs that are documentation or stock development defaults, not secrets.
const URL_STOP_PASSWORDS = new Set([
  'password', 'pass', 'passwd', 'pwd', 'pw', 'p', 'secret', 'changeme', 'admin', 'root', 'postgres', 'mysql', 'guest',
  'redis', 'user', 'username', 'test', 'example', 'xxx', 'foo', 'bar', 'pass123', 'password123', 'token', 'apikey',
  'api_key', 'key', 'mypassword', 'yourpassword', 'sa', 'demo', 'rabbitmq', 'mongo', 'mongodb', 'minio', 'minio123',
  'minioadmin',
]);

function validateUrlPassword(value: string, ctx: { text: string; keywordAt: number; match: RegExpExecArray }): boolean {
  const before = ctx.text.slice(Math.max(0, ctx.keywordAt - 32), ctx.keywordAt);
  if (!/(?:^|[^A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{1,30}$/.test(before)) return false; // needs a scheme
  const user = ctx.match[1] ?? '';
  let decoded = value;
  try {
    decoded = decodeURIComponent(value);
  } catch {
    // keep as is
  }
  if (URL_STOP_PASSWORDS.has(decoded.toLowerCase()) || decoded === user) return false;
  if (/passw(?:or)?d|secret/i.test(decoded)) return false; // authpassword, my-secret: documentation
  // A generated password (12+ characters mixing cases and digits) spells `foo` or `xyz` between
  // digits by chance: only the long markers apply to it; the short words catch `test123`, `demo`.
  const c = charClasses(decoded);
  const generated = decoded.length >= 12 && c.upper && c.lower && c.digit;
  if (decoded.length < 3 || isPlaceholder(decoded, { random: generated }) || isReference(decoded)) return false;
  if (/^\d{1,5}$/.test(decoded)) return false; // host:port@… is not a password
  return !/^\*+$/.test(decoded);
}

function validateAuthorization(value: string, ctx: { match: RegExpExecArray }): boolean {
  if (ctx.match[2] !== undefined) {
    // Basic: base64 of user:password.
    let decoded: string;
    try {
      decoded = Buffer.from(value, 'base64').toString('latin1');
    } catch {
      return false;
    }
    const colon = decoded.indexOf(':');
    if (colon <= 0 || !/^[\x20-\x7e]+$/.test(decoded)) return false;
    const password = decoded.slice(colon + 1);
    return password.length >= 3 && !URL_STOP_PASSWORDS.has(password.toLowerCase()) && !isPlaceholder(password);
  }
  const c = charClasses(value);
  return value.length >= 20 && c.digit && (c.lower || c.upper) && looksRandom(value) && !isPlaceholder(value);
}

export const STRUCTURAL_RULES: Rule[] = [
  {
    id: 'private-key',
    description: 'PEM or OpenSSH private key block (RSA, EC, DSA, OPENSSH, PKCS#8, encrypted, PGP)',
    keywords: ['-----begin '],
    pattern: new RegExp(
      '-----BEGIN (?:[A-Z0-9]{1,12} ){0,3}PRIVATE KEY(?: BLOCK)?-----' +
        // headers of legacy encrypted PEM and PGP blocks, e.g. Proc-Type: 4,ENCRYPTED
        '(?:[ \\t]{0,8}(?:\\\\r)?(?:\\\\n|\\r?\\n)[A-Za-z-]{1,32}: [^\\n\\\\]{1,128}){0,4}' +
        // the base64 body, with real or escaped line breaks
        '[A-Za-z0-9+/=\\s\\\\]{64,16384}' +
        '(?:-----END (?:[A-Z0-9]{1,12} ){0,3}PRIVATE KEY(?: BLOCK)?-----)?',
    ),
    priority: 2,
    ownPlaceholderChecks: true,
    validate: validatePem,
  },
  {
    id: 'jwt',
    description: 'JSON Web Token',
    keywords: ['eyj'],
    pattern: /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,2048}\.eyJ[A-Za-z0-9_-]{8,8192}\.[A-Za-z0-9_-]{16,2048}(?![A-Za-z0-9_-])/,
    maskPrefix: 3,
    priority: 2,
    ownPlaceholderChecks: true,
    validate: validateJwt,
  },
  {
    id: 'url-credentials',
    description: 'Password in a connection URL (postgres://user:password@host, https://user:password@host, …)',
    keywords: ['://'],
    pattern: /:\/\/([A-Za-z0-9._~%!$&*+,;=-]{0,64}):([^\s@/?#'"`<>\\[\]|^]{1,128})@(?=[A-Za-z0-9[_.-])/,
    secretGroup: 2,
    priority: 2,
    ownPlaceholderChecks: true,
    validate: (v, ctx) => validateUrlPassword(v, ctx),
  },
  {
    id: 'http-auth-header',
    description: 'Credentials in an HTTP Authorization value (Bearer, token or Basic)',
    keywords: ['authorization', 'bearer', 'basic'],
    pattern:
      /(?:authorization["']?[ \t]{0,4}[:=,][ \t]{0,4}["']?[ \t]{0,4})?(?:(?:bearer|token)[ \t]{1,4}([A-Za-z0-9._~+/-]{20,2048}=*)|basic[ \t]{1,4}([A-Za-z0-9+/]{12,1024}={0,2}))(?![A-Za-z0-9._~+/=-])/i,
    priority: 2,
    validate: (v, ctx) => validateAuthorization(v, ctx),
  },
];

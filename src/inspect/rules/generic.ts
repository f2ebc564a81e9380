// The five assignment patterns of the original guide — a password, api key, private key, token or
// secret assigned a literal — generalised over the languages and formats developers paste: code
// (`password = "…"`, `token := "…"`, `'api_key' => '…'`, `put("secret", "…")`), JSON and YAML
// (`"password": "…"`, `password: …`), .env/properties/shell/Dockerfile (`API_KEY=…`,
// `export TOKEN=…`, `ENV SECRET=…`), docker-compose lists (`- DB_PASSWORD=…`), Terraform
// (`password = "…"`), XML (`<password>…</password>`), CLI flags (`--password=…`), query strings
// (`?api_key=…`) and ADO.NET/JDBC connection strings (`…;Password=…;`).
//
// Keyword = literal is the noisiest shape there is, so precision comes from checks around the
// regular expression: the keyword must be a whole word of the identifier, the identifier must not
// name something else (`password_hash`, `max_tokens`, `token_url`), an unquoted value is accepted
// only where a config format allows one (line-leading key, flag, query, connection string), and the
// value must look like a secret (length, entropy, character classes) and not like a placeholder,
// reference, type name or expression.
import { UUID, charClasses, isHashLike, isPlaceholder, isPublicMaterial, isReference, shannonEntropy } from '../allow.js';
import { STOP_FIRST_WORDS, STOP_LAST_WORDS, STOP_VALUES } from './stop-words.js';
import type { MatchContext, Rule } from './types.js';

interface Family {
  id: string;
  description: string;
  /** [first, second] word pairs become keywords first_second, first-second, firstsecond. */
  keywords: string[];
  /** Regular-expression source for the keyword word itself (with allowed continuations). */
  word: string;
  /** A value containing one of these names the secret instead of being it. */
  selfReference: RegExp;
  strength: 'password' | 'key';
  uuidIsNotSecret: boolean;
}

function joined(pairs: Array<[string, string]>): string[] {
  return pairs.flatMap(([a, b]) => [`${a}_${b}`, `${a}-${b}`, `${a}.${b}`, `${a}${b}`]);
}

const FAMILIES: Family[] = [
  {
    id: 'generic-password',
    description: 'Password assigned a literal value',
    keywords: ['pass', 'pwd'],
    word: 'pass(?:words?|wd|phrase)?|pwd',
    selfReference: /pass|pwd/i,
    strength: 'password',
    uuidIsNotSecret: false,
  },
  {
    id: 'generic-api-key',
    description: 'API key assigned a literal value',
    keywords: joined([
      ['api', 'key'],
      ['access', 'key'],
      ['auth', 'key'],
      ['app', 'key'],
      ['master', 'key'],
      ['encryption', 'key'],
      ['signing', 'key'],
    ]),
    word: '(?:api|access|auth|app|master|encryption|signing)[_.-]?keys?',
    selfReference: /api[_-]?key|access[_-]?key|auth[_-]?key|app[_-]?key/i,
    strength: 'key',
    uuidIsNotSecret: false,
  },
  {
    id: 'generic-private-key',
    description: 'Private key assigned a literal value',
    keywords: joined([['private', 'key']]),
    word: 'private[_.-]?keys?',
    selfReference: /private|[_-]key/i,
    strength: 'key',
    uuidIsNotSecret: false,
  },
  {
    id: 'generic-token',
    description: 'Token assigned a literal value',
    keywords: ['token'],
    word: 'tokens?',
    selfReference: /token/i,
    strength: 'key',
    uuidIsNotSecret: true,
  },
  {
    id: 'generic-secret',
    description: 'Secret or credential assigned a literal value',
    keywords: ['secret', 'credential'],
    word: 'secrets?|credentials?',
    selfReference: /secret|credential/i,
    strength: 'key',
    uuidIsNotSecret: false,
  },
];

// Group numbers used by the validator (all groups are numbered left to right).
const G_WORD = 1;
const G_TAIL = 2;
const G_SEP = 3;
const G_DQ = 4;
const G_SQ = 5;
const G_BQ = 6;
const G_BARE = 7;

function patternFor(word: string): RegExp {
  return new RegExp(
    `(${word})` +
      // rest of the identifier: passwordHash, token_url, secret.value. Taken atomically (look-ahead
      // capture + back-reference): nothing after it can start with these characters, so giving
      // some back could never help, and on a keyword repeated a million times it would cost 40
      // steps per attempt.
      `(?=([\\w.\\-]{0,40}))\\2` +
      // closing quote of a quoted key, or ] of config["password"], or TS optional `?`
      `\\??(?:["'\`]\\]?|\\])?` +
      `[ \\t]{0,4}` +
      // separator: typed declaration (`: str =`), :=, =>, comparisons, : = , >
      `(:[ \\t]{0,4}&?[A-Za-z_][\\w.<>\\[\\]|, ]{0,40}?[ \\t]{0,4}=(?![=>])|:=|=>|===?|!==?|[:=,>])` +
      `[ \\t]{0,8}` +
      `(?:(?:[bBrRuUfF]{1,2}|@)?"([^"\\n]{1,256})"` +
      `|(?:[bBrRuUfF]{1,2}|@)?'([^'\\n]{1,256})'` +
      '|`([^`\\n]{1,256})`' +
      `|([^\\s"'\`<]{1,128}))`,
    'i',
  );
}

function isAlnum(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}
function isUpper(c: number): boolean {
  return c >= 65 && c <= 90;
}
function isLowerOrDigit(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 48 && c <= 57);
}
function isIdentChar(c: number): boolean {
  return isAlnum(c) || c === 95 /* _ */ || c === 46 /* . */ || c === 45 /* - */ || c === 36 /* $ */;
}

/** Splits `DB_PASSWORD`, `dbPassword`, `db.password-hash` into lower-case words. */
export function identifierWords(identifier: string): string[] {
  return identifier
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((w) => w !== '');
}

type ValueContext = 'line' | 'flag' | 'query' | 'connection' | 'quoted-item' | 'xml' | null;

/** Why an unquoted value may be a literal here (config formats), or null (code: it is an expression). */
function unquotedContext(text: string, idStart: number, sep: string, value: string, valueEnd: number): ValueContext {
  const before = idStart > 0 ? text.charCodeAt(idStart - 1) : 10;
  if (sep === '>') return before === 60 /* < */ && text.startsWith('</', valueEnd) ? 'xml' : null;
  if (sep !== '=' && sep !== ':') return null;
  if (sep === '=' && (before === 63 /* ? */ || before === 38) /* & */) return 'query';
  // A form body or query string starting with the key: client_secret=…&grant_type=…
  if (sep === '=' && /^[^&\s]+&[A-Za-z_][\w.-]{0,40}=/.test(value)) return 'query';
  if (sep === '=' && (before === 59 /* ; */ || /^[^;]+;[ \t]?[A-Za-z][A-Za-z ]{0,30}=/.test(value))) return 'connection';
  // Look back at most 80 characters for the line start: an unbounded lastIndexOf per candidate
  // would make a newline-free body quadratic.
  let lineStart = idStart;
  while (lineStart > 0 && idStart - lineStart <= 80 && text.charCodeAt(lineStart - 1) !== 10) lineStart--;
  if (lineStart === 0 || text.charCodeAt(lineStart - 1) === 10) {
    const lead = text.slice(lineStart, idStart);
    if (/^[ \t]*(?:-[ \t]+)?(?:(?:export|set|setx|ENV|ARG|declare(?:[ \t]+-x)?|local|readonly)[ \t]+)?$/i.test(lead)) {
      return 'line';
    }
  }
  if ((before === 34 || before === 39) && text.charCodeAt(valueEnd) === before) return 'quoted-item';
  return null;
}

function restOfLineIsEmpty(text: string, from: number): boolean {
  let i = from;
  while (i < text.length && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
  if (i >= text.length) return true;
  const c = text.charCodeAt(i);
  if (c === 10 || c === 13 || c === 35 /* # */) return true;
  return text.startsWith('//', i);
}

/** `sdlfkj452`, `askfjh234as9sd8`: letters typed along the home row, as documentation does. */
function isKeyboardMash(value: string): boolean {
  if (/^[0-9a-f]+$/i.test(value)) return false; // hex: a, d, f are home-row letters
  const letters = value.toLowerCase().replace(/[^a-z]/g, '');
  if (letters.length < 4) return false;
  const home = letters.replace(/[^asdfghjkl]/g, '').length;
  return home / letters.length >= 0.8;
}

/** Letters only, in words (`ASAuthorizationPasswordRequest`), rather than random case (`kTTLXfhtluUIwRdC`). */
function isWordsOnly(value: string): boolean {
  if (!/^[A-Za-z]+$/.test(value)) return false;
  let switches = 0;
  for (let i = 1; i < value.length; i++) {
    const a = value.charCodeAt(i - 1) < 97;
    const b = value.charCodeAt(i) < 97;
    if (a !== b) switches++;
  }
  return switches / value.length < 0.3;
}

function looksLikeSecret(value: string, family: Family): boolean {
  const lower = value.toLowerCase();
  if (STOP_VALUES.has(lower)) return false;
  if (family.selfReference.test(value)) return false;
  if (isPlaceholder(value) || isReference(value) || isHashLike(value) || isPublicMaterial(value)) return false;
  if (/^[a-z][a-z0-9+.-]{1,20}:\/\//i.test(value)) return false; // a URL (credentials in URLs: url-credentials)
  if (/^(?:~|\.{1,2})?\/(?:[\w.@-]+\/)*[\w.@-]*$|^[A-Za-z]:\\/.test(value) && shannonEntropy(value) < 4.2) return false; // a path
  if (/^[a-z]+(?:[_-][a-z]+)+$/.test(value)) return false; // an enumeration constant: client_secret_basic
  if (isWordsOnly(value)) return false; // a name: workloadIdentity, ASAuthorizationPasswordRequest
  if (isKeyboardMash(value)) return false;
  if (/0123|1234|2345|3456|4567|5678|6789|9876|8765|7654|6543|5432|4321|abcd/i.test(value)) return false; // made up
  if (/\(\?[:=!<]|\[\^|\\[dwsbDWS]|%[sdr]|%\(/.test(value)) return false; // a regular expression or format string
  if (/^(?:0x[0-9a-f]+|[+-]?\d+(?:\.\d+)?)$/i.test(value)) return false; // a number
  if (/(?:^|[^a-z])(?:secret|passwor[dt]|passwd|token|api[_-]?key)(?:$|[^a-z])/i.test(value)) return false; // names a secret
  // eslint-disable-next-line no-control-regex
  if (value.replace(/[\x20-\x7e]/g, '').length * 4 > value.length) return false; // prose in another script
  if (/^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$/.test(value)) return false; // an environment variable's name
  if (/^[a-z][a-zA-Z0-9_]*(?:\.[a-zA-Z0-9_]+)+$/.test(value)) return false; // a dotted name (i18n key, module)
  if (/^pk_(?:live|test)_/.test(value)) return false; // Stripe publishable keys are public
  if (family.uuidIsNotSecret && UUID.test(value)) return false;
  const cls = charClasses(value);
  if (cls.space) return false;
  const entropy = shannonEntropy(value);
  if (family.strength === 'password') {
    if (value.length < 6) return false;
    if (!cls.lower && !cls.upper && !cls.symbol && value.length < 8) return false;
    if (!(cls.digit || cls.symbol || (value.length >= 12 && cls.upper && cls.lower))) return false;
    return entropy >= 2.0;
  }
  if (value.length < 8) return false;
  if (entropy < (value.length < 16 ? 2.5 : 3.0)) return false;
  const letters = cls.lower || cls.upper;
  return (cls.digit && letters) || (value.length >= 16 && ((cls.upper && cls.lower) || (cls.symbol && letters)));
}

function makeValidator(family: Family) {
  // Cheap checks first: on hostile input (a keyword repeated a million times) every attempt that
  // matches the pattern reaches this function, so rejecting must cost little.
  return (value: string, ctx: MatchContext): boolean | string => {
    const { text, match } = ctx;
    const kwStart = match.index;
    const word = match[G_WORD] ?? '';
    const tail = match[G_TAIL] ?? '';
    const rawSep = match[G_SEP] ?? '';
    const sep = rawSep.length > 2 && rawSep.startsWith(':') ? ':T=' : rawSep;
    const quoted = match[G_DQ] ?? match[G_SQ] ?? match[G_BQ];

    // The keyword must be a whole word of the identifier: `bypass`, `passport`, `tokenizer` are not.
    const prev = kwStart > 0 ? text.charCodeAt(kwStart - 1) : 32;
    const first = text.charCodeAt(kwStart);
    if (isAlnum(prev) && !(isLowerOrDigit(prev) && isUpper(first))) return false;
    if (tail !== '') {
      const next = tail.charCodeAt(0);
      const lastOfWord = word.charCodeAt(word.length - 1);
      if ((next >= 97 && next <= 122) || (isUpper(next) && !isLowerOrDigit(lastOfWord))) return false;
    }
    if (quoted === undefined ? sep === ',' || sep === '=>' || sep === ':=' || sep === ':T=' || sep.length > 1 : sep === '>') {
      return false;
    }
    if (value.length < (family.strength === 'password' ? 6 : 8)) return false;
    if (quoted !== undefined && family.selfReference.test(value)) return false;

    // The whole identifier, e.g. `settings.DB_PASSWORD_FILE` or `--db-password`.
    let idStart = kwStart;
    while (idStart > 0 && kwStart - idStart < 64 && isIdentChar(text.charCodeAt(idStart - 1))) idStart--;
    let flag = false;
    while (idStart < kwStart && text.charCodeAt(idStart) === 45 /* - */) {
      idStart++;
      flag = true;
    }
    const quoteBefore = idStart > 0 ? text.charCodeAt(idStart - 1) : 0;
    if (sep === ',') {
      // put("password", "…") / define('DB_PASSWORD', '…'): a quoted key that is a call's first
      // argument, and a quoted value — not one item of a list of strings.
      if (quoteBefore !== 34 && quoteBefore !== 39) return false;
      if (!/\([ \t]{0,4}$/.test(text.slice(Math.max(0, idStart - 6), idStart - 1))) return false;
    }

    // An unquoted value is a literal only where a config format allows one; in code it is an expression.
    let v = value;
    if (quoted === undefined) {
      switch (flag && sep === '=' ? 'flag' : unquotedContext(text, idStart, sep, value, ctx.end)) {
        case null:
          return false;
        case 'query':
          v = v.split(/[&#]/)[0] ?? '';
          break;
        case 'connection':
          v = v.split(';')[0] ?? '';
          break;
        case 'line':
          if (!restOfLineIsEmpty(text, ctx.end)) return false;
          v = v.replace(/[,;]+$/, '');
          break;
        default:
          break;
      }
      if (/[()[\]{}]/.test(v) && !/^\{[^{}]*\}$/.test(v)) return false; // an expression
      if (/^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+$/.test(v)) return false; // a member access
      if (/^[A-Za-z_$][\w$]*$/.test(v) && !/\d/.test(v)) return false; // an identifier
    }

    const identifier = text.slice(idStart, kwStart) + word + tail;
    const words = identifierWords(identifier);
    const lastDot = identifier.lastIndexOf('.', kwStart - idStart);
    const localWords = lastDot >= 0 ? identifierWords(identifier.slice(lastDot + 1)) : words;
    if (localWords.length > 0 && STOP_FIRST_WORDS.has(localWords[0]!)) return false;
    const lastWord = words[words.length - 1];
    if (lastWord !== undefined && STOP_LAST_WORDS.has(lastWord) && !(lastWord === 'id' && words.includes('secret'))) {
      return false;
    }
    if (!looksLikeSecret(v, family)) return false;
    return v === value ? true : v;
  };
}

export const GENERIC_RULES: Rule[] = FAMILIES.map((family) => ({
  id: family.id,
  description: family.description,
  keywords: family.keywords,
  boundary: 'word',
  pattern: patternFor(family.word),
  secretGroup: [G_DQ, G_SQ, G_BQ, G_BARE],
  priority: 1,
  validate: makeValidator(family),
}));

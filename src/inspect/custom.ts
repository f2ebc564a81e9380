// User-supplied rules (`inspect.rules.custom`). A regular expression from a config file must not
// be able to stall the proxy, so before it is accepted:
//  - it must compile (JavaScript syntax; a leading (?i) / (?s) / (?m) is accepted as flags, as
//    gitleaks and RE2 users write them);
//  - it may not use backreferences or repeat a group that itself repeats or alternates
//    (`(a+)+`, `(\w+\.)*`, `(a|ab)*`): those are the shapes that backtrack exponentially;
//  - unbounded repeats are capped (`+` → `{1,CAP}`, `*` → `{0,CAP}`, `{m,}` → `{m,m+CAP}`);
// and at run time it only sees bounded windows around its keywords (or line chunks of at most
// CHUNK characters when it has none), so the worst case is proportional to the text, not its square.
import type { Action } from '../config/schema.js';

export const CUSTOM_REPEAT_CAP = 128;
export const CUSTOM_CHUNK = 4096;
/** Characters before and after a keyword occurrence that a custom pattern may match in. */
export const CUSTOM_WINDOW_BEFORE = 256;
export const CUSTOM_WINDOW_AFTER = 1024;

export interface CustomRuleConfig {
  id: string;
  pattern: string;
  description?: string | undefined;
  keywords?: string[] | undefined;
  action?: Action | undefined;
}

export interface CompiledCustomRule {
  id: string;
  description: string;
  /** Global, with indices (`d`) for capture-group offsets. */
  regex: RegExp;
  /** Lower-case; empty: the rule scans line chunks. */
  keywords: string[];
  action?: Action | undefined;
}

interface Frame {
  variable: boolean;
  alternation: boolean;
}

interface Analysis {
  source: string;
  literalPrefix: string;
}

/** Parses a quantifier at `i` (`*`, `+`, `?`, `{m}`, `{m,}`, `{m,n}`), or returns null. */
function quantifierAt(src: string, i: number): { text: string; min: number; max: number; end: number } | null {
  const c = src[i];
  if (c === '*') return { text: c, min: 0, max: Infinity, end: i + 1 };
  if (c === '+') return { text: c, min: 1, max: Infinity, end: i + 1 };
  if (c === '?') return { text: c, min: 0, max: 1, end: i + 1 };
  if (c === '{') {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(src.slice(i, i + 24));
    if (!m) return null;
    const min = Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
    return { text: m[0], min, max, end: i + m[0].length };
  }
  return null;
}

function capped(q: { text: string; min: number; max: number }): string {
  if (q.max !== Infinity) return q.text;
  return `{${q.min},${q.min + CUSTOM_REPEAT_CAP}}`;
}

/** Throws a message (without the key path) when the pattern is unsafe. */
function analyse(src: string): Analysis {
  const stack: Frame[] = [{ variable: false, alternation: false }];
  let out = '';
  let i = 0;
  let prefix = '';
  let prefixOpen = true; // still collecting literal characters at the start
  let topLevelAlternation = false;
  const literalStart = /^(?:\^|\\b)*/.exec(src)?.[0].length ?? 0;
  out += src.slice(0, literalStart);
  i = literalStart;

  while (i < src.length) {
    const c = src[i]!;
    let atom = '';
    let literal: string | null = null;
    if (c === '\\') {
      const n = src[i + 1] ?? '';
      if (/[1-9]/.test(n) || n === 'k') throw new Error('backreferences are not supported (they can backtrack without bound)');
      atom = src.slice(i, i + 2);
      if (/[^A-Za-z0-9]/.test(n)) literal = n;
      i += 2;
    } else if (c === '[') {
      let j = i + 1;
      if (src[j] === '^') j++;
      if (src[j] === ']') j++;
      while (j < src.length && src[j] !== ']') j += src[j] === '\\' ? 2 : 1;
      atom = src.slice(i, j + 1);
      i = j + 1;
    } else if (c === '(') {
      const m = /^\((?:\?(?::|=|!|<=|<!|<[A-Za-z_][A-Za-z0-9_]*>))?/.exec(src.slice(i, i + 40));
      const open = m?.[0] ?? '(';
      out += open;
      i += open.length;
      stack.push({ variable: false, alternation: false });
      prefixOpen = false;
      continue;
    } else if (c === ')') {
      const frame = stack.pop();
      if (!frame || stack.length === 0) throw new Error('unbalanced parenthesis');
      const q = quantifierAt(src, i + 1);
      if (q && !(q.min === 0 && q.max === 1) && (frame.variable || frame.alternation)) {
        throw new Error(
          'a repeated group contains a repetition or alternation (like (a+)+ or (a|ab)*), which can backtrack catastrophically; ' +
            'repeat a character class instead, e.g. [a-z0-9.]{1,64}',
        );
      }
      const parent = stack[stack.length - 1]!;
      parent.variable ||= frame.variable || (q !== null && q.min !== q.max);
      parent.alternation ||= frame.alternation;
      out += ')';
      i += 1;
      if (q) {
        out += capped(q);
        i = q.end;
        if (src[i] === '?') {
          out += '?';
          i++;
        }
      }
      prefixOpen = false;
      continue;
    } else if (c === '|') {
      stack[stack.length - 1]!.alternation = true;
      if (stack.length === 1) topLevelAlternation = true;
      out += c;
      i++;
      prefixOpen = false;
      continue;
    } else if (c === '^' || c === '$') {
      out += c;
      i++;
      prefixOpen = false;
      continue;
    } else {
      atom = c;
      if (c !== '.') literal = c;
      i++;
    }
    out += atom;
    const q = quantifierAt(src, i);
    if (q) {
      if (q.min !== q.max) stack[stack.length - 1]!.variable = true;
      out += capped(q);
      i = q.end;
      if (src[i] === '?') {
        out += '?';
        i++;
      }
      prefixOpen = false;
    } else if (prefixOpen && literal !== null) {
      prefix += literal;
    } else {
      prefixOpen = false;
    }
  }
  if (stack.length !== 1) throw new Error('unbalanced parenthesis');
  return { source: out, literalPrefix: topLevelAlternation ? '' : prefix };
}

/**
 * Compiles `inspect.rules.custom[index]`; throws an Error whose message starts with that key path
 * and says what is wrong and what to do.
 */
export function compileCustomRule(cfg: CustomRuleConfig, index: number): CompiledCustomRule {
  const key = `inspect.rules.custom[${index}].pattern`;
  let src = cfg.pattern;
  let flags = '';
  const inline = /^\(\?([ims]+)\)/.exec(src);
  if (inline) {
    flags = [...new Set(inline[1]!)].join('');
    src = src.slice(inline[0].length);
  }
  try {
    new RegExp(src, flags);
  } catch (err) {
    throw new Error(`${key}: invalid regular expression: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`);
  }
  let analysis: Analysis;
  try {
    analysis = analyse(src);
  } catch (err) {
    throw new Error(`${key}: ${(err as Error).message}`);
  }
  let regex: RegExp;
  try {
    regex = new RegExp(analysis.source, `${flags}gd`);
  } catch (err) {
    throw new Error(`${key}: invalid regular expression: ${(err as Error).message}`);
  }
  if (regex.test('')) throw new Error(`${key}: the pattern matches the empty string; it would report nothing useful`);
  regex.lastIndex = 0;
  const keywords = (cfg.keywords ?? []).map((k) => k.toLowerCase()).filter((k) => k !== '');
  if (keywords.length === 0 && analysis.literalPrefix.length >= 3) keywords.push(analysis.literalPrefix.toLowerCase());
  return {
    id: cfg.id,
    description: cfg.description ?? `custom rule ${cfg.id}`,
    regex,
    keywords,
    action: cfg.action,
  };
}

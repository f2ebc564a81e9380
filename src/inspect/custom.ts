// User-supplied rules (`inspect.rules.custom`). A regular expression from a config file must not be
// able to stall the proxy, so before it is accepted it must compile (JavaScript syntax; a leading
// (?i) / (?s) / (?m) is accepted as flags, as gitleaks and RE2 users write them) and pass the
// static analysis in regex-safety.ts. At run time it is tried exactly like a builtin rule: once,
// sticky, at each occurrence of one of its keywords (explicit `keywords`, else the literal the
// pattern starts with), so a match must start with a keyword. One attempt is bounded by the
// pattern's repetition bounds, so the scan stays linear in the body size.
import type { Action } from '../config/schema.js';
import { UnsafePattern, analysePattern } from './regex-safety.js';

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
  /** Compiled without g/y; the detector makes its sticky copy. */
  pattern: RegExp;
  /** Lower-case, at least 3 characters each. */
  keywords: string[];
  action?: Action | undefined;
}

/** Keywords shorter than this would be found everywhere and make every scan slow. */
export const MIN_KEYWORD_LENGTH = 3;

/**
 * Compiles `inspect.rules.custom[index]`; throws an Error whose message starts with the offending
 * key path and says what is wrong and what to do.
 */
export function compileCustomRule(cfg: CustomRuleConfig, index: number, key = `inspect.rules.custom[${index}]`): CompiledCustomRule {
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
    const why = (err as Error).message.replace(/^Invalid regular expression: /, '');
    throw new Error(`${key}.pattern: invalid regular expression: ${why}`);
  }
  let safe;
  try {
    safe = analysePattern(src, flags);
  } catch (err) {
    if (err instanceof UnsafePattern) throw new Error(`${key}.pattern: ${err.message}`);
    throw err;
  }
  const pattern = new RegExp(safe.source, flags);
  if (pattern.test('')) throw new Error(`${key}.pattern: the pattern matches the empty string`);

  let keywords = (cfg.keywords ?? []).map((k) => k.toLowerCase());
  if (keywords.length === 0) {
    if (safe.literalPrefix.length < MIN_KEYWORD_LENGTH) {
      throw new Error(
        `${key}.keywords: required when the pattern does not start with a literal of ${MIN_KEYWORD_LENGTH}+ characters ` +
          '(the rule is tried where a keyword occurs, and a match must start there)',
      );
    }
    keywords = [safe.literalPrefix];
  }
  keywords.forEach((k, i) => {
    if (k.length < MIN_KEYWORD_LENGTH) {
      throw new Error(`${key}.keywords[${i}]: "${k}" is too short; keywords need ${MIN_KEYWORD_LENGTH}+ characters`);
    }
    if (!safe.canStartWith(k)) {
      throw new Error(`${key}.keywords[${i}]: a match can never start with "${k}"; a match must start at one of its keywords`);
    }
  });
  return { id: cfg.id, description: cfg.description ?? `custom rule ${cfg.id}`, pattern, keywords, action: cfg.action };
}

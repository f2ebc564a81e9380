// Each builtin rule's declared reach (src/inspect/rules/reach.ts) against what its pattern reads:
// the fast path decides a keyword occurrence from a window that size, so a rule whose pattern grows
// past its declaration (or a new rule without one) fails here instead of silently losing findings.
import { describe, expect, it } from 'vitest';
import { patternReach, ruleRegexReach } from '../../src/inspect/reach.js';
import { BUILTIN_RULES } from '../../src/inspect/rules/index.js';
import { RULE_REACH } from '../../src/inspect/rules/reach.js';

describe('rule reach', () => {
  it('measures what a pattern reads around its start', () => {
    expect(patternReach('abc', '')).toEqual({ behind: 0, ahead: 3 });
    expect(patternReach('(?<![a-z]{2})ab{1,5}(?=xy)', '')).toEqual({ behind: 2, ahead: 8 });
    expect(patternReach('\\bkey(?:=|: )([a-z]{3,40})\\b', '')).toEqual({ behind: 1, ahead: 46 });
    expect(patternReach('(a{0,4})\\1', '')).toEqual({ behind: 0, ahead: 8 });
    expect(patternReach('x=*', '').ahead).toBe(Infinity);
    expect(ruleRegexReach({ pattern: /(?<![a-z])[a-z]{3}\dQ~[a-z]{31,34}/, offset: 4 })).toEqual({ before: 5, after: 36 });
  });

  it('every builtin rule declares a reach that covers its pattern', () => {
    const problems: string[] = [];
    for (const rule of BUILTIN_RULES) {
      const declared = RULE_REACH[rule.id];
      if (!declared) {
        problems.push(`${rule.id}: no reach declared in src/inspect/rules/reach.ts`);
        continue;
      }
      let regex = ruleRegexReach(rule);
      if (declared.run !== undefined) {
        // A declared run: the pattern's only unbounded part is that run, just before its final look-ahead.
        const run = `${declared.run}*)`;
        expect(rule.pattern.source.split(run).length, rule.id).toBe(2);
        expect(rule.pattern.source.endsWith(')') && /\(\?![^()]*\)$/.test(rule.pattern.source), rule.id).toBe(true);
        regex = ruleRegexReach({ pattern: new RegExp(rule.pattern.source.replace(run, ')'), rule.pattern.flags), offset: rule.offset });
      }
      if (!(declared.before >= regex.before)) problems.push(`${rule.id}: reads ${regex.before} before its keyword, declares ${declared.before}`);
      if (!(declared.after >= regex.after)) problems.push(`${rule.id}: reads ${regex.after} from its keyword, declares ${declared.after}`);
    }
    expect(problems).toEqual([]);
  });

  it('declares nothing for rules that do not exist', () => {
    const ids = new Set(BUILTIN_RULES.map((r) => r.id));
    expect(Object.keys(RULE_REACH).filter((id) => !ids.has(id))).toEqual([]);
  });
});

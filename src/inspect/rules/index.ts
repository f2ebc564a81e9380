// The built-in rule set, in precedence order for equal-priority overlaps.
import { GENERIC_RULES } from './generic.js';
import { PROVIDER_RULES } from './providers.js';
import { STRUCTURAL_RULES } from './structural.js';
import type { Rule } from './types.js';

export type { MatchContext, Rule } from './types.js';

export const BUILTIN_RULES: readonly Rule[] = [...PROVIDER_RULES, ...STRUCTURAL_RULES, ...GENERIC_RULES];

export function builtinRuleIds(): string[] {
  return BUILTIN_RULES.map((r) => r.id);
}

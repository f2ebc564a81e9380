// How far a rule may read around a keyword occurrence: what lets the fast path (clean.ts) decide a
// keyword occurrence from a small window of the body instead of the whole text, and still be exact.
//
// A rule is tried sticky at `keywordAt - offset`; its pattern reads from some characters before that
// (look-behinds, \b) to some characters after (the longest match, plus look-aheads), and its
// validator may read further around the keyword (ctx.text). `patternReach` computes the first
// part from the pattern; the rule declares the total (rules/reach.ts), and
// test/unit/inspect-reach.test.ts checks each declaration against its pattern.
import { Parser, type Node } from './regex-ast.js';

/** Characters read before and after the keyword's first character; Infinity when unbounded. */
export interface Reach {
  before: number;
  after: number;
  /**
   * Characters of an unbounded run the pattern may read after its bounded part (and then one more
   * character, for a look-ahead): the window takes such a run whole.
   */
  run?: string;
}

/**
 * Characters a sticky attempt of `source` reads before its start position (look-behinds, \b) and
 * from its start (longest match plus look-aheads). Back-references read at most their group's
 * length: they are replaced by a copy of the group before the analysis.
 */
export function patternReach(source: string, flags: string): { behind: number; ahead: number } {
  const ast = new Parser(inlineBackReferences(source), flags.replace(/[gyd]/g, ''), Infinity).parse();
  return { behind: behind(ast), ahead: ahead(ast) };
}

/** What a rule tried at `keywordAt - offset` reads around `keywordAt` through its pattern alone. */
export function ruleRegexReach(rule: { pattern: RegExp; offset?: number | undefined }): Reach {
  const r = patternReach(rule.pattern.source, rule.pattern.flags);
  const offset = rule.offset ?? 0;
  return { before: offset + r.behind, after: Math.max(0, r.ahead - offset) };
}

function maxLength(n: Node): number {
  switch (n.kind) {
    case 'set':
      return 1;
    case 'assert':
      return 0;
    case 'group':
      return n.look ? 0 : maxLength(n.body);
    case 'alt':
      return Math.max(...n.branches.map(maxLength));
    case 'seq':
      return n.items.reduce((a, i) => a + maxLength(i), 0);
    case 'quant':
      return n.max === 0 ? 0 : n.max * maxLength(n.item);
  }
}

/** Characters read from the node's start position: its longest match, or further for a look-ahead. */
function ahead(n: Node): number {
  switch (n.kind) {
    case 'set':
      return 1;
    case 'assert':
      return n.raw === '^' ? 0 : 1; // \b, $ peek at the next character
    case 'group':
      if (!n.look) return ahead(n.body);
      return n.open.startsWith('(?<') ? 0 : ahead(n.body);
    case 'alt':
      return Math.max(...n.branches.map(ahead));
    case 'seq': {
      let at = 0;
      let most = 0;
      for (const i of n.items) {
        most = Math.max(most, at + ahead(i));
        at += maxLength(i);
      }
      return Math.max(most, at);
    }
    case 'quant':
      if (n.max === 0) return 0;
      return (n.max - 1) * maxLength(n.item) + ahead(n.item);
  }
}

/** Characters read before the pattern's start position (a look-behind anywhere counts in full). */
function behind(n: Node): number {
  switch (n.kind) {
    case 'set':
      return 0;
    case 'assert':
      return n.raw === '$' ? 0 : 1; // \b and ^ look at the previous character
    case 'group':
      return n.look && n.open.startsWith('(?<') ? maxLength(n.body) + behind(n.body) : behind(n.body);
    case 'alt':
      return Math.max(...n.branches.map(behind));
    case 'seq':
      return Math.max(0, ...n.items.map(behind));
    case 'quant':
      return behind(n.item);
  }
}

/** `(a{0,4})\1` → `(a{0,4})(?:a{0,4})`: a back-reference matches at most what its group did. */
function inlineBackReferences(source: string): string {
  const groups: Array<{ start: number; end: number }> = [];
  const open: number[] = [];
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') inClass = true;
    else if (c === '(') {
      const capturing = source[i + 1] !== '?' || (source[i + 2] === '<' && source[i + 3] !== '=' && source[i + 3] !== '!');
      groups.push({ start: capturing ? i : -1, end: -1 });
      open.push(groups.length - 1);
    } else if (c === ')') {
      const g = open.pop();
      if (g !== undefined) groups[g]!.end = i;
    }
  }
  const capturing = groups.filter((g) => g.start >= 0);
  return source.replace(/\\(\\|[1-9]\d*)/g, (m, n: string) => {
    if (n === '\\') return m;
    const g = capturing[Number(n) - 1];
    if (!g) return m;
    const body = source.slice(g.start + 1, g.end).replace(/^\?<[A-Za-z_$][\w$]*>/, '');
    return `(?:${body})`;
  });
}

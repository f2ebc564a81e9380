// Static safety analysis of user-supplied regular expressions (custom rules).
//
// A backtracking engine is slow only when it can split the same characters between repetitions
// in many ways. A pattern is accepted when no repetition can compete with what follows it:
//   - no back-references (they need unbounded backtracking);
//   - no repeated group that itself repeats or alternates (`(a+)+`, `(\w+\.)*`, `(a|ab)*`);
//   - every variable-length repetition is followed by something it cannot match (`[^"]*"`,
//     `\s*=`, `[a-z]+\d`) or by nothing (the end of the pattern, where it never has to give back),
//     except one, which may overlap what follows it (`password.*=`) if only repetitions that end
//     the pattern come after it; that one is capped at OVERLAP_CAP;
//   - repetition bounds are at most MAX_BOUND; unbounded ones are capped at CAP.
// Then one attempt costs at most the sum of the repetition bounds, and the detector makes one
// attempt per keyword occurrence, so a scan stays linear in the text whatever the pattern.
// Character sets are tracked for ASCII exactly and as "some other character" beyond it.

import { CharSet, Parser, UnsafePattern, type Node } from './regex-ast.js';

export { MAX_BOUND, UnsafePattern } from './regex-ast.js';

export const CAP = 256;
/** An overlapping repetition (`.*` before `=`) tries each of its lengths: it gets a smaller cap. */
export const OVERLAP_CAP = 64;

interface First {
  set: CharSet;
  nullable: boolean;
}

function first(node: Node): First {
  switch (node.kind) {
    case 'set':
      return { set: node.set, nullable: false };
    case 'assert':
      return { set: new CharSet(), nullable: true };
    case 'group':
      return node.look ? { set: new CharSet(), nullable: true } : first(node.body);
    case 'alt': {
      let set = new CharSet();
      let nullable = false;
      for (const b of node.branches) {
        const f = first(b);
        set = set.union(f.set);
        nullable ||= f.nullable;
      }
      return { set, nullable };
    }
    case 'seq': {
      let set = new CharSet();
      for (const item of node.items) {
        const f = first(item);
        set = set.union(f.set);
        if (!f.nullable) return { set, nullable: false };
      }
      return { set, nullable: true };
    }
    case 'quant': {
      const f = first(node.item);
      return { set: f.set, nullable: f.nullable || node.min === 0 };
    }
  }
}

/** True when the node can match strings of different lengths. */
function isVariable(node: Node): boolean {
  switch (node.kind) {
    case 'set':
    case 'assert':
      return false;
    case 'group':
      return !node.look && isVariable(node.body);
    case 'alt':
      return node.branches.length > 1 || node.branches.some(isVariable);
    case 'seq':
      return node.items.some(isVariable);
    case 'quant':
      return node.min !== node.max || isVariable(node.item);
  }
}

interface Verdict {
  /** Its characters can also start what follows it: the engine may try every split. */
  ambiguous: boolean;
  /** Nothing follows it: it never has to give characters back. */
  final: boolean;
}

/** Variable repetitions in the order they appear in the pattern. */
function repetitions(node: Node, out: Node[] = []): Node[] {
  switch (node.kind) {
    case 'group':
      repetitions(node.body, out);
      break;
    case 'alt':
      for (const b of node.branches) repetitions(b, out);
      break;
    case 'seq':
      for (const i of node.items) repetitions(i, out);
      break;
    case 'quant':
      if (node.min !== node.max) out.push(node);
      repetitions(node.item, out);
      break;
    default:
      break;
  }
  return out;
}

/**
 * One repetition may overlap what follows it (`.*=`): trying each of its lengths costs one step
 * each. A second repetition after it that can fail would multiply the steps, so only repetitions
 * that end the pattern (which never give back) may follow an overlapping one.
 */
function checkAmbiguity(ast: Node, verdicts: Map<Node, Verdict>): void {
  let seenAmbiguous = false;
  for (const q of repetitions(ast)) {
    const v = verdicts.get(q)!;
    if (seenAmbiguous && !v.final) {
      throw new UnsafePattern(
        'a repetition that can also match what follows it (like .* before =) is followed by more repetition, so the ' +
          'engine can try many ways to split the text; make the repeated class exclude what follows, e.g. [^=]*= or [^"]{1,64}"',
      );
    }
    if (v.ambiguous) {
      const max = (q as { max: number }).max;
      if (max !== Infinity && max > CAP) {
        throw new UnsafePattern(`a repetition that can also match what follows it may repeat at most ${CAP} times`);
      }
      seenAmbiguous = true;
    }
  }
}

/**
 * Checks `node` given what can follow it (`follow`: first characters of the rest, or null for the
 * end of the pattern). Throws UnsafePattern with a message a user can act on.
 */
function check(node: Node, follow: CharSet | null, verdicts: Map<Node, Verdict>): void {
  switch (node.kind) {
    case 'set':
    case 'assert':
      return;
    case 'group':
      check(node.body, node.look ? null : follow, verdicts);
      return;
    case 'alt':
      for (const b of node.branches) check(b, follow, verdicts);
      return;
    case 'seq': {
      // Walk backwards so each item knows what can follow it.
      let f = follow;
      for (let k = node.items.length - 1; k >= 0; k--) {
        const item = node.items[k]!;
        check(item, f, verdicts);
        const fi = first(item);
        // When everything after an item can match empty up to the end of the pattern, the item never
        // has to give characters back (the match succeeds as it stands): its follow stays "end".
        f = fi.nullable ? (f === null ? null : fi.set.union(f)) : fi.set;
      }
      return;
    }
    case 'quant': {
      if (node.max > 1 && (isVariable(node.item) || hasAlternation(node.item))) {
        throw new UnsafePattern(
          'a repeated group contains a repetition or an alternation (like (a+)+ or (a|ab)*), which can backtrack catastrophically; ' +
            'repeat a character class instead, e.g. [a-z0-9.]{1,64}',
        );
      }
      const own = first(node.item).set;
      if (node.min !== node.max) {
        verdicts.set(node, { ambiguous: follow !== null && own.intersects(follow), final: follow === null });
      }
      check(node.item, node.max > 1 ? (follow === null ? own : own.union(follow)) : follow, verdicts);
      return;
    }
  }
}

function hasAlternation(node: Node): boolean {
  switch (node.kind) {
    case 'alt':
      return true;
    case 'group':
      return hasAlternation(node.body);
    case 'seq':
      return node.items.some(hasAlternation);
    case 'quant':
      return hasAlternation(node.item);
    default:
      return false;
  }
}

function serialize(node: Node, verdicts: Map<Node, Verdict>): string {
  switch (node.kind) {
    case 'set':
    case 'assert':
      return node.raw;
    case 'group':
      return `${node.open}${serialize(node.body, verdicts)})`;
    case 'alt':
      return node.branches.map((b) => serialize(b, verdicts)).join('|');
    case 'seq':
      return node.items.map((i) => serialize(i, verdicts)).join('');
    case 'quant': {
      const cap = verdicts.get(node)?.ambiguous ? OVERLAP_CAP : CAP;
      const max = node.max === Infinity ? node.min + cap : node.max;
      const q = node.min === 0 && max === 1 ? '?' : node.min === max ? `{${node.min}}` : `{${node.min},${max}}`;
      return serialize(node.item, verdicts) + q + (node.lazy ? '?' : '');
    }
  }
}

/** Literal characters the pattern must start with (for a keyword), ignoring leading ^ and \b. */
function literalPrefix(node: Node, flags: string): string {
  const items = node.kind === 'seq' ? node.items : [node];
  let out = '';
  for (const item of items) {
    if (item.kind === 'assert') {
      if (out === '') continue;
      break;
    }
    if (item.kind !== 'set') break;
    const codes: number[] = [];
    for (let c = 0; c < 128 && codes.length < 3; c++) if (item.set.has(c)) codes.push(c);
    const single = codes.length === 1 || (flags.includes('i') && codes.length === 2 && String.fromCharCode(codes[0]!).toLowerCase() === String.fromCharCode(codes[1]!).toLowerCase());
    if (!single || item.set.other) break;
    out += String.fromCharCode(codes[codes.length - 1]!);
  }
  return out.toLowerCase();
}

export interface SafePattern {
  /** The pattern with unbounded repetitions capped. */
  source: string;
  /** Lower-case literal the pattern starts with ('' when it starts otherwise). */
  literalPrefix: string;
  /** Whether a match can start with this (lower-case) keyword's first character. */
  canStartWith(keyword: string): boolean;
}

export function analysePattern(source: string, flags: string): SafePattern {
  const ast = new Parser(source, flags).parse();
  const verdicts = new Map<Node, Verdict>();
  check(ast, null, verdicts);
  checkAmbiguity(ast, verdicts);
  const start = first(ast);
  return {
    source: serialize(ast, verdicts),
    literalPrefix: literalPrefix(ast, flags),
    canStartWith: (kw) => {
      const c = kw.charCodeAt(0);
      return start.set.has(c) || start.set.has(kw.toUpperCase().charCodeAt(0));
    },
  };
}

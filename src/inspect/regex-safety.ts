// Static safety analysis of user-supplied regular expressions (custom rules).
//
// A backtracking engine is slow only when it can split the same characters between repetitions
// in many ways. A pattern is accepted when no repetition can compete with what follows it:
//   - no back-references (they need unbounded backtracking);
//   - no repeated group that itself repeats or alternates (`(a+)+`, `(\w+\.)*`, `(a|ab)*`);
//   - every variable-length repetition is followed by something it cannot match (`[^"]*"`,
//     `\s*=`, `[a-z]+\d`) or by nothing (the end of the pattern, where it never has to give back);
//   - repetition bounds are at most MAX_BOUND; unbounded ones are capped at CAP.
// Then one attempt costs at most the sum of the repetition bounds, and the detector makes one
// attempt per keyword occurrence, so a scan stays linear in the text whatever the pattern.
// Character sets are tracked for ASCII exactly and as "some other character" beyond it.

export const CAP = 256;
/** An overlapping repetition (`.*` before `=`) tries each of its lengths: it gets a smaller cap. */
export const OVERLAP_CAP = 64;
export const MAX_BOUND = 1024;

export class UnsafePattern extends Error {}

class CharSet {
  constructor(
    readonly bits = new Uint32Array(4),
    public other = false,
  ) {}
  static of(...codes: number[]): CharSet {
    const s = new CharSet();
    for (const c of codes) s.add(c);
    return s;
  }
  static all(except: number[] = []): CharSet {
    const s = new CharSet(new Uint32Array([~0, ~0, ~0, ~0]), true);
    for (const c of except) s.bits[c >> 5]! &= ~(1 << (c & 31));
    return s;
  }
  add(c: number): void {
    if (c < 128) this.bits[c >> 5]! |= 1 << (c & 31);
    else this.other = true;
  }
  addRange(a: number, b: number): void {
    for (let c = a; c <= Math.min(b, 127); c++) this.add(c);
    if (b > 127) this.other = true;
  }
  union(o: CharSet): CharSet {
    const s = new CharSet(new Uint32Array(this.bits), this.other || o.other);
    for (let i = 0; i < 4; i++) s.bits[i]! |= o.bits[i]!;
    return s;
  }
  invert(): CharSet {
    const s = new CharSet(new Uint32Array(4), true);
    for (let i = 0; i < 4; i++) s.bits[i] = ~this.bits[i]!;
    return s;
  }
  intersects(o: CharSet): boolean {
    if (this.other && o.other) return true;
    for (let i = 0; i < 4; i++) if ((this.bits[i]! & o.bits[i]!) !== 0) return true;
    return false;
  }
  has(c: number): boolean {
    return c < 128 ? (this.bits[c >> 5]! & (1 << (c & 31))) !== 0 : this.other;
  }
  foldCase(): CharSet {
    const s = new CharSet(new Uint32Array(this.bits), this.other);
    for (let c = 65; c <= 90; c++) {
      if (this.has(c) || this.has(c + 32)) {
        s.add(c);
        s.add(c + 32);
      }
    }
    return s;
  }
}

const DIGIT = (() => {
  const s = new CharSet();
  s.addRange(48, 57);
  return s;
})();
const WORD = (() => {
  const s = DIGIT.union(new CharSet());
  s.addRange(65, 90);
  s.addRange(97, 122);
  s.add(95);
  return s;
})();
const SPACE = (() => {
  const s = CharSet.of(32, 9, 10, 11, 12, 13);
  s.other = true; // \s also matches Unicode spaces
  return s;
})();

type Node =
  | { kind: 'set'; set: CharSet; raw: string }
  | { kind: 'assert'; raw: string }
  | { kind: 'group'; open: string; body: Node; look: boolean }
  | { kind: 'alt'; branches: Node[] }
  | { kind: 'seq'; items: Node[] }
  | { kind: 'quant'; item: Node; min: number; max: number; lazy: boolean };

interface First {
  set: CharSet;
  nullable: boolean;
}

class Parser {
  i = 0;
  constructor(
    private readonly src: string,
    private readonly flags: string,
  ) {}

  parse(): Node {
    const node = this.alt();
    if (this.i < this.src.length) throw new UnsafePattern(`unexpected ")" at ${this.i}`);
    return node;
  }

  private alt(): Node {
    const branches = [this.seq()];
    while (this.src[this.i] === '|') {
      this.i++;
      branches.push(this.seq());
    }
    return branches.length === 1 ? branches[0]! : { kind: 'alt', branches };
  }

  private seq(): Node {
    const items: Node[] = [];
    while (this.i < this.src.length && this.src[this.i] !== '|' && this.src[this.i] !== ')') {
      let atom = this.atom();
      const q = this.quantifier();
      if (q) {
        if (atom.kind === 'assert') throw new UnsafePattern('a quantifier follows an assertion');
        atom = { kind: 'quant', item: atom, ...q };
      }
      items.push(atom);
    }
    return { kind: 'seq', items };
  }

  private quantifier(): { min: number; max: number; lazy: boolean } | null {
    const s = this.src;
    const c = s[this.i];
    let min: number;
    let max: number;
    if (c === '*' || c === '+' || c === '?') {
      min = c === '+' ? 1 : 0;
      max = c === '?' ? 1 : Infinity;
      this.i++;
    } else if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(s.slice(this.i, this.i + 24));
      if (!m) return null;
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
      this.i += m[0].length;
    } else return null;
    if (max !== Infinity && max > MAX_BOUND) throw new UnsafePattern(`a repetition bound above ${MAX_BOUND}`);
    let lazy = false;
    if (s[this.i] === '?') {
      lazy = true;
      this.i++;
    }
    return { min, max, lazy };
  }

  private fold(set: CharSet): CharSet {
    return this.flags.includes('i') ? set.foldCase() : set;
  }

  private atom(): Node {
    const s = this.src;
    const start = this.i;
    const c = s[this.i]!;
    if (c === '(') {
      const m = /^\((?:\?(?::|=|!|<=|<!|<[A-Za-z_$][A-Za-z0-9_$]*>))?/.exec(s.slice(this.i, this.i + 64))!;
      this.i += m[0].length;
      const body = this.alt();
      if (s[this.i] !== ')') throw new UnsafePattern('unbalanced parenthesis');
      this.i++;
      const look = /^\(\?(?:=|!|<=|<!)$/.test(m[0]);
      return { kind: 'group', open: m[0], body, look };
    }
    if (c === '^' || c === '$') {
      this.i++;
      return { kind: 'assert', raw: c };
    }
    if (c === '.') {
      this.i++;
      return { kind: 'set', set: this.flags.includes('s') ? CharSet.all() : CharSet.all([10, 13]), raw: '.' };
    }
    if (c === '[') {
      const set = this.charClass();
      return { kind: 'set', set: this.fold(set), raw: s.slice(start, this.i) };
    }
    if (c === '\\') {
      const n = s[this.i + 1] ?? '';
      if (n === 'b' || n === 'B') {
        this.i += 2;
        return { kind: 'assert', raw: s.slice(start, this.i) };
      }
      if (/[1-9]/.test(n) || n === 'k') throw new UnsafePattern('back-references are not supported (they can backtrack without bound)');
      const set = this.escape(false);
      return { kind: 'set', set: this.fold(set), raw: s.slice(start, this.i) };
    }
    this.i++;
    return { kind: 'set', set: this.fold(CharSet.of(c.charCodeAt(0))), raw: c };
  }

  /** Parses an escape at `i` (which is `\`), returning its set; inside a class `\b` is backspace. */
  private escape(inClass: boolean): CharSet {
    const s = this.src;
    const n = s[this.i + 1] ?? '';
    this.i += 2;
    switch (n) {
      case 'd':
        return DIGIT;
      case 'D':
        return DIGIT.invert();
      case 'w':
        return WORD;
      case 'W':
        return WORD.invert();
      case 's':
        return SPACE;
      case 'S':
        return SPACE.invert();
      case 't':
        return CharSet.of(9);
      case 'n':
        return CharSet.of(10);
      case 'r':
        return CharSet.of(13);
      case 'f':
        return CharSet.of(12);
      case 'v':
        return CharSet.of(11);
      case '0':
        return CharSet.of(0);
      case 'b':
        return inClass ? CharSet.of(8) : new CharSet();
      case 'x': {
        const h = /^[0-9a-fA-F]{2}/.exec(s.slice(this.i, this.i + 2));
        if (!h) return CharSet.of(120);
        this.i += 2;
        return CharSet.of(parseInt(h[0], 16));
      }
      case 'u': {
        const h = /^[0-9a-fA-F]{4}/.exec(s.slice(this.i, this.i + 4));
        if (!h) return CharSet.of(117);
        this.i += 4;
        return CharSet.of(parseInt(h[0], 16));
      }
      case 'c': {
        const l = s.charCodeAt(this.i);
        this.i++;
        return CharSet.of(l % 32);
      }
      default:
        return CharSet.of(n.charCodeAt(0));
    }
  }

  private classChar(): CharSet | number {
    const s = this.src;
    if (s[this.i] === '\\') {
      const n = s[this.i + 1] ?? '';
      const set = this.escape(true);
      // A single character can start a range; a class escape (\d, \w…) cannot.
      return /[dDwWsS]/.test(n) ? set : firstCode(set);
    }
    const code = s.charCodeAt(this.i);
    this.i++;
    return code;
  }

  private charClass(): CharSet {
    const s = this.src;
    this.i++; // [
    let negate = false;
    if (s[this.i] === '^') {
      negate = true;
      this.i++;
    }
    let set = new CharSet();
    while (this.i < s.length && s[this.i] !== ']') {
      const a = this.classChar();
      if (typeof a !== 'number') {
        set = set.union(a);
        continue;
      }
      if (s[this.i] === '-' && s[this.i + 1] !== ']' && this.i + 1 < s.length) {
        this.i++;
        const b = this.classChar();
        if (typeof b === 'number') set.addRange(a, b);
        else {
          set.add(a);
          set.add(45);
          set = set.union(b);
        }
      } else set.add(a);
    }
    if (s[this.i] !== ']') throw new UnsafePattern('unterminated character class');
    this.i++;
    return negate ? set.invert() : set;
  }
}

function firstCode(set: CharSet): number {
  for (let c = 0; c < 128; c++) if (set.has(c)) return c;
  return 0;
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

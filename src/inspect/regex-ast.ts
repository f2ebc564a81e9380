// A small parser for the JavaScript regular-expression syntax custom rules use, producing the tree
// that regex-safety.ts analyses: character sets (ASCII exactly, "some other character" beyond),
// assertions, groups, alternations, sequences and quantifiers. Only what the analysis needs;
// the pattern is also compiled by V8, which remains the authority on syntax.

export class UnsafePattern extends Error {}

/** Repetition bounds above this are refused: one attempt would cost too much. */
export const MAX_BOUND = 1024;

export class CharSet {
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

export type Node =
  | { kind: 'set'; set: CharSet; raw: string }
  | { kind: 'assert'; raw: string }
  | { kind: 'group'; open: string; body: Node; look: boolean }
  | { kind: 'alt'; branches: Node[] }
  | { kind: 'seq'; items: Node[] }
  | { kind: 'quant'; item: Node; min: number; max: number; lazy: boolean };

export class Parser {
  i = 0;
  constructor(
    private readonly src: string,
    private readonly flags: string,
    /** Custom rules are refused above MAX_BOUND; reach.ts measures builtin patterns with larger bounds. */
    private readonly maxBound = MAX_BOUND,
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
    if (max !== Infinity && max > this.maxBound) throw new UnsafePattern(`a repetition bound above ${this.maxBound}`);
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

export function firstCode(set: CharSet): number {
  for (let c = 0; c < 128; c++) if (set.has(c)) return c;
  return 0;
}


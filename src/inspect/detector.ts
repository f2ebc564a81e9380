// Finds candidate secrets in a text in time linear in its length, whatever the text.
//
// 1. One pass of a single case-insensitive regular expression that is the alternation of every
//    rule keyword (compiled as a trie) finds all keyword occurrences. V8 compiles it to native code
//    with a Boyer-Moore-style skip; it is the bulk of the cost on clean text (~250 MB/s).
// 2. At each occurrence, each rule owning that keyword is tried once with a sticky regular
//    expression at that exact position. Rule patterns only use bounded quantifiers and start with a
//    look-behind that fails inside a run of their own characters, so one attempt costs at most a
//    few hundred steps and attempts from inside a run fail at once: the total is O(length).
// 3. Custom rules (user patterns, see custom.ts) are run in bounded windows around their keywords
//    or in bounded line chunks.
// 4. Candidates are validated (checksum, entropy, allow-lists) and overlaps are resolved: the higher
//    priority rule wins, then the longer match, then the earlier-declared rule.
import { isPlaceholder } from './allow.js';
import { CUSTOM_CHUNK, CUSTOM_WINDOW_AFTER, CUSTOM_WINDOW_BEFORE, type CompiledCustomRule } from './custom.js';
import type { MatchContext, Rule } from './rules/types.js';

/** A validated candidate: offsets into the scanned text, and which rule (index into `Detector.rules`). */
export interface Candidate {
  rule: number;
  start: number;
  end: number;
  value: string;
}

/** What the detector knows about a rule, builtin or custom, once compiled. */
export interface DetectorRule {
  id: string;
  description: string;
  priority: number;
  maskPrefix: number;
  defaultAction?: 'monitor' | undefined;
  custom: boolean;
}

interface StickyRule {
  index: number;
  rule: Rule;
  sticky: RegExp;
  offset: number;
  groups: readonly number[] | null;
  /** Position of the last attempt, so one rule is tried once per position. */
  lastTried: number;
}

const CUSTOM_PRIORITY = 5;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/** `(?:p(?:ass|wd)|tok(?:en))`: V8 matches a factored alternation faster than a flat one. */
function trieSource(words: readonly string[]): string {
  interface Node {
    end: boolean;
    next: Map<string, Node>;
  }
  const root: Node = { end: false, next: new Map() };
  for (const w of words) {
    let n = root;
    for (const ch of w) {
      let child = n.next.get(ch);
      if (!child) {
        child = { end: false, next: new Map() };
        n.next.set(ch, child);
      }
      n = child;
    }
    n.end = true;
  }
  const emit = (n: Node): string => {
    const alts = [...n.next].map(([ch, child]) => escapeRegExp(ch) + emit(child));
    if (alts.length === 0) return '';
    if (alts.length === 1 && !n.end) return alts[0]!;
    return `(?:${alts.join('|')}${n.end ? '|' : ''})`;
  };
  return emit(root);
}

export class Detector {
  readonly rules: DetectorRule[] = [];
  private readonly keywordRe: RegExp | null;
  private readonly sticky = new Map<string, StickyRule[]>();
  /** keyword → other keywords that can occur at the same position (one is a prefix of the other). */
  private readonly related = new Map<string, string[]>();
  private readonly customByKeyword = new Map<string, number[]>();
  private readonly customRules = new Map<number, CompiledCustomRule>();
  private readonly chunkCustom: number[] = [];

  constructor(
    builtins: readonly Rule[],
    custom: readonly CompiledCustomRule[],
    private readonly allowValues: ReadonlySet<string>,
  ) {
    for (const rule of builtins) {
      const index = this.rules.length;
      this.rules.push({
        id: rule.id,
        description: rule.description,
        priority: rule.priority ?? 2,
        maskPrefix: rule.maskPrefix ?? 0,
        defaultAction: rule.defaultAction,
        custom: false,
      });
      const flags = rule.pattern.flags.replace(/[gyd]/g, '') + 'yd';
      const groups = rule.secretGroup === undefined ? null : typeof rule.secretGroup === 'number' ? [rule.secretGroup] : rule.secretGroup;
      const compiled: StickyRule = {
        index,
        rule,
        sticky: new RegExp(rule.pattern.source, flags),
        offset: rule.offset ?? 0,
        groups,
        lastTried: -1,
      };
      for (const kw of new Set(rule.keywords)) {
        const list = this.sticky.get(kw) ?? [];
        list.push(compiled);
        this.sticky.set(kw, list);
      }
    }
    for (const rule of custom) {
      const index = this.rules.length;
      this.rules.push({ id: rule.id, description: rule.description, priority: CUSTOM_PRIORITY, maskPrefix: 0, custom: true });
      this.customRules.set(index, rule);
      if (rule.keywords.length === 0) this.chunkCustom.push(index);
      for (const kw of new Set(rule.keywords)) {
        const list = this.customByKeyword.get(kw) ?? [];
        list.push(index);
        this.customByKeyword.set(kw, list);
      }
    }
    const keywords = [...new Set([...this.sticky.keys(), ...this.customByKeyword.keys()])].sort();
    for (const a of keywords) {
      const rel = keywords.filter((b) => b !== a && (b.startsWith(a) || a.startsWith(b)));
      if (rel.length > 0) this.related.set(a, rel);
    }
    this.keywordRe = keywords.length > 0 ? new RegExp(trieSource(keywords), 'gi') : null;
  }

  /** Candidates in `text`, validated and with overlaps resolved, sorted by start. */
  detect(text: string): Candidate[] {
    const found: Candidate[] = [];
    const customHits = new Map<number, number[]>();
    for (const list of this.sticky.values()) for (const r of list) r.lastTried = -1;

    const re = this.keywordRe;
    if (re !== null) {
      re.lastIndex = 0;
      let m: RegExpExecArray | null;
      while ((m = re.exec(text)) !== null) {
        const at = m.index;
        const kw = m[0].toLowerCase();
        this.tryKeyword(kw, at, text, found, customHits);
        const rel = this.related.get(kw);
        if (rel) {
          for (const other of rel) {
            if (other.length <= kw.length || text.slice(at, at + other.length).toLowerCase() === other) {
              this.tryKeyword(other, at, text, found, customHits);
            }
          }
        }
        // Next search from the following character, so overlapping keywords are all seen
        // (`dd_api_key` holds both `dd_api` and `api_key`).
        re.lastIndex = at + 1;
      }
    }
    for (const [index, hits] of customHits) this.runCustomInWindows(index, hits, text, found);
    for (const index of this.chunkCustom) this.runCustomInChunks(index, text, found);
    return this.resolve(found);
  }

  private tryKeyword(kw: string, at: number, text: string, found: Candidate[], customHits: Map<number, number[]>): void {
    const rules = this.sticky.get(kw);
    if (rules) {
      for (const r of rules) {
        const start = at - r.offset;
        if (start < 0 || r.lastTried === start) continue;
        r.lastTried = start;
        r.sticky.lastIndex = start;
        const m = r.sticky.exec(text);
        if (m !== null) this.accept(r, m, kw, at, text, found);
      }
    }
    const custom = this.customByKeyword.get(kw);
    if (custom) {
      for (const index of custom) {
        const list = customHits.get(index);
        if (list) list.push(at);
        else customHits.set(index, [at]);
      }
    }
  }

  private accept(r: StickyRule, m: RegExpExecArray, kw: string, at: number, text: string, found: Candidate[]): void {
    let start = m.index;
    let end = start + m[0].length;
    const indices = m.indices;
    if (indices) {
      const groups = r.groups ?? range(1, m.length);
      for (const g of groups) {
        const span = indices[g];
        if (span) {
          start = span[0];
          end = span[1];
          break;
        }
      }
    }
    let value = text.slice(start, end);
    if (value.length === 0) return;
    if (r.rule.validate) {
      const ctx: MatchContext = { text, keywordAt: at, keyword: kw, match: m, start, end };
      const verdict = r.rule.validate(value, ctx);
      if (verdict === false) return;
      if (typeof verdict === 'string') {
        if (verdict.length === 0) return;
        value = verdict;
        end = start + verdict.length;
      }
    }
    if (this.allowValues.has(value)) return;
    if (!r.rule.ownPlaceholderChecks && isPlaceholder(value)) return;
    found.push({ rule: r.index, start, end, value });
  }

  private runCustomInWindows(index: number, hits: number[], text: string, found: Candidate[]): void {
    hits.sort((a, b) => a - b);
    let winStart = -1;
    let winEnd = -1;
    for (const at of hits) {
      const s = Math.max(0, at - CUSTOM_WINDOW_BEFORE);
      const e = Math.min(text.length, at + CUSTOM_WINDOW_AFTER);
      if (winEnd >= s) {
        winEnd = Math.max(winEnd, e);
        continue;
      }
      if (winStart >= 0) this.runCustom(index, text, winStart, winEnd, found);
      winStart = s;
      winEnd = e;
    }
    if (winStart >= 0) this.runCustom(index, text, winStart, winEnd, found);
  }

  private runCustomInChunks(index: number, text: string, found: Candidate[]): void {
    let pos = 0;
    while (pos < text.length) {
      let end = text.indexOf('\n', pos);
      if (end < 0) end = text.length;
      // Long lines are cut into overlapping chunks; a match found twice is de-duplicated later.
      let s = pos;
      while (end - s > CUSTOM_CHUNK) {
        this.runCustom(index, text, s, s + CUSTOM_CHUNK, found);
        s += CUSTOM_CHUNK - CUSTOM_WINDOW_BEFORE;
      }
      this.runCustom(index, text, s, end, found);
      pos = end + 1;
    }
  }

  private runCustom(index: number, text: string, from: number, to: number, found: Candidate[]): void {
    const rule = this.customRules.get(index)!;
    const re = rule.regex;
    const slice = text.slice(from, to);
    re.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(slice)) !== null) {
      if (m[0].length === 0) {
        re.lastIndex++;
        continue;
      }
      let start = m.index;
      let end = start + m[0].length;
      for (let g = 1; g < m.length; g++) {
        const span = m.indices?.[g];
        if (span) {
          start = span[0];
          end = span[1];
          break;
        }
      }
      const value = slice.slice(start, end);
      if (value.length === 0 || this.allowValues.has(value) || isPlaceholder(value)) continue;
      found.push({ rule: index, start: from + start, end: from + end, value });
    }
  }

  /** Keeps, among overlapping candidates, the higher priority, then longer, then earlier rule. */
  resolve(found: Candidate[]): Candidate[] {
    if (found.length <= 1) return found;
    found.sort((a, b) => a.start - b.start || b.end - a.end);
    const out: Candidate[] = [];
    let cluster: Candidate[] = [];
    let clusterEnd = -1;
    const flush = (): void => {
      if (cluster.length === 1) out.push(cluster[0]!);
      else if (cluster.length > 1) out.push(...this.pickInCluster(cluster));
      cluster = [];
    };
    for (const c of found) {
      if (c.start >= clusterEnd) {
        flush();
        clusterEnd = c.end;
      } else clusterEnd = Math.max(clusterEnd, c.end);
      cluster.push(c);
    }
    flush();
    return out.sort((a, b) => a.start - b.start);
  }

  private pickInCluster(cluster: Candidate[]): Candidate[] {
    const ranked = cluster.length > 64 ? cluster : [...cluster].sort(
      (a, b) =>
        this.rules[b.rule]!.priority - this.rules[a.rule]!.priority ||
        b.end - b.start - (a.end - a.start) ||
        a.rule - b.rule ||
        a.start - b.start,
    );
    const kept: Candidate[] = [];
    if (cluster.length > 64) {
      // Only hostile input chains this many overlapping candidates: keep a non-overlapping subset
      // in linear time rather than rank them quadratically.
      let lastEnd = -1;
      for (const c of cluster) {
        if (c.start >= lastEnd) {
          kept.push(c);
          lastEnd = c.end;
        }
      }
      return kept;
    }
    for (const c of ranked) {
      if (kept.every((k) => c.end <= k.start || c.start >= k.end)) kept.push(c);
    }
    return kept;
  }
}

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i < to; i++) out.push(i);
  return out;
}

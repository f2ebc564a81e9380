// Finds candidate secrets in a text in time linear in its length, whatever the text.
//
// 1. One pass finds every position where a rule keyword starts, case-insensitively (keywords.ts:
//    an Aho-Corasick automaton, one table lookup per character). It is the bulk of the cost on
//    clean text.
// 2. At each occurrence, each rule owning that keyword is tried once with a sticky regular
//    expression at that exact position. Rule patterns only use bounded quantifiers and start with a
//    look-behind that fails inside a run of their own characters, so one attempt costs at most a
//    few hundred steps and attempts from inside a run fail at once: the total is O(length).
// 3. Custom rules (user patterns, see custom.ts) are tried the same way, after a static check
//    that rules out the patterns that backtrack badly.
// 4. Candidates are validated (checksum, entropy, allow-lists) and overlaps are resolved: the higher
//    priority rule wins, then the longer match, then the earlier-declared rule.
import { isDocumentedExample, isPlaceholder } from './allow.js';
import type { CompiledCustomRule } from './custom.js';
import { AutomatonFinder, keywordFinder, type KeywordFinder } from './keywords.js';
import { ruleRegexReach, type Reach } from './reach.js';
import { RULE_REACH } from './rules/reach.js';
import type { MatchContext, Rule } from './rules/types.js';

/** A validated candidate: offsets into the scanned text, and which rule (index into `Detector.rules`). */
export interface Candidate {
  rule: number;
  start: number;
  end: number;
  value: string;
}

/**
 * Every keyword occurrence in a text, known without reading it (clean.ts carries the ones the
 * keyword scan found in a body's bytes through a window's readings): starts, ascending, and at each
 * of them every keyword that starts there. `probe` may be given more (a spurious one is tried: at
 * worst the probe says "maybe"), never fewer.
 */
export interface KeywordOccurrences {
  at: number[];
  keyword: string[];
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
  /** Custom patterns may capture in the middle: their group offsets come from match indices. */
  indices: boolean;
  /** What an attempt (pattern and validator) reads around the keyword (rules/reach.ts). */
  reach: Reach;
  /** Scan that `lastTried`/`skipUntil` belong to (reset lazily: a JSON body is thousands of scans). */
  generation: number;
  /** Position of the last attempt, so one rule is tried once per position. */
  lastTried: number;
  /**
   * End of the rule's last match: occurrences inside it are not tried again. A keyword repeated
   * through a long candidate (`password=password=…`) then costs one validation, not one per repeat.
   */
  skipUntil: number;
}

const CUSTOM_PRIORITY = 5;
const UNBOUNDED: Reach = { before: Infinity, after: Infinity };

/** A custom rule has no validator: its pattern's reach, and the character before for its word boundary. */
function customReach(rule: Rule): Reach {
  try {
    const r = ruleRegexReach(rule);
    return { before: Math.max(1, r.before), after: r.after };
  } catch {
    return UNBOUNDED;
  }
}

export class Detector {
  readonly rules: DetectorRule[] = [];
  /** Every rule keyword, lower-case: a rule is only ever tried where one of its keywords occurs. */
  readonly keywords: readonly string[];
  private readonly finder: KeywordFinder;
  private readonly sticky = new Map<string, StickyRule[]>();
  /** keyword → other keywords that can occur at the same position (one is a prefix of the other). */
  private readonly related = new Map<string, string[]>();
  private generation = 0;

  constructor(
    builtins: readonly Rule[],
    custom: readonly CompiledCustomRule[],
    private readonly allowValues: ReadonlySet<string>,
  ) {
    const all: Array<{ rule: Rule; custom: boolean }> = [
      ...builtins.map((rule) => ({ rule, custom: false })),
      ...custom.map((c) => ({
        rule: { id: c.id, description: c.description, keywords: c.keywords, pattern: c.pattern, priority: CUSTOM_PRIORITY, boundary: 'word' as const },
        custom: true,
      })),
    ];
    for (const { rule, custom: isCustom } of all) {
      const index = this.rules.length;
      this.rules.push({
        id: rule.id,
        description: rule.description,
        priority: rule.priority ?? 2,
        maskPrefix: rule.maskPrefix ?? 0,
        defaultAction: rule.defaultAction,
        custom: isCustom,
      });
      // No `d` flag for builtins: match indices cost an allocation per group on every match, which
      // dominates on hostile input; a builtin's secret group ends its match (up to a one-character
      // closing delimiter), so its offset is found with lastIndexOf instead.
      const flags = rule.pattern.flags.replace(/[gyd]/g, '') + (isCustom ? 'yd' : 'y');
      const groups = rule.secretGroup === undefined ? null : typeof rule.secretGroup === 'number' ? [rule.secretGroup] : rule.secretGroup;
      const compiled: StickyRule = {
        index,
        rule,
        sticky: new RegExp(rule.pattern.source, flags),
        offset: rule.offset ?? 0,
        groups,
        indices: isCustom,
        reach: isCustom ? customReach(rule) : (RULE_REACH[rule.id] ?? UNBOUNDED),
        generation: 0,
        lastTried: -1,
        skipUntil: -1,
      };
      for (const kw of new Set(rule.keywords)) {
        const list = this.sticky.get(kw) ?? [];
        list.push(compiled);
        this.sticky.set(kw, list);
      }
    }
    const keywords = [...this.sticky.keys()].sort();
    for (const a of keywords) {
      const rel = keywords.filter((b) => b !== a && (b.startsWith(a) || a.startsWith(b)));
      if (rel.length > 0) this.related.set(a, rel);
    }
    this.keywords = keywords;
    this.finder = keywordFinder(keywords);
    for (const kw of keywords) {
      let before = 0;
      let after = 0;
      let run = '';
      // Its own rules only: a keyword that starts at the same place (`sk-` at `sk`) is an
      // occurrence of its own, in the bytes or spelled by an escape, and gets its own window.
      {
        for (const r of this.sticky.get(kw)!) {
          before = Math.max(before, r.reach.before);
          after = Math.max(after, r.reach.after);
          run += r.reach.run ?? '';
        }
      }
      this.reaches.set(kw, run === '' ? { before, after } : { before, after, run });
    }
  }

  /** Per keyword: the most any rule it triggers reads around it. */
  private readonly reaches = new Map<string, Reach>();

  /** How far around an occurrence of `keyword` the rules it triggers may read (unbounded if unknown). */
  reachOf(keyword: string): Reach {
    return this.reaches.get(keyword) ?? UNBOUNDED;
  }

  /** The keyword automaton, for a scan over bytes (clean.ts); null when the keywords need the regex finder. */
  get automaton(): AutomatonFinder | null {
    return this.finder instanceof AutomatonFinder ? this.finder : null;
  }

  /**
   * True when some rule accepts a candidate at a keyword occurrence in `text` — a piece of a larger
   * text cut where `clipStart`/`clipEnd` say. Occurrences whose rules could read past a cut edge are
   * not tried (the caller tries them in a window where they are whole). Unlike `detect`, every
   * occurrence is tried, even inside an earlier match: a candidate that `detect` finds in the whole
   * text is then found here whatever precedes it in the window, so "false" is a proof. `known`:
   * the text's keyword occurrences, when the caller has them (the finder then does not read it).
   */
  probe(text: string, clipStart: boolean, clipEnd: boolean, known?: KeywordOccurrences | null): boolean {
    this.generation++;
    const found: Candidate[] = [];
    let hit = false;
    const n = text.length;
    const tryAt = (kw: string, at: number): void => {
      const rules = this.sticky.get(kw);
      if (!rules) return;
      for (const r of rules) {
        if (hit) return;
        if (clipStart && at - r.reach.before < 0) continue;
        if (clipEnd && at + r.reach.after + 1 > n) continue;
        const start = at - r.offset;
        if (start < 0) continue;
        if (r.rule.boundary === 'word' && isWordChar(kw.charCodeAt(0)) && !startsWord(text, at)) continue;
        r.sticky.lastIndex = start;
        const m = r.sticky.exec(text);
        if (m === null) continue;
        this.accept(r, m, kw, at, text, found);
        if (found.length > 0) hit = true;
      }
    };
    if (known) {
      // Every occurrence, each keyword at its start: nothing to find, nor any related keyword to add.
      for (let i = 0; i < known.at.length && !hit; i++) tryAt(known.keyword[i]!, known.at[i]!);
      return hit;
    }
    this.finder.forEachStart(text, (at, kw) => {
      if (hit) return;
      tryAt(kw, at);
      const rel = this.related.get(kw);
      if (rel) {
        for (const other of rel) {
          if (other.length <= kw.length || text.slice(at, at + other.length).toLowerCase() === other) tryAt(other, at);
        }
      }
    });
    return hit;
  }

  /** False when no keyword occurs in `text`, so `detect(text)` would find nothing. */
  hasKeyword(text: string): boolean {
    return this.finder.hasAny(text);
  }

  /** Candidates in `text`, validated and with overlaps resolved, sorted by start. */
  detect(text: string): Candidate[] {
    const found: Candidate[] = [];
    this.generation++;

    // The finder reports the longest keyword at each position; the shorter ones there are its
    // prefixes (`key` in `key-`), tried after it.
    this.finder.forEachStart(text, (at, kw) => {
      this.tryKeyword(kw, at, text, found);
      const rel = this.related.get(kw);
      if (rel) {
        for (const other of rel) {
          if (other.length <= kw.length || text.slice(at, at + other.length).toLowerCase() === other) {
            this.tryKeyword(other, at, text, found);
          }
        }
      }
    });
    return this.resolve(found);
  }

  private tryKeyword(kw: string, at: number, text: string, found: Candidate[]): void {
    const rules = this.sticky.get(kw);
    if (rules) {
      for (const r of rules) {
        const start = at - r.offset;
        if (r.generation !== this.generation) {
          r.generation = this.generation;
          r.lastTried = -1;
          r.skipUntil = -1;
        }
        if (start < 0 || r.lastTried === start || start < r.skipUntil) continue;
        if (r.rule.boundary === 'word' && isWordChar(kw.charCodeAt(0)) && !startsWord(text, at)) continue;
        r.lastTried = start;
        r.sticky.lastIndex = start;
        const m = r.sticky.exec(text);
        if (m !== null) {
          r.skipUntil = start + m[0].length;
          this.accept(r, m, kw, at, text, found);
        }
      }
    }
  }

  private accept(r: StickyRule, m: RegExpExecArray, kw: string, at: number, text: string, found: Candidate[]): void {
    let start = m.index;
    let end = start + m[0].length;
    let value = m[0];
    if (m.length > 1) {
      for (const g of r.groups ?? range(1, m.length)) {
        const group = m[g];
        if (group !== undefined) {
          const span = r.indices ? m.indices?.[g] : undefined;
          start = span ? span[0] : m.index + m[0].lastIndexOf(group);
          end = start + group.length;
          value = group;
          break;
        }
      }
    }
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
    if (dismissedAsPlaceholder(r.rule, value)) return;
    found.push({ rule: r.index, start, end, value });
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
      else if (cluster.length > 1) for (const c of this.pickInCluster(cluster)) out.push(c);
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

/** The shared placeholder/example checks a rule's accepted value goes through (see Rule.format). */
export function dismissedAsPlaceholder(rule: Rule, value: string): boolean {
  if (rule.ownPlaceholderChecks) return false;
  if (rule.format === 'checksum') return isDocumentedExample(value);
  return isPlaceholder(value, { random: rule.format === 'fixed' });
}

function isWordChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

/** The character before `at` is not a letter or digit, or `at` starts a camelCase word (`dbPassword`). */
function startsWord(text: string, at: number): boolean {
  if (at === 0) return true;
  const p = text.charCodeAt(at - 1);
  const c = text.charCodeAt(at);
  const pAlnum = (p >= 48 && p <= 57) || (p >= 65 && p <= 90) || (p >= 97 && p <= 122);
  if (!pAlnum) return true;
  return c >= 65 && c <= 90 && !(p >= 65 && p <= 90);
}

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i < to; i++) out.push(i);
  return out;
}

// The detector's keyword pass: the automaton against the case-insensitive regular expression it
// replaces, on the builtin keywords and on texts made to hit their edges (overlaps, prefixes,
// case, non-ASCII letters that fold to ASCII under Unicode rules but not under a regex's `i`).
import { describe, expect, it } from 'vitest';
import { AutomatonFinder, type KeywordFinder, RegexFinder, keywordFinder } from '../../src/inspect/keywords.js';
import { BUILTIN_RULES } from '../../src/inspect/rules/index.js';
import { Rng } from '../corpus/secrets.js';

const BUILTIN_KEYWORDS = [...new Set(BUILTIN_RULES.flatMap((r) => r.keywords))];

function starts(finder: KeywordFinder, text: string): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  finder.forEachStart(text, (at, kw) => out.push([at, kw]));
  return out;
}

/** Keyword pieces glued with noise: whole keywords, cut ones, random case, non-ASCII look-alikes. */
function randomText(rnd: (k: number) => number, keywords: readonly string[], pieces: number): string {
  const noise = ['', ' ', '_', '-', '=', '"', '\n', 'é', 'ſ', 'K', 'ı', 'İ', '\u00a0', '😀', 'x', '0'];
  let text = '';
  for (let i = 0; i < pieces; i++) {
    let kw = keywords[rnd(keywords.length)]!;
    if (rnd(3) === 0) kw = kw.slice(0, 1 + rnd(kw.length)); // a keyword cut short
    if (rnd(3) === 0) kw = [...kw].map((ch) => (rnd(2) ? ch.toUpperCase() : ch)).join('');
    if (rnd(8) === 0) kw = kw.replace('s', 'ſ').replace('k', 'K').replace('i', 'ı');
    text += kw + noise[rnd(noise.length)]!;
  }
  return text;
}

describe('keyword finder', () => {
  it('uses the automaton for the builtin keywords, with the same answers as the regex at every length', () => {
    const finder = keywordFinder(BUILTIN_KEYWORDS);
    expect(finder).toBeInstanceOf(AutomatonFinder);
    const regex = new RegexFinder(BUILTIN_KEYWORDS);
    const rnd = new Rng(99).below;
    let long = '';
    while (long.length < 12_000) long += randomText(rnd, BUILTIN_KEYWORDS, 50);
    for (const text of [long.slice(0, 9), long.slice(0, 200), long]) {
      expect(starts(finder, text)).toEqual(starts(regex, text));
      expect(finder.hasAny(text)).toBe(starts(regex, text).length > 0);
    }
    expect(finder.hasAny('nothing to see here')).toBe(false);
    expect(starts(finder, long).length).toBeGreaterThan(200);
  });

  it('finds what the case-insensitive regex finds, position by position, on 2,000 random texts', () => {
    const automaton = new AutomatonFinder(BUILTIN_KEYWORDS);
    const regex = new RegexFinder(BUILTIN_KEYWORDS);
    const rnd = new Rng(1234).below;
    let hits = 0;
    for (let i = 0; i < 2000; i++) {
      const text = randomText(rnd, BUILTIN_KEYWORDS, 1 + rnd(30));
      const expected = starts(regex, text);
      expect(starts(automaton, text), JSON.stringify(text)).toEqual(expected);
      hits += expected.length;
    }
    expect(hits).toBeGreaterThan(20_000);
  });

  it('reports every start of overlapping keywords, and the longest where one extends another', () => {
    const f = new AutomatonFinder(['dd_api', 'api_key', 'key', 'key-', 'pass', 'passphrase']);
    expect(starts(f, 'DD_API_KEY')).toEqual([
      [0, 'dd_api'],
      [3, 'api_key'],
      [7, 'key'],
    ]);
    expect(starts(f, 'x key- key_ passphrase')).toEqual([
      [2, 'key-'],
      [7, 'key'],
      [12, 'passphrase'],
    ]);
  });

  it('reports a keyword that ends the text, and one longer than its window', () => {
    const long = 'x'.repeat(40) + 'secret';
    const f = new AutomatonFinder([long, 'secret']);
    const text = `..${long}`;
    expect(starts(f, text)).toEqual([
      [2, long],
      [42, 'secret'],
    ]);
    expect(starts(f, 'secret')).toEqual([[0, 'secret']]);
    expect(starts(f, '')).toEqual([]);
  });

  it('does not fold non-ASCII letters onto ASCII keywords (as a regex without `u`)', () => {
    // Long s, Kelvin sign, dotless i: toUpperCase gives S, K, I — a regex `i` does not fold them.
    const text = '\u017fk_live_ \u212aid KID k\u0131d';
    const f = new AutomatonFinder(['sk_live_', 'kid']);
    expect(starts(f, text)).toEqual([[13, 'kid']]);
    expect(starts(new RegexFinder(['sk_live_', 'kid']), text)).toEqual([[13, 'kid']]);
  });

  it('leaves keywords the automaton cannot take to the regex', () => {
    expect(keywordFinder(['passwort', 'kennwört'])).toBeInstanceOf(RegexFinder);
    expect(starts(keywordFinder(['kennwört']), `${'x'.repeat(5000)} KENNWÖRT`)).toEqual([[5001, 'kennwört']]);
    expect(keywordFinder([])).toBeInstanceOf(RegexFinder);
    // Tens of thousands of custom keywords would make a table of hundreds of megabytes.
    const many = Array.from({ length: 5000 }, (_, i) => `custom-key-${i}`);
    expect(keywordFinder(many)).toBeInstanceOf(RegexFinder);
    expect(starts(keywordFinder(many), 'x custom-key-4999 y')).toEqual([[2, 'custom-key-4999']]);
    expect(starts(keywordFinder([]), 'anything'.repeat(1000))).toEqual([]);
  });

  it('stays linear when a keyword starts at every position', () => {
    const f = new AutomatonFinder(['aaaa', 'aaaaaaaa']);
    const text = 'a'.repeat(1_000_000);
    let count = 0;
    let ordered = true;
    let longest = 0;
    f.forEachStart(text, (at, kw) => {
      if (at !== count) ordered = false;
      if (kw.length === 8) longest++;
      count++;
    });
    expect(count).toBe(1_000_000 - 3);
    expect(ordered).toBe(true);
    expect(longest).toBe(1_000_000 - 7);
  });

  it('starts clean after a visitor threw part-way', () => {
    const f = new AutomatonFinder(['token']);
    expect(() =>
      f.forEachStart('token token', () => {
        throw new Error('visitor failed');
      }),
    ).toThrow('visitor failed');
    expect(starts(f, 'xx token')).toEqual([[3, 'token']]);
  });
});

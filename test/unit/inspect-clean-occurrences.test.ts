// The fast path (src/inspect/clean.ts) hands a window's readings the keyword occurrences the body
// scan found, moved through each unescaping, instead of reading every reading again: those lists
// must be every occurrence, or null where they cannot be (then the detector's finder reads it).
// Checked here against a brute-force search of the unescaped text itself.
import { describe, expect, it } from 'vitest';
import { keywordChars, unescapeReading } from '../../src/inspect/clean.js';
import { Detector, type KeywordOccurrences } from '../../src/inspect/detector.js';
import { unescapeJson } from '../../src/inspect/json-escapes.js';
import { BUILTIN_RULES } from '../../src/inspect/rules/index.js';
import { Rng } from '../corpus/secrets.js';

/** The occurrences unescapeReading gives the unescaped text. */
const unescapeOcc = (text: string, occ: KeywordOccurrences, chars: Uint8Array): KeywordOccurrences | null => unescapeReading(text, occ, chars).occ;

const KEYWORDS = new Detector(BUILTIN_RULES, [], new Set()).keywords;

/** Every (start, keyword) in `text`, ASCII letters folded as the detector's finder folds them. */
function bruteForce(text: string, keywords: readonly string[]): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  const folded = text.replace(/[A-Z]/g, (c) => c.toLowerCase());
  for (let at = 0; at < text.length; at++) for (const k of keywords) if (folded.startsWith(k, at)) out.push([at, k]);
  return out;
}

function sorted(occ: KeywordOccurrences): Array<[number, string]> {
  return occ.at.map((a, i): [number, string] => [a, occ.keyword[i]!]).sort((x, y) => x[0] - y[0] || (x[1] < y[1] ? -1 : 1));
}

function of(text: string, keywords: readonly string[]): KeywordOccurrences {
  const list = bruteForce(text, keywords);
  return { at: list.map((x) => x[0]), keyword: list.map((x) => x[1]) };
}

/** Text around keywords and escapes: short escapes, \u escapes (keyword characters or not), broken ones, backslash runs. */
function randomText(rng: Rng, keywords: readonly string[]): string {
  let out = '';
  const n = rng.int(1, 30);
  for (let i = 0; i < n; i++) {
    const kw = rng.pick(keywords);
    switch (rng.below(12)) {
      case 0:
        out += kw;
        break;
      case 1:
        out += kw.toUpperCase();
        break;
      case 2: {
        const at = rng.below(kw.length);
        out += `${kw.slice(0, at)}\\u${kw.charCodeAt(at).toString(16).padStart(4, '0')}${kw.slice(at + 1)}`;
        break;
      }
      case 3:
        out += `\\${rng.pick(['n', 't', '"', '\\', '/', "'", 'b', 'f', 'r', 'x', 'u12', 'u00e9', 'u2014', 'uZZZZ'])}`;
        break;
      case 4:
        out += `${kw.slice(0, -1)}\\n${kw.slice(-1)}`;
        break;
      case 5:
        out += '\\'.repeat(rng.int(1, 4));
        break;
      case 6:
        out += `https:\\/\\/u:p@h`;
        break;
      default:
        out += rng.str('abcdeXYZ _-.:/=\n"', rng.int(0, 12));
    }
  }
  return out;
}

describe('keyword occurrences through a window’s readings (clean.ts)', () => {
  for (const [name, keywords] of [
    ['builtin keywords', KEYWORDS],
    ['keywords holding / and \\', ['://', 'a\\b', 'pass', 'token', 'sk-']],
  ] as const) {
    it(`moves every occurrence through an unescaping, or says it cannot (${name})`, () => {
      const chars = keywordChars(keywords);
      const rng = new Rng(4242);
      let known = 0;
      let unknown = 0;
      for (let i = 0; i < 3000; i++) {
        let text = randomText(rng, keywords);
        let occ: KeywordOccurrences | null = of(text, keywords);
        // A few levels, as nested strings are read: each level's list from the one above.
        for (let level = 0; level < 3 && occ !== null; level++) {
          const read = unescapeReading(text, occ, chars);
          const next = read.occ;
          text = unescapeJson(text);
          expect(read.text).toBe(text);
          expect(unescapeReading(read.text, null, chars).occ).toBeNull();
          if (next === null) {
            unknown++;
            break;
          }
          known++;
          expect(sorted(next), JSON.stringify(text)).toEqual(bruteForce(text, keywords));
          occ = next;
        }
      }
      // Both answers occur: the lists are used, and the cases they cannot follow are seen.
      expect(known).toBeGreaterThan(500);
      expect(unknown).toBeGreaterThan(100);
    });
  }

  it('unescapes exactly as unescapeJson does (hex digits of either case, escapes cut by the end, unknown ones)', () => {
    const rng = new Rng(17);
    const chars = keywordChars(KEYWORDS);
    for (let i = 0; i < 5000; i++) {
      const text = rng.str('\\\\\\u0123456789abcdefABCDEFgGnrtbfx/"\'é😀', rng.int(0, 40));
      expect(unescapeReading(text, null, chars).text, JSON.stringify(text)).toBe(unescapeJson(text));
    }
  });

  it('cannot follow an escape that spells a keyword character, nor a keyword cut by an escape', () => {
    const chars = keywordChars(['pass', '://']);
    const occ = (text: string): KeywordOccurrences => of(text, ['pass', '://']);
    expect(unescapeOcc('pa\\u0073s', occ('pa\\u0073s'), chars)).toBeNull();
    expect(unescapeOcc('pa\\u0053s', occ('pa\\u0053s'), chars)).toBeNull(); // S folds to s
    expect(unescapeOcc('https:\\/\\/x', occ('https:\\/\\/x'), chars)).toBeNull();
    // An escape of no keyword character: the occurrences after it move back by what it took out.
    expect(unescapeOcc('a\\n\\u00e9 pass', occ('a\\n\\u00e9 pass'), chars)).toEqual({ at: [4], keyword: ['pass'] });
    // An escape inside a keyword (only a keyword holding a backslash can have one).
    const slash = keywordChars(['a\\nb']);
    expect(unescapeOcc('a\\nb', of('a\\nb', ['a\\nb']), slash)).toBeNull();
  });
});

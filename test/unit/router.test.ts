// Path normalisation (SPEC §3) at unit level; the gateway tests drive the same cases through the
// proxy. Most paths are already normal and take a shortcut: it must never disagree with the rewrite.
import { describe, expect, it } from 'vitest';
import { BadPathError, normalisePath } from '../../src/route/router.js';

describe('normalisePath', () => {
  it.each([
    ['/v1/chat/completions', '/v1/chat/completions'],
    ['/copilot/', '/copilot/'],
    ['/', '/'],
    ['/a//b', '/a/b'],
    ['/a/./b/../c', '/a/c'],
    ['/a/%2e%2E/b', '/b'],
    ['/a%2fb', '/a/b'],
    ['/a\\..\\b', '/b'],
    ['/.well-known/x', '/.well-known/x'],
    ['/a/b..c/d.', '/a/b..c/d.'],
    ['/a%20b', '/a%20b'],
  ])('%s → %s', (raw, normal) => {
    expect(normalisePath(raw)).toBe(normal);
  });

  it('refuses control characters, raw or escaped', () => {
    expect(() => normalisePath('/a\x00b')).toThrow(BadPathError);
    expect(() => normalisePath('/a%0ab')).toThrow(BadPathError);
  });

  it('gives the same answer with and without the already-normal shortcut, for every short path', () => {
    // Every path of up to 6 characters (a slash and 5 more) over an alphabet of the characters that matter. A leading
    // "/." segment never changes the result but always forces the full rewrite.
    const alphabet = ['/', 'a', '.', '%', '2', 'e', 'F', '\\', '-'];
    let compared = 0;
    const walk = (path: string, depth: number): void => {
      for (const c of alphabet) {
        const p = path + c;
        let viaShortcut: string | null = null;
        let viaRewrite: string | null = null;
        try {
          viaShortcut = normalisePath(p);
          viaRewrite = normalisePath(`/.${p}`);
        } catch {
          // refused either way: nothing to compare
        }
        if (viaShortcut !== null && viaRewrite !== null) {
          expect(viaShortcut, p).toBe(viaRewrite);
          compared++;
        }
        if (depth > 1) walk(p, depth - 1);
      }
    };
    walk('/', 5);
    expect(compared).toBeGreaterThan(10_000);
  });
});

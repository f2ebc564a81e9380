// Protected-code lookups remembered by content (lookup-memo.ts): an agent resends its conversation
// every turn, so a text looked up once is not tokenised again — but a memo must never give an
// answer the lookup would not: a changed character is looked up again, a string that held protected
// code still sends the body down the full path, and the findings are the full scan's.
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { DEFAULT_BUILD, IndexBuilder } from '../../src/fingerprint/build.js';
import { encodeIndex } from '../../src/fingerprint/index-file.js';
import { resetWork, work } from '../../src/fingerprint/work.js';
import { createInspector, type InspectBodyMeta } from '../../src/inspect/index.js';
import { LookupMemo } from '../../src/inspect/lookup-memo.js';
import { loadProtectedCode, ProtectedCode } from '../../src/inspect/protected.js';

const NM = resolve(import.meta.dirname, '../../node_modules');
const PROTECTED = readFileSync(resolve(NM, 'ws/lib/receiver.js'), 'utf8').split('\n');
const OTHER = readFileSync(resolve(NM, 'undici/lib/core/util.js'), 'utf8');

const dir = mkdtempSync(join(tmpdir(), 'aigate-lookup-memo-'));
const indexFile = join(dir, 'acme.fp');
{
  const builder = new IndexBuilder({ ...DEFAULT_BUILD, label: 'acme' });
  builder.add('src/receiver.js', PROTECTED.join('\n'));
  writeFileSync(indexFile, encodeIndex(builder.build()));
}
const cfg = configSchema.parse({ inspect: { fingerprints: [{ file: indexFile }] } }).inspect;
const sources = loadProtectedCode(cfg.fingerprints);

const chat = (...contents: string[]) => Buffer.from(JSON.stringify({ model: 'm', messages: contents.map((content) => ({ role: 'user', content })) }));
const copy = PROTECTED.slice(100, 140).join('\n');

/** What `look` costs in index lookups. */
function lookups<T>(look: () => T): { answer: T; lookups: number } {
  resetWork();
  const answer = look();
  return { answer, lookups: work.lookups };
}

describe('LookupMemo', () => {
  it('names equal bytes alike and different bytes, domains or memos apart', () => {
    const memo = new LookupMemo<boolean>();
    const a = Buffer.from(OTHER);
    const b = Buffer.from(OTHER);
    b[b.length - 1] = b[b.length - 1]! ^ 1;
    expect(memo.digest('u', a)).toBe(memo.digest('u', Buffer.from(OTHER)));
    expect(memo.digest('u', a)).not.toBe(memo.digest('u', b));
    expect(memo.digest('u', a)).not.toBe(memo.digest('l', a));
    // Keyed: another memo's digest of the same bytes says nothing of this one's.
    expect(new LookupMemo<boolean>().digest('u', a)).not.toBe(memo.digest('u', a));
  });

  it('keeps the 4096 most recently used entries', () => {
    const memo = new LookupMemo<number>();
    for (let i = 0; i < 4096; i++) memo.set(`k${i}`, i);
    expect(memo.get('k0')).toBe(0); // now the most recent
    memo.set('new', -1);
    expect(memo.size).toBe(4096);
    expect(memo.get('k1')).toBeUndefined();
    expect(memo.get('k0')).toBe(0);
    expect(memo.get('new')).toBe(-1);
  });
});

describe('ProtectedCode remembers its lookups', () => {
  it('a body\'s strings read from its bytes are not looked up again; a changed one is', () => {
    const code = new ProtectedCode(sources);
    const body = chat('Explain this:\n' + OTHER, 'and this:\n' + OTHER.slice(0, 9000));
    const first = lookups(() => code.inBodyBytes(body, true, true));
    expect(first).toEqual({ answer: false, lookups: expect.any(Number) });
    expect(first.lookups).toBeGreaterThan(0);
    expect(lookups(() => code.inBodyBytes(body, true, true))).toEqual({ answer: false, lookups: 0 });
    // One character changed in the second string: it alone is looked up again.
    const changed = chat('Explain this:\n' + OTHER, 'and this:\n' + OTHER.slice(0, 8999) + 'X');
    const again = lookups(() => code.inBodyBytes(changed, true, true));
    expect(again.answer).toBe(false);
    expect(again.lookups).toBeGreaterThan(0);
    expect(again.lookups).toBeLessThan(first.lookups);
    // The same bytes read as latin1 are another text.
    expect(lookups(() => code.inBodyBytes(body, false, true)).lookups).toBe(first.lookups);
  });

  it('a string that held protected code still sends the body to the full path, and its findings come from memory', () => {
    const code = new ProtectedCode(sources);
    const body = chat('Why does this fail?\n' + OTHER.slice(0, 6000) + '\n' + copy);
    expect(code.inBodyBytes(body, true, true)).toBe(true);
    const text = JSON.parse(body.toString()).messages[0].content as string;
    const hits = code.find(text);
    expect(hits).toHaveLength(1);
    expect(lookups(() => code.inBodyBytes(body, true, true))).toEqual({ answer: true, lookups: 0 });
    expect(lookups(() => code.find(text))).toEqual({ answer: hits, lookups: 0 });
    // Not the same text: looked up.
    expect(lookups(() => code.find(text + ' ')).lookups).toBeGreaterThan(0);
  });

  it('the inspector answers a resent conversation as the full scan does, without looking it up again', async () => {
    const fast = createInspector(cfg, { fingerprintKey: 'k', protectedCode: sources });
    const full = createInspector(cfg, { fingerprintKey: 'k', protectedCode: sources, fastPath: false });
    const meta: InspectBodyMeta = { contentType: 'application/json', action: 'block' };
    const turns = [
      chat('Explain this:\n' + OTHER),
      chat('Explain this:\n' + OTHER, 'Now this one:\n' + OTHER.slice(2000, 12000)),
      chat('Explain this:\n' + OTHER, 'Now this one:\n' + OTHER.slice(2000, 12000), 'And ours:\n' + OTHER.slice(0, 5000) + '\n' + copy),
    ];
    for (const [n, body] of turns.entries()) {
      const expected = await full.inspectBody(body, meta);
      expect(expected.decision, `turn ${n}`).toBe(n === 2 ? 'block' : 'allow');
      const cold = lookups(() => fast.inspectBody(body, meta));
      expect(await cold.answer, `turn ${n}`).toEqual(expected);
      const warm = lookups(() => fast.inspectBody(body, meta));
      expect(await warm.answer, `turn ${n} again`).toEqual(expected);
      expect(warm.lookups, `turn ${n} again`).toBe(0);
    }
  });
});

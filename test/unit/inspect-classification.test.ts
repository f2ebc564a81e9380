// Sensitive code (SPEC §11): classification markers found like secrets in every view, with their
// level's action and the tagged region redacted; protected code found by the fingerprint indexes
// in chat bodies whatever keywords they lack, with its source for the audit line; both the same on
// the scan threads; configuration and index files refused with the key path and the reason.
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';
import { DEFAULT_BUILD, IndexBuilder } from '../../src/fingerprint/build.js';
import { encodeIndex } from '../../src/fingerprint/index-file.js';
import { compileClassification } from '../../src/inspect/classification.js';
import { Detector } from '../../src/inspect/detector.js';
import { BUILTIN_RULES, createInspector, type InspectOutcome } from '../../src/inspect/index.js';
import { PooledInspector } from '../../src/inspect/pool.js';
import { loadProtectedCode } from '../../src/inspect/protected.js';
import { Rng, githubClassic } from '../corpus/secrets.js';
import { withCpuTime } from '../support/cpu.js';

const NM = resolve(import.meta.dirname, '../../node_modules');
const source = (p: string) => readFileSync(resolve(NM, p), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'aigate-classify-'));
const token = githubClassic(new Rng(16));
const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const chat = (...contents: string[]) => json({ model: 'gpt-x', messages: contents.map((content) => ({ role: 'user', content })) });
const rulesAndLines = (out: InspectOutcome) => out.findings.map((f) => [f.rule, f.line, f.action]);

/** The protected codebase of these tests: two files of ws, indexed as `acme`. */
const RECEIVER = source('ws/lib/receiver.js');
const indexFile = join(dir, 'acme.fp');
{
  const builder = new IndexBuilder({ ...DEFAULT_BUILD, label: 'acme' });
  builder.add('src/websocket.js', source('ws/lib/websocket.js'));
  builder.add('src/receiver.js', RECEIVER);
  writeFileSync(indexFile, encodeIndex(builder.build()));
}
const receiverLines = RECEIVER.split('\n');
const at = receiverLines.findIndex((l) => l.includes('getInfo(cb) {'));
/** 20 lines of the protected receiver.js (lines at+1 … at+20 of the file). */
const SNIPPET = receiverLines.slice(at, at + 20).join('\n');

function inspectorWith(inspect: Record<string, unknown>, key = 'k') {
  return createInspector(configSchema.parse({ inspect }).inspect, { fingerprintKey: key });
}

describe('configuration', () => {
  it('ships levels restricted and confidential → block, internal → monitor, tags on, no indexes', () => {
    const { inspect } = configSchema.parse({});
    expect(inspect.classification).toEqual({ levels: { restricted: 'block', confidential: 'block', internal: 'monitor' }, tags: true, proprietaryLevel: 'confidential', markers: [] });
    expect(inspect.fingerprints).toEqual([]);
    expect(configSchema.parse({ inspect: { fingerprints: [{ file: 'a.fp' }] } }).inspect.fingerprints).toEqual([{ file: 'a.fp', minLines: 8 }]);
  });

  it('bad keys are refused with their path', () => {
    const bad = (inspect: unknown) => {
      try {
        parseConfig({ inspect }, 'aigate.yaml');
      } catch (err) {
        return (err as ConfigError).message;
      }
      return 'accepted';
    };
    expect(bad({ classification: { levels: { Secret: 'block' } } })).toMatch(/^aigate\.yaml: inspect\.classification\.levels\.Secret: /);
    expect(bad({ classification: { levels: { secret: 'deny' } } })).toMatch(/^aigate\.yaml: inspect\.classification\.levels\.secret: /);
    expect(bad({ classification: { markers: [{ pattern: 'X' }] } })).toMatch(/inspect\.classification\.markers\[0\]\.level: is required/);
    expect(bad({ classification: { colour: 1 } })).toMatch(/inspect\.classification\.colour: unknown key/);
    expect(bad({ fingerprints: [{ file: 'a.fp', minLines: 1 }] })).toMatch(/inspect\.fingerprints\[0\]\.minLines: /);
    expect(bad({ fingerprints: [{ file: 'a.fp', label: 'a b' }] })).toMatch(/inspect\.fingerprints\[0\]\.label: must be letters/);
    expect(bad({ fingerprints: [{ path: 'a.fp' }] })).toMatch(/inspect\.fingerprints\[0\]\.file: is required/);
  });

  it('markers naming an unknown level, or with an unsafe pattern, are refused with their path', () => {
    expect(() => inspectorWith({ classification: { markers: [{ pattern: 'TOP SECRET', level: 'top-secret' }] } })).toThrow(
      /^inspect\.classification\.markers\[0\]\.level: unknown level "top-secret" \(inspect\.classification\.levels has restricted, confidential, internal\)/,
    );
    expect(() => inspectorWith({ classification: { markers: [{ pattern: 'PROJ(a+)+X', level: 'internal' }] } })).toThrow(/^inspect\.classification\.markers\[0\]\.pattern: /);
    expect(() => inspectorWith({ classification: { org: 'Acme', proprietaryLevel: 'secret' } })).toThrow(/^inspect\.classification\.proprietaryLevel: unknown level "secret"/);
  });

  it('an index that is missing, truncated, of another version or tampered with is refused with the file and reason', () => {
    const bytes = readFileSync(indexFile);
    const variant = (name: string, edit: (b: Buffer) => Buffer) => {
      const file = join(dir, name);
      writeFileSync(file, edit(Buffer.from(bytes)));
      return file;
    };
    const refusal = (file: string) => {
      try {
        inspectorWith({ fingerprints: [{ file: indexFile }, { file }] });
      } catch (err) {
        return (err as Error).message;
      }
      return 'accepted';
    };
    const missing = join(dir, 'missing.fp');
    expect(refusal(missing)).toBe(`inspect.fingerprints[1].file: ${missing}: no such file (build one with \`aigate fingerprint build\`)`);
    const truncated = variant('truncated.fp', (b) => b.subarray(0, b.length - 1000));
    expect(refusal(truncated)).toMatch(new RegExp(`^inspect\\.fingerprints\\[1\\]\\.file: ${truncated}: checksum mismatch: the file is truncated`));
    const newer = variant('v3.fp', (b) => (b.writeUInt32LE(3, 8), b));
    expect(refusal(newer)).toMatch(/^inspect\.fingerprints\[1\]\.file: .*v3\.fp: index format version 3; this aigate reads version 2/);
    const older = variant('v1.fp', (b) => (b.writeUInt32LE(1, 8), b));
    expect(refusal(older)).toBe(`inspect.fingerprints[1].file: ${older}: index format version 1; this aigate reads version 2 (rebuild it with \`aigate fingerprint build\`)`);
    const tampered = variant('tampered.fp', (b) => ((b[b.length - 500]! ^= 4), b));
    expect(refusal(tampered)).toMatch(/^inspect\.fingerprints\[1\]\.file: .*tampered\.fp: checksum mismatch/);
    expect(refusal(indexFile)).toBe('accepted');
  });
});

describe('classification markers', () => {
  const inspector = inspectorWith({ classification: { org: 'Acme' }, rules: { actions: { 'github-pat': 'redact' } } });
  const inspect = (body: Buffer, action: 'block' | 'redact' | 'monitor' = 'block') => inspector.inspectBody(body, { contentType: 'application/json', action });

  it('every shipped tag is found in a JSON string, at its line, with its level as the rule and its action', async () => {
    for (const [marker, level] of [
      ['// @classification restricted', 'restricted'],
      [' * @classification: Confidential', 'confidential'],
      ['# aigate: restricted', 'restricted'],
      ['-- aigate-classification: confidential', 'confidential'],
      ['// SPDX-License-Identifier: LicenseRef-Acme-Proprietary', 'confidential'],
      ['/* ACME RESTRICTED */', 'restricted'],
    ] as const) {
      const out = await inspect(chat('Can you speed this up?', `import x from "y";\n\n${marker}\nexport const f = () => 1;`));
      expect(out.decision, marker).toBe('block');
      expect(rulesAndLines(out), marker).toEqual([[`classification:${level}`, 3, 'block']]);
    }
  });

  it('internal is monitored; words that only begin like a level, unknown levels and other orgs are no marker', async () => {
    const out = await inspect(chat('// aigate: internal\nconst a = 1;'));
    expect(out.decision).toBe('monitor');
    expect(rulesAndLines(out)).toEqual([['classification:internal', 1, 'monitor']]);
    expect(out.findings[0]!.masked).toBe('aigate: internal');
    const clean = await inspect(chat('// @classification internals\n// aigate: top-secret\n// SPDX-License-Identifier: LicenseRef-Other-Proprietary\nACMEX CONFIDENTIAL\n'));
    expect(clean.findings).toEqual([]);
    // Without `org`, neither SPDX references nor banners are markers.
    const noOrg = await inspectorWith({}).inspectBody(chat('// SPDX-License-Identifier: LicenseRef-Acme-Proprietary\nACME CONFIDENTIAL'), { contentType: 'application/json', action: 'block' });
    expect(noOrg.findings).toEqual([]);
  });

  it('found in a decoded attachment and in nested JSON (tool-call arguments)', async () => {
    const file = Buffer.from('package pricing\n\n// @classification restricted\nfunc Price() int { return 1 }\n').toString('base64');
    const attached = await inspect(json({ messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'base64', media_type: 'text/plain', data: file } }] }] }));
    expect(rulesAndLines(attached)).toEqual([['classification:restricted', 3, 'block']]);
    const nested = await inspect(json({ messages: [{ role: 'assistant', tool_calls: [{ function: { name: 'write', arguments: JSON.stringify({ path: 'a.go', text: 'x\n// aigate: restricted\n' }) } }] }] }));
    expect(rulesAndLines(nested)).toEqual([['classification:restricted', 2, 'block']]);
  });

  it('configured markers run with the same machinery', async () => {
    const custom = inspectorWith({ classification: { markers: [{ pattern: 'Project Falcon', level: 'restricted' }] } });
    const out = await custom.inspectBody(chat('notes\nProject Falcon roadmap, project falcon (the pattern is case-sensitive unless it starts with (?i))'), { contentType: 'application/json', action: 'monitor' });
    expect(rulesAndLines(out)).toEqual([['classification:restricted', 2, 'block']]);
    expect(out.decision).toBe('block');
  });

  it('redact replaces the tagged region, from the marker line to the end of its string; what precedes is kept', async () => {
    const redacting = inspectorWith({ classification: { levels: { confidential: 'redact' } }, rules: { actions: { 'github-pat': 'redact' } } });
    const text = `Explain this:\nconst gh = "${token}";\n// @classification confidential\nconst rate = 0.42;\nconst other = "${token}";\n`;
    const out = await redacting.inspectBody(chat(text, 'and this one is fine'), { contentType: 'application/json', action: 'block' });
    expect(out.decision).toBe('redact');
    const sent = JSON.parse(out.redactedBody!.toString()) as { messages: Array<{ content: string }> };
    expect(sent.messages[0]!.content).toBe('Explain this:\nconst gh = "[REDACTED:github-pat]";\n[REDACTED:classification:confidential]');
    expect(sent.messages[1]!.content).toBe('and this one is fine');
    expect(rulesAndLines(out)).toEqual([
      ['github-pat', 2, 'redact'],
      ['classification:confidential', 3, 'redact'],
      ['github-pat', 5, 'redact'],
    ]);
  });

  it('a monitored region does not hide the secrets in it', async () => {
    const out = await inspectorWith({}).inspectBody(chat(`// aigate: internal\nconst gh = "${token}";`), { contentType: 'application/json', action: 'block' });
    expect(out.decision).toBe('block');
    expect(out.findings.map((f) => f.rule).sort()).toEqual(['classification:internal', 'github-pat']);
  });
});

describe('protected code', () => {
  const inspector = inspectorWith({ fingerprints: [{ file: indexFile }] }, 'key-1');
  const body = chat('The reader stalls on large frames, why?', `Here is the code:\n\n\`\`\`js\n${SNIPPET}\n\`\`\`\nThanks!`);

  it('20 lines of indexed code in a chat body are a finding protected-code:<label>, at the first matched line, naming file and lines', async () => {
    const out = await inspector.inspectBody(body, { contentType: 'application/json', action: 'block' });
    expect(out.decision).toBe('block');
    expect(out.findings).toHaveLength(1);
    const f = out.findings[0]!;
    expect(f.rule).toBe('protected-code:acme');
    expect(f.line).toBeGreaterThanOrEqual(4); // the code starts on line 4 of the message
    expect(f.line).toBeLessThanOrEqual(6);
    const m = /^src\/receiver\.js:(\d+)-(\d+)$/.exec(f.source ?? '');
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThanOrEqual(at + 1);
    expect(Number(m![2])).toBeLessThanOrEqual(at + 20);
    expect(Number(m![2]) - Number(m![1]) + 1).toBeGreaterThanOrEqual(8);
    expect(f.masked).toBe(f.source);
    // The fingerprint is an HMAC of label:path:start-end — stable, and no code in it.
    expect(f.fingerprint).toBe(createHmac('sha256', 'key-1').update(`acme:${f.source}`).digest('hex').slice(0, 16));
  });

  it('is found though the body holds no keyword of any rule (the keyword shortcut must not skip it)', async () => {
    const noRules = inspectorWith({ rules: { builtin: 'none' }, classification: { tags: false }, fingerprints: [{ file: indexFile }] });
    const out = await noRules.inspectBody(body, { contentType: 'application/json', action: 'block' });
    expect(rulesAndLines(out).map((r) => r[0])).toEqual(['protected-code:acme']);
    // With every builtin rule on, the snippet still has no keyword: the other shortcut (and any
    // fast path that proves a body clean from its keywords alone).
    expect(new Detector(BUILTIN_RULES, compileClassification(configSchema.parse({}).inspect.classification), new Set()).hasKeyword(`Here:\n${SNIPPET}\n`)).toBe(false);
    const plain = await inspector.inspectBody(Buffer.from(`Here:\n${SNIPPET}\n`), { contentType: 'text/plain', action: 'block' });
    expect(plain.findings.map((f) => f.rule)).toEqual(['protected-code:acme']);
  });

  it('renamed and reformatted code inside a base64 attachment is found too', async () => {
    const edited = SNIPPET.replace(/\bcb\b/g, 'done').replace(/^ +/gm, '\t');
    const file = Buffer.from(`// notes\n${edited}\n`).toString('base64');
    const out = await inspector.inspectBody(json({ messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'base64', media_type: 'text/plain', data: file } }] }] }), { contentType: 'application/json', action: 'block' });
    expect(out.findings.map((f) => f.rule)).toEqual(['protected-code:acme']);
  });

  it('action and label from the config; redact replaces the matched lines only; minLines above the copy finds nothing', async () => {
    const monitor = inspectorWith({ fingerprints: [{ file: indexFile, label: 'crown-jewels', action: 'monitor' }] });
    const watched = await monitor.inspectBody(body, { contentType: 'application/json', action: 'block' });
    expect(watched.decision).toBe('monitor');
    expect(rulesAndLines(watched)[0]!.slice(0, 1)).toEqual(['protected-code:crown-jewels']);

    const redact = inspectorWith({ fingerprints: [{ file: indexFile, action: 'redact' }] });
    const out = await redact.inspectBody(body, { contentType: 'application/json', action: 'block' });
    expect(out.decision).toBe('redact');
    const content = (JSON.parse(out.redactedBody!.toString()) as { messages: Array<{ content: string }> }).messages[1]!.content;
    expect(content.startsWith('Here is the code:\n\n```js\n')).toBe(true);
    expect(content).toContain('[REDACTED:protected-code:acme]');
    expect(content.endsWith('```\nThanks!')).toBe(true);
    expect(content).not.toContain('this._loop = false'); // copied lines are gone
    expect(content.length).toBeLessThan(SNIPPET.length / 2);

    const strict = inspectorWith({ fingerprints: [{ file: indexFile, minLines: 40 }] });
    expect((await strict.inspectBody(body, { contentType: 'application/json', action: 'block' })).findings).toEqual([]);
  });

  it('other code is not protected code', async () => {
    const out = await inspector.inspectBody(chat(source('undici/lib/core/util.js')), { contentType: 'application/json', action: 'block' });
    expect(out.findings).toEqual([]);
  });

  it('scanText reports it with the protected file and lines', () => {
    const [f] = inspector.scanText(SNIPPET);
    expect(f).toMatchObject({ rule: 'protected-code:acme', line: expect.any(Number) as number });
    expect(f!.masked).toMatch(/^src\/receiver\.js:\d+-\d+$/);
  });

  it('pathological repetition in a JSON string scans in linear time', async () => {
    const hostile = chat('a = a; '.repeat(200_000) + '"'.repeat(300_000), '/*'.repeat(200_000));
    const { value, ms } = await withCpuTime(() => inspector.inspectBody(hostile, { contentType: 'application/json', action: 'block' }));
    expect(value.findings).toEqual([]);
    expect(ms).toBeLessThan(5000); // ~0.2 s here; quadratic would take hours
  });
});

describe('scan threads', () => {
  const config = configSchema.parse({ inspect: { maxBodyBytes: '16mb', fingerprints: [{ file: indexFile, action: 'redact' }], classification: { levels: { restricted: 'redact' } } } }).inspect;
  const key = Buffer.from('pool-key');
  const protectedCode = loadProtectedCode(config.fingerprints, { share: true });
  const local = createInspector(config, { fingerprintKey: key, protectedCode });
  const pool = new PooledInspector(local, { config, fingerprintKey: key, protectedCode, threads: 1, minBytes: 0 });
  afterAll(() => pool.close());

  it('load the same indexes and give the same outcome', async () => {
    const filler = Array.from({ length: 3000 }, (_, i) => `  step(${i}); // plain prose and code around the copy`).join('\n');
    const body = chat(`${filler}\n${SNIPPET}\n${filler}`, `x\n// @classification restricted\n${filler}`);
    const meta = { contentType: 'application/json', action: 'block' as const };
    const inline = await local.inspectBody(body, meta);
    const threaded = await pool.inspectBody(body, meta);
    expect(pool.size).toBe(1);
    expect(inline.decision).toBe('redact');
    expect(inline.findings.map((f) => f.rule).sort()).toEqual(['classification:restricted', 'protected-code:acme']);
    const { redactedBody: a, ...restA } = threaded;
    const { redactedBody: b, ...restB } = inline;
    expect(restA).toEqual(restB);
    expect(Buffer.from(a!).equals(b!)).toBe(true);
  });
});

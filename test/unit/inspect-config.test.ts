// The `inspect` config section: rule selection, per-rule actions, allowValues, custom rules (and
// their start-up errors), and how actions combine into a request decision.
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { createInspector, type Inspector } from '../../src/inspect/index.js';
import { Rng, make } from '../corpus/secrets.js';

const rng = new Rng(7);
const build = (inspect: object): Inspector => createInspector(configSchema.parse({ inspect }).inspect, { fingerprintKey: 'k' });
const body = (text: string): Buffer => Buffer.from(text);
const PASSWORD = 'password = "Zq8vLm2pRt7x"';

describe('rule selection', () => {
  it('runs all builtin rules by default, none with builtin: none, and only the listed ones with a list', () => {
    const gh = make.githubPat(rng);
    const text = `${PASSWORD}\nt=${gh}`;
    expect(build({}).scanText(text).map((f) => f.rule)).toEqual(['generic-password', 'github-pat']);
    expect(build({ rules: { builtin: 'none' } }).scanText(text)).toEqual([]);
    expect(build({ rules: { builtin: ['github-pat'] } }).scanText(text).map((f) => f.rule)).toEqual(['github-pat']);
  });

  it('disables rules named in rules.disable', () => {
    expect(build({ rules: { disable: ['generic-password'] } }).scanText(PASSWORD)).toEqual([]);
  });

  it('never reports a value listed in allowValues', () => {
    expect(build({ allowValues: ['Zq8vLm2pRt7x'] }).scanText(PASSWORD)).toEqual([]);
  });

  it('rejects unknown rule ids with the key path', () => {
    expect(() => build({ rules: { builtin: ['github-pat', 'nope'] } })).toThrow(/^inspect\.rules\.builtin\[1\]: unknown rule "nope"/);
    expect(() => build({ rules: { disable: ['nope'] } })).toThrow(/^inspect\.rules\.disable\[0\]: unknown rule "nope"/);
    expect(() => build({ rules: { actions: { nope: 'monitor' } } })).toThrow(/^inspect\.rules\.actions: unknown rule "nope"/);
  });
});

describe('actions and decisions', () => {
  it('uses the policy action passed in when nothing overrides it', async () => {
    const inspector = build({});
    for (const action of ['block', 'redact', 'monitor'] as const) {
      const out = await inspector.inspectBody(body(PASSWORD), { action });
      expect(out.decision).toBe(action);
      expect(out.findings[0]!.action).toBe(action);
    }
  });

  it('lets rules.actions override the policy, per rule', async () => {
    const inspector = build({ rules: { actions: { 'generic-password': 'monitor' } } });
    const out = await inspector.inspectBody(body(PASSWORD), { action: 'block' });
    expect(out.decision).toBe('monitor');
    expect(out.redactedBody).toBeUndefined();
  });

  it('gives low-confidence builtin rules monitor by default', async () => {
    const out = await build({}).inspectBody(body(`sid ${make.twilioKeySid(rng)}`), { action: 'block' });
    expect(out.findings.map((f) => [f.rule, f.action])).toEqual([['twilio-api-key', 'monitor']]);
    expect(out.decision).toBe('monitor');
  });

  it('decides block over redact over monitor, and redacts only the redact findings', async () => {
    const gh = make.githubPat(rng);
    const sid = make.twilioKeySid(rng);
    const inspector = build({ rules: { actions: { 'github-pat': 'block' } } });
    const text = `${PASSWORD}\nt=${gh}\nsid ${sid}`;
    expect((await inspector.inspectBody(body(text), { action: 'redact' })).decision).toBe('block');
    const redacting = build({});
    const out = await redacting.inspectBody(body(text), { action: 'redact' });
    expect(out.decision).toBe('redact');
    const forwarded = out.redactedBody!.toString();
    expect(forwarded).toContain('password = "[REDACTED:generic-password]"');
    expect(forwarded).toContain('t=[REDACTED:github-pat]');
    expect(forwarded).toContain(`sid ${sid}`); // monitor-only: forwarded as sent
    expect((await redacting.inspectBody(body('nothing here'), { action: 'block' })).decision).toBe('allow');
  });
});

describe('custom rules', () => {
  it('finds matches of a custom pattern, with its own action and description', async () => {
    const inspector = build({
      rules: { custom: [{ id: 'acme-key', pattern: 'ACME-[A-Z0-9]{24}', description: 'ACME internal key', action: 'monitor' }] },
    });
    const text = 'const k = "ACME-ABCDEFGH12345678IJKLMNOP";';
    const [f] = inspector.scanText(text);
    expect(f).toMatchObject({ rule: 'acme-key', description: 'ACME internal key', action: 'monitor' });
    expect(text.slice(f!.start, f!.end)).toBe('ACME-ABCDEFGH12345678IJKLMNOP');
    expect((await inspector.inspectBody(body(text), { action: 'block' })).decision).toBe('monitor');
  });

  it('reports the first capture group when the pattern has one, and accepts (?i) and keywords', () => {
    const inspector = build({
      rules: { custom: [{ id: 'acme-token', pattern: '(?i)acme_token\\s*=\\s*"([a-z0-9]{16,32})"', keywords: ['acme_token'] }] },
    });
    const text = 'ACME_TOKEN = "q8v2lm7prt3x9z4k"';
    const [f] = inspector.scanText(text);
    expect(text.slice(f!.start, f!.end)).toBe('q8v2lm7prt3x9z4k');
  });

  it.each([
    ['acme-(', /^inspect\.rules\.custom\[0\]\.pattern: invalid regular expression/],
    ['acme(a+)+b', /^inspect\.rules\.custom\[0\]\.pattern: a repeated group contains a repetition/],
    ['acme(?:a|ab)*c', /^inspect\.rules\.custom\[0\]\.pattern: a repeated group contains a repetition or an alternation/],
    ['acme(\\w)\\1', /^inspect\.rules\.custom\[0\]\.pattern: back-references are not supported/],
    ['acme.*x.*=', /^inspect\.rules\.custom\[0\]\.pattern: a repetition that can also match what follows it/],
    ['acme[a-z]{1,5000}', /^inspect\.rules\.custom\[0\]\.pattern: a repetition bound above 1024/],
    ['[a-z]{3}-[0-9]{8}', /^inspect\.rules\.custom\[0\]\.keywords: required when the pattern does not start with a literal/],
    ['(?:acme)?', /^inspect\.rules\.custom\[0\]\.pattern: the pattern matches the empty string/],
  ])('rejects %s at start-up with a clear message', (pattern, message) => {
    expect(() => build({ rules: { custom: [{ id: 'bad', pattern }] } })).toThrow(message);
  });

  it('rejects keywords a match cannot start with, short keywords, and ids that clash', () => {
    expect(() => build({ rules: { custom: [{ id: 'x', pattern: 'acme-[0-9]{8}', keywords: ['zzz'] }] } })).toThrow(
      /^inspect\.rules\.custom\[0\]\.keywords\[0\]: a match can never start with "zzz"/,
    );
    expect(() => build({ rules: { custom: [{ id: 'x', pattern: 'acme-[0-9]{8}', keywords: ['ac'] }] } })).toThrow(/too short/);
    expect(() => build({ rules: { custom: [{ id: 'github-pat', pattern: 'acme-[0-9]{8}' }] } })).toThrow(/builtin rule id/);
    expect(() =>
      build({ rules: { custom: [{ id: 'x', pattern: 'acme-[0-9]{8}' }, { id: 'x', pattern: 'acme-[0-9]{9}' }] } }),
    ).toThrow(/^inspect\.rules\.custom\[1\]\.id: duplicate id "x"/);
  });

  it('caps unbounded repetitions instead of letting them run to the end of the text', () => {
    const inspector = build({ rules: { custom: [{ id: 'acme-word', pattern: 'acme_[a-z]+' }] } });
    const [f] = inspector.scanText(`acme_${rng.str('bcdfhjkmnpqrtvwxz', 10_000)}`);
    expect(f!.end - f!.start).toBe(5 + 257);
  });
});

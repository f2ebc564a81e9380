// Hostile input: the scan must stay linear in the body size whatever the body. Each case is a few
// MB built to trigger catastrophic backtracking, quadratic look-backs or per-hit blow-ups; the
// bound (5 s of CPU) is generous so the test fails on a real regression, not on a slow machine:
// typical times are tens of milliseconds to ~2 s (100k findings, GC threads included), where a
// quadratic case takes hours.
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { createInspector } from '../../src/inspect/index.js';
import { withCpuTime } from '../support/cpu.js';

const MB = 1024 * 1024;
const LIMIT_MS = 5000;
const repeat = (unit: string, size: number): string => unit.repeat(Math.ceil(size / unit.length)).slice(0, size);

const builtin = createInspector(configSchema.parse({ inspect: { maxBodyBytes: '16mb' } }).inspect, { fingerprintKey: 'k' });
const withCustom = createInspector(
  configSchema.parse({
    inspect: {
      maxBodyBytes: '16mb',
      rules: {
        builtin: 'none',
        custom: [
          { id: 'acme-assign', pattern: '(?i)password.*=.*' },
          { id: 'acme-word', pattern: '\\w+=\\w+', keywords: ['pas', 'aaa'] },
          { id: 'acme-key', pattern: 'acme_[a-z0-9]+' },
        ],
      },
    },
  }).inspect,
  { fingerprintKey: 'k' },
);

const TEXT_CASES: Array<[string, () => string]> = [
  ['megabytes without a closing quote', () => `password = "${'a'.repeat(5 * MB)}`],
  ['a 5 MB single line of base64', () => repeat('Ab3+/xYz09', 5 * MB)],
  ['password=" repeated 100k times', () => 'password="'.repeat(100_000)],
  ['a keyword repeated inside one word', () => repeat('pass', 5 * MB)],
  ['a camelCase keyword repeated', () => repeat('Pass', 5 * MB)],
  ['keyword= repeated', () => repeat('pass=', 5 * MB)],
  ['token: repeated with no newline', () => repeat('token: ', 5 * MB)],
  ['connection-string keys repeated', () => repeat('x;Password=', 5 * MB)],
  ['aws_secret_access_key= repeated', () => repeat('aws_secret_access_key=', 5 * MB)],
  ['URL scheme separators', () => repeat('://a:b', 5 * MB)],
  ['PEM headers repeated', () => repeat('-----BEGIN PRIVATE KEY-----\n', 5 * MB)],
  ['a PEM header and megabytes of base64', () => `-----BEGIN RSA PRIVATE KEY-----\n${repeat('QUJD', 5 * MB)}`],
  ['JWT-looking segments', () => repeat('eyJhbGciOiJIUzI1NiJ9.', 5 * MB)],
  ['token prefixes repeated', () => repeat('sk-ant-api03-ghp_AKIAxoxb-', 5 * MB)],
  ['Bearer and megabytes of base64', () => `Authorization: Bearer ${repeat('QUJD', 5 * MB)}`],
  ['1e6 nested [', () => '['.repeat(1_000_000)],
  ['only newlines', () => '\n'.repeat(5 * MB)],
  ['only backslashes', () => '\\'.repeat(5 * MB)],
];

describe('hostile text, builtin rules', () => {
  it.each(TEXT_CASES)('%s', async (_name, make) => {
    const text = make();
    expect((await withCpuTime(() => builtin.scanText(text))).ms).toBeLessThan(LIMIT_MS);
  });

  it('many real-looking secrets: linear, findings listed up to the cap', async () => {
    const text = Array.from({ length: 50_000 }, (_, i) => `password${i} = "Zq8vLm2pRt7x${i}"`).join('\n');
    const { value: findings, ms } = await withCpuTime(() => builtin.scanText(text));
    expect(ms).toBeLessThan(LIMIT_MS);
    expect(findings).toHaveLength(1000);
  });
});

describe('hostile text, custom rules', () => {
  it.each([
    ['a run of one letter', () => 'a'.repeat(3 * MB)],
    ['the keyword repeated', () => repeat('password=', 3 * MB)],
    ['camelCase keyword', () => repeat('PasswordPassword', 3 * MB)],
    ['short matches everywhere', () => repeat('aaa=', 3 * MB)],
    ['a long run after the keyword', () => `acme_${'b'.repeat(3 * MB)}`],
  ])('%s', async (_name, make) => {
    const text = make();
    expect((await withCpuTime(() => withCustom.scanText(text))).ms).toBeLessThan(LIMIT_MS);
  });
});

describe('hostile bodies', () => {
  it.each([
    ['1e6 nested arrays', () => Buffer.from(`${'['.repeat(1e6)}${']'.repeat(1e6)}`)],
    ['a string of escaped quotes', () => Buffer.from(`{"a":"${'\\"'.repeat(2.5 * MB)}"}`)],
    ['a string of escaped backslashes', () => Buffer.from(`{"a":"${'\\\\'.repeat(2.5 * MB)}"}`)],
    ['an unterminated string', () => Buffer.from(`{"a":"${'x'.repeat(5 * MB)}`)],
    ['400k short strings', () => Buffer.from(`[${'"password",'.repeat(400_000)}"x"]`)],
    ['100k key/value pairs (each a finding)', () => Buffer.from(`{${Array.from({ length: 100_000 }, (_, i) => `"password${i}":"Zq8v${i}"`).join(',')}}`)],
  ])('%s', async (_name, make) => {
    const body = make();
    const { ms } = await withCpuTime(() => builtin.inspectBody(body, { contentType: 'application/json', action: 'redact' }));
    expect(ms).toBeLessThan(LIMIT_MS);
  });
});

// The placeholder checks must not drop real keys by chance. Random bodies spell the short
// placeholder words (`foo`, `abc`, `test` between digits) now and then: applied to every provider
// rule they silently dropped 0.016% (AWS) to 0.16% (OpenAI project keys) of real keys, checksum-valid
// GitHub tokens included. Measured here on random well-formed keys per family, through the same
// validate + placeholder path the detector takes for a match.
//   AIGATE_PLACEHOLDER_KEYS=1000000 npx vitest run test/unit/inspect-placeholders.test.ts
// prints the rates for a million keys per family (before: the old check, applied to every rule).
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { isPlaceholder } from '../../src/inspect/allow.js';
import { base62, crc32 } from '../../src/inspect/checksum.js';
import { dismissedAsPlaceholder } from '../../src/inspect/detector.js';
import { BUILTIN_RULES, createInspector } from '../../src/inspect/index.js';
import type { MatchContext, Rule } from '../../src/inspect/rules/types.js';
import { Rng, make } from '../corpus/secrets.js';

const inspector = createInspector(configSchema.parse({}).inspect, { fingerprintKey: 'k' });
const MEASURE = Number(process.env.AIGATE_PLACEHOLDER_KEYS ?? 0);

type Gen = (rng: Rng) => string;
/** Rule id → generators of its values (the secret the rule captures). */
const FAMILIES: Array<[string, Gen[]]> = [
  ['aws-access-key', [make.awsKeyId]],
  ['aws-secret-access-key', [make.awsSecret]],
  ['gcp-api-key', [make.gcpApiKey]],
  ['gcp-oauth-client-secret', [make.gcpOauth]],
  ['azure-storage-key', [make.azureStorageKey]],
  ['azure-connection-string', [make.azureSharedKey]],
  ['azure-ad-client-secret', [make.azureAdSecret]],
  ['github-pat', [make.githubPat]],
  ['github-oauth-token', [make.githubOauth]],
  ['github-app-token', [make.githubApp]],
  ['github-refresh-token', [make.githubRefresh]],
  ['github-fine-grained-pat', [make.githubFineGrained]],
  ['gitlab-pat', [make.gitlabPat]],
  ['gitlab-token', [make.gitlabRunner]],
  ['slack-token', [make.slackBot, make.slackUser, make.slackApp]],
  ['slack-webhook', [make.slackWebhook]],
  ['stripe-secret-key', [make.stripeSecret, make.stripeRestricted]],
  ['stripe-webhook-secret', [make.stripeWebhook]],
  ['openai-api-key', [make.openaiProject, make.openaiLegacy]],
  ['anthropic-api-key', [make.anthropic]],
  ['huggingface-token', [make.huggingface]],
  ['groq-api-key', [make.groq]],
  ['xai-api-key', [make.xai]],
  ['npm-token', [make.npm]],
  ['pypi-token', [make.pypi]],
  ['sendgrid-api-key', [make.sendgrid]],
  ['twilio-api-key', [make.twilioKeySid]],
  ['twilio-auth-token', [make.twilioAuthToken]],
  ['mailgun-api-key', [make.mailgun]],
  ['vault-token', [make.vault]],
  ['datadog-api-key', [make.datadogApi, make.datadogApp]],
  ['shopify-token', [make.shopify]],
  ['digitalocean-token', [make.digitalocean]],
];

const CHECKSUM = new Set(['github-pat', 'github-oauth-token', 'github-app-token', 'github-refresh-token', 'npm-token']);

function rule(id: string): Rule {
  const r = BUILTIN_RULES.find((x) => x.id === id);
  if (!r) throw new Error(`no rule ${id}`);
  return r;
}

/** Keys the rule's validator accepts, and of those how many the placeholder check drops (now / before). */
function measure(r: Rule, gens: Gen[], n: number, seed: number): { valid: number; dropped: number; droppedBefore: number } {
  const rng = new Rng(seed);
  let valid = 0;
  let dropped = 0;
  let droppedBefore = 0;
  const ctx = { text: '', keywordAt: 0, keyword: '', start: 0, end: 0 } as unknown as MatchContext;
  for (let i = 0; i < n; i++) {
    const v = gens[i % gens.length]!(rng);
    if (r.validate && r.validate(v, ctx) === false) continue;
    valid++;
    if (dismissedAsPlaceholder(r, v)) dropped++;
    if (MEASURE > 0 && isPlaceholder(v)) droppedBefore++;
  }
  return { valid, dropped, droppedBefore };
}

describe('placeholder words do not drop random keys', () => {
  it('a checksum-valid GitHub token that spells "Foo" between digits is a finding', () => {
    const body = '7Foo3YexR81B5K6FPUuWI3cVr7LQu4';
    const token = `gh${'p_'}${body}${base62(crc32(body), 6)}`;
    expect(inspector.scanText(`token ${token}`).map((f) => f.rule)).toEqual(['github-pat']);
  });

  it('fixed-format keys with a weak word between digits are findings (AWS "2ABC3", OpenAI "-test-")', () => {
    const aws = `AK${'IA'}Q2ABC3MZXWVUTSRP`;
    expect(inspector.scanText(`id ${aws}`).map((f) => f.rule)).toEqual(['aws-access-key']);
    const rng = new Rng(5);
    const openai = make.openaiProject(rng).replace(/^(.{12})..../, '$1-foo');
    expect(inspector.scanText(`key ${openai}`).map((f) => f.rule)).toEqual(['openai-api-key']);
  });

  it('the long markers still apply to fixed formats, and documented examples to checksum formats', () => {
    expect(inspector.scanText(`sk_li${'ve_'}EXAMPLEKEYXXXXXXXXXXXXXXXXXXXX1`)).toEqual([]);
    expect(inspector.scanText(`key: s${'k-proj-'}your-openai-api-key-goes-here-0123456789abcdefghij`)).toEqual([]);
  });

  const perFamily = MEASURE || 10_000;
  it.each(FAMILIES)(`%s: random keys are not dropped (${perFamily} keys; checksum families ${MEASURE || 20_000})`, (id, gens) => {
    const r = rule(id);
    const n = MEASURE || (CHECKSUM.has(id) ? 20_000 : perFamily);
    const { valid, dropped, droppedBefore } = measure(r, gens, n, 1 + FAMILIES.findIndex(([x]) => x === id));
    if (MEASURE > 0) {
      const pct = (k: number): string => `${((100 * k) / valid).toFixed(4)}%`;
      console.log(`${id.padEnd(26)} valid ${valid}  dropped ${dropped} (${pct(dropped)})  before ${droppedBefore} (${pct(droppedBefore)})`);
    }
    // The validators' entropy floors drop random keys by chance too (gitlab's 3.5 bits: 0.1%).
    expect(n - valid).toBeLessThanOrEqual(Math.ceil(n / 5000));
    // Checksum formats: only documented examples are dropped. Fixed formats: the long markers
    // (`lorem`, `xxxxx`, `...`, six equal characters) still turn up by chance, far more rarely
    // (measured: at most 0.01%, azure-ad-client-secret, whose alphabet has `.`).
    if (CHECKSUM.has(id)) expect(dropped).toBe(0);
    else expect(dropped).toBeLessThanOrEqual(Math.ceil(valid / 5000));
  });
});

describe('connection URLs', () => {
  it('generated passwords with an empty user part (redis://:pw@host) are found, weak word or not', () => {
    const rng = new Rng(9);
    const missed: string[] = [];
    for (let i = 0; i < 5000; i++) {
      const pw = make.urlPassword(rng);
      const found = inspector.scanText(`REDIS_URL=redis://:${pw}@cache.internal:6379/0`);
      if (found.length !== 1 || found[0]!.rule !== 'url-credentials') missed.push(pw);
    }
    expect(missed).toEqual([]);
  });

  it.each([
    'redis://:27P1Qh8t7FOo@cache:6379/0',
    'rediss://:6tvC7qdiI1Xyz@cache.internal:6380',
    'amqp://:ib52T5FOo162PyX4KZ1fuKj8@mq:5672/vhost',
  ])('%s is found', (url) => {
    expect(inspector.scanText(`url = ${url}`).map((f) => f.rule)).toEqual(['url-credentials']);
  });

  it('hand-typed placeholder passwords are still not findings', () => {
    for (const url of ['redis://:test1234@localhost:6379', 'postgres://app:foo@db/x', 'redis://:demo@cache', 'amqp://guest:guest@mq']) {
      expect(inspector.scanText(url)).toEqual([]);
    }
  });
});

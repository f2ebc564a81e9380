// Builtin rules one by one: what each finds, what it must leave alone, checksums, masking,
// fingerprints and positions. Secrets are generated at test time (test/corpus/secrets.ts).
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { hasValidBase62Crc } from '../../src/inspect/checksum.js';
import { BUILTIN_RULES, createInspector, type ScanFinding } from '../../src/inspect/index.js';
import { Rng, githubClassic, make, pemKeys } from '../corpus/secrets.js';

const KEY = 'rules-test-key';
const inspector = createInspector(configSchema.parse({}).inspect, { fingerprintKey: KEY });
const scan = (text: string): ScanFinding[] => inspector.scanText(text);
const rules = (text: string): string[] => scan(text).map((f) => f.rule);
const valueOf = (text: string, f: ScanFinding): string => text.slice(f.start, f.end);
const rng = new Rng(42);

describe('rule set', () => {
  it('has unique kebab-case ids, a description and lower-case keywords for every rule', () => {
    const ids = BUILTIN_RULES.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const r of BUILTIN_RULES) {
      expect(r.id).toMatch(/^[a-z0-9]+(?:-[a-z0-9]+)*$/);
      expect(r.description.length).toBeGreaterThan(5);
      expect(r.keywords.length).toBeGreaterThan(0);
      for (const k of r.keywords) expect(k).toBe(k.toLowerCase());
    }
  });
});

describe('provider tokens', () => {
  const cases: Array<[string, (r: Rng) => string, (v: string) => string]> = [
    ['aws-access-key', make.awsKeyId, (v) => `aws_access_key_id = ${v}`],
    ['aws-secret-access-key', make.awsSecret, (v) => `AWS_SECRET_ACCESS_KEY=${v}`],
    ['gcp-api-key', make.gcpApiKey, (v) => `const key = "${v}";`],
    ['gcp-oauth-client-secret', make.gcpOauth, (v) => `"client_secret": "${v}"`],
    ['azure-storage-key', make.azureStorageKey, (v) => `DefaultEndpointsProtocol=https;AccountName=a;AccountKey=${v};EndpointSuffix=core.windows.net`],
    ['azure-connection-string', make.azureSharedKey, (v) => `Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=${v}`],
    ['azure-sas-token', make.azureSasSig, (v) => `https://a.blob.core.windows.net/c/f?sv=2022-11-02&sp=r&se=2026-01-01&sig=${v}`],
    // Parameter order is free: Azure reads a SAS whose sig= comes before its sv= just the same.
    ['azure-sas-token', make.azureSasSig, (v) => `https://a.blob.core.windows.net/c/f?sig=${v}&se=2026-01-01&sp=r&sv=2022-11-02`],
    ['azure-ad-client-secret', make.azureAdSecret, (v) => `secret: ${v}`],
    ['github-pat', make.githubPat, (v) => `token ${v}`],
    ['github-oauth-token', make.githubOauth, (v) => `gh auth ${v}`],
    ['github-refresh-token', make.githubRefresh, (v) => `r=${v}`],
    ['github-fine-grained-pat', make.githubFineGrained, (v) => `GH=${v}`],
    ['gitlab-pat', make.gitlabPat, (v) => `PRIVATE-TOKEN: ${v}`],
    ['gitlab-token', make.gitlabRunner, (v) => `runner ${v}`],
    ['slack-token', make.slackBot, (v) => `SLACK=${v}`],
    ['slack-token', make.slackUser, (v) => `SLACK=${v}`],
    ['slack-token', make.slackApp, (v) => `SLACK=${v}`],
    ['slack-webhook', make.slackWebhook, (v) => `https://${v}`],
    ['stripe-secret-key', make.stripeSecret, (v) => `Stripe(${JSON.stringify(v)})`],
    ['stripe-secret-key', make.stripeRestricted, (v) => `k=${v}`],
    ['stripe-webhook-secret', make.stripeWebhook, (v) => `wh=${v}`],
    ['openai-api-key', make.openaiProject, (v) => `key: ${v}`],
    ['openai-api-key', make.openaiLegacy, (v) => `key: ${v}`],
    ['anthropic-api-key', make.anthropic, (v) => `x-api-key: ${v}`],
    ['huggingface-token', make.huggingface, (v) => `HF=${v}`],
    ['groq-api-key', make.groq, (v) => `k=${v}`],
    ['xai-api-key', make.xai, (v) => `k=${v}`],
    ['npm-token', make.npm, (v) => `//registry.npmjs.org/:_authToken=${v}`],
    ['pypi-token', make.pypi, (v) => `password = ${v}`],
    ['sendgrid-api-key', make.sendgrid, (v) => `sg(${JSON.stringify(v)})`],
    ['twilio-api-key', make.twilioKeySid, (v) => `sid ${v}`],
    ['mailgun-api-key', make.mailgun, (v) => `auth=("api", "${v}")`],
    ['vault-token', make.vault, (v) => `vault login ${v}`],
    ['datadog-api-key', make.datadogApi, (v) => `DD_API_KEY=${v}`],
    ['shopify-token', make.shopify, (v) => `X-Shopify-Access-Token: ${v}`],
    ['digitalocean-token', make.digitalocean, (v) => `do ${v}`],
    ['jwt', make.jwt, (v) => `Cookie: s=${v}`],
  ];
  for (const [rule, gen, wrap] of cases) {
    it(`${rule} finds ${wrap('<value>').slice(0, 40)}`, () => {
      const v = gen(rng);
      const text = `line one\n  ${wrap(v)}\n`;
      const found = scan(text);
      expect(found.map((f) => f.rule)).toEqual([rule]);
      expect(valueOf(text, found[0]!)).toBe(v);
      expect(found[0]!.line).toBe(2);
    });
  }

  it('verifies the CRC32 of GitHub classic tokens and npm tokens', () => {
    const good = githubClassic(rng, 'ghp');
    expect(hasValidBase62Crc(good)).toBe(true);
    expect(rules(`t=${good}`)).toEqual(['github-pat']);
    const bad = githubClassic(rng, 'ghp', false);
    expect(hasValidBase62Crc(bad)).toBe(false);
    expect(rules(`t=${bad}`)).toEqual([]);
    const npm = make.npm(rng);
    const flipped = npm.slice(0, 10) + (npm[10] === 'a' ? 'b' : 'a') + npm.slice(11);
    expect(rules(`t=${npm}`)).toEqual(['npm-token']);
    expect(rules(`t=${flipped}`)).toEqual([]);
  });

  it('leaves documented examples and placeholders alone', () => {
    const text = [
      'aws_access_key_id = AKIA' + 'IOSFODNN7EXAMPLE',
      'aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/' + 'bPxRfiCYEXAMPLEKEY',
      'GITHUB_TOKEN=ghp_' + 'X'.repeat(36),
      'STRIPE_KEY=sk_live_' + 'x'.repeat(24),
      'OPENAI_API_KEY=sk-...',
      'token: "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"',
      'SLACK_BOT_TOKEN=xoxb-your-bot-token-here',
    ].join('\n');
    expect(scan(text)).toEqual([]);
  });

  it('prefers the provider rule over generic ones on the same value', () => {
    const v = make.openaiProject(rng);
    expect(rules(`openai_api_key = "${v}"`)).toEqual(['openai-api-key']);
    expect(rules(`curl -H "Authorization: Bearer ${v}"`)).toEqual(['openai-api-key']);
    const gh = make.githubPat(rng);
    expect(rules(`git clone https://x-access-token:${gh}@github.com/a/b.git`)).toEqual(['github-pat']);
  });
});

describe('private keys, JWTs, URLs and Authorization values', () => {
  it('finds every PEM private key flavour, escaped or indented, and not public material', () => {
    const k = pemKeys();
    for (const pem of [k.rsa, k.pkcs8, k.ec, k.ed25519, k.encrypted, k.dsa, k.openssh]) {
      const found = scan(`key = """${pem}"""`);
      expect(found.map((f) => f.rule)).toEqual(['private-key']);
      expect(found[0]!.masked).toMatch(/^-----BEGIN [A-Z ]*PRIVATE KEY-----…$/);
      const escaped = pem.replace(/\n/g, '\\n');
      expect(rules(`PRIVATE_KEY="${escaped}"`)).toEqual(['private-key']);
    }
    expect(scan(`${k.publicKey}\n${k.ecPublicKey}\n${k.sshPublic}`)).toEqual([]);
    expect(scan('if (line === "-----BEGIN RSA PRIVATE KEY-----") start();')).toEqual([]);
    expect(scan('-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA...\n-----END RSA PRIVATE KEY-----')).toEqual([]);
  });

  it('reports a truncated PEM paste up to its last base64 line', () => {
    const cut = pemKeys().rsa.split('\n').slice(0, 10).join('\n');
    const text = `${cut}\n\nwhat is wrong with it?`;
    const [f] = scan(text);
    expect(f?.rule).toBe('private-key');
    expect(valueOf(text, f!)).toBe(cut);
  });

  it('finds a service-account private_key as gcp-service-account-key', () => {
    const key = `${pemKeys().pkcs8.replace(/\n/g, '\\n')}\\n`;
    const text = `{"type": "service_account", "private_key_id": "abc", "private_key": "${key}"}`;
    const found = scan(text);
    expect(found.map((f) => f.rule)).toEqual(['gcp-service-account-key']);
    expect(valueOf(text, found[0]!)).toBe(key);
  });

  it('needs a JWT header that decodes to JSON with an algorithm', () => {
    expect(rules(`t=${make.jwt(rng)}`)).toEqual(['jwt']);
    expect(rules('t=eyJub3Rqc29u.eyJhYmNkZWZnaGk.c2lnbmF0dXJlc2lnbmF0dXJl')).toEqual([]);
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"1"}').toString('base64url')}.AAAAAAAAAAAAAAAAAAAAAA`;
    expect(rules(`t=${none}`)).toEqual([]);
  });

  it('reports the password of a connection URL, not documentation or references', () => {
    const pw = make.urlPassword(rng);
    for (const url of [`postgres://app:${pw}@db:5432/x`, `mongodb+srv://u:${pw}@c0.x.net/`, `redis://:${pw}@cache:6379`, `https://deploy:${pw}@git.acme.io/r.git`]) {
      const text = `URL=${url}`;
      const found = scan(text);
      expect(found.map((f) => f.rule), url).toEqual(['url-credentials']);
      expect(valueOf(text, found[0]!)).toBe(pw);
    }
    const clean = [
      'postgres://user:password@localhost/db',
      'amqp://guest:guest@localhost:5672/',
      'mongodb://${USER}:${PASS}@mongo/app',
      'postgres://app:$DB_PASSWORD@db/app',
      'https://user@github.com/a/b',
      'http://localhost:8080/health',
    ];
    expect(scan(clean.join('\n'))).toEqual([]);
  });

  it('reports Basic and opaque Bearer credentials in Authorization values', () => {
    const basic = Buffer.from(`deploy:${make.password(rng)}`).toString('base64');
    expect(rules(`Authorization: Basic ${basic}`)).toEqual(['http-auth-header']);
    expect(rules(`-H "Authorization: Bearer ${make.opaque(rng, 40)}"`)).toEqual(['http-auth-header']);
    expect(rules('headers["Authorization"] = `Bearer ${token}`')).toEqual([]);
    expect(rules('WWW-Authenticate: Basic realm="api"')).toEqual([]);
  });
});

describe('generic assignments (the five patterns of the original guide, and config formats)', () => {
  const value = 'Zq8vLm2pRt7x';
  it.each([
    ['password = "{V}"', 'generic-password'],
    ["PASSWORD: '{V}'", 'generic-password'],
    ['api_key = "{V}"', 'generic-api-key'],
    ['Api-Key: "{V}"', 'generic-api-key'],
    ['private_key = "{V}"', 'generic-private-key'],
    ['TOKEN = "{V}"', 'generic-token'],
    ['client_secret = "{V}"', 'generic-secret'],
    ['DB_PASSWORD={V}', 'generic-password'],
    ['export API_TOKEN="{V}"', 'generic-token'],
    ['  db_password: {V}', 'generic-password'],
    ['"apiKey": "{V}",', 'generic-api-key'],
    ['spring.datasource.password={V}', 'generic-password'],
    ['      - POSTGRES_PASSWORD={V}', 'generic-password'],
    ['  password = "{V}"   # terraform', 'generic-password'],
    ['<password>{V}</password>', 'generic-password'],
    ['ENV SECRET_KEY={V}', 'generic-secret'],
    ['run --db-password={V}', 'generic-password'],
    ['GET /v1/items?api_key={V}&page=2', 'generic-api-key'],
    ['Server=db;User Id=sa;Password={V};Encrypt=true', 'generic-password'],
    ['props.put("password", "{V}");', 'generic-password'],
    ['password := "{V}"', 'generic-password'],
    ["'password' => '{V}',", 'generic-password'],
    ['val token: String = "{V}"', 'generic-token'],
    ['if password == "{V}":', 'generic-password'],
    ['client_secret={V}&grant_type=client_credentials', 'generic-secret'],
    ['client_id=app&client_secret={V}&scope=read', 'generic-secret'],
  ])('finds %s', (line, rule) => {
    const text = line.replace('{V}', value);
    const found = scan(text);
    expect(found.map((f) => f.rule)).toEqual([rule]);
    expect(valueOf(text, found[0]!)).toBe(value);
  });

  it.each([
    'password = os.environ["DB_PASSWORD"]',
    'api_key = os.getenv("API_KEY")',
    'const token = process.env.TOKEN;',
    'password: ${DB_PASSWORD}',
    'TOKEN=$API_TOKEN',
    'set PASSWORD=%DB_PASSWORD%',
    'password: "{{ .Values.password }}"',
    'token: ${{ secrets.NPM_TOKEN }}',
    'password = var.db_password',
    'password = "changeme"',
    'api_key = "<your-api-key>"',
    'token = "xxxxxxxxxxxxxxxx"',
    'secret = "***"',
    'api_key: "REDACTED"',
    'password = "example-password-1"',
    'password: string;',
    'token = getToken()',
    'max_tokens = 4096',
    'token_type: "Bearer"',
    'password_hash = "$2b$12$abcdefghijklmnopqrstuuJqY0U4cCq8dYnRvMxZ2b1w9G5O6e"',
    'session_token = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"',
    'token_url = "https://oauth2.example.com/token"',
    'tokenizer = "cl100k_base"',
    'passport.use(strategy)',
    '<input type="password" name="password">',
    '"password": "Mot de passe"',
    'PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl dev"',
    'integrity="sha384-oqVuAfXRKap7fdgcCY5uykM6+R9GqQ8K/uxy9rx7HNQlGYl1kPzQho1wx4JwY8wC"',
  ])('leaves alone %s', (line) => {
    expect(scan(line)).toEqual([]);
  });
});

describe('findings', () => {
  it('mask values, never showing them whole', () => {
    const v = make.githubPat(rng);
    const [f] = scan(`t=${v}`);
    expect(f!.masked).toBe(`ghp_…${v.slice(-4)}`);
    const [p] = scan('password = "Zq8vLm2pRt7x"');
    expect(p!.masked).not.toContain('Zq8vLm2pRt7x');
    expect(p!.masked.replace('…', '').length).toBeLessThanOrEqual(4);
  });

  it('fingerprint a value with a keyed HMAC: same value same print, other key other print', () => {
    const v = make.stripeSecret(rng);
    const a = scan(`a=${v}\nb=${v}`);
    expect(a[0]!.fingerprint).toBe(a[1]!.fingerprint);
    expect(a[0]!.fingerprint).toBe(createHmac('sha256', KEY).update(v).digest('hex').slice(0, 16));
    const other = createInspector(configSchema.parse({}).inspect, { fingerprintKey: 'other' });
    expect(other.scanText(`a=${v}`)[0]!.fingerprint).not.toBe(a[0]!.fingerprint);
    expect(a[0]!.fingerprint).toMatch(/^[0-9a-f]{16}$/);
  });

  it('give 1-based line and column of the value', () => {
    const text = 'first\nsecond\n    password = "Zq8vLm2pRt7x"\n';
    const [f] = scan(text);
    expect(f!.line).toBe(3);
    expect(f!.col).toBe(17);
    expect(f!.start).toBe(text.indexOf('Zq8v'));
  });
});

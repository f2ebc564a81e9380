// Provider credentials with a recognisable shape: a fixed prefix (ghp_, AKIA, xoxb-, sk_live_…) or
// a name that says what the value is (AWS_SECRET_ACCESS_KEY=…). High confidence: a match is a
// finding unless it fails a checksum, is a documented example or a placeholder.
import { charClasses, shannonEntropy } from '../allow.js';
import { hasValidBase62Crc } from '../checksum.js';
import type { Rule } from './types.js';

/** `= "`, `: '`, `=> `, `, "` … between a name and its value (bounded, no nesting). */
const ASSIGN = `["'\`\\]]{0,2}[ \\t]{0,4}(?:=|:=|:|=>|,)[ \\t]{0,4}["'\`]?`;

// Entropy floors sit below what random bodies reach (measured, a million each) and above
// repeated-pattern placeholders: 20 random characters of [A-Za-z0-9_-] never fell below 3.1 bits
// (a 3.5 floor dropped 0.1% of real GitLab tokens); 32 random hex digits never below 2.69 (a 3.0
// floor dropped 0.01%), while `deadbeef` repeated is 2.16 and `abcdef` repeated 2.58.
const GITLAB_MIN_ENTROPY = 3.0;
const HEX32_MIN_ENTROPY = 2.6;

function entropyAtLeast(min: number, from = 0) {
  return (value: string): boolean => shannonEntropy(value.slice(from)) >= min;
}

function mixedAlnum(s: string): boolean {
  const c = charClasses(s);
  return c.digit && (c.lower || c.upper);
}

const aws: Rule[] = [
  {
    id: 'aws-access-key',
    description: 'AWS access key ID',
    keywords: ['akia', 'asia', 'abia', 'acca', 'a3t'],
    pattern: /(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16}(?![A-Za-z0-9])/,
    maskPrefix: 4,
    priority: 3,
    validate: entropyAtLeast(2.5, 4),
  },
  {
    id: 'aws-secret-access-key',
    description: 'AWS secret access key',
    keywords: ['aws_secret', 'aws-secret', 'awssecret', 'secret_access_key', 'secret-access-key', 'secretaccesskey', 'akia', 'asia'],
    pattern: new RegExp(
      '(?:(?:aws[_-]?)?secret(?:[_-]?access)?[_-]?key' +
        ASSIGN +
        '|(?<![A-Za-z0-9])A[KS]IA[A-Z2-7]{16}["\'`]?[ \\t]{0,4}[,:=|][ \\t]{0,4}["\'`]?)' +
        '([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])',
      'i',
    ),
    priority: 3,
    validate: (v) => {
      const c = charClasses(v);
      return c.upper && c.lower && (c.digit || c.symbol) && shannonEntropy(v) >= 3.8;
    },
  },
];

const gcp: Rule[] = [
  {
    id: 'gcp-api-key',
    description: 'Google Cloud / Firebase API key',
    keywords: ['aiza'],
    pattern: /(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])/,
    maskPrefix: 4,
    priority: 3,
    validate: entropyAtLeast(3.5, 4),
  },
  {
    id: 'gcp-service-account-key',
    description: 'Google Cloud service-account JSON private key',
    keywords: ['private_key'],
    // In a service-account file the PEM sits inside a JSON string with \n escapes.
    pattern:
      /private_key["']?[ \t]{0,4}:[ \t]{0,4}"(-----BEGIN (?:RSA )?PRIVATE KEY-----(?:\\n|\r?\n)[A-Za-z0-9+/=\\\r\n]{64,8192}-----END (?:RSA )?PRIVATE KEY-----(?:\\n)?)"/,
    priority: 4,
    ownPlaceholderChecks: true,
    validate: (v) => shannonEntropy(v.replace(/\\n|-----[A-Z ]+-----/g, '')) >= 4.5,
  },
  {
    id: 'gcp-oauth-client-secret',
    description: 'Google OAuth client secret',
    keywords: ['gocspx-'],
    pattern: /(?<![A-Za-z0-9_-])GOCSPX-[A-Za-z0-9_-]{28}(?![A-Za-z0-9_-])/,
    maskPrefix: 7,
    priority: 3,
    validate: entropyAtLeast(3.5, 7),
  },
];

const azure: Rule[] = [
  {
    id: 'azure-storage-key',
    description: 'Azure storage account key',
    keywords: ['accountkey', 'account_key', 'account-key', 'storagekey', 'storage_key', 'storage-key'],
    pattern: new RegExp(`(?:account|storage)[_-]?(?:access[_-]?)?key${ASSIGN}([A-Za-z0-9+/]{86}==)(?![A-Za-z0-9+/=])`, 'i'),
    priority: 3,
    validate: entropyAtLeast(4.5),
  },
  {
    id: 'azure-connection-string',
    description: 'Azure Service Bus / Event Hubs / IoT Hub / SignalR shared access key',
    keywords: ['sharedaccesskey', 'accesskey='],
    pattern: /(?:SharedAccessKey|AccessKey)[ \t]{0,2}=[ \t]{0,2}([A-Za-z0-9+/]{42,43}=)(?![A-Za-z0-9+/=])/i,
    priority: 3,
    validate: entropyAtLeast(4.0),
  },
  {
    id: 'azure-sas-token',
    description: 'Azure shared access signature (SAS) token',
    keywords: ['sig='],
    pattern: /sig=((?:[A-Za-z0-9+/]|%2[BbFf]){40,100}(?:=|%3[Dd]){0,2})(?![A-Za-z0-9%+/=])/,
    priority: 3,
    validate: (v, ctx) => {
      // A SAS URL or connection string carries sv= (service version) and se= (expiry) with sig=,
      // in any order: Azure reads `?sig=…&sv=…` as well as the order its tools write.
      const before = ctx.text.slice(Math.max(0, ctx.keywordAt - 400), ctx.keywordAt);
      const after = ctx.text.slice(ctx.end, ctx.end + 400);
      return (SAS_VERSION.test(before) || SAS_VERSION.test(after)) && shannonEntropy(v) >= 3.8;
    },
  },
  {
    id: 'azure-ad-client-secret',
    description: 'Microsoft Entra ID (Azure AD) application client secret',
    keywords: ['q~'],
    offset: 4,
    pattern: /(?<![A-Za-z0-9_~.-])[A-Za-z0-9_~.-]{3}\dQ~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])/,
    priority: 3,
    validate: (v) => mixedAlnum(v) && shannonEntropy(v) >= 3.8,
  },
];

/** The sv= parameter of a SAS (a date), at the start of a text or after a separator. */
const SAS_VERSION = /(?:^|[?&;])sv=\d{4}-\d{2}-\d{2}/;

function githubClassic(id: string, prefixes: string[], description: string): Rule {
  return {
    id,
    description,
    keywords: prefixes.map((p) => p.toLowerCase()),
    pattern: new RegExp(`(?<![A-Za-z0-9_])(?:${prefixes.join('|')})[A-Za-z0-9]{36}(?![A-Za-z0-9_])`),
    maskPrefix: 4,
    priority: 3,
    validate: (v) => hasValidBase62Crc(v),
    format: 'checksum',
  };
}

const vcs: Rule[] = [
  githubClassic('github-pat', ['ghp_'], 'GitHub personal access token (classic)'),
  githubClassic('github-oauth-token', ['gho_'], 'GitHub OAuth access token'),
  githubClassic('github-app-token', ['ghu_', 'ghs_'], 'GitHub App user-to-server or installation token'),
  githubClassic('github-refresh-token', ['ghr_'], 'GitHub refresh token'),
  {
    id: 'github-fine-grained-pat',
    description: 'GitHub fine-grained personal access token',
    keywords: ['github_pat_'],
    pattern: /(?<![A-Za-z0-9_])github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}(?![A-Za-z0-9_])/,
    maskPrefix: 11,
    priority: 3,
    validate: entropyAtLeast(4.0, 11),
  },
  {
    id: 'gitlab-pat',
    description: 'GitLab personal access token',
    keywords: ['glpat-'],
    pattern: /(?<![A-Za-z0-9_-])glpat-[A-Za-z0-9_-]{20,64}(?:\.[0-9a-z]{2}\.[0-9a-z]{9})?(?![A-Za-z0-9_-])/,
    maskPrefix: 6,
    priority: 3,
    validate: (v) => shannonEntropy(v.slice(6)) >= GITLAB_MIN_ENTROPY,
  },
  {
    id: 'gitlab-token',
    description: 'GitLab pipeline trigger, deploy, runner, CI/CD job or other service token',
    keywords: ['glptt-', 'gldt-', 'glrt-', 'glcbt-', 'glsoat-', 'glffct-', 'gloas-', 'glimt-', 'glagent-'],
    pattern:
      /(?<![A-Za-z0-9_-])gl(?:ptt|dt|rt|cbt|soat|ffct|oas|imt|agent)-[A-Za-z0-9_-]{20,64}(?:\.[0-9a-z]{2}\.[0-9a-z]{9})?(?![A-Za-z0-9_-])/,
    maskPrefix: 5,
    priority: 3,
    validate: (v) => shannonEntropy(v.slice(v.indexOf('-') + 1)) >= GITLAB_MIN_ENTROPY,
  },
];

const chat: Rule[] = [
  {
    id: 'slack-token',
    description: 'Slack bot, user, app-level, refresh or workspace token',
    keywords: ['xox', 'xapp-'],
    pattern: /(?<![A-Za-z0-9_.-])(?:xox[abeoprs]|xoxe\.xox[bp]|xapp)-[0-9A-Za-z-]{10,250}(?![0-9A-Za-z_-])/,
    maskPrefix: 5,
    priority: 3,
    validate: (v) => {
      const tail = v.slice(v.indexOf('-') + 1);
      return /\d{4}/.test(tail) && mixedAlnum(tail) && shannonEntropy(tail) >= 3.0 && tail.length >= 20;
    },
  },
  {
    id: 'slack-webhook',
    description: 'Slack incoming webhook or workflow URL',
    keywords: ['hooks.slack.com'],
    pattern:
      /hooks\.slack\.com\/(?:services\/T[A-Z0-9]{6,12}\/B[A-Z0-9]{6,12}\/[A-Za-z0-9]{18,32}|workflows\/T[A-Z0-9]{6,12}\/A[A-Z0-9]{6,12}\/\d{6,24}\/[A-Za-z0-9]{18,40}|triggers\/T[A-Z0-9]{6,12}\/\d{6,24}\/[A-Za-z0-9]{18,40})(?![A-Za-z0-9])/,
    maskPrefix: 25,
    priority: 3,
    validate: (v) => shannonEntropy(v.slice(v.lastIndexOf('/') + 1)) >= 3.5,
  },
];

const payments: Rule[] = [
  {
    id: 'stripe-secret-key',
    description: 'Stripe live secret or restricted key',
    keywords: ['sk_live_', 'rk_live_'],
    pattern: /(?<![A-Za-z0-9_])[sr]k_live_[0-9A-Za-z]{20,247}(?![A-Za-z0-9_])/,
    maskPrefix: 8,
    priority: 3,
    validate: entropyAtLeast(3.5, 8),
  },
  {
    id: 'stripe-webhook-secret',
    description: 'Stripe webhook signing secret',
    keywords: ['whsec_'],
    pattern: /(?<![A-Za-z0-9_])whsec_[A-Za-z0-9+/=]{32,64}(?![A-Za-z0-9_+/=])/,
    maskPrefix: 6,
    priority: 3,
    validate: entropyAtLeast(3.5, 6),
  },
];

const ai: Rule[] = [
  {
    id: 'openai-api-key',
    description: 'OpenAI API key (project, service account, admin or legacy user key)',
    keywords: ['sk-'],
    pattern: /(?<![A-Za-z0-9_-])sk-(?!ant-)[A-Za-z0-9_-]{20,250}(?![A-Za-z0-9_-])/,
    maskPrefix: 3,
    priority: 3,
    validate: (v) => {
      const rest = v.slice(3);
      const typed = /^(?:proj|svcacct|admin)-/.exec(rest);
      if (typed) return rest.length - typed[0].length >= 40 && shannonEntropy(rest) >= 4.0;
      if (rest.includes('T3BlbkFJ')) return shannonEntropy(rest) >= 3.5;
      return /^[A-Za-z0-9]{48}$/.test(rest) && mixedAlnum(rest) && shannonEntropy(rest) >= 4.0;
    },
  },
  {
    id: 'anthropic-api-key',
    description: 'Anthropic API or admin key',
    keywords: ['sk-ant-'],
    pattern: /(?<![A-Za-z0-9_-])sk-ant-[a-z]{2,8}\d{2}-[A-Za-z0-9_-]{32,250}(?![A-Za-z0-9_-])/,
    maskPrefix: 7,
    priority: 3,
    validate: (v) => shannonEntropy(v.slice(v.indexOf('-', 7) + 1)) >= 4.0,
  },
  {
    id: 'huggingface-token',
    description: 'Hugging Face access token',
    keywords: ['hf_'],
    pattern: /(?<![A-Za-z0-9_])hf_[A-Za-z0-9]{34,40}(?![A-Za-z0-9_])/,
    maskPrefix: 3,
    priority: 3,
    validate: (v) => {
      const c = charClasses(v.slice(3));
      return c.upper && c.lower && shannonEntropy(v.slice(3)) >= 3.8;
    },
  },
  {
    id: 'groq-api-key',
    description: 'Groq API key',
    keywords: ['gsk_'],
    pattern: /(?<![A-Za-z0-9_])gsk_[A-Za-z0-9]{52}(?![A-Za-z0-9_])/,
    maskPrefix: 4,
    priority: 3,
    validate: entropyAtLeast(4.0, 4),
  },
  {
    id: 'xai-api-key',
    description: 'xAI (Grok) API key',
    keywords: ['xai-'],
    pattern: /(?<![A-Za-z0-9_-])xai-[A-Za-z0-9]{80}(?![A-Za-z0-9_-])/,
    maskPrefix: 4,
    priority: 3,
    validate: entropyAtLeast(4.0, 4),
  },
];

const registries: Rule[] = [
  {
    id: 'npm-token',
    description: 'npm access token',
    keywords: ['npm_'],
    pattern: /(?<![A-Za-z0-9_])npm_[A-Za-z0-9]{36}(?![A-Za-z0-9_])/,
    maskPrefix: 4,
    priority: 3,
    validate: (v) => hasValidBase62Crc(v),
    format: 'checksum',
  },
  {
    id: 'pypi-token',
    description: 'PyPI / TestPyPI API token',
    keywords: ['pypi-ag'],
    // The fixed part is the base64 of the macaroon's location: "pypi.org" / "test.pypi.org".
    pattern: /(?<![A-Za-z0-9_-])pypi-(?:AgEIcHlwaS5vcmc|AgENdGVzdC5weXBpLm9yZw)[A-Za-z0-9_-]{50,400}(?![A-Za-z0-9_-])/,
    maskPrefix: 5,
    priority: 3,
    validate: entropyAtLeast(4.0, 20),
  },
];

const messaging: Rule[] = [
  {
    id: 'sendgrid-api-key',
    description: 'SendGrid API key',
    keywords: ['sg.'],
    pattern: /(?<![A-Za-z0-9_.])SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/,
    maskPrefix: 3,
    priority: 3,
    validate: entropyAtLeast(4.0, 3),
  },
  {
    id: 'twilio-api-key',
    description: 'Twilio API key SID (an identifier; the secret is paired with it)',
    keywords: ['sk'],
    pattern: /(?<![A-Za-z0-9_])SK[0-9a-fA-F]{32}(?![A-Za-z0-9_])/,
    maskPrefix: 2,
    priority: 3,
    defaultAction: 'monitor',
    validate: entropyAtLeast(HEX32_MIN_ENTROPY, 2),
  },
  {
    id: 'twilio-auth-token',
    description: 'Twilio auth token',
    keywords: ['twilio'],
    pattern: new RegExp(`twilio[\\w.-]{0,32}?(?:auth[_-]?)?token${ASSIGN}([0-9a-f]{32})(?![0-9A-Za-z])`, 'i'),
    priority: 3,
    validate: entropyAtLeast(HEX32_MIN_ENTROPY),
  },
  {
    id: 'mailgun-api-key',
    description: 'Mailgun API key',
    keywords: ['key-', 'mailgun'],
    pattern: new RegExp(
      `(?<![A-Za-z0-9_-])(key-[0-9a-f]{32})(?![0-9A-Za-z])|mailgun[\\w.-]{0,32}?(?:api[_-]?)?key${ASSIGN}([0-9a-f]{32}-[0-9a-f]{8}-[0-9a-f]{8}|key-[0-9a-f]{32})(?![0-9A-Za-z])`,
      'i',
    ),
    priority: 3,
    validate: (v) => shannonEntropy(v.replace(/^key-/, '')) >= HEX32_MIN_ENTROPY,
  },
];

const infra: Rule[] = [
  {
    id: 'vault-token',
    description: 'HashiCorp Vault service, batch or recovery token',
    keywords: ['hvs.', 'hvb.', 'hvr.'],
    pattern: /(?<![A-Za-z0-9_.])hv[sbr]\.[A-Za-z0-9_-]{24,400}(?![A-Za-z0-9_-])/,
    maskPrefix: 4,
    priority: 3,
    validate: (v) => mixedAlnum(v.slice(4)) && shannonEntropy(v.slice(4)) >= 3.8,
  },
  {
    id: 'datadog-api-key',
    description: 'Datadog API or application key',
    keywords: ['datadog', 'dd_api', 'dd-api', 'dd_app', 'dd-app'],
    pattern: new RegExp(
      `(?:datadog[\\w.-]{0,24}?|dd[_-]?)(?:api|app(?:lication)?)[_-]?key${ASSIGN}([0-9a-f]{40}|[0-9a-f]{32})(?![0-9A-Za-z])`,
      'i',
    ),
    priority: 3,
    validate: (v) => shannonEntropy(v) >= HEX32_MIN_ENTROPY,
  },
  {
    id: 'shopify-token',
    description: 'Shopify admin API access token, custom-app, private-app or shared secret',
    keywords: ['shpat_', 'shpss_', 'shpca_', 'shppa_'],
    pattern: /(?<![A-Za-z0-9_])shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}(?![A-Za-z0-9_])/,
    maskPrefix: 6,
    priority: 3,
    validate: entropyAtLeast(HEX32_MIN_ENTROPY, 6),
  },
  {
    id: 'digitalocean-token',
    description: 'DigitalOcean personal access, OAuth or refresh token',
    keywords: ['dop_v1_', 'doo_v1_', 'dor_v1_'],
    pattern: /(?<![A-Za-z0-9_])do[por]_v1_[a-f0-9]{64}(?![A-Za-z0-9_])/,
    maskPrefix: 7,
    priority: 3,
    validate: entropyAtLeast(3.2, 7),
  },
];

// Every provider value is random characters in a vendor's format (a prefix or a naming key, an
// alphabet, a length): the short placeholder words (`foo`, `abc`, `test` between digits) would
// drop 0.02%-0.16% of real keys by chance, so only the long markers apply (format 'fixed').
export const PROVIDER_RULES: Rule[] = [...aws, ...gcp, ...azure, ...vcs, ...chat, ...payments, ...ai, ...registries, ...messaging, ...infra].map(
  (r) => (r.format ? r : { ...r, format: 'fixed' }),
);

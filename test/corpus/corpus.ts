// A labelled corpus generated at test time: secrets of every rule family embedded in realistic
// code and config (plain, and inside OpenAI / Anthropic / Copilot request bodies), plus clean code
// full of near-misses. Each positive sample lists the exact values the detector must report.
import { gzipSync } from 'node:zlib';
import { FILLER } from './filler.js';
import { NEGATIVES } from './negatives.js';
import { B64, DIGITS, HEX, Rng, make, pemKeys } from './secrets.js';

export interface Sample {
  id: string;
  /** Family of the secrets in a positive sample; null for a clean sample. */
  family: string | null;
  /** Scanned with scanText. */
  text?: string;
  /** Or sent through inspectBody. */
  body?: { data: Buffer; contentType: string; contentEncoding?: string; api: string };
  /** Exact values the detector must report (fingerprints are compared). */
  secrets: string[];
}

interface Rendered {
  text: string;
  secrets: string[];
}

type Template = (rng: Rng) => Rendered;

// ---------------------------------------------------------------------------------------------
// Names in the casing each language uses.
const snake = (w: string[]): string => w.join('_');
const upper = (w: string[]): string => w.join('_').toUpperCase();
const camel = (w: string[]): string => w.map((x, i) => (i === 0 ? x : x[0]!.toUpperCase() + x.slice(1))).join('');
const pascal = (w: string[]): string => w.map((x) => x[0]!.toUpperCase() + x.slice(1)).join('');
const kebab = (w: string[]): string => w.join('-');
const dotted = (w: string[]): string => w.join('.');

/** `(names, value) → line` in the common languages and config formats. */
const ASSIGNMENT_FORMATS: Array<(w: string[], v: string) => string> = [
  (w, v) => `${snake(w)} = "${v}"`,
  (w, v) => `conn = connect(host="db.internal", user="svc_app", ${snake(w)}="${v}", timeout=10)`,
  (w, v) => `const ${camel(w)} = '${v}';`,
  (w, v) => `export const config = {\n  region: "eu-west-1",\n  ${camel(w)}: "${v}",\n  retries: 3,\n};`,
  (w, v) => `  private readonly ${camel(w)} = "${v}";`,
  (w, v) => `\t${camel(w)} := "${v}"`,
  (w, v) => `\tcfg := Config{\n\t\tHost: "localhost",\n\t\t${pascal(w)}: "${v}",\n\t}`,
  (w, v) => `    private static final String ${upper(w)} = "${v}";`,
  (w, v) => `props.setProperty("${dotted(w)}", "${v}");`,
  (w, v) => `var ${camel(w)} = @"${v}";`,
  (w, v) => `$${snake(w)} = '${v}';`,
  (w, v) => `return [\n    'host' => 'mysql',\n    '${snake(w)}' => '${v}',\n];`,
  (w, v) => `  ${snake(w)}: "${v}",`,
  (w, v) => `database:\n  host: db.internal\n  ${snake(w)}: ${v}\n  pool: 5`,
  (w, v) => `  ${snake(w)}: "${v}"`,
  (w, v) => `${upper(w)}=${v}`,
  (w, v) => `export ${upper(w)}="${v}"`,
  (w, v) => `app.${dotted(w)}=${v}`,
  (w, v) => `    environment:\n      - NODE_ENV=production\n      - ${upper(w)}=${v}`,
  (w, v) => `    environment:\n      ${upper(w)}: ${v}`,
  (w, v) => `resource "vendor_service" "main" {\n  name = "main"\n  ${snake(w)} = "${v}"\n}`,
  (w, v) => `{\n  "name": "svc",\n  "${snake(w)}": "${v}",\n  "enabled": true\n}`,
  (w, v) => `<config>\n  <${camel(w)}>${v}</${camel(w)}>\n</config>`,
  (w, v) => `[service]\n${snake(w)} = ${v}`,
  (w, v) => `val ${camel(w)}: String = "${v}"`,
  (w, v) => `let ${snake(w)}: &str = "${v}";`,
  (w, v) => `ENV ${upper(w)}=${v}`,
  (w, v) => `./deploy.sh --env prod --${kebab(w)}=${v}`,
  (w, v) => `settings = {"${snake(w)}": "${v}", "timeout": 30}`,
  (w, v) => `let ${camel(w)} = "${v}"`,
];

function generic(names: string[][], value: (rng: Rng) => string, extra: Array<(w: string[], v: string) => string> = []): Template[] {
  const formats = [...ASSIGNMENT_FORMATS, ...extra];
  return formats.map((f) => (rng: Rng) => {
    const v = value(rng);
    return { text: f(rng.pick(names), v), secrets: [v] };
  });
}

/** A provider token in the places people put them. */
function provider(names: string[][], value: (rng: Rng) => string, extra: Template[] = [], bearer = true): Template[] {
  const one = (f: (w: string[], v: string) => string): Template => (rng) => {
    const v = value(rng);
    return { text: f(rng.pick(names), v), secrets: [v] };
  };
  const t: Template[] = [
    one((w, v) => `${upper(w)}=${v}`),
    one((w, v) => `  ${snake(w)}: ${v}`),
    one((w, v) => `${snake(w)} = "${v}"`),
    one((w, v) => `const ${camel(w)} = process.env.${upper(w)} ?? "${v}";`),
    one((w, v) => `{\n  "${camel(w)}": "${v}"\n}`),
    one((_w, v) => `hey, the deploy keeps failing with 401. I'm using ${v} — is it expired?`),
    one((w, v) => `export ${upper(w)}='${v}'`),
    one((w, v) => `    env:\n      ${upper(w)}: "${v}"`),
    ...extra,
  ];
  if (bearer) {
    t.push(one((_w, v) => `curl -sS https://api.vendor.example/v1/me \\\n  -H "Authorization: Bearer ${v}" \\\n  -H "Accept: application/json"`));
    t.push(one((_w, v) => `2024-05-01T10:00:00.123Z DEBUG outgoing request headers={'authorization': 'Bearer ${v}', 'accept': '*/*'}`));
  }
  return t;
}

function pair(f: (a: string, b: string) => string, a: (rng: Rng) => string, b: (rng: Rng) => string): Template {
  return (rng) => {
    const x = a(rng);
    const y = b(rng);
    return { text: f(x, y), secrets: [x, y] };
  };
}

function pem(kind: string): string {
  return pemKeys()[kind as keyof ReturnType<typeof pemKeys>];
}

const PEM_KINDS = ['rsa', 'pkcs8', 'ec', 'ed25519', 'encrypted', 'dsa', 'openssh'];
const escapedPem = (p: string): string => p.replace(/\n/g, '\\n');

// ---------------------------------------------------------------------------------------------
export const FAMILIES: Record<string, Template[]> = {
  aws: [
    pair((k, s) => `[default]\naws_access_key_id = ${k}\naws_secret_access_key = ${s}\nregion = us-east-1`, make.awsKeyId, make.awsSecret),
    pair((k, s) => `AWS_ACCESS_KEY_ID=${k}\nAWS_SECRET_ACCESS_KEY=${s}\nAWS_REGION=eu-central-1`, make.awsKeyId, make.awsSecret),
    pair(
      (k, s) => `s3 = boto3.client(\n    "s3",\n    aws_access_key_id="${k}",\n    aws_secret_access_key="${s}",\n)`,
      make.awsKeyId,
      make.awsSecret,
    ),
    pair(
      (k, s) => `const s3 = new S3Client({\n  region: "eu-west-1",\n  credentials: { accessKeyId: "${k}", secretAccessKey: "${s}" },\n});`,
      make.awsKeyId,
      make.awsSecret,
    ),
    pair((k, s) => `AWSCredentials creds = new BasicAWSCredentials("${k}", "${s}");`, make.awsKeyId, make.awsSecret),
    pair(
      (k, s) => `provider "aws" {\n  region     = "us-west-2"\n  access_key = "${k}"\n  secret_key = "${s}"\n}`,
      make.awsKeyId,
      make.awsSecret,
    ),
    pair(
      (k, s) => `{\n  "Credentials": {\n    "AccessKeyId": "${k}",\n    "SecretAccessKey": "${s}",\n    "Expiration": "2025-06-01T12:00:00Z"\n  }\n}`,
      make.awsKeyId,
      make.awsSecret,
    ),
    (rng) => {
      const k = make.awsKeyId(rng);
      return { text: `# rotated ${k} on Monday, old one is disabled now`, secrets: [k] };
    },
  ],
  gcp: [
    ...provider([['firebase', 'api', 'key'], ['google', 'maps', 'key'], ['gcp', 'api', 'key']], make.gcpApiKey, [
      (rng) => {
        const v = make.gcpApiKey(rng);
        return {
          text: `const firebaseConfig = {\n  apiKey: "${v}",\n  authDomain: "acme-prod.firebaseapp.com",\n  projectId: "acme-prod",\n};`,
          secrets: [v],
        };
      },
      (rng) => {
        const v = make.gcpApiKey(rng);
        return { text: `fetch(\`https://maps.googleapis.com/maps/api/geocode/json?address=\${q}&key=${v}\`)`, secrets: [v] };
      },
    ], false),
    (rng) => {
      const key = `${escapedPem(pem(rng.pick(['pkcs8', 'rsa'])))}\\n`;
      return {
        text: `{\n  "type": "service_account",\n  "project_id": "acme-data-prod",\n  "private_key_id": "${rng.str(HEX, 40)}",\n  "private_key": "${key}",\n  "client_email": "etl@acme-data-prod.iam.gserviceaccount.com",\n  "client_id": "${rng.str(DIGITS, 21)}"\n}`,
        secrets: [key],
      };
    },
    (rng) => {
      const v = make.gcpOauth(rng);
      return { text: `{"web":{"client_id":"${rng.str(DIGITS, 12)}-abc.apps.googleusercontent.com","client_secret":"${v}"}}`, secrets: [v] };
    },
    (rng) => {
      const v = make.gcpOauth(rng);
      return { text: `GOOGLE_CLIENT_SECRET=${v}`, secrets: [v] };
    },
  ],
  azure: [
    (rng) => {
      const v = make.azureStorageKey(rng);
      return {
        text: `AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=https;AccountName=acmelogs;AccountKey=${v};EndpointSuffix=core.windows.net"`,
        secrets: [v],
      };
    },
    (rng) => {
      const v = make.azureStorageKey(rng);
      return { text: `var client = new BlobServiceClient("DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=${v}");`, secrets: [v] };
    },
    (rng) => {
      const v = make.azureStorageKey(rng);
      return { text: `storage_account_key = "${v}"`, secrets: [v] };
    },
    (rng) => {
      const v = make.azureSharedKey(rng);
      return {
        text: `"ServiceBus": "Endpoint=sb://acme-bus.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=${v}"`,
        secrets: [v],
      };
    },
    (rng) => {
      const v = make.azureSharedKey(rng);
      return { text: `EVENTHUB_CONN=Endpoint=sb://telemetry.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=${v};EntityPath=events`, secrets: [v] };
    },
    (rng) => {
      const v = make.azureSasSig(rng);
      return {
        text: `curl -o report.csv "https://acmereports.blob.core.windows.net/exports/report.csv?sv=2022-11-02&ss=b&srt=o&sp=r&se=2026-01-01T00:00:00Z&st=2025-01-01T00:00:00Z&spr=https&sig=${v}"`,
        secrets: [v],
      };
    },
    (rng) => {
      const v = make.azureAdSecret(rng);
      return { text: `AZURE_CLIENT_SECRET=${v}`, secrets: [v] };
    },
    (rng) => {
      const v = make.azureAdSecret(rng);
      return { text: `credential = ClientSecretCredential(tenant_id, client_id, "${v}")`, secrets: [v] };
    },
    (rng) => {
      const v = make.azureAdSecret(rng);
      return { text: `{\n  "AzureAd": {\n    "Instance": "https://login.microsoftonline.com/",\n    "ClientSecret": "${v}"\n  }\n}`, secrets: [v] };
    },
  ],
  github: [
    ...provider([['github', 'token'], ['gh', 'token'], ['github', 'pat']], make.githubPat, [
      (rng) => {
        const v = make.githubPat(rng);
        return { text: `git remote set-url origin https://x-access-token:${v}@github.com/acme/platform.git`, secrets: [v] };
      },
      (rng) => {
        const v = make.githubOauth(rng);
        return { text: `oauth_token: ${v}\nuser: octo-dev`, secrets: [v] };
      },
      (rng) => {
        const v = make.githubApp(rng);
        return { text: `headers = {"Authorization": "token ${v}"}`, secrets: [v] };
      },
      (rng) => {
        const v = make.githubRefresh(rng);
        return { text: `refresh_token=${v}`, secrets: [v] };
      },
      (rng) => {
        const v = make.githubFineGrained(rng);
        return { text: `GH_TOKEN=${v} gh pr list`, secrets: [v] };
      },
      (rng) => {
        const v = make.githubFineGrained(rng);
        return { text: `const octokit = new Octokit({ auth: "${v}" });`, secrets: [v] };
      },
    ]),
  ],
  gitlab: [
    ...provider([['gitlab', 'token'], ['ci', 'job', 'token'], ['gl', 'token']], make.gitlabPat, [
      (rng) => {
        const v = make.gitlabRunner(rng);
        return { text: `[[runners]]\n  name = "docker-runner"\n  url = "https://gitlab.acme.io"\n  token = "${v}"`, secrets: [v] };
      },
      (rng) => {
        const v = make.gitlabPat(rng);
        return { text: `git clone https://oauth2:${v}@gitlab.acme.io/platform/api.git`, secrets: [v] };
      },
    ]),
  ],
  slack: [
    ...provider([['slack', 'bot', 'token'], ['slack', 'token']], make.slackBot, [
      (rng) => {
        const v = make.slackUser(rng);
        return { text: `client = WebClient(token="${v}")`, secrets: [v] };
      },
      (rng) => {
        const v = make.slackApp(rng);
        return { text: `SLACK_APP_TOKEN=${v}`, secrets: [v] };
      },
      (rng) => {
        const v = make.slackWebhook(rng);
        return { text: `requests.post("https://${v}", json={"text": "deploy finished"})`, secrets: [v] };
      },
      (rng) => {
        const v = make.slackWebhook(rng);
        return { text: `SLACK_WEBHOOK_URL=https://${v}`, secrets: [v] };
      },
    ], false),
  ],
  stripe: provider([['stripe', 'secret', 'key'], ['stripe', 'api', 'key'], ['stripe', 'key']], make.stripeSecret, [
    (rng) => {
      const v = make.stripeSecret(rng);
      return { text: `stripe.api_key = "${v}"`, secrets: [v] };
    },
    (rng) => {
      const v = make.stripeRestricted(rng);
      return { text: `const stripe = require('stripe')('${v}');`, secrets: [v] };
    },
    (rng) => {
      const v = make.stripeWebhook(rng);
      return { text: `endpoint_secret = '${v}'`, secrets: [v] };
    },
  ]),
  openai: provider([['openai', 'api', 'key'], ['openai', 'key']], make.openaiProject, [
    (rng) => {
      const v = make.openaiLegacy(rng);
      return { text: `client = OpenAI(api_key="${v}")`, secrets: [v] };
    },
    (rng) => {
      const v = make.openaiProject(rng);
      return { text: `const openai = new OpenAI({ apiKey: '${v}' });`, secrets: [v] };
    },
  ]),
  anthropic: provider([['anthropic', 'api', 'key'], ['claude', 'key']], make.anthropic, [
    (rng) => {
      const v = make.anthropic(rng);
      return { text: `client = anthropic.Anthropic(api_key="${v}")`, secrets: [v] };
    },
    (rng) => {
      const v = make.anthropic(rng);
      return { text: `curl https://api.anthropic.com/v1/messages -H "x-api-key: ${v}" -H "anthropic-version: 2023-06-01"`, secrets: [v] };
    },
  ], false),
  'ai-vendors': [
    ...provider([['hf', 'token'], ['huggingface', 'token']], make.huggingface, [], false),
    ...provider([['groq', 'api', 'key']], make.groq, [], false),
    ...provider([['xai', 'api', 'key'], ['grok', 'key']], make.xai, [], false),
  ],
  npm: provider([['npm', 'token'], ['node', 'auth', 'token']], make.npm, [
    (rng) => {
      const v = make.npm(rng);
      return { text: `//registry.npmjs.org/:_authToken=${v}\nalways-auth=true`, secrets: [v] };
    },
  ], false),
  pypi: provider([['pypi', 'token'], ['twine', 'password']], make.pypi, [
    (rng) => {
      const v = make.pypi(rng);
      return { text: `[pypi]\n  username = __token__\n  password = ${v}`, secrets: [v] };
    },
  ], false),
  sendgrid: provider([['sendgrid', 'api', 'key'], ['sg', 'key']], make.sendgrid, [
    (rng) => {
      const v = make.sendgrid(rng);
      return { text: `sg = sendgrid.SendGridAPIClient("${v}")`, secrets: [v] };
    },
  ]),
  twilio: [
    ...provider([['twilio', 'api', 'key'], ['twilio', 'key', 'sid']], make.twilioKeySid, [], false),
    (rng) => {
      const v = make.twilioAuthToken(rng);
      return { text: `TWILIO_ACCOUNT_SID=AC${rng.str(HEX, 32)}\nTWILIO_AUTH_TOKEN=${v}`, secrets: [v] };
    },
    (rng) => {
      const v = make.twilioAuthToken(rng);
      return { text: `account_sid = "AC${rng.str(HEX, 32)}"\nauth_token = "${v}"\nclient = Client(account_sid, auth_token)`, secrets: [v] };
    },
    (rng) => {
      const v = make.twilioAuthToken(rng);
      return { text: `twilio:\n  authToken: "${v}"`, secrets: [v] };
    },
  ],
  mailgun: provider([['mailgun', 'api', 'key'], ['mg', 'key']], make.mailgun, [
    (rng) => {
      const v = make.mailgun(rng);
      return { text: `requests.post(url, auth=("api", "${v}"), data={"to": to})`, secrets: [v] };
    },
  ], false),
  vault: provider([['vault', 'token']], make.vault, [
    (rng) => {
      const v = make.vault(rng);
      return { text: `vault login ${v}`, secrets: [v] };
    },
    (rng) => {
      const v = make.vault(rng);
      return { text: `curl -H "X-Vault-Token: ${v}" https://vault.acme.io/v1/secret/data/app`, secrets: [v] };
    },
  ]),
  datadog: [
    (rng) => {
      const v = make.datadogApi(rng);
      return { text: `DD_API_KEY=${v}\nDD_SITE=datadoghq.eu`, secrets: [v] };
    },
    (rng) => {
      const v = make.datadogApp(rng);
      return { text: `DATADOG_APP_KEY="${v}"`, secrets: [v] };
    },
    (rng) => {
      const v = make.datadogApi(rng);
      return { text: `datadog:\n  apiKey: ${v}\n  site: datadoghq.com`, secrets: [v] };
    },
    (rng) => {
      const v = make.datadogApi(rng);
      return { text: `curl -X POST "https://api.datadoghq.com/api/v2/series" -H "DD-API-KEY: ${v}" -d @series.json`, secrets: [v] };
    },
    (rng) => {
      const a = make.datadogApi(rng);
      const b = make.datadogApp(rng);
      return { text: `options = {\n    "api_key": "${a}",\n    "app_key": "${b}",\n}\ninitialize(**options)`, secrets: [a, b] };
    },
  ],
  shopify: provider([['shopify', 'access', 'token'], ['shopify', 'token']], make.shopify, [
    (rng) => {
      const v = make.shopify(rng);
      return { text: `headers: { "X-Shopify-Access-Token": "${v}" }`, secrets: [v] };
    },
  ], false),
  digitalocean: provider([['digitalocean', 'token'], ['do', 'token']], make.digitalocean, [], true),
  'private-key': [
    ...PEM_KINDS.map((kind) => (): Rendered => ({ text: pem(kind), secrets: [pem(kind)] })),
    ...PEM_KINDS.map((kind) => (): Rendered => ({ text: `SIGNING_KEY = """${pem(kind)}"""\n\ndef sign(data):\n    pass`, secrets: [pem(kind)] })),
    ...PEM_KINDS.map((kind) => (): Rendered => ({ text: `const key = \`${pem(kind)}\`;\nexport default key;`, secrets: [pem(kind)] })),
    ...PEM_KINDS.map((kind) => (): Rendered => {
      const e = escapedPem(pem(kind));
      return { text: `PRIVATE_KEY="${e}"`, secrets: [e] };
    }),
    ...PEM_KINDS.map((kind) => (): Rendered => {
      const indented = pem(kind).split('\n').join('\n    ');
      return { text: `apiVersion: v1\nkind: Secret\nstringData:\n  tls.key: |\n    ${indented}\n`, secrets: [indented] };
    }),
    // A paste cut off before the END line still leaks the key.
    (): Rendered => {
      const lines = pem('rsa').split('\n');
      const cut = lines.slice(0, 12).join('\n');
      return { text: `here's the start of the key file:\n${cut}\n\nwhy does openssl reject it?`, secrets: [cut] };
    },
  ],
  jwt: [
    (rng) => {
      const v = make.jwt(rng);
      return { text: `curl https://api.acme.io/v1/orders -H "Authorization: Bearer ${v}"`, secrets: [v] };
    },
    (rng) => {
      const v = make.jwt(rng);
      return { text: `const token = "${v}";`, secrets: [v] };
    },
    (rng) => {
      const v = make.jwt(rng);
      return { text: `Cookie: session=${v}; theme=dark`, secrets: [v] };
    },
    (rng) => {
      const v = make.jwt(rng);
      return { text: `localStorage.setItem("id_token", "${v}");`, secrets: [v] };
    },
    (rng) => {
      const v = make.jwt(rng);
      return { text: `the decoded payload of ${v} says my role is admin, why 403?`, secrets: [v] };
    },
  ],
  'url-credentials': [
    (rng) => {
      const v = make.urlPassword(rng);
      return { text: `DATABASE_URL=postgres://app:${v}@db.internal:5432/app`, secrets: [v] };
    },
    (rng) => {
      const v = make.urlPassword(rng);
      return { text: `engine = create_engine("mysql+pymysql://svc:${v}@mysql.prod:3306/orders")`, secrets: [v] };
    },
    (rng) => {
      const v = make.urlPassword(rng);
      return { text: `const uri = "mongodb+srv://admin:${v}@cluster0.ab1cd.mongodb.net/?retryWrites=true&w=majority";`, secrets: [v] };
    },
    (rng) => {
      const v = make.urlPassword(rng);
      return { text: `REDIS_URL=redis://:${v}@cache.internal:6379/0`, secrets: [v] };
    },
    (rng) => {
      const v = make.urlPassword(rng);
      return { text: `broker_url = 'amqp://worker:${v}@rabbit.internal:5672/jobs'`, secrets: [v] };
    },
    (rng) => {
      const v = make.urlPassword(rng);
      return { text: `git clone https://deploy:${v}@git.acme.io/team/repo.git`, secrets: [v] };
    },
    (rng) => {
      const v = make.urlPassword(rng);
      return { text: `spring:\n  datasource:\n    url: jdbc:postgresql://db:5432/app?user=app&password=${v}`, secrets: [v] };
    },
  ],
  'http-auth': [
    (rng) => {
      const v = make.opaque(rng, 40);
      return { text: `curl -H "Authorization: Bearer ${v}" https://internal.acme.io/api/v1/jobs`, secrets: [v] };
    },
    (rng) => {
      const v = Buffer.from(`svc-deploy:${make.password(rng)}`).toString('base64');
      return { text: `Authorization: Basic ${v}`, secrets: [v] };
    },
    (rng) => {
      const v = make.hexKey(rng, 40);
      return { text: `headers = {"Authorization": "Token ${v}", "Accept": "application/json"}`, secrets: [v] };
    },
    (rng) => {
      const v = make.opaque(rng, 32);
      return { text: `request.setHeader("Authorization", "Bearer ${v}");`, secrets: [v] };
    },
  ],
  'generic-password': generic(
    [['password'], ['db', 'password'], ['admin', 'password'], ['smtp', 'pass'], ['mysql', 'root', 'password'], ['keystore', 'password'], ['redis', 'pwd'], ['passphrase'], ['ldap', 'bind', 'password'], ['mail', 'passwd']],
    make.password,
    [
      (_w, v) => `"ConnectionStrings": { "Default": "Server=tcp:sql.internal,1433;Database=app;User ID=svc;Password=${v};Encrypt=True;" }`,
      (w, v) => `define( '${upper(w)}', '${v}' );`,
      (w, v) => `if ${snake(w)} == "${v}":\n    grant_access()`,
    ],
  ),
  'generic-api-key': generic(
    [['api', 'key'], ['service', 'api', 'key'], ['access', 'key'], ['encryption', 'key'], ['app', 'key'], ['master', 'key'], ['weather', 'api', 'key']],
    (rng) => (rng.next() < 0.5 ? make.opaque(rng) : make.hexKey(rng, 32)),
    [
      (w, v) => `GET https://api.vendor.io/v2/items?${snake(w)}=${v}&limit=50`,
      (_w, v) => `curl -H "X-API-Key: ${v}" https://api.vendor.io/v2/items`,
    ],
  ),
  'generic-private-key': generic(
    [['private', 'key'], ['signing', 'private', 'key'], ['wallet', 'private', 'key']],
    (rng) => rng.bytes(rng.pick([32, 64])).toString('base64'),
  ),
  'generic-token': generic(
    [['token'], ['access', 'token'], ['auth', 'token'], ['api', 'token'], ['refresh', 'token'], ['bot', 'token'], ['bearer', 'token']],
    (rng) => (rng.next() < 0.5 ? make.opaque(rng) : make.hexKey(rng, 40)),
    [(w, v) => `GET https://hooks.vendor.io/ingest?${snake(w)}=${v}`],
  ),
  'generic-secret': generic(
    [['secret'], ['client', 'secret'], ['secret', 'key'], ['jwt', 'secret'], ['app', 'secret'], ['webhook', 'secret'], ['credentials']],
    (rng) => (rng.next() < 0.5 ? make.opaque(rng, rng.int(32, 50)) : rng.bytes(32).toString('base64')),
  ),
};

// ---------------------------------------------------------------------------------------------
// Request bodies of the AI tools, with the code where the tools put it.

function openaiChat(code: string): object {
  return {
    model: 'gpt-4o',
    temperature: 0.2,
    stream: true,
    messages: [
      { role: 'system', content: 'You are a helpful coding assistant. Answer concisely.' },
      { role: 'user', content: `Why does this fail in production?\n\n\`\`\`\n${code}\n\`\`\`` },
    ],
  };
}

function openaiToolCall(code: string): object {
  return {
    model: 'gpt-4.1',
    messages: [
      { role: 'user', content: 'update the config and run the tests' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'write_file', arguments: JSON.stringify({ path: 'config/app.env', content: code }) } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_1', content: 'ok' },
    ],
    tools: [{ type: 'function', function: { name: 'write_file', parameters: { type: 'object', properties: { path: { type: 'string' } } } } }],
  };
}

function anthropicMessages(code: string): object {
  return {
    model: 'claude-sonnet-4-5',
    max_tokens: 4096,
    system: [{ type: 'text', text: 'You are Claude Code, an agentic coding tool.' }],
    messages: [
      { role: 'user', content: [{ type: 'text', text: 'Read the config and tell me what is wrong.' }] },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_01', name: 'Read', input: { file_path: '/repo/config/settings' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: code }] },
    ],
  };
}

function copilotCompletion(code: string): object {
  return {
    prompt: `// Path: src/settings.ts\n// Language: typescript\n${code}\n`,
    suffix: '\n\nexport default settings;\n',
    max_tokens: 500,
    temperature: 0,
    top_p: 1,
    n: 1,
    stop: ['\n\n\n'],
    stream: true,
    extra: { language: 'typescript', next_indent: 0, trim_by_indentation: true },
  };
}

const APIS: Array<[string, (code: string) => object]> = [
  ['openai', openaiChat],
  ['openai-tool', openaiToolCall],
  ['anthropic', anthropicMessages],
  ['copilot', copilotCompletion],
];

function withFiller(rng: Rng, code: string): string {
  const before = rng.int(0, 2);
  const after = rng.int(0, 2);
  const parts: string[] = [];
  for (let i = 0; i < before; i++) parts.push(rng.pick(FILLER));
  parts.push(code);
  for (let i = 0; i < after; i++) parts.push(rng.pick(FILLER));
  return parts.join('\n\n');
}

function asBody(rng: Rng, code: string, i: number): Sample['body'] {
  const [api, wrap] = APIS[i % APIS.length]!;
  const json = JSON.stringify(wrap(code), null, rng.next() < 0.5 ? 2 : undefined);
  if (rng.next() < 0.3) return { data: gzipSync(json), contentType: 'application/json', contentEncoding: 'gzip', api };
  return { data: Buffer.from(json), contentType: 'application/json', api };
}

export interface Corpus {
  positives: Sample[];
  negatives: Sample[];
}

/** `perFamily` text samples and as many request bodies per family; every negative as text and as a body. */
export function buildCorpus(seed = 20240501, perFamily = 40): Corpus {
  const rng = new Rng(seed);
  const positives: Sample[] = [];
  for (const [family, templates] of Object.entries(FAMILIES)) {
    for (let i = 0; i < perFamily; i++) {
      const r = templates[i % templates.length]!(rng);
      const text = withFiller(rng, r.text);
      positives.push({ id: `${family}/text/${i}`, family, text, secrets: r.secrets });
      const b = templates[(i * 7 + 3) % templates.length]!(rng);
      positives.push({ id: `${family}/body/${i}`, family, body: asBody(rng, withFiller(rng, b.text), i), secrets: b.secrets });
    }
  }
  const negatives: Sample[] = [];
  NEGATIVES.forEach((make, i) => {
    const text = make(rng);
    negatives.push({ id: `clean/text/${i}`, family: null, text, secrets: [] });
    negatives.push({ id: `clean/body/${i}`, family: null, body: asBody(rng, text, i), secrets: [] });
  });
  for (let i = 0; i < 40; i++) {
    const text = withFiller(rng, rng.pick(FILLER));
    negatives.push({ id: `clean/filler/${i}`, family: null, text, secrets: [] });
  }
  return { positives, negatives };
}

export { B64 };

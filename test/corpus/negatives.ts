// Clean code full of near-misses: every sample here must produce no finding. Environment and
// secret-store look-ups, placeholders, documented example keys, hashes, UUIDs, integrity strings,
// public keys and certificates, and code that talks about passwords and tokens without holding one.
import { randomUUID } from 'node:crypto';
import { ALNUM, B64, DIGITS, HEX, Rng, githubClassic, pemKeys } from './secrets.js';

const uuid = (rng: Rng): string => {
  const h = rng.str(HEX, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20)}`;
};
const b64Lines = (rng: Rng, n: number): string =>
  Array.from({ length: n }, () => rng.str(B64, 64)).join('\n');

// Documented examples, assembled from pieces (see allow.ts for why they are allow-listed).
const AWS_EXAMPLE_ID = 'AKIA' + 'IOSFODNN7EXAMPLE';
const AWS_EXAMPLE_SECRET = 'wJalrXUtnFEMI/K7MDENG/' + 'bPxRfiCYEXAMPLEKEY';
const JWT_IO = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9' + '.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ' + '.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c';
const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/' + 'K1SZFPTOtr/KBHBeksoGMGw==';
const GOOGLE_DOCS_KEY = 'AI' + 'zaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY';
const GITHUB_DOCS_TOKEN = 'gh' + 'p_16C7e42F292c6912E7710c838347Ae178B4a';
const MAILGUN_DOCS_KEY = 'key-' + '3ax6xnjp29jd6fds4gc373sgvjxteol0';

export const NEGATIVES: Array<(rng: Rng) => string> = [
  // --- environment and secret-store look-ups
  () => `import os\npassword = os.environ["DB_PASSWORD"]\napi_key = os.getenv("OPENAI_API_KEY")`,
  () => `const token = process.env.GITHUB_TOKEN;\nconst apiKey = process.env['STRIPE_API_KEY'] ?? '';`,
  () => `String secret = System.getenv("CLIENT_SECRET");\nString password = System.getenv().get("DB_PASSWORD");`,
  () => `token = ENV["SLACK_TOKEN"]\npassword = ENV.fetch("DB_PASSWORD")`,
  () => `services:\n  db:\n    image: postgres:16\n    environment:\n      POSTGRES_PASSWORD: \${POSTGRES_PASSWORD}\n      API_KEY: \${API_KEY:-}\n      - SECRET_KEY=\${SECRET_KEY}`,
  () => `curl -H "Authorization: Bearer $API_TOKEN" https://api.vendor.io/v1/me\ncurl -u "admin:$ADMIN_PASSWORD" https://jenkins.internal/api/json`,
  () => `set PASSWORD=%DB_PASSWORD%\nset API_KEY=%VENDOR_API_KEY%`,
  () => `  password: {{ .Values.db.password | quote }}\n  token: "{{ vault_token }}"`,
  () => `    env:\n      NPM_TOKEN: \${{ secrets.NPM_TOKEN }}\n      token: \${{ github.token }}`,
  () => `resource "aws_db_instance" "main" {\n  username = "app"\n  password = var.db_password\n  api_key  = data.vault_generic_secret.vendor.data["api_key"]\n}`,
  () => `        - name: DB_PASSWORD\n          valueFrom:\n            secretKeyRef:\n              name: db-credentials\n              key: password`,
  () => `$password = getenv('DB_PASSWORD');\n$apiKey = $_ENV['API_KEY'];`,
  () => `spring.datasource.password=\${DB_PASSWORD}\napp.jwt.secret=\${JWT_SECRET:}`,
  () => `password = getpass.getpass("Password: ")\ntoken = keyring.get_password("acme", "token")`,
  () => `# copy to .env and fill in\nDB_PASSWORD=\nAPI_KEY=\nSECRET_KEY=`,
  () => `const apiKey = config.get('apiKey');\nconst secret = await secrets.get('prod/api/secret');`,
  () => `SECRET_KEY = get_random_secret_key()\nDEBUG = False`,
  () => `const signed = jwt.sign(payload, process.env.JWT_SECRET, { expiresIn: '1h' });`,
  () => `export GITHUB_TOKEN=$(gh auth token)\nexport VAULT_TOKEN="$(vault print token)"`,
  (rng) => `secret_arn = "arn:aws:secretsmanager:us-east-1:${rng.str(DIGITS, 12)}:secret:prod/db-${rng.str(ALNUM, 6)}"`,
  (rng) => `password: ENC[AES256_GCM,data:${rng.str(B64, 24)},iv:${rng.str(B64, 22)},tag:${rng.str(B64, 22)},type:str]`,
  () => `DB_PASSWORD=op://prod/database/password\nAPI_TOKEN=vault:secret/data/app#token`,
  () => `secret_key_base: <%= ENV["SECRET_KEY_BASE"] %>\npassword: "<%= ENV['DB_PASSWORD'] %>"`,
  () => `password: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  62313365396662343061393464336163383764373764613633653634306231386433626436623361`,

  // --- placeholders
  () => `password = "changeme"\napi_key = "<your-api-key>"\ntoken = "xxxxxxxxxxxxxxxxxxxx"`,
  () => `secret = "********"\n"api_key": "REDACTED",\nclient_secret = "example-client-secret"`,
  () => `OPENAI_API_KEY=sk-...\nANTHROPIC_API_KEY=sk-ant-...`,
  () => `STRIPE_SECRET_KEY=sk_live_xxxxxxxxxxxxxxxxxxxxxxxx\nGITHUB_TOKEN=ghp_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX`,
  () => `AWS_ACCESS_KEY_ID=AKIAXXXXXXXXXXXXXXXX\nAWS_SECRET_ACCESS_KEY=XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX`,
  () => `password: "your-password-here"\ndefine( 'DB_PASSWORD', 'password_here' );`,
  () => `api_key = "INSERT_API_KEY_HERE"\nsecret: "dummy-secret-for-tests"\npassword = "test1234"`,
  () => `SLACK_BOT_TOKEN=xoxb-your-bot-token\nTWILIO_API_KEY=SKxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx`,
  () => `auth_token = "TODO"\napi_secret = "<replace me>"\nbearer_token = "..."`,
  () => `const config = { apiKey: 'YOUR_API_KEY', authDomain: 'YOUR_PROJECT.firebaseapp.com' };`,
  () => `export OPENAI_API_KEY="sk-proj-************************************"`,
  () => `client = OpenAI(api_key="sk-your-key-here")\nSENDGRID_API_KEY=SG.xxxxxxxx.yyyyyyyy`,

  // --- documented example values
  () => `[default]\naws_access_key_id = ${AWS_EXAMPLE_ID}\naws_secret_access_key = ${AWS_EXAMPLE_SECRET}`,
  () => `const token = "${JWT_IO}";\n// from https://jwt.io`,
  () => `"AzureWebJobsStorage": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${AZURITE_KEY};BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"`,
  () => `<script src="https://maps.googleapis.com/maps/api/js?key=${GOOGLE_DOCS_KEY}&callback=initMap"></script>`,
  () => `# e.g. GITHUB_TOKEN=${GITHUB_DOCS_TOKEN}`,
  () => `curl -s --user 'api:${MAILGUN_DOCS_KEY}' https://api.mailgun.net/v3/samples.mailgun.org/log`,
  () => `AzureWebJobsStorage=UseDevelopmentStorage=true`,

  // --- identifiers, hashes, integrity strings
  (rng) => `request_id = "${uuid(rng)}"\ncsrf_token = "${uuid(rng)}"\nsession_token = "${randomUUID()}"`,
  (rng) => `"resolved": "https://registry.npmjs.org/zod/-/zod-3.23.8.tgz",\n"integrity": "sha512-${rng.str(B64, 86)}=="`,
  (rng) => `<script src="https://cdn.jsdelivr.net/npm/lib@1/dist/lib.min.js" integrity="sha384-${rng.str(B64, 64)}" crossorigin="anonymous"></script>`,
  (rng) => `commit = "${rng.str(HEX, 40)}"\nsha256sum = "${rng.str(HEX, 64)}"`,
  (rng) => `password_hash = "$2b$12$${rng.str(`${ALNUM}./`, 53)}"\nhashed_password: "pbkdf2_sha256$600000$${rng.str(ALNUM, 22)}$${rng.str(B64, 43)}="`,
  (rng) => `github.com/pkg/errors v0.9.1 h1:${rng.str(B64, 43)}=\ngithub.com/pkg/errors v0.9.1/go.mod h1:${rng.str(B64, 43)}=`,
  (rng) => `    image: nginx@sha256:${rng.str(HEX, 64)}`,
  (rng) => `version https://git-lfs.github.com/spec/v1\noid sha256:${rng.str(HEX, 64)}\nsize ${rng.int(1000, 99999999)}`,
  (rng) => `etag: W/"${rng.str(HEX, 32)}"\nx-request-id: ${uuid(rng)}`,
  (rng) => `token_checksum = "sha256:${rng.str(HEX, 64)}"`,
  (rng) => `TWILIO_ACCOUNT_SID=AC${rng.str(HEX, 32)}\nTWILIO_PHONE=+15005550006`,
  (rng) => `build_id = "${rng.str(HEX, 32)}"\ntrace_id = "${rng.str(HEX, 32)}"\ncache_key = "users:${rng.int(1, 9999)}"`,
  (rng) => `<img src="data:image/png;base64,${rng.str(B64, 600)}==" alt="logo">`,
  (rng) => `| fixture | value |\n|---|---|\n| revoked | ${githubClassic(rng, 'ghp', false)} |`,
  (rng) => `invalid = "eyJ${rng.str(ALNUM, 20)}.eyJ${rng.str(ALNUM, 30)}.${rng.str(ALNUM, 20)}"  # not base64 JSON`,

  // --- public keys and certificates
  () => `PUBLIC_KEY = """${pemKeys().publicKey}"""`,
  (rng) => `-----BEGIN CERTIFICATE-----\n${b64Lines(rng, 18)}\n-----END CERTIFICATE-----`,
  () => `${pemKeys().sshPublic}\n${pemKeys().sshPublic.replace('dev@laptop', 'ci@runner')}`,
  () => `public_key = "${pemKeys().sshPublic}"`,
  (rng) => `"publicKey": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE${rng.str(B64, 86)}=="`,
  (rng) => `STRIPE_PUBLISHABLE_KEY=pk_live_${rng.str(ALNUM, 24)}\npublishableKey: "pk_test_${rng.str(ALNUM, 24)}"`,
  () => `const verify = crypto.createPublicKey(\`${pemKeys().ecPublicKey}\`);`,
  () => `if line.strip() == "-----BEGIN RSA PRIVATE KEY-----":\n    in_key = True\nelif line.startswith("-----END"):\n    in_key = False`,
  () => `-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA...\n-----END RSA PRIVATE KEY-----`,

  // --- code that handles secrets without holding one
  () => `def check_password(password: str, hashed: bytes) -> bool:\n    return bcrypt.checkpw(password.encode(), hashed)`,
  () => `token = request.headers.get("Authorization", "").removeprefix("Bearer ")\nif not token:\n    abort(401)`,
  () => `interface Credentials {\n  username: string;\n  password: string;\n  token?: string;\n  apiKey: string | null;\n}`,
  () => `tokenizer = AutoTokenizer.from_pretrained("bert-base-uncased")\nmax_tokens = 4096\nmax_new_tokens: int = 512`,
  () => `const [password, setPassword] = useState("");\nconst [token, setToken] = useState<string | null>(null);`,
  () => `<input type="password" name="password" placeholder="Password" autocomplete="current-password">`,
  () => `{"password": "Mot de passe", "forgot_password": "Mot de passe oublié ?", "token_expired": "Session expirée", "api_key": "Clé API"}`,
  () => `PASSWORD_MIN_LENGTH = 12\nTOKEN_TTL_SECONDS = 3600\nSECRET_ROTATION_DAYS = 90`,
  () => `token_url = "https://oauth2.googleapis.com/token"\nauth_url = "https://accounts.google.com/o/oauth2/v2/auth"`,
  () => `data = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}`,
  () => `headers = {"Authorization": f"Bearer {api_key}"}\nheaders["Authorization"] = "Bearer " + token`,
  () => "axios.defaults.headers.common['Authorization'] = `Bearer ${token}`;",
  () => `metadata:\n  name: api\nspec:\n  secretName: app-tls-secret\n  secretStoreRef:\n    name: vault-backend`,
  () => `if (!token) throw new Error("token: missing");\nlogger.info("password reset requested for %s", email)`,
  () => `raise ValueError(f"invalid token: {token!r}")\nreturn jwt.encode(payload, settings.SECRET_KEY, algorithm="HS256")`,
  () => `const secret = crypto.randomBytes(32).toString('hex');\nlet passwordConfirmation = form.get("password_confirmation");`,
  () => `pwd = os.getcwd()\nPWD=/home/dev/project`,
  () => `passport.use(new LocalStrategy(verify));\nbypass_cache = True\ncompass_heading = "NNE"`,
  () => `DATABASE_URL=postgres://user:password@localhost:5432/mydb\nREDIS_URL=redis://localhost:6379/0`,
  () => `git clone https://user@github.com/acme/repo.git\nMONGO_URL=mongodb://\${MONGO_USER}:\${MONGO_PASS}@mongo:27017/app`,
  () => `BROKER_URL=amqp://guest:guest@localhost:5672//\nTEST_DB=postgres://postgres:postgres@localhost:5432/test\nmysql://root:@localhost/app`,
  () => `WWW-Authenticate: Basic realm="api"\nBasic authentication is deprecated for this endpoint.`,
  () => `aws_region = "us-east-1"\naccessKeyId: credentials.accessKeyId,\nsecretAccessKey: credentials.secretAccessKey,`,
  () => `api_key_header = "X-API-Key"\ntoken_type: "Bearer"\npassword_field = "password"`,
  () => `{"model": "claude-sonnet-4-5", "max_tokens": 1024, "stop_sequences": ["\\n\\nHuman:"]}`,
  () => `def login(username: str, password: str = None) -> Token:\n    ...`,
  () => 'type User struct {\n\tPassword string `json:"password"`\n\tAPIKey   string `json:"api_key"`\n}',
  () => `CREATE TABLE users (id serial PRIMARY KEY, password_hash text NOT NULL, api_token text);`,
  () => `if password == confirm_password:\n    save()\nassert token == expected_token`,
  () => `Set \`API_KEY\` to the key from your dashboard, then run \`npm start\`. The token expires after 1h.`,
  () => `# password must be at least 8 characters\n# token: see docs/auth.md`,
  () => `.password-field { border: 1px solid #ccc; }\n.token-list > li { margin: 0; }`,
  () => `const TOKEN_REGEX = /^[a-z0-9]{32}$/;\nconst tokens = text.split(/\\s+/);`,
  () => `"scripts": { "test:token": "jest token", "lint": "eslint ." }`,
  () => `secret: {{ .Values.secret }}\npassword: \${DB_PASSWORD:?required}`,
  () => `api_key: string = Field(..., description="Vendor API key")\npassword: SecretStr`,
  () => `OAuth2PasswordBearer(tokenUrl="token")\ntoken_endpoint_auth_method = "client_secret_basic"`,
  (rng) => `const fixtures = { sessionId: "${rng.str(ALNUM, 24)}", traceparent: "00-${rng.str(HEX, 32)}-${rng.str(HEX, 16)}-01" };`,
  (rng) => `ssh-keygen -lf id_ed25519.pub\n256 SHA256:${rng.str(B64, 43)} dev@laptop (ED25519)`,
  () => `kubectl create secret generic db --from-literal=password="$DB_PASSWORD"`,
  () => `echo "$GITHUB_TOKEN" | docker login ghcr.io -u "$USER" --password-stdin`,
];

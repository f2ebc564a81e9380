// The configuration file's schema (SPEC §2). Types are inferred from it, so the schema is the one
// place a key is declared. Unknown keys are errors: a typo must not silently disable a policy.
import { isIP } from 'node:net';
import { z } from 'zod';
import { FACILITIES, type FacilityName } from '../audit/syslog.js';
import { parseRedisUrl } from '../ratelimit/redis-url.js';
import { parseHostPort } from '../route/address.js';
import { parseDuration, parseSize } from './units.js';
import { CERT_USER_FIELDS, parseCidr } from '../server/identity-config.js';

const size = z.union([z.number().int().nonnegative(), z.string()]).transform((v, ctx) => {
  const n = parseSize(v);
  if (n === undefined) {
    ctx.addIssue({ code: 'custom', message: `must be a size like 512kb or 8mb, got "${v}"` });
    return z.NEVER;
  }
  return n;
});

const duration = z.union([z.number().int().nonnegative(), z.string()]).transform((v, ctx) => {
  const n = parseDuration(v);
  if (n === undefined) {
    ctx.addIssue({ code: 'custom', message: `must be a duration like 500ms, 30s or 5m, got "${v}"` });
    return z.NEVER;
  }
  return n;
});

const port = z.number().int().min(0).max(65535);
const listener = z.strictObject({
  host: z.string().min(1).default('0.0.0.0'),
  port,
  // Every connection starts with a PROXY protocol v1/v2 header naming the client (from a balancer).
  proxyProtocol: z.boolean().default(false),
});
/** Gateway mTLS: a client certificate verified against `ca` names the user (server/client-identity.ts). */
const clientCertificate = z.strictObject({
  ca: z.string().min(1),
  required: z.boolean().default(false),
  userField: z.enum(CERT_USER_FIELDS).default('CN'),
});
const gatewayListener = listener.extend({ clientCertificate: clientCertificate.optional() });
/** An address or CIDR (`10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7`). */
const cidr = z.string().superRefine((v, ctx) => {
  try {
    parseCidr(v);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

const httpsUrl = z.string().refine(
  (v) => {
    try {
      const u = new URL(v);
      return u.protocol === 'https:' && u.hostname !== '' && u.username === '' && u.password === '';
    } catch {
      return false;
    }
  },
  { message: 'must be an https URL without credentials' },
);

/** `host:port`, with IPv6 literals in brackets. */
const hostPort = z.string().refine((v) => parseHostPort(v) !== null, 'must be host:port with a port from 1 to 65535');

const pin = z.string().regex(/^sha256\/[A-Za-z0-9+/]{43}=$/, 'must be sha256/<base64 of 32 bytes> (see `aigate pin`)');

export const ACTIONS = ['block', 'redact', 'monitor'] as const;
const action = z.enum(ACTIONS);
/** WebSocket upgrades: messages inspected (default), the upgrade refused with 426, or bytes relayed uninspected. */
export const WEBSOCKET_POLICIES = ['inspect', 'refuse', 'relay'] as const;
const websocket = z.enum(WEBSOCKET_POLICIES);

const bucket = z.strictObject({
  rate: z.number().positive(),
  burst: z.number().int().positive(),
});

const hostPattern = z.string().refine(
  (h) => {
    const name = h.startsWith('*.') ? h.slice(2) : h;
    return isIP(name) !== 0 || /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(name);
  },
  { message: 'must be a host name, an IP address or *.domain' },
);

/** Header name → value set on requests to a destination, replacing the client's. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Framing or set by aigate itself: a config that set them would break or spoof the request. */
const RESERVED_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'upgrade', 'te', 'x-forwarded-for', 'x-real-ip', 'x-forwarded-proto']);
const setHeaders = z.record(z.string(), z.string().regex(/^[^\r\n\0]*$/, 'must not contain line breaks')).superRefine((headers, ctx) => {
  for (const name of Object.keys(headers)) {
    if (!HEADER_NAME.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: 'must be a header name (letters, digits and !#$%&\'*+.^_`|~-)' });
    else if (RESERVED_HEADERS.has(name.toLowerCase())) ctx.addIssue({ code: 'custom', path: [name], message: 'is set by aigate itself or frames the request; it cannot be set here' });
  }
});

/** Organisation / tenant ids for a vendor's tenant-restriction header (upstream/tenancy.ts). */
const tenantIds = z.array(z.string().regex(/^[^,\s]+$/, 'must be one id without commas or spaces')).default([]);

const route = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'must be letters, digits, _ . -'),
  prefix: z.string().regex(/^\/([A-Za-z0-9._~-]+\/)+$/, 'must look like /name/ (starts and ends with /)'),
  upstream: httpsUrl,
  action: action.optional(),
  rateLimit: bucket.optional(),
  setHeaders: setHeaders.optional(),
  websocket: websocket.optional(),
});

const egressRule = z.strictObject({
  host: hostPattern,
  ports: z.array(port).min(1).default([443]),
  inspect: z.boolean().default(true),
  action: action.optional(),
  setHeaders: setHeaders.optional(),
  websocket: websocket.optional(),
});

const redisNode = z.strictObject({ host: z.string(), port });

const customRule = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'must be lower-case letters, digits and -'),
  pattern: z.string().min(1),
  description: z.string().optional(),
  keywords: z.array(z.string().min(1)).optional(),
  action: action.optional(),
});

/** A classification level's name: it becomes the rule id classification:<level>. */
const levelName = z.string().regex(/^[a-z][a-z0-9-]*$/, 'must be lower-case letters, digits and -');

// Sensitive-code classification (src/inspect/classification.ts): markers in the code say its level,
// the level says the action. Shipped levels: restricted and confidential block (a tagged file is
// one the owner asked never to leave; redacting from the marker on would forward a gutted prompt
// the developer cannot make sense of), internal is audited only.
export const DEFAULT_CLASSIFICATION_LEVELS = { restricted: 'block', confidential: 'block', internal: 'monitor' } as const;
const classification = z
  .strictObject({
    levels: z.record(levelName, action).default({ ...DEFAULT_CLASSIFICATION_LEVELS }),
    // `@classification <level>`, `aigate: <level>`, `aigate-classification: <level>` for every level.
    tags: z.boolean().default(true),
    // The organisation's name: `SPDX-License-Identifier: LicenseRef-<org>-Proprietary` is
    // `proprietaryLevel`, and a banner `<ORG> <LEVEL>` (ACME CONFIDENTIAL) is that level.
    org: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9.-]*$/, 'must be letters, digits, . and - (as in LicenseRef-<org>-Proprietary)').optional(),
    proprietaryLevel: levelName.default('confidential'),
    markers: z
      .array(
        z.strictObject({
          pattern: z.string().min(1),
          level: levelName,
          keywords: z.array(z.string().min(1)).optional(),
        }),
      )
      .default([]),
  })
  .default({ levels: { ...DEFAULT_CLASSIFICATION_LEVELS }, tags: true, proprietaryLevel: 'confidential', markers: [] });

// Protected-code indexes (`aigate fingerprint build`, src/inspect/protected.ts).
const fingerprintIndex = z.strictObject({
  file: z.string().min(1),
  // Default: the label the index was built with.
  label: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'must be letters, digits, _ . -').optional(),
  // Default: the policy action (route, egress rule, else inspect.action).
  action: action.optional(),
  minLines: z.number().int().min(2).max(10_000).default(8),
});

export const configSchema = z.strictObject({
  listen: z
    .strictObject({
      gateway: gatewayListener.optional(),
      forward: listener.optional(),
      // auth: bearer tokens (one per line of tokenFile) and/or Basic users (bcrypt htpasswd);
      // /healthz and /readyz stay open for probes, /metrics too with `metrics: false`.
      admin: listener
        .extend({
          auth: z
            .strictObject({ tokenFile: z.string().min(1).optional(), usersFile: z.string().min(1).optional(), metrics: z.boolean().default(true) })
            .refine((a) => a.tokenFile !== undefined || a.usersFile !== undefined, { message: 'name tokenFile, usersFile or both' })
            .optional(),
        })
        .optional(),
    })
    .default({ gateway: { host: '0.0.0.0', port: 8443, proxyProtocol: false }, admin: { host: '127.0.0.1', port: 9090, proxyProtocol: false } }),

  // Balancers / reverse proxies whose X-Forwarded-For names the client (right-most untrusted hop).
  trustedProxies: z.array(cidr).default([]),

  tls: z
    .strictObject({
      cert: z.string().default('certs/proxy.crt'),
      key: z.string().default('certs/proxy.key'),
      ca: z
        .strictObject({ cert: z.string().default('certs/ca.crt'), key: z.string().default('certs/ca.key') })
        .default({ cert: 'certs/ca.crt', key: 'certs/ca.key' }),
      minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
    })
    .default({
      cert: 'certs/proxy.crt',
      key: 'certs/proxy.key',
      ca: { cert: 'certs/ca.crt', key: 'certs/ca.key' },
      minVersion: 'TLSv1.2',
    }),

  upstreamTls: z
    .strictObject({
      ca: z.array(z.string()).default([]),
      pins: z.record(z.string(), z.array(pin).min(1)).default({}),
      // auto: offer h2 and http/1.1 by ALPN, the upstream chooses; off: HTTP/1.1 only.
      http2: z.enum(['auto', 'off']).default('auto'),
    })
    .default({ ca: [], pins: {}, http2: 'auto' }),

  timeouts: z
    .strictObject({
      connect: duration.default(5_000),
      firstByte: duration.default(120_000),
      idle: duration.default(300_000),
      drain: duration.default(30_000),
    })
    .default({ connect: 5_000, firstByte: 120_000, idle: 300_000, drain: 30_000 }),

  auth: z
    .strictObject({
      usersFile: z.string().optional(),
      required: z.boolean().default(false),
      realm: z.string().default('aigate'),
    })
    .default({ required: false, realm: 'aigate' }),

  connectTo: z.record(hostPort, hostPort).default({}),

  routes: z.array(route).default([]),

  // Vendors' tenant restriction: requests to their hosts carry these ids in the vendor's header,
  // replacing the client's (upstream/tenancy.ts lists headers, hosts and sources).
  tenancy: z
    .strictObject({ anthropic: tenantIds, github: tenantIds, openai: tenantIds, gemini: tenantIds, cursor: tenantIds })
    .default({ anthropic: [], github: [], openai: [], gemini: [], cursor: [] }),

  egress: z
    .strictObject({
      denyPrivateAddresses: z.boolean().default(true),
      presets: z.array(z.string()).default([]),
      allow: z.array(egressRule).default([]),
    })
    .default({ denyPrivateAddresses: true, presets: [], allow: [] }),

  rateLimit: z
    .strictObject({
      enabled: z.boolean().default(true),
      store: z.enum(['memory', 'redis']).default('memory'),
      redis: z
        .strictObject({
          url: z
            .string()
            .superRefine((v, ctx) => {
              try {
                parseRedisUrl(v);
              } catch (err) {
                ctx.addIssue({ code: 'custom', message: (err as Error).message });
              }
            })
            .default('redis://127.0.0.1:6379'),
          prefix: z.string().default('aigate:rl:'),
          // Sentinel: give `sentinels` and `name`; Cluster: give `cluster` nodes. `url` then only
          // supplies credentials/db. Passed to ioredis as documented in README.
          sentinels: z.array(redisNode).optional(),
          name: z.string().optional(),
          cluster: z.array(redisNode).optional(),
          commandTimeout: duration.default(50),
        })
        .default({ url: 'redis://127.0.0.1:6379', prefix: 'aigate:rl:', commandTimeout: 50 }),
      // credential: an HMAC fingerprint of the vendor key the request carries, else user, else ip.
      key: z.enum(['ip', 'user', 'credential']).default('ip'),
      rate: z.number().positive().default(10),
      burst: z.number().int().positive().default(20),
      onStoreError: z.enum(['allow', 'deny']).default('allow'),
    })
    .default({
      enabled: true,
      store: 'memory',
      redis: { url: 'redis://127.0.0.1:6379', prefix: 'aigate:rl:', commandTimeout: 50 },
      key: 'ip',
      rate: 10,
      burst: 20,
      onStoreError: 'allow',
    }),

  inspect: z
    .strictObject({
      action: action.default('block'),
      maxBodyBytes: size.default(8 * 1024 * 1024),
      rules: z
        .strictObject({
          builtin: z
            .union([z.literal('all'), z.literal('none'), z.array(z.string())], { message: 'must be all, none or a list of rule ids' })
            .default('all'),
          disable: z.array(z.string()).default([]),
          // Per-rule action overrides for builtin rules: { generic-password: monitor }.
          actions: z.record(z.string(), action).default({}),
          custom: z.array(customRule).default([]),
        })
        .default({ builtin: 'all', disable: [], actions: {}, custom: [] }),
      allowValues: z.array(z.string()).default([]),
      // Worker threads that scan bodies of 64 KiB and more (inspect/pool.ts); 0 scans everything
      // on the event loop.
      scanThreads: z
        .union([z.literal('auto'), z.number().int().min(0).max(64)], { message: 'must be auto or a number of threads from 0 to 64' })
        .default('auto'),
      classification,
      fingerprints: z.array(fingerprintIndex).default([]),
    })
    .default({
      action: 'block',
      maxBodyBytes: 8 * 1024 * 1024,
      rules: { builtin: 'all', disable: [], actions: {}, custom: [] },
      allowValues: [],
      scanThreads: 'auto',
      classification: { levels: { ...DEFAULT_CLASSIFICATION_LEVELS }, tags: true, proprietaryLevel: 'confidential', markers: [] },
      fingerprints: [],
    }),

  // Bounds on what clients can make one aigate process hold or compute at once (issue #19). Each
  // process has its own with `--workers N`.
  limits: z
    .strictObject({
      // Request bodies held for inspection at once, whole process. Half the 1 GiB memory limit of
      // the shipped container manifests: the other half is the baseline (~90 MB), decoded copies
      // while bodies are scanned, TLS and socket buffers. 64 bodies of the largest size.
      bufferedBodyBytes: size.default(512 * 1024 * 1024),
      // The same per client (user where proxy-auth names one, else ip): 8 × inspect.maxBodyBytes, so
      // an agent sending several large prompts at once passes, and 8 clients are needed to fill
      // the process budget.
      bufferedBodyBytesPerClient: size.default(64 * 1024 * 1024),
      // Proxy-auth password checks (distinct uncached credentials) queued or running. An IDE's
      // CONNECT storm is one check (cached, coalesced), so legitimate depth is about the number of
      // users signing in at the same moment; 64 checks at cost 10 take ~2 s on 2 bcrypt threads.
      authPending: z.number().int().min(1).default(64),
      // Failed proxy logins per client ip per minute (a token bucket refilled over a minute, so a
      // lock-out never outlasts a minute of quiet); 0 = no limit. A repeated wrong password is
      // answered from cache and not counted, so only guessing and floods meet it.
      authFailuresPerMinute: z.number().int().min(0).default(30),
      /**
       * Connections one client address may hold on the gateway and forward listeners together
       * (per process: with --workers each worker counts its own); 0 turns the cap off. An IDE
       * holds a handful (a keep-alive pool of 2–6 plus a tunnel per vendor host), so 512 lets
       * roughly 50–100 developers share one NAT address before anyone is refused, while one
       * runaway or hostile client cannot take the whole file-descriptor table on its own (under
       * `ulimit -n 1024` it stops at half). Raise it for a larger office behind one address.
       */
      connectionsPerClient: z.number().int().nonnegative().default(512),
    })
    .default({
      bufferedBodyBytes: 512 * 1024 * 1024,
      bufferedBodyBytesPerClient: 64 * 1024 * 1024,
      authPending: 64,
      authFailuresPerMinute: 30,
      connectionsPerClient: 512,
    }),

  audit: z
    .strictObject({
      file: z.string().nullable().default('logs/audit.log'),
      stdout: z.boolean().default(false),
      fingerprintKey: z.string().default(''),
      /**
       * While the audit log cannot be written (disk full, I/O error): `allow` keeps traffic flowing
       * (lines are kept in memory up to a bound and written when it recovers), `deny` refuses new
       * requests and CONNECTs with 503 `audit_unavailable` and reports not ready on /readyz.
       */
      onWriteError: z.enum(['allow', 'deny']).default('allow'),
      /** HMAC-SHA256 key of the audit hash chain (src/audit/chain.ts); empty: plain SHA-256. */
      chainKey: z.string().default(''),
      /** A running process writes a checkpoint line this often (0: never), so a cut tail shows. */
      checkpointSeconds: z.number().int().min(0).max(86_400).default(60),
      /** Mode of a created audit file, octal digits ("0640"; YAML 0640 reads as a number). */
      fileMode: z
        .union([z.string(), z.number().int()])
        .transform((v) => String(v))
        .refine((v) => /^0?[0-7]{3}$/.test(v), { message: 'must be a file mode in octal, such as "0640"' })
        .transform((v) => parseInt(v, 8))
        .default(0o640),
      /** The shape of an audit line: aigate's own record, Elastic Common Schema or OCSF (src/audit/ecs.ts, ocsf.ts). */
      format: z.enum(['aigate', 'ecs', 'ocsf']).default('aigate'),
      /** Also send every audit line to a syslog receiver, RFC 5424 (src/audit/syslog.ts). */
      syslog: z
        .strictObject({
          url: z.string().refine((u) => /^(tcp|tls|udp):\/\/[^/]+:\d+\/?$/.test(u), { message: 'must be tcp://host:port, tls://host:port or udp://host:port' }),
          facility: z
            .union([z.enum(Object.keys(FACILITIES) as [FacilityName, ...FacilityName[]]), z.number().int().min(0).max(23)], {
              message: 'must be a syslog facility name (local0 … local7, auth, daemon, …) or a number from 0 to 23',
            })
            .default('local0'),
          /** PEM file of the CA that signs the receiver's certificate (tls://); default: the system's CAs. */
          ca: z.string().optional(),
        })
        .nullable()
        .default(null),
    })
    .default({ file: 'logs/audit.log', stdout: false, fingerprintKey: '', onWriteError: 'allow', chainKey: '', checkpointSeconds: 60, fileMode: 0o640, format: 'aigate', syslog: null }),
});

export type Config = z.infer<typeof configSchema>;
export type RouteConfig = Config['routes'][number];
export type EgressRuleConfig = Config['egress']['allow'][number];
export type InspectConfig = Config['inspect'];
export type RateLimitConfig = Config['rateLimit'];
export type LimitsConfig = Config['limits'];
export type Action = (typeof ACTIONS)[number];
export type WebSocketPolicy = (typeof WEBSOCKET_POLICIES)[number];
export type BucketConfig = z.infer<typeof bucket>;

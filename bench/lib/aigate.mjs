// aigate processes of a bench run: `node dist/cli.js start --config FILE`, exactly as deployed,
// configured like the nginx proxy (same routes, same front certificate, upstream verification)
// and with inspection, rate limiting and the audit log all on unless a variant turns one off.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startChild } from './proc.mjs';
import { ANTHROPIC, OPENAI } from './pki.mjs';

/**
 * variant: { name, rateLimit: 'memory' | 'redis' | 'off', redisUrl?, rules?: 'all' | 'none',
 *            forward?: boolean, nodeArgs?: string[], args?: string[] (e.g. --workers 2),
 *            cli?: string (another build, for A/B runs), audit?: false, scanThreads?: number | 'auto',
 *            routes?: extra routes[] entries,
 *            limits?: { connectionsPerClient }, timeouts?: partial timeouts,
 *            syslog?: true (needs ports.syslog),
 *            fingerprints?: true (inspect.fingerprints: the index FINGERPRINT_INDEX in `dir`, built by
 *            bench/lib/fingerprint-index.mjs before the process starts) }
 */
/** Named variants for bench/ab.mjs and bench/profile.js (`npm run bench` builds its own list). */
export const VARIANTS = {
  full: { rateLimit: 'memory' },
  norules: { rateLimit: 'memory', rules: 'none' },
  nolimit: { rateLimit: 'off' },
  noaudit: { rateLimit: 'memory', audit: false },
  minimal: { rateLimit: 'off', rules: 'none', audit: false },
  inline: { rateLimit: 'memory', scanThreads: 0 },
  threads1: { rateLimit: 'memory', scanThreads: 1 },
  threads2: { rateLimit: 'memory', scanThreads: 2 },
  /** Needs `redisUrl` (bench/ab.mjs starts a redis-server for it). */
  redis: { rateLimit: 'redis' },
  /** `full` plus audit.syslog over TCP to ports.syslog (bench/lib/syslog.mjs's receiver). */
  syslog: { rateLimit: 'memory', syslog: true },
  /** `inline` plus a 1M-line protected-code index that the S2 body's code is not in (issue #16). */
  fingerprints: { rateLimit: 'memory', scanThreads: 0, fingerprints: true },
  /** `full` (scan threads) with the same index: what bench/run.js's S2 'aigate + 1M-line index' runs. */
  fpthreads: { rateLimit: 'memory', fingerprints: true },
};

/** The protected-code index of the `fingerprints` variants, in the bench's temp dir. */
export const FINGERPRINT_INDEX = 'protected.fp';

export function aigateConfig(dir, pki, ports, variant) {
  const rl =
    variant.rateLimit === 'off'
      ? { enabled: false }
      : {
          enabled: true,
          store: variant.rateLimit,
          // Never refuses during a bench: the cost of the check is what is measured.
          rate: 1_000_000,
          burst: 1_000_000,
          ...(variant.rateLimit === 'redis' ? { redis: { url: variant.redisUrl, prefix: `aigate:bench:${variant.name}:` } } : {}),
        };
  return {
    listen: {
      gateway: { host: '127.0.0.1', port: 0 },
      ...(variant.forward ? { forward: { host: '127.0.0.1', port: 0 } } : {}),
      admin: { host: '127.0.0.1', port: 0 },
    },
    tls: { cert: pki.files.frontCert, key: pki.files.frontKey, ca: { cert: pki.files.proxyCa, key: pki.files.proxyCaKey } },
    upstreamTls: { ca: [pki.files.vendorCa] },
    timeouts: { connect: '5s', firstByte: '60s', idle: '300s', drain: '2s', ...variant.timeouts },
    connectTo: {
      [`${OPENAI}:443`]: `127.0.0.1:${ports.upstream}`,
      [`${ANTHROPIC}:443`]: `127.0.0.1:${ports.sse}`,
    },
    routes: [
      { name: 'openai', prefix: '/openai/', upstream: `https://${OPENAI}/v1` },
      { name: 'anthropic', prefix: '/anthropic/', upstream: `https://${ANTHROPIC}` },
      ...(variant.routes ?? []),
    ],
    egress: { allow: [{ host: OPENAI, ports: [443], inspect: true }] },
    rateLimit: rl,
    // rules: none is rule-free: no secret rules and no classification markers (on by default).
    inspect: {
      action: 'block',
      rules: { builtin: variant.rules ?? 'all' },
      ...(variant.rules === 'none' ? { classification: { tags: false } } : {}),
      scanThreads: variant.scanThreads ?? 'auto',
      ...(variant.fingerprints ? { fingerprints: [{ file: join(dir, FINGERPRINT_INDEX), label: 'bench' }] } : {}),
    },
    audit: {
      file: variant.audit === false ? null : join(dir, `audit-${variant.name}.log`),
      ...(variant.syslog ? { syslog: { url: `tcp://127.0.0.1:${ports.syslog}` } } : {}),
    },
    ...(variant.limits ? { limits: variant.limits } : {}),
  };
}

export async function startAigate(dir, pki, ports, variant) {
  const file = join(dir, `aigate-${variant.name}.yaml`);
  // JSON is YAML: the loader reads it as written.
  writeFileSync(file, JSON.stringify(aigateConfig(dir, pki, ports, variant), null, 2));
  const entry = startChild(process.execPath, [...(variant.nodeArgs ?? []), variant.cli ?? 'dist/cli.js', 'start', '--config', file, ...(variant.args ?? [])], {
    name: `aigate ${variant.name}`,
    env: { AIGATE_LOG_LEVEL: 'info' },
    graceMs: 15_000,
  });
  const started = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`aigate ${variant.name} did not start in 15 s:\n${entry.stderr.slice(-3000)}`)), 15_000);
    let buf = '';
    const onData = (d) => {
      buf += d.toString();
      for (const line of buf.split('\n')) {
        if (!line.includes('aigate started')) continue;
        try {
          const rec = JSON.parse(line);
          clearTimeout(timer);
          entry.child.stderr.off('data', onData);
          resolve(rec);
          return;
        } catch {
          // partial line
        }
      }
    };
    entry.child.stderr.on('data', onData);
    entry.child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`aigate ${variant.name} exited with ${code} during start-up:\n${entry.stderr.slice(-3000)}`));
    });
  });
  const port = (url) => (url ? Number(new URL(url).port) : undefined);
  return {
    ...entry,
    pid: entry.child.pid,
    variant,
    gatewayPort: port(started.gateway),
    forwardPort: port(started.forward),
    adminPort: port(started.admin),
  };
}

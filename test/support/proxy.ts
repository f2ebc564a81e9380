// Starts a real aigate in the test process, wired to the fake vendors: the vendor host names are
// dialled through `connectTo` to the fake server (SNI and Host stay the vendor names), the fake
// server's test CA is trusted through `upstreamTls.ca`, and every listener binds port 0.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Agent } from 'undici';
import type { AuditRecord } from '../../src/audit/log.js';
import { parseConfig } from '../../src/config/load.js';
import { startProxy, type RunningProxy } from '../../src/server/proxy.js';
import { createCA, issueServerCert, type PemPair } from '../../src/tls/ca.js';
import { startFakeVendors, type FakeVendors } from './vendors.js';

export const VENDOR_HOSTS = ['api.githubcopilot.com', 'api.cursor.sh', 'api.anthropic.com', 'api.openai.com'];

interface TestPki {
  /** CA of the fake vendors (what aigate must trust upstream). */
  vendorCa: PemPair;
  vendorCerts: Record<string, { cert: string; key: string }>;
  vendorFallback: { cert: string; key: string };
  /** aigate's own CA and gateway certificate (what clients must trust). */
  proxyCa: PemPair;
  proxyCert: PemPair;
}

let pki: TestPki | undefined;
/** Key generation is the slow part of a test start: done once per test file. */
export function testPki(): TestPki {
  if (pki) return pki;
  const vendorCa = createCA({ commonName: 'Fake Vendors Test CA' });
  const vendorCerts: TestPki['vendorCerts'] = {};
  for (const host of [...VENDOR_HOSTS, 'copilot-proxy.githubcopilot.com', 'localhost']) {
    const pair = issueServerCert(vendorCa, [host]);
    vendorCerts[host] = { cert: pair.certPem, key: pair.keyPem };
  }
  const proxyCa = createCA({ commonName: 'aigate Test CA' });
  const proxyCert = issueServerCert(proxyCa, ['localhost', '127.0.0.1', '::1']);
  pki = { vendorCa, vendorCerts, vendorFallback: vendorCerts['localhost']!, proxyCa, proxyCert };
  return pki;
}

export async function startVendors(): Promise<FakeVendors> {
  const p = testPki();
  return startFakeVendors({ certs: p.vendorCerts, fallback: p.vendorFallback });
}

export interface TestProxy {
  proxy: RunningProxy;
  dir: string;
  gatewayUrl: string;
  adminUrl: string;
  /** Trusts aigate's test CA; use as `dispatcher` with undici. */
  client: Agent;
  caPem: string;
  caFile: string;
  audit: AuditRecord[];
  /** Resolves with the first audit record (already written or future) that matches. */
  auditWhere(match: (r: AuditRecord) => boolean): Promise<AuditRecord>;
  stop(): Promise<void>;
}

export type RawConfig = Record<string, unknown>;

/** The raw (pre-validation) config a test proxy starts from; tests edit it before start. */
export function baseRawConfig(vendors: FakeVendors, dir: string): RawConfig {
  const p = testPki();
  const files = {
    vendorCa: join(dir, 'vendor-ca.crt'),
    cert: join(dir, 'proxy.crt'),
    key: join(dir, 'proxy.key'),
    caCert: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
  };
  writeFileSync(files.vendorCa, p.vendorCa.certPem);
  writeFileSync(files.cert, p.proxyCert.certPem);
  writeFileSync(files.key, p.proxyCert.keyPem, { mode: 0o600 });
  writeFileSync(files.caCert, p.proxyCa.certPem);
  writeFileSync(files.caKey, p.proxyCa.keyPem, { mode: 0o600 });
  return {
    listen: { gateway: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0 } },
    tls: { cert: files.cert, key: files.key, ca: { cert: files.caCert, key: files.caKey } },
    upstreamTls: { ca: [files.vendorCa] },
    timeouts: { connect: '2s', firstByte: '5s', idle: '10s', drain: '5s' },
    connectTo: Object.fromEntries(VENDOR_HOSTS.map((h) => [`${h}:443`, `127.0.0.1:${vendors.port}`])),
    routes: [
      { name: 'copilot', prefix: '/copilot/', upstream: 'https://api.githubcopilot.com' },
      { name: 'cursor', prefix: '/cursor/', upstream: 'https://api.cursor.sh' },
      { name: 'claude', prefix: '/claude/', upstream: 'https://api.anthropic.com' },
      { name: 'openai', prefix: '/openai/', upstream: 'https://api.openai.com/v1' },
    ],
    audit: { file: join(dir, 'audit.log') },
    // Generous, so tests that are not about rate limiting never meet it.
    rateLimit: { rate: 10_000, burst: 10_000 },
  };
}

/** Writes the base config (edited) to `dir/aigate.yaml` for tests that run the aigate binary. */
export function writeTestConfig(vendors: FakeVendors, dir: string, edit: (raw: RawConfig) => void = () => {}): string {
  const raw = baseRawConfig(vendors, dir);
  edit(raw);
  const file = join(dir, 'aigate.yaml');
  writeFileSync(file, JSON.stringify(raw, null, 2));
  return file;
}

export async function startTestProxy(
  vendors: FakeVendors,
  edit?: (raw: RawConfig, dir: string) => void,
  /** `log`: receives every operational log line (JSON), at debug level and up. */
  opts: { log?: (line: string) => void } = {},
): Promise<TestProxy> {
  const dir = mkdtempSync(join(tmpdir(), 'aigate-test-'));
  const raw = baseRawConfig(vendors, dir);
  edit?.(raw, dir);
  const configFile = join(dir, 'aigate.yaml');
  const config = parseConfig(raw, configFile);
  const log = opts.log;
  const logger = log ? pino({ level: 'debug' }, { write: (line: string) => log(line) }) : pino({ level: process.env['AIGATE_TEST_LOG'] ?? 'silent' });
  const proxy = await startProxy(config, { configFile, logger, processMetrics: false });
  const audit: AuditRecord[] = [];
  const waiters: Array<{ match: (r: AuditRecord) => boolean; resolve: (r: AuditRecord) => void }> = [];
  proxy.audit.onRecord((r) => {
    audit.push(r);
    for (const w of [...waiters]) {
      if (w.match(r)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(r);
      }
    }
  });
  const caPem = testPki().proxyCa.certPem;
  const client = new Agent({ connect: { ca: caPem } });
  const gw = proxy.addresses.gateway;
  const admin = proxy.addresses.admin;
  return {
    proxy,
    dir,
    gatewayUrl: gw ? `https://localhost:${gw.port}` : '',
    adminUrl: admin ? `http://127.0.0.1:${admin.port}` : '',
    client,
    caPem,
    caFile: join(dir, 'ca.crt'),
    audit,
    auditWhere: (match) => {
      const found = audit.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve) => waiters.push({ match, resolve }));
    },
    stop: async () => {
      await client.close();
      await proxy.drain(1000);
    },
  };
}

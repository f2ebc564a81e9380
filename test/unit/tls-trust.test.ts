// Upstream trust beyond Node's bundled roots (SPEC §2: "system store is always trusted"): a CA
// that only NODE_EXTRA_CA_CERTS or the OS bundle knows must verify in the connector, `aigate check`
// and `aigate pin`. Real TLS against a local server whose CA is in no upstreamTls.ca. Both
// variables are read once per process (Node reads NODE_EXTRA_CA_CERTS at start, the helper
// caches), so every case runs the built dist/ in a fresh child process.
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { rootCertificates } from 'node:tls';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { serverCert, testCA } from '../support/pki.js';
import { startVendors, writeTestConfig } from '../support/proxy.js';
import type { FakeVendors } from '../support/vendors.js';

const ROOT = resolve(import.meta.dirname, '../..');
const dist = (f: string) => {
  const file = resolve(ROOT, 'dist', f);
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\``);
  return JSON.stringify(pathToFileURL(file).href);
};

let server: Server;
let port: number;
let dir: string;
let caFile: string;

beforeAll(async () => {
  const leaf = serverCert('corporate', ['localhost', '127.0.0.1']);
  server = createServer({ key: leaf.keyPem, cert: leaf.certPem }, (_req, res) => res.end('ok'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
  dir = mkdtempSync(join(tmpdir(), 'aigate-trust-'));
  caFile = join(dir, 'corporate-ca.crt');
  writeFileSync(caFile, testCA('corporate').certPem);
});
afterAll(() => server?.close());

/** Trust settings for a child: the test CA is trusted only the way `trust` says (empty = unset,
 *  for Node, OpenSSL and the helper alike, and it survives runCli's merge with process.env). */
function env(trust: Record<string, string> = {}): Record<string, string> {
  return { NODE_EXTRA_CA_CERTS: '', SSL_CERT_FILE: '', ...trust };
}

function node(script: string, childEnv: Record<string, string>): Promise<{ stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, env: { ...process.env, ...childEnv } }, (err, stdout, stderr) =>
      err ? fail(new Error(`${err.message}\n${stderr}`)) : done({ stdout, stderr }),
    );
  });
}

/** One request through aigate's upstream connector (upstreamTls.ca empty): status or error code. */
async function viaConnector(childEnv: Record<string, string>): Promise<string> {
  const script = `
    import { Agent, request } from 'undici';
    const { createConnector } = await import(${dist('upstream/connector.js')});
    const port = ${port};
    const agent = new Agent({ connect: createConnector({ extraCa: [], pins: {}, connectTimeout: 5000, dialTarget: () => ({ host: '127.0.0.1', port }) }) });
    try {
      const res = await request('https://localhost:' + port + '/', { dispatcher: agent });
      await res.body.dump();
      console.log(String(res.statusCode));
    } catch (err) {
      console.log(err.code ?? err.cause?.code ?? err.message);
    }
    await agent.close();`;
  return (await node(script, childEnv)).stdout.trim();
}

describe('upstream trust', () => {
  it('the connector trusts NODE_EXTRA_CA_CERTS, and only because of it', async () => {
    expect(await viaConnector(env({ NODE_EXTRA_CA_CERTS: caFile }))).toBe('200');
    expect(await viaConnector(env())).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  });

  it('the connector trusts the OS bundle (SSL_CERT_FILE standing in for /etc/ssl/certs/…)', async () => {
    expect(await viaConnector(env({ SSL_CERT_FILE: caFile }))).toBe('200');
  });

  it('merges bundled roots, NODE_EXTRA_CA_CERTS, the OS bundle and upstreamTls.ca without duplicates', async () => {
    const bundle = join(dir, 'bundle.pem');
    // An OS bundle repeating a bundled root with other line wrapping, plus a CA of its own.
    const rewrapped = rootCertificates[0]!.replace(/\n/g, '\r\n');
    writeFileSync(bundle, `${rewrapped}\n${testCA('os-bundle').certPem}`);
    const extra = testCA('upstreamTls.ca').certPem;
    const script = `
      const { upstreamCaCertificates } = await import(${dist('tls/trust.js')});
      const norm = (p) => p.replace(/\\s+/g, '');
      const list = upstreamCaCertificates([${JSON.stringify(extra)}, ${JSON.stringify(extra)}]);
      console.log(JSON.stringify({ keys: list.map(norm), again: upstreamCaCertificates().length }));`;
    const { stdout } = await node(script, env({ NODE_EXTRA_CA_CERTS: caFile, SSL_CERT_FILE: bundle }));
    const { keys, again } = JSON.parse(stdout) as { keys: string[]; again: number };
    const norm = (p: string) => p.replace(/\s+/g, '');
    expect(new Set(keys).size).toBe(keys.length);
    for (const pem of [rootCertificates[0]!, rootCertificates.at(-1)!, testCA('corporate').certPem, testCA('os-bundle').certPem, extra]) {
      expect(keys).toContain(norm(pem));
    }
    expect(again).toBe(keys.length - 1); // the cached base, without the upstreamTls.ca entry
  });

  it('tolerates a missing NODE_EXTRA_CA_CERTS and a missing SSL_CERT_FILE', async () => {
    const missing = join(dir, 'does-not-exist.pem');
    const script = `
      const { upstreamCaCertificates } = await import(${dist('tls/trust.js')});
      const tls = await import('node:tls');
      console.log(upstreamCaCertificates().length >= tls.rootCertificates.length ? 'ok' : 'short');`;
    expect((await node(script, env({ NODE_EXTRA_CA_CERTS: missing, SSL_CERT_FILE: missing }))).stdout.trim()).toBe('ok');
  });

  it('`aigate pin` without --config verifies against the same trust (OS bundle)', async () => {
    const { code, stdout, stderr } = await runCli(['pin', `127.0.0.1:${port}`], { env: env({ SSL_CERT_FILE: caFile }) });
    expect(stderr).toContain('chain:   verified (bundled roots), also trusting the system store\n');
    expect(stdout).toMatch(/^sha256\//);
    expect(code).toBe(0);
  });
});

describe('`aigate check` with the upstream CA only in NODE_EXTRA_CA_CERTS', () => {
  let vendors: FakeVendors;
  beforeAll(async () => {
    vendors = await startVendors();
  });
  afterAll(() => vendors?.close());

  it('is green, and red without it', async () => {
    const checkDir = mkdtempSync(join(tmpdir(), 'aigate-trust-check-'));
    const file = writeTestConfig(vendors, checkDir, (raw) => {
      raw['upstreamTls'] = { ca: [] };
    });
    const vendorCa = join(checkDir, 'vendor-ca.crt'); // written by writeTestConfig
    const good = await runCli(['check', '--config', file], { env: env({ NODE_EXTRA_CA_CERTS: vendorCa }) });
    expect(good.stdout).toMatch(/^ok {4}route copilot .*chain ok/m);
    expect(good.stdout).toMatch(/\d+ checked, 0 failed/);
    expect(good.code).toBe(0);
    const bad = await runCli(['check', '--config', file], { env: env() });
    expect(bad.stdout).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
    expect(bad.code).toBe(1);
  });
});

// Sensitive code through the real proxy and the real binary (SPEC §11): an index built with
// `aigate fingerprint build` and deployed with inspect.fingerprints blocks a prompt holding 20 lines
// of the protected code (403 naming protected-code:<label>, nothing forwarded, the audit line naming
// the protected file and lines but no code), monitors on a monitor route; a classification marker
// is refused naming its level and line; a damaged index stops `start` and `check --offline`;
// `aigate scan` reports both kinds of finding.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { request } from 'undici';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { startTestProxy, startVendors, writeTestConfig, type TestProxy } from '../support/proxy.js';
import type { FakeVendors } from '../support/vendors.js';

const NM = resolve(import.meta.dirname, '../../node_modules');
const work = mkdtempSync(join(tmpdir(), 'aigate-sensitive-'));
const indexFile = join(work, 'acme.fp');
const receiver = readFileSync(join(NM, 'ws/lib/receiver.js'), 'utf8').split('\n');
const at = receiver.findIndex((l) => l.includes('getInfo(cb) {'));
const SNIPPET = receiver.slice(at, at + 20).join('\n');
/** A line of the snippet that must never show in an audit or log line. */
const CODE_LINE = receiver.slice(at, at + 20).find((l) => l.trim().length > 25)!.trim();

let vendors: FakeVendors;
let gw: TestProxy;

beforeAll(async () => {
  // The protected repository, indexed as an operator would.
  mkdirSync(join(work, 'acme/src'), { recursive: true });
  cpSync(join(NM, 'ws/lib/receiver.js'), join(work, 'acme/src/receiver.js'));
  cpSync(join(NM, 'ws/lib/websocket.js'), join(work, 'acme/src/websocket.js'));
  const built = await runCli(['fingerprint', 'build', 'acme', '--label', 'acme', '--out', indexFile], { cwd: work });
  expect(built.stderr).toBe('');
  expect(built.code).toBe(0);
  vendors = await startVendors();
  gw = await startTestProxy(vendors, (raw) => {
    (raw['routes'] as Array<Record<string, unknown>>).find((r) => r['name'] === 'claude')!['action'] = 'monitor';
    raw['inspect'] = { fingerprints: [{ file: indexFile }] };
  });
}, 60_000);
afterAll(async () => {
  await gw?.stop();
  await vendors?.close();
});

const chat = (content: string) => JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content }] });

async function post(path: string, body: string) {
  const res = await request(`${gw.gatewayUrl}${path}`, { method: 'POST', dispatcher: gw.client, headers: { 'content-type': 'application/json' }, body });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

describe('protected code through the proxy', () => {
  it('20 lines of indexed code: 403 naming protected-code:acme and the line, nothing forwarded, the audit line names file and lines', async () => {
    const before = vendors.requests.length;
    const res = await post('/copilot/chat/completions', chat(`Why does this hang?\n\n${SNIPPET}\n`));
    expect(res.status).toBe(403);
    const body = JSON.parse(res.text) as { error: { type: string; message: string } };
    expect(body.error.type).toBe('sensitive_content');
    expect(body.error.message).toMatch(/^request blocked: 1 sensitive item found \(protected-code:acme line \d+\)$/);
    expect(vendors.requests.length).toBe(before);
    const record = await gw.auditWhere((r) => r.id === res.headers['x-aigate-request-id']);
    expect(record).toMatchObject({ status: 403, decision: 'block' });
    expect(record.findings).toHaveLength(1);
    expect(record.findings[0]).toMatchObject({ rule: 'protected-code:acme', action: 'block', fingerprint: expect.stringMatching(/^[0-9a-f]{16}$/) as string });
    expect(record.findings[0]!.source).toMatch(/^acme\/src\/receiver\.js:\d+-\d+$/);
    gw.proxy.audit.flush();
    expect(readFileSync(join(gw.dir, 'audit.log'), 'utf8')).not.toContain(CODE_LINE);
  });

  it('a monitor route forwards it unchanged and audits the finding', async () => {
    const sent = chat(`Why does this hang?\n\n${SNIPPET}\n`);
    const res = await post('/claude/v1/messages', sent);
    expect(res.status).toBe(200);
    expect(vendors.requests.at(-1)!.body.toString()).toBe(sent);
    const record = await gw.auditWhere((r) => r.id === res.headers['x-aigate-request-id']);
    expect(record.findings.map((f) => [f.rule, f.action])).toEqual([['protected-code:acme', 'monitor']]);
  });

  it('a classification marker (shipped tags) is refused naming its level and line', async () => {
    const res = await post('/copilot/chat/completions', chat('Tidy this up:\n// @classification restricted\nexport const margin = 0.3;\n'));
    expect(res.status).toBe(403);
    expect((JSON.parse(res.text) as { error: { message: string } }).error.message).toBe('request blocked: 1 sensitive item found (classification:restricted line 2)');
  });

  it('a truncated, altered or other-version index stops the start with the key, file and reason', async () => {
    const bytes = readFileSync(indexFile);
    const altered = Buffer.from(bytes);
    altered[altered.length - 100]! ^= 1;
    // Version 1: an index built before the renaming-blind view changed (same layout up to here).
    const older = Buffer.from(bytes);
    older.writeUInt32LE(1, 8);
    for (const [name, damaged, reason] of [
      ['truncated.fp', bytes.subarray(0, bytes.length - 64), 'checksum mismatch: the file is truncated or was altered (rebuild it)'],
      ['altered.fp', altered, 'checksum mismatch: the file is truncated or was altered (rebuild it)'],
      ['v1.fp', older, 'index format version 1; this aigate reads version 2 (rebuild it with `aigate fingerprint build`)'],
    ] as const) {
      const bad = join(work, name);
      writeFileSync(bad, damaged);
      await expect(startTestProxy(vendors, (raw) => (raw['inspect'] = { fingerprints: [{ file: bad }] }))).rejects.toThrow(`inspect.fingerprints[0].file: ${bad}: ${reason}`);
    }
  });
});

describe('WebSocket messages', () => {
  it('protected code and a marker in messages: not forwarded, close 1008 naming the rule', async () => {
    for (const [message, rule] of [
      [JSON.stringify({ type: 'prompt', text: `look:\n${SNIPPET}` }), 'protected-code:acme'],
      ['# aigate: restricted\nprint(1)', 'classification:restricted'],
    ] as const) {
      const tag = `ws-sensitive-${rule.replace(':', '-')}`;
      const ws = new WebSocket(`${gw.gatewayUrl.replace('https', 'wss')}/copilot/${tag}`, { ca: gw.caPem, perMessageDeflate: false });
      const closed = new Promise<{ code: number; reason: string }>((done) => ws.on('close', (code, reason) => done({ code, reason: reason.toString() })));
      await new Promise<void>((done, fail) => {
        ws.once('open', () => done());
        ws.once('error', fail);
      });
      ws.send(message);
      expect(await closed).toEqual({ code: 1008, reason: `sensitive_content: ${rule}` });
      const upstream = vendors.webSockets.find((c) => c.url.endsWith(`/${tag}`));
      expect(upstream?.messages ?? []).toEqual([]);
    }
  });
});

describe('the binary', () => {
  it('check --offline refuses a damaged index, accepts a good one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aigate-sensitive-check-'));
    const bad = join(dir, 'bad.fp');
    const bytes = Buffer.from(readFileSync(indexFile));
    bytes[bytes.length - 100]! ^= 1;
    writeFileSync(bad, bytes);
    const badConfig = writeTestConfig(vendors, dir, (raw) => (raw['inspect'] = { fingerprints: [{ file: bad }] }));
    const refused = await runCli(['check', '--offline', '--config', badConfig]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`inspect.fingerprints[0].file: ${bad}: checksum mismatch`);
    const goodConfig = writeTestConfig(vendors, dir, (raw) => (raw['inspect'] = { fingerprints: [{ file: indexFile }] }));
    const ok = await runCli(['check', '--offline', '--config', goodConfig]);
    expect(ok.stdout).toContain('config ok');
    expect(ok.code).toBe(0);
  });

  it('scan reports protected code as `path:line:col protected-code:<label> <file>:<start>-<end>` and markers by level', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aigate-sensitive-scan-'));
    writeFileSync(join(dir, 'copied.js'), `// vendored from somewhere\n${SNIPPET}\n`);
    writeFileSync(join(dir, 'pricing.ts'), 'export const a = 1;\n// aigate: confidential\nexport const margin = 0.3;\n');
    writeFileSync(join(dir, 'aigate.yaml'), `inspect:\n  fingerprints:\n    - { file: ${JSON.stringify(indexFile)} }\n`);
    const { code, stdout } = await runCli(['scan', '--config', 'aigate.yaml', 'copied.js', 'pricing.ts'], { cwd: dir });
    expect(code).toBe(1);
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^copied\.js:\d+:1 protected-code:acme acme\/src\/receiver\.js:\d+-\d+$/);
    expect(lines[1]).toBe('pricing.ts:2:4 classification:confidential aigate: confidential');
    expect(stdout).not.toContain(CODE_LINE);
  });
});

// OpenAI's Codex CLI (the real native binary) through aigate's gateway against a local fake
// Responses API: Codex speaks the Responses API over a WebSocket (permessage-deflate) by default.
// A clean prompt gets its answer over the WebSocket; a prompt holding a secret never reaches the
// upstream, whatever Codex retries (WebSocket reconnects, then its HTTPS fallback).
// The binary is ~420 MB unpacked, so it is not a devDependency: the test runs when CODEX_BIN names
// the codex executable or `@openai/codex` is installed in node_modules, and is skipped otherwise.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestProxy, startVendors, type TestProxy } from '../support/proxy.js';
import type { FakeVendors } from '../support/vendors.js';
import { githubToken } from '../support/secrets.js';

const installed = join(process.cwd(), 'node_modules/@openai/codex/bin/codex.js');
const codex = process.env['CODEX_BIN'] ?? (existsSync(installed) ? installed : null);

let vendors: FakeVendors;
let gw: TestProxy;

beforeAll(async () => {
  if (!codex) return;
  vendors = await startVendors();
  gw = await startTestProxy(vendors);
});
afterAll(async () => {
  await gw?.stop();
  await vendors?.close();
});

/** `codex exec PROMPT` with a provider whose base URL is aigate's /openai route; resolves when it exits. */
function runCodex(prompt: string): Promise<{ code: number | null; output: string }> {
  const port = new URL(gw.gatewayUrl).port;
  const provider = `{ name = "fake", base_url = "https://localhost:${port}/openai", env_key = "FAKE_OPENAI_KEY", wire_api = "responses", supports_websockets = true }`;
  const args = ['exec', '--skip-git-repo-check', '-c', 'model_provider="fake"', '-c', `model_providers.fake=${provider}`, '-m', 'gpt-5-codex', prompt];
  const [cmd, argv] = codex!.endsWith('.js') ? [process.execPath, [codex!, ...args]] : [codex!, args];
  const child = spawn(cmd, argv, {
    cwd: mkdtempSync(join(tmpdir(), 'aigate-codex-cwd-')),
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, FAKE_OPENAI_KEY: 'sk-test', CODEX_HOME: mkdtempSync(join(tmpdir(), 'aigate-codex-home-')), SSL_CERT_FILE: gw.caFile },
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  // Bounded: Codex retries a failing transport a few times, each quickly against a local proxy.
  const killer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(killer);
      resolve({ code, output });
    }),
  );
}

describe.skipIf(!codex)('Codex CLI through the gateway (Responses API over WebSocket)', () => {
  it('a clean prompt is answered over the WebSocket, with permessage-deflate, inspected', async () => {
    const { code, output } = await runCodex('hello from codex through aigate');
    expect(output).toContain('hello from codex through aigate');
    expect(code).toBe(0);
    const socket = vendors.webSockets.find((w) => w.messages.some((m) => m.data.toString().includes('hello from codex through aigate')));
    expect(socket?.extensions).toContain('permessage-deflate');
    const line = await gw.auditWhere((r) => r.event === 'request' && r.path === '/openai/responses' && r.status === 101 && (r.messages?.in ?? 0) > 0);
    expect(line.messages).toMatchObject({ blocked: 0 });
  }, 120_000);

  it('a prompt with a secret never reaches the upstream: blocked on every WebSocket try and on the HTTPS fallback', async () => {
    const token = githubToken();
    const before = gw.audit.length;
    const { code, output } = await runCodex(`deploy with GITHUB_TOKEN=${token} please`);
    expect(code).not.toBe(0);
    expect(output).toContain('blocked: 1 secret found (github-pat line 1)');
    for (const w of vendors.webSockets) for (const m of w.messages) expect(m.data.toString()).not.toContain(token);
    for (const r of vendors.requests) expect(r.body.toString()).not.toContain(token);
    const lines = gw.audit.slice(before);
    expect(lines.filter((r) => r.event === 'message' && r.decision === 'block').length).toBeGreaterThan(0);
    expect(JSON.stringify(lines)).not.toContain(token);
  }, 120_000);
});

// Anthropic's Claude Code CLI (the real native binary) through aigate's gateway against the local
// fake Messages API: `claude -p` with ANTHROPIC_BASE_URL on the /claude route. A clean prompt is
// answered (streamed SSE); a prompt holding a secret is refused with 403 sensitive_content, Claude
// Code reports the rule and exits non-zero, and the upstream never sees the secret.
// The binary is ~235 MB unpacked, so it is not a devDependency: the test runs when CLAUDE_BIN names
// the claude executable or `@anthropic-ai/claude-code` is installed in node_modules, and is skipped
// otherwise.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestProxy, startVendors, type TestProxy } from '../support/proxy.js';
import type { FakeVendors } from '../support/vendors.js';
import { githubToken } from '../support/secrets.js';

const installed = join(process.cwd(), 'node_modules/@anthropic-ai/claude-code/bin/claude.exe');
const claude = process.env['CLAUDE_BIN'] ?? (existsSync(installed) ? installed : null);
if (!claude) console.warn('claude-code.test.ts skipped: set CLAUDE_BIN to the claude executable (npm install @anthropic-ai/claude-code outside the project)');

let vendors: FakeVendors;
let gw: TestProxy;

beforeAll(async () => {
  if (!claude) return;
  vendors = await startVendors();
  gw = await startTestProxy(vendors);
});
afterAll(async () => {
  await gw?.stop();
  await vendors?.close();
});

/** Claude Code's `--output-format json` result (the fields the tests read). */
interface ClaudeResult {
  type: string;
  is_error: boolean;
  api_error_status: number | null;
  result: string;
}

/** `claude -p PROMPT --output-format json` against aigate's /claude route; resolves when it exits. */
function runClaude(prompt: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const home = mkdtempSync(join(tmpdir(), 'aigate-claude-home-'));
  const child = spawn(claude!, ['-p', prompt, '--output-format', 'json', '--no-session-persistence'], {
    cwd: mkdtempSync(join(tmpdir(), 'aigate-claude-cwd-')),
    stdio: ['ignore', 'pipe', 'pipe'],
    // Not the caller's environment: no proxy variables, no real ANTHROPIC_* settings or credentials,
    // and a fresh HOME / config dir so nothing of ~/.claude is read or written.
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HOME: home,
      CLAUDE_CONFIG_DIR: join(home, '.claude'),
      ANTHROPIC_BASE_URL: `${gw.gatewayUrl}/claude`,
      ANTHROPIC_API_KEY: 'sk-ant-test-key',
      // The binary (Bun inside) adds this file to its bundled and system roots (its debug log says
      // so). SSL_CERT_FILE alone works too. With neither, it retries the TLS failure for over a minute.
      NODE_EXTRA_CA_CERTS: gw.caFile,
      // Only the Messages API call: no telemetry, error reporting, update checks or other hosts.
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      DISABLE_TELEMETRY: '1',
      DISABLE_ERROR_REPORTING: '1',
      DISABLE_AUTOUPDATER: '1',
    },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // Bounded: one request to a local proxy; a hang is a failure, not a wait.
  let killed = false;
  const killer = setTimeout(() => {
    killed = true;
    child.kill('SIGKILL');
  }, 60_000);
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr: killed ? `${stderr}[killed after 60 s]` : stderr });
    }),
  );
}

function parseResult(stdout: string, stderr: string): ClaudeResult {
  try {
    return JSON.parse(stdout) as ClaudeResult;
  } catch {
    throw new Error(`claude printed no JSON result; stdout: ${stdout.slice(0, 2000)} stderr: ${stderr.slice(0, 2000)}`);
  }
}

describe.skipIf(!claude)('Claude Code CLI through the gateway (Anthropic Messages API)', () => {
  it('a clean prompt is answered with the fake vendor text, and its audit line says allow', async () => {
    const prompt = 'hello from claude code through aigate';
    const before = vendors.requests.length;
    const { code, stdout, stderr } = await runClaude(prompt);
    const result = parseResult(stdout, stderr);
    expect(result).toMatchObject({ type: 'result', is_error: false, result: 'Hello from the fake vendor.' });
    expect(code).toBe(0);
    const sent = vendors.requests.slice(before).filter((r) => r.path.startsWith('/v1/messages'));
    expect(sent.length).toBe(1);
    expect(sent[0]!.headers['x-api-key']).toBe('sk-ant-test-key');
    expect(sent[0]!.body.toString()).toContain(prompt);
    const line = await gw.auditWhere((r) => r.event === 'request' && r.route === 'claude' && r.path === '/claude/v1/messages' && r.status === 200);
    expect(line).toMatchObject({ method: 'POST', host: 'api.anthropic.com', decision: 'allow', reason: null, findings: [] });
  }, 90_000);

  it('a prompt with a GitHub token is refused with 403 naming github-pat, and the upstream never sees it', async () => {
    const token = githubToken();
    const before = gw.audit.length;
    const { code, stdout, stderr } = await runClaude(`deploy with GITHUB_TOKEN=${token} please`);
    const result = parseResult(stdout, stderr);
    expect(code).not.toBe(0);
    expect(result).toMatchObject({ is_error: true, api_error_status: 403 });
    expect(result.result).toContain('request blocked: 1 secret found (github-pat line 1)');
    for (const r of vendors.requests) expect(r.body.toString()).not.toContain(token);
    const line = await gw.auditWhere((r) => r.event === 'request' && r.path === '/claude/v1/messages' && r.status === 403);
    expect(line).toMatchObject({ decision: 'block', reason: 'sensitive_content' });
    expect(line.findings.map((f) => f.rule)).toEqual(['github-pat']);
    const lines = gw.audit.slice(before);
    expect(JSON.stringify(lines)).not.toContain(token);
    expect(stdout + stderr).not.toContain(token);
  }, 90_000);
});

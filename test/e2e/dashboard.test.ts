// The admin dashboard in a real headless Chromium (Debian's `chromium`, driven by playwright-core,
// which downloads nothing): the page loads only from the admin listener, goes live over SSE,
// shows a blocked request by rule id within moments and never the secret, renders hostile paths
// and user names as text, and keeps updating by polling when EventSource is unavailable.
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsRequest } from '../support/http.js';
import { startTestProxy, startVendors, type TestProxy } from '../support/proxy.js';
import type { FakeVendors } from '../support/vendors.js';

const CHROMIUM = process.env['AIGATE_CHROMIUM'] ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  console.warn(`dashboard e2e skipped: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set AIGATE_CHROMIUM)`);
}
// The network is closed: these keep Chromium from trying to reach Google services at start.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let vendors: FakeVendors;
let gw: TestProxy;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let drained = false;
/** Every URL the page asked for, and every console error (CSP violations land there). */
const fetched: string[] = [];
const consoleErrors: string[] = [];
const secret = `Xk9-${randomBytes(9).toString('base64url')}!`;

async function post(path: string, body: string) {
  const res = await request(`${gw.gatewayUrl}${path}`, {
    method: 'POST',
    dispatcher: gw.client,
    headers: { 'content-type': 'application/json' },
    body,
  });
  await res.body.text();
  return res.statusCode;
}

describe.skipIf(!haveChromium)('dashboard in headless Chromium', () => {
  beforeAll(async () => {
    vendors = await startVendors();
    gw = await startTestProxy(vendors, (raw) => {
      // A tight bucket on one route, so the page has rate-limited attempts to show.
      (raw['routes'] as Array<Record<string, unknown>>).find((r) => r['name'] === 'cursor')!['rateLimit'] = { rate: 0.001, burst: 2 };
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
    page = await context.newPage();
    page.on('request', (r) => fetched.push(r.url()));
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
  });
  afterAll(async () => {
    await browser?.close();
    if (drained) await gw?.client.close();
    else await gw?.stop();
    await vendors?.close();
  });

  it('serves a self-contained page with a strict CSP and nosniff', async () => {
    const res = await request(`${gw.adminUrl}/`);
    const html = await res.body.text();
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toMatch(/script-src 'sha256-[A-Za-z0-9+/=]+'/);
    expect(csp).not.toContain('unsafe-inline');
    // Nothing to fetch from anywhere: no external scripts, styles, fonts or images.
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+stylesheet|@import|url\(/i);
    expect(html.match(/https?:\/\/[^"'\s]+/g) ?? []).toEqual(['http://www.w3.org/2000/svg']);
  });

  it('renders and goes live over SSE, loading nothing from elsewhere', async () => {
    await page.goto(`${gw.adminUrl}/`);
    await page.locator('#status', { hasText: 'live' }).waitFor({ timeout: 10_000 });
    expect(await page.title()).toBe('aigate · dashboard');
    expect(await page.locator('#rate-allow').textContent()).toMatch(/^\d+\.\d+\/s$/);
    await page.locator('#health .health-row', { hasText: 'rate-limit store' }).filter({ hasText: 'healthy' }).waitFor({ timeout: 5000 });
    for (const route of ['copilot', 'cursor', 'claude', 'openai']) {
      await page.locator('#health .health-row', { hasText: route }).waitFor({ timeout: 5000 });
    }
    expect(await page.locator('#chart-all svg path').count()).toBe(6);
    expect(fetched.every((u) => u.startsWith(`${gw.adminUrl}/`))).toBe(true);
    expect(fetched).toContain(`${gw.adminUrl}/api/dashboard/events`);
    expect(consoleErrors).toEqual([]);
  });

  it('shows a blocked request by rule id as it happens, and never the secret', async () => {
    const status = await post('/copilot/x', JSON.stringify({ prompt: `password = "${secret}"` }));
    expect(status).toBe(403);

    const row = page.locator('#recent-body tr', { hasText: 'generic-password' }).first();
    await row.waitFor({ timeout: 5000 });
    const cells = await row.locator('td').allTextContents();
    expect(cells[1]).toBe('blocked');
    expect(cells[2]).toBe('127.0.0.1');
    expect(cells[3]).toBe('copilotgateway');
    expect(cells[4]).toBe('POST /copilot/x');
    expect(cells[5]).toBe('403');
    expect(cells[6]).toBe('sensitive_content');
    expect(cells[7]).toBe('generic-password');
    // The request id, as in the audit line (issue #17 item 7).
    expect(cells[8]).toMatch(/^[0-9a-f-]{36}$/);

    await page.locator('#rules-body tr', { hasText: 'generic-password' }).waitFor({ timeout: 5000 });
    await page.locator('#clients-body tr', { hasText: '127.0.0.1' }).waitFor({ timeout: 5000 });
    await page.locator('#hour-block', { hasText: /^1 in the last hour$/ }).waitFor({ timeout: 5000 });

    expect(await page.content()).not.toContain(secret);
    const api = await (await request(`${gw.adminUrl}/api/dashboard`)).body.text();
    expect(api).toContain('generic-password');
    expect(api).not.toContain(secret);
    expect(api).not.toContain('fingerprint');
  });

  it('renders a <script> in a request path and in a user name as text', async () => {
    const res = await httpsRequest(`${gw.gatewayUrl}/`, { path: '/nope/<script>window.__xss=1</script>', ca: gw.caPem });
    expect(res.status).toBe(404);
    // A user name cannot be chosen from the gateway, so one hostile record goes straight in.
    const user = '<img src=x onerror="window.__xss=2">';
    gw.proxy.audit.write({
      ...gw.audit.find((r) => r.decision === 'block')!,
      id: 'xss-test',
      time: new Date().toISOString(),
      client: { ip: '10.66.0.1', user },
      path: '/copilot/<svg onload="window.__xss=3">',
      findings: [],
    });

    await page.locator('#recent-body td', { hasText: '<script>window.__xss=1</script>' }).waitFor({ timeout: 5000 });
    await page.locator('#recent-body td', { hasText: user }).waitFor({ timeout: 5000 });
    await page.locator('#clients-body td', { hasText: user }).waitFor({ timeout: 5000 });
    expect(await page.locator('#recent-body td', { hasText: '<svg onload="window.__xss=3">' }).count()).toBe(1);
    expect(await page.evaluate(() => (globalThis as { __xss?: number }).__xss)).toBeUndefined();
    expect(await page.locator('#recent-body script, #recent-body img, #recent-body svg, #clients-body img').count()).toBe(0);
  });

  it('shows rate-limited attempts and keeps the screenshot tidy', async () => {
    for (let i = 0; i < 6; i++) await post('/copilot/chat/completions', JSON.stringify({ model: 'gpt-4o', messages: [] }));
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push(await post('/cursor/v1/chat', '{}'));
    expect(statuses.filter((s) => s === 429)).toHaveLength(2);
    await page.locator('#recent-body tr', { hasText: 'rate limited' }).nth(1).waitFor({ timeout: 5000 });
    await page.locator('#health .health-row', { hasText: 'copilot' }).filter({ hasText: 'ok, last answer' }).waitFor({ timeout: 5000 });
    await page.screenshot({ path: '/tmp/dashboard.png', fullPage: true });
  });

  it('falls back to polling when EventSource is unavailable', async () => {
    const ctx = await browser.newContext();
    try {
      await ctx.addInitScript(() => {
        delete (globalThis as { EventSource?: unknown }).EventSource;
      });
      const p = await ctx.newPage();
      await p.goto(`${gw.adminUrl}/`);
      await p.locator('#status', { hasText: 'polling' }).waitFor({ timeout: 5000 });
      const before = await p.locator('#recent-body tr').count();
      expect(await post('/copilot/x', JSON.stringify({ prompt: `password = "${secret}"` }))).toBe(403);
      // The watchdog polls every 2 s while no stream delivers.
      await p.locator('#recent-body tr').nth(before).waitFor({ timeout: 8000 });
      expect(await p.content()).not.toContain(secret);
    } finally {
      await ctx.close();
    }
  });

  it('a drain ends open dashboard streams cleanly and promptly', async () => {
    await page.locator('#status', { hasText: 'live' }).waitFor({ timeout: 5000 });
    const stream = await new Promise<IncomingMessage>((resolve, reject) =>
      httpGet(`${gw.adminUrl}/api/dashboard/events`, resolve).on('error', reject),
    );
    const outcome = new Promise<string>((resolve) => {
      stream.on('data', () => undefined);
      stream.on('end', () => resolve('end'));
      stream.on('aborted', () => resolve('aborted'));
      stream.on('error', (e) => resolve(`error: ${e.message}`));
    });
    const started = Date.now();
    drained = true;
    await gw.proxy.drain(5000);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await outcome).toBe('end');
    await page.locator('#status', { hasText: /reconnecting|polling|offline/ }).waitFor({ timeout: 5000 });
  });
});

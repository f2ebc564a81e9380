// What the proxy remembers to save work — URLs found clean, paths and hosts left unmasked — is
// remembered under one configuration only: after a reload that adds a rule, the same URL is
// scanned again (and refused) and its path masked in the audit line.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseRawConfig, startTestProxy, startVendors, type TestProxy } from '../support/proxy.js';
import type { FakeVendors } from '../support/vendors.js';

let vendors: FakeVendors;
let t: TestProxy;
beforeAll(async () => {
  vendors = await startVendors();
  t = await startTestProxy(vendors);
});
afterAll(async () => {
  await t?.stop();
  await vendors?.close();
});

const RULE = { id: 'acme-ticket', pattern: 'ACME-[0-9]{6}', keywords: ['acme-'], action: 'block' };
const PATH = '/copilot/tickets/ACME-123456/chat/completions';

async function post(): Promise<number> {
  const res = await request(`${t.gatewayUrl}${PATH}`, { method: 'POST', dispatcher: t.client, headers: { 'content-type': 'application/json' }, body: '{}' });
  await res.body.dump();
  return res.statusCode;
}

describe('remembered verdicts and a reload', () => {
  it('a URL clean under the old rules is scanned, refused and masked under the new ones', async () => {
    for (let i = 0; i < 2; i++) expect(await post()).not.toBe(403);
    expect((await t.auditWhere((r) => r.path === PATH)).decision).toBe('allow');

    const raw = baseRawConfig(vendors, t.dir);
    raw['inspect'] = { rules: { custom: [RULE] } };
    writeFileSync(join(t.dir, 'aigate.yaml'), JSON.stringify(raw, null, 2));
    expect((await t.proxy.reload()).applied).toBe(true);

    expect(await post()).toBe(403);
    const line = await t.auditWhere((r) => r.status === 403 && r.path === '/copilot/tickets/[REDACTED:acme-ticket]/chat/completions');
    expect(line.findings.map((f) => f.rule)).toEqual(['acme-ticket']);
  });
});

// Tenant restriction and setHeaders end to end: the fake vendor records what arrived, through the
// gateway, an intercepted tunnel and a WebSocket upgrade; client-sent values are replaced, never
// merged, and hosts of other vendors get nothing.
import { ProxyAgent, request } from 'undici';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestProxy, startVendors, type TestProxy } from '../support/proxy.js';
import type { FakeVendors, RecordedRequest } from '../support/vendors.js';

let vendors: FakeVendors;
let proxy: TestProxy;

beforeAll(async () => {
  vendors = await startVendors();
  proxy = await startTestProxy(vendors, (raw) => {
    (raw['listen'] as Record<string, unknown>)['forward'] = { host: '127.0.0.1', port: 0 };
    raw['tenancy'] = { anthropic: ['11111111-aaaa', '22222222-bbbb'], openai: ['org-acme'], github: ['acme-ent'] };
    const routes = raw['routes'] as Array<Record<string, unknown>>;
    routes.find((r) => r['name'] === 'copilot')!['setHeaders'] = { 'X-Acme-Tenant': 'acme', 'anthropic-allowed-org-ids': 'route-wins' };
    raw['egress'] = {
      allow: [
        { host: 'api.anthropic.com', ports: [443], inspect: true },
        { host: 'api.githubcopilot.com', ports: [443], inspect: true, setHeaders: { 'x-acme-tenant': 'acme-forward' } },
      ],
    };
  });
});
afterAll(async () => {
  await proxy?.stop();
  await vendors?.close();
});

/** The request the fake vendor recorded with this marker header. */
function arrived(marker: string): RecordedRequest {
  const found = vendors.requests.find((r) => r.headers['x-test-marker'] === marker);
  if (!found) throw new Error(`no request with marker ${marker} reached the vendor`);
  return found;
}

const chat = JSON.stringify({ model: 'm', max_tokens: 8, messages: [{ role: 'user', content: 'hello' }] });

describe('tenancy and setHeaders', () => {
  it('gateway: the vendor header replaces the client\'s value; other vendors\' hosts get none', async () => {
    const claude = await request(`${proxy.gatewayUrl}/claude/v1/messages`, {
      method: 'POST',
      dispatcher: proxy.client,
      headers: { 'content-type': 'application/json', 'x-test-marker': 'gw-claude', 'Anthropic-Allowed-Org-Ids': 'my-personal-org' },
      body: chat,
    });
    expect(claude.statusCode).toBe(200);
    await claude.body.dump();
    expect(arrived('gw-claude').headers['anthropic-allowed-org-ids']).toBe('11111111-aaaa,22222222-bbbb');
    expect(arrived('gw-claude').headers['openai-allowed-organization-ids']).toBeUndefined();

    const openai = await request(`${proxy.gatewayUrl}/openai/chat/completions`, {
      method: 'POST',
      dispatcher: proxy.client,
      headers: { 'content-type': 'application/json', 'x-test-marker': 'gw-openai' },
      body: chat,
    });
    expect(openai.statusCode).toBe(200);
    await openai.body.dump();
    expect(arrived('gw-openai').headers['openai-allowed-organization-ids']).toBe('org-acme');
    expect(arrived('gw-openai').headers['anthropic-allowed-org-ids']).toBeUndefined();
  });

  it('gateway: a route\'s setHeaders are sent, replacing the client\'s values', async () => {
    const res = await request(`${proxy.gatewayUrl}/copilot/v1/engines/x/completions`, {
      method: 'POST',
      dispatcher: proxy.client,
      headers: { 'content-type': 'application/json', 'x-test-marker': 'gw-copilot', 'x-acme-tenant': 'evil' },
      body: JSON.stringify({ prompt: 'def add(a, b):' }),
    });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    const headers = arrived('gw-copilot').headers;
    expect(headers['x-acme-tenant']).toBe('acme');
    expect(headers['anthropic-allowed-org-ids']).toBe('route-wins');
    expect(headers['sec-github-allowed-enterprise']).toBe('acme-ent'); // Copilot's hosts carry GitHub's restriction
  });

  it('forward mode, inside an intercepted tunnel: tenancy and the allow entry\'s setHeaders', async () => {
    const agent = new ProxyAgent({ uri: `http://127.0.0.1:${proxy.proxy.addresses.forward!.port}`, requestTls: { ca: proxy.caPem } });
    try {
      const claude = await request('https://api.anthropic.com/v1/messages', {
        method: 'POST',
        dispatcher: agent,
        headers: { 'content-type': 'application/json', 'x-test-marker': 'fw-claude', 'anthropic-allowed-org-ids': 'my-personal-org' },
        body: chat,
      });
      expect(claude.statusCode).toBe(200);
      await claude.body.dump();
      expect(arrived('fw-claude').headers['anthropic-allowed-org-ids']).toBe('11111111-aaaa,22222222-bbbb');

      const copilot = await request('https://api.githubcopilot.com/v1/engines/x/completions', {
        method: 'POST',
        dispatcher: agent,
        headers: { 'content-type': 'application/json', 'x-test-marker': 'fw-copilot', 'X-ACME-TENANT': 'evil' },
        body: JSON.stringify({ prompt: 'x' }),
      });
      expect(copilot.statusCode).toBe(200);
      await copilot.body.dump();
      expect(arrived('fw-copilot').headers['x-acme-tenant']).toBe('acme-forward');
    } finally {
      await agent.close();
    }
  });

  it('a WebSocket upgrade carries the headers too', async () => {
    const ws = new WebSocket(`${proxy.gatewayUrl.replace('https:', 'wss:')}/claude/ws`, {
      ca: proxy.caPem,
      headers: { 'x-test-marker': 'gw-ws', 'anthropic-allowed-org-ids': 'my-personal-org' },
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.close();
    expect(arrived('gw-ws').headers['anthropic-allowed-org-ids']).toBe('11111111-aaaa,22222222-bbbb');
  });
});

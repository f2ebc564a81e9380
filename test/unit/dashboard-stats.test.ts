// DashboardStats with a hand-driven clock: per-second series and rates, the recent-attempts ring,
// top clients and rules over the hour with bounded keys, upstream health, and that nothing but
// rule ids of findings ever reaches a snapshot.
import { describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/audit/log.js';
import { DashboardStats, type DashboardStatsOptions } from '../../src/dashboard/stats.js';

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);

function setup(opts: Omit<DashboardStatsOptions, 'now'> = {}) {
  let now = T0;
  const stats = new DashboardStats({ ...opts, now: () => now });
  return {
    stats,
    at: (ms: number) => {
      now = T0 + ms;
    },
    advance: (ms: number) => {
      now += ms;
    },
  };
}

let n = 0;
function rec(over: Partial<AuditRecord> = {}): AuditRecord {
  return {
    time: new Date(T0).toISOString(),
    event: 'request',
    id: `id-${++n}`,
    mode: 'gateway',
    client: { ip: '10.0.0.1', user: null },
    route: 'copilot',
    method: 'POST',
    host: 'localhost',
    path: '/copilot/chat/completions',
    status: 200,
    decision: 'allow',
    reason: null,
    bytesIn: 10,
    bytesOut: 20,
    durationMs: 1.5,
    findings: [],
    ...over,
  };
}

const blocked = (over: Partial<AuditRecord> = {}) =>
  rec({
    status: 403,
    decision: 'block',
    reason: 'sensitive_content',
    findings: [
      { rule: 'generic-password', line: 3, action: 'block', fingerprint: 'fp-SECRET-FINGERPRINT' },
      { rule: 'generic-password', line: 9, action: 'block', fingerprint: 'fp-OTHER' },
      { rule: 'github-pat', line: 4, action: 'redact', fingerprint: 'fp-GH' },
    ],
    ...over,
  });

describe('per-second series and rates', () => {
  it('counts each decision in its second and averages complete seconds only', () => {
    const { stats, at } = setup({ seriesSeconds: 60, rateWindowSeconds: 10 });
    // 20 allowed per second for seconds 0..9, 3 blocked in second 5, and a burst in the current
    // (incomplete) second 10 that rates must not include yet.
    for (let s = 0; s < 10; s++) {
      at(s * 1000 + 100);
      for (let i = 0; i < 20; i++) stats.record(rec());
    }
    at(5500);
    for (let i = 0; i < 3; i++) stats.record(blocked());
    at(10_200);
    for (let i = 0; i < 50; i++) stats.record(rec());

    const s = stats.snapshot();
    expect(s.series.seconds).toBe(60);
    expect(s.series.end).toBe(Math.floor((T0 + 10_200) / 1000));
    const allow = s.series.decisions.allow;
    expect(allow).toHaveLength(60);
    expect(allow.slice(-11)).toEqual([20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 50]);
    expect(s.series.decisions.block.slice(-11)).toEqual([0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0]);
    expect(s.rates.allow).toBe(20);
    expect(s.rates.block).toBe(0.3);
    expect(s.rates.deny).toBe(0);
    expect(s.lastHour.allow).toBe(250);
    expect(s.lastHour.block).toBe(3);
  });

  it('forgets seconds older than the window when their slot is reused, and reads stale slots as zero', () => {
    const { stats, at } = setup({ seriesSeconds: 10 });
    at(0);
    stats.record(rec());
    at(3000);
    stats.record(rec({ decision: 'deny', status: 404, reason: 'not_found' }));
    // 10 s later the slot of second 0 is reused by second 10; second 3 is simply out of the window.
    at(10_000);
    stats.record(rec());
    at(13_500);
    const s = stats.snapshot();
    expect(s.series.decisions.allow.reduce((a, b) => a + b, 0)).toBe(1);
    expect(s.series.decisions.deny.reduce((a, b) => a + b, 0)).toBe(0);
    expect(s.series.decisions.allow[s.series.seconds - 1 - 3]).toBe(1);
  });

  it('a long idle gap leaves an all-zero series', () => {
    const { stats, at } = setup({ seriesSeconds: 30 });
    at(0);
    for (let i = 0; i < 5; i++) stats.record(blocked());
    at(3_600_000 * 5);
    const s = stats.snapshot();
    for (const values of Object.values(s.series.decisions)) expect(values.every((v) => v === 0)).toBe(true);
    expect(s.lastHour.block).toBe(0);
    // Recent attempts are a list of the last N, not a time window: still there.
    expect(s.recent).toHaveLength(5);
  });
});

describe('recent attempts', () => {
  it('keeps the last N refused or failed requests, newest first, with rule ids and no fingerprints', () => {
    const { stats, at } = setup({ recentSize: 5 });
    for (let i = 0; i < 8; i++) {
      at(i * 10);
      stats.record(blocked({ path: `/copilot/p${i}`, client: { ip: '10.0.0.9', user: 'alice' } }));
      stats.record(rec()); // allowed: never an attempt
    }
    at(100);
    stats.record(rec({ decision: 'rate_limited', status: 429, reason: 'rate_limited' }));
    stats.record(rec({ decision: 'deny', status: 403, reason: 'egress_denied', mode: 'forward', route: null, host: 'evil.example', path: null, method: 'CONNECT', event: 'connect' }));
    stats.record(rec({ decision: 'error', status: 502, reason: 'upstream_unavailable' }));
    stats.record(rec({ decision: 'redact', findings: [{ rule: 'github-pat', line: 1, action: 'redact', fingerprint: 'x' }] }));

    const s = stats.snapshot();
    expect(s.recent.map((a) => a.decision)).toEqual(['error', 'deny', 'rate_limited', 'block', 'block']);
    expect(s.recent.map((a) => a.seq)).toEqual([11, 10, 9, 8, 7]);
    expect(s.recent[3]).toEqual({
      seq: 8,
      id: expect.stringMatching(/^id-\d+$/),
      time: new Date(T0).toISOString(),
      decision: 'block',
      client: { ip: '10.0.0.9', user: 'alice' },
      mode: 'gateway',
      route: 'copilot',
      host: 'localhost',
      method: 'POST',
      path: '/copilot/p7',
      status: 403,
      reason: 'sensitive_content',
      rules: ['generic-password', 'github-pat'],
    });
    expect(s.recent[1]).toMatchObject({ mode: 'forward', route: null, host: 'evil.example', method: 'CONNECT', reason: 'egress_denied' });
    const json = JSON.stringify(s);
    expect(json).not.toContain('fp-');
    expect(json).not.toContain('fingerprint');
    // Request ids are shown since issue #17 item 7: they lead to the audit line.
    expect(json).toContain('"id":"id-');
  });

  it('cuts very long paths', () => {
    const { stats } = setup();
    stats.record(blocked({ path: `/copilot/${'a'.repeat(5000)}` }));
    const path = stats.snapshot().recent[0]!.path!;
    expect(path.length).toBeLessThanOrEqual(301);
    expect(path.endsWith('…')).toBe(true);
  });

  it('tells attempt listeners after counting, and only for attempts', () => {
    const { stats } = setup();
    const seen: string[] = [];
    const off = stats.onAttempt((a) => {
      seen.push(`${a.decision}:${stats.snapshot().recent.length}`);
    });
    stats.record(rec());
    stats.record(blocked());
    stats.record(rec({ decision: 'rate_limited', status: 429, reason: 'rate_limited' }));
    off();
    stats.record(blocked());
    expect(seen).toEqual(['block:1', 'rate_limited:2']);
  });
});

describe('WebSocket message lines', () => {
  it('are not requests: their findings count under the rules and on their connection, which is the one request', () => {
    const { stats, at } = setup();
    const attempts: Array<{ id: string; rules: string[] }> = [];
    stats.onAttempt((a) => attempts.push({ id: a.id, rules: a.rules }));
    const pat = { rule: 'github-pat', line: 1, fingerprint: 'fp-X' };
    const ws = { status: 101, method: 'GET', path: '/copilot/ws' };
    // An allowed connection whose message was redacted, and one closed for a blocked message.
    stats.record(rec({ event: 'message', parent: 'conn-1', ...ws, decision: 'redact', findings: [{ ...pat, action: 'redact' }] }));
    stats.record(rec({ event: 'message', parent: 'conn-2', ...ws, decision: 'allow', findings: [{ rule: 'generic-password', line: 2, action: 'monitor', fingerprint: 'fp-Y' }] }));
    stats.record(rec({ event: 'message', parent: 'conn-2', ...ws, decision: 'block', reason: 'sensitive_content', findings: [{ ...pat, action: 'block' }] }));
    expect(attempts).toEqual([]);
    at(500);
    stats.record(rec({ id: 'conn-1', ...ws, decision: 'redact' }));
    stats.record(rec({ id: 'conn-2', ...ws, decision: 'block', reason: 'sensitive_content' }));

    at(1500);
    const s = stats.snapshot();
    expect(s.lastHour).toMatchObject({ allow: 0, redact: 1, block: 1 });
    expect(s.series.decisions.redact.at(-2)! + s.series.decisions.block.at(-2)! + s.series.decisions.allow.at(-2)!).toBe(2);
    expect(s.lastHourMessages).toMatchObject({ allow: 1, redact: 1, block: 1 });
    expect(s.topClients).toEqual([{ ip: '10.0.0.1', user: null, requests: 2, refused: 1 }]);
    expect(s.topRules).toEqual([
      { rule: 'github-pat', findings: 2, byAction: { block: 1, redact: 1, monitor: 0 } },
      { rule: 'generic-password', findings: 1, byAction: { block: 0, redact: 0, monitor: 1 } },
    ]);
    // One attempt row, the connection's, naming the rules its messages hit.
    expect(attempts).toEqual([{ id: 'conn-2', rules: ['generic-password', 'github-pat'] }]);
    expect(s.recent.map((a) => a.id)).toEqual(['conn-2']);
    expect(JSON.stringify(s)).not.toContain('fp-');
  });

  it('keep rule ids for a bounded number of connections still open (the oldest are forgotten)', () => {
    const { stats } = setup();
    const finding = [{ rule: 'github-pat', line: 1, action: 'redact' as const, fingerprint: 'f' }];
    for (let i = 0; i < 5000; i++) stats.record(rec({ event: 'message', parent: `c-${i}`, decision: 'redact', findings: finding }));
    stats.record(rec({ id: 'c-0', decision: 'error', status: 101, reason: 'internal_error' }));
    stats.record(rec({ id: 'c-4999', decision: 'error', status: 101, reason: 'internal_error' }));
    expect(stats.snapshot().recent.map((a) => a.rules)).toEqual([['github-pat'], []]);
  });
});

describe('top clients and rules over the last hour', () => {
  it('ranks clients by refusals then requests and rules by findings, over 60 one-minute buckets', () => {
    const { stats, at } = setup({ topN: 3 });
    at(0);
    for (let i = 0; i < 100; i++) stats.record(rec({ client: { ip: '10.0.0.1', user: null } }));
    at(10 * 60_000);
    for (let i = 0; i < 5; i++) stats.record(rec({ client: { ip: '10.0.0.2', user: 'bob' } }));
    stats.record(blocked({ client: { ip: '10.0.0.2', user: 'bob' } }));
    at(30 * 60_000);
    stats.record(rec({ client: { ip: '10.0.0.3', user: null }, decision: 'rate_limited', status: 429, reason: 'rate_limited' }));
    stats.record(rec({ client: { ip: '10.0.0.3', user: null }, decision: 'rate_limited', status: 429, reason: 'rate_limited' }));
    stats.record(rec({ client: { ip: '10.0.0.4', user: null }, findings: [{ rule: 'aws-access-key', line: 1, action: 'monitor', fingerprint: 'f' }] }));
    at(59 * 60_000 + 59_000);

    let s = stats.snapshot();
    expect(s.topClients).toEqual([
      { ip: '10.0.0.3', user: null, requests: 2, refused: 2 },
      { ip: '10.0.0.2', user: 'bob', requests: 6, refused: 1 },
      { ip: '10.0.0.1', user: null, requests: 100, refused: 0 },
    ]);
    expect(s.topRules).toEqual([
      { rule: 'generic-password', findings: 2, byAction: { block: 2, redact: 0, monitor: 0 } },
      { rule: 'aws-access-key', findings: 1, byAction: { block: 0, redact: 0, monitor: 1 } },
      { rule: 'github-pat', findings: 1, byAction: { block: 0, redact: 1, monitor: 0 } },
    ]);
    expect(s.otherClients).toBeNull();

    // One minute later the minute-0 bucket has left the hour: 10.0.0.1 is gone.
    at(60 * 60_000);
    s = stats.snapshot();
    expect(s.topClients.map((c) => c.ip)).toEqual(['10.0.0.3', '10.0.0.2', '10.0.0.4']);
    expect(s.lastHour.allow).toBe(6);
    // After the 30-minute bucket leaves too, only what is newer is left.
    at(91 * 60_000);
    s = stats.snapshot();
    expect(s.topClients).toEqual([]);
    expect(s.topRules).toEqual([]);
  });

  it('caps distinct clients and rules per minute and counts the rest as other', () => {
    const { stats, at } = setup({ maxKeysPerBucket: 10, topN: 5 });
    at(0);
    for (let i = 0; i < 25; i++) {
      stats.record(
        blocked({ client: { ip: `10.1.0.${i}`, user: null }, findings: [{ rule: `rule-${i}`, line: 1, action: 'block', fingerprint: 'f' }] }),
      );
    }
    // Keys already counted in this minute keep counting after the cap.
    stats.record(rec({ client: { ip: '10.1.0.0', user: null } }));
    let s = stats.snapshot();
    expect(s.topClients).toHaveLength(5);
    expect(s.topClients[0]).toEqual({ ip: '10.1.0.0', user: null, requests: 2, refused: 1 });
    expect(s.otherClients).toEqual({ ip: '(other)', user: null, requests: 15, refused: 15 });
    expect(s.otherRules).toBe(15);
    // A new minute starts a fresh bucket with room for new keys.
    at(60_000);
    stats.record(rec({ client: { ip: '10.9.9.9', user: null } }));
    s = stats.snapshot();
    expect(s.otherClients?.requests).toBe(15);
    expect(s.lastHour.allow + s.lastHour.block).toBe(27);
  });

  it('memory stays bounded under many distinct clients over hours', () => {
    const { stats, at } = setup({ maxKeysPerBucket: 50, recentSize: 20, seriesSeconds: 30 });
    for (let m = 0; m < 180; m++) {
      at(m * 60_000);
      for (let i = 0; i < 200; i++) stats.record(blocked({ client: { ip: `10.${m}.${i}.1`, user: null } }));
    }
    const internals = stats as unknown as { minutes: Array<{ clients: Map<string, unknown> } | undefined>; recent: unknown[] };
    expect(internals.minutes).toHaveLength(60);
    for (const b of internals.minutes) expect(b!.clients.size).toBeLessThanOrEqual(50);
    expect(internals.recent).toHaveLength(20);
    expect(stats.snapshot().recent).toHaveLength(20);
  });
});

describe('health', () => {
  it('reports the rate-limit store through the given probe', () => {
    let healthy = true;
    const { stats } = setup({ rateLimit: () => ({ store: 'redis', healthy }) });
    expect(stats.snapshot().health.rateLimit).toEqual({ store: 'redis', healthy: true });
    healthy = false;
    stats.record(rec()); // a change of version, so the snapshot is recomputed
    expect(stats.snapshot().health.rateLimit).toEqual({ store: 'redis', healthy: false });
    expect(setup().stats.snapshot().health.rateLimit).toBeNull();
  });

  it('tracks upstreams from requests that reached them or failed to, ignoring refusals', () => {
    const { stats, at } = setup({ upstreams: [{ name: 'copilot', mode: 'gateway', target: 'https://api.githubcopilot.com' }, { name: 'claude', mode: 'gateway', target: 'https://api.anthropic.com' }] });
    let h = stats.snapshot().health.upstreams;
    expect(h.map((u) => [u.name, u.state])).toEqual([
      ['claude', 'unknown'],
      ['copilot', 'unknown'],
    ]);

    at(1000);
    stats.record(rec({ route: 'copilot', status: 200 }));
    at(2000);
    stats.record(rec({ route: 'claude', decision: 'error', status: 502, reason: 'upstream_unavailable' }));
    at(3000);
    stats.record(rec({ route: 'claude', decision: 'error', status: 504, reason: 'upstream_timeout' }));
    // Refused before the upstream and client-side errors say nothing about it.
    stats.record(blocked({ route: 'claude' }));
    stats.record(rec({ route: 'claude', decision: 'error', status: 400, reason: 'bad_request' }));
    stats.record(rec({ route: 'copilot', decision: 'rate_limited', status: 429, reason: 'rate_limited' }));
    // Forward mode: keyed by the allowed host; the CONNECT itself is not an upstream answer.
    stats.record(rec({ mode: 'forward', route: 'api.openai.com', event: 'connect', status: 200 }));
    stats.record(rec({ mode: 'forward', route: 'api.openai.com', status: 500 }));
    h = stats.snapshot().health.upstreams;
    expect(h).toEqual([
      {
        name: 'claude',
        mode: 'gateway',
        target: 'https://api.anthropic.com',
        state: 'failing',
        lastOkAt: null,
        lastErrorAt: new Date(T0 + 3000).toISOString(),
        lastError: 'upstream_timeout',
        consecutiveErrors: 2,
      },
      {
        name: 'copilot',
        mode: 'gateway',
        target: 'https://api.githubcopilot.com',
        state: 'ok',
        lastOkAt: new Date(T0 + 1000).toISOString(),
        lastErrorAt: null,
        lastError: null,
        consecutiveErrors: 0,
      },
      expect.objectContaining({ name: 'api.openai.com', mode: 'forward', state: 'ok' }),
    ]);

    at(4000);
    stats.record(rec({ route: 'claude', status: 200 }));
    const claude = stats.snapshot().health.upstreams.find((u) => u.name === 'claude')!;
    expect(claude).toMatchObject({ state: 'ok', consecutiveErrors: 0, lastError: 'upstream_timeout' });
  });

  it('keeps a bounded number of upstreams, forgetting the least recently heard of', () => {
    const { stats, at } = setup({ maxUpstreams: 3 });
    for (let i = 0; i < 5; i++) {
      at(i * 1000);
      stats.record(rec({ mode: 'forward', route: `h${i}.example` }));
    }
    expect(stats.snapshot().health.upstreams.map((u) => u.name)).toEqual(['h2.example', 'h3.example', 'h4.example']);
  });
});

describe('snapshot caching', () => {
  it('serves the same object while nothing changed within a second, and a fresh one after', () => {
    const { stats, advance } = setup();
    const a = stats.snapshot();
    advance(10);
    expect(stats.snapshot()).toBe(a);
    stats.record(rec());
    const b = stats.snapshot();
    expect(b).not.toBe(a);
    advance(1000);
    expect(stats.snapshot()).not.toBe(b);
  });
});

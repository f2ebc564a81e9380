// The URL stage remembers the URLs it found clean (a client sends the same few again and again):
// a remembered URL is not scanned again but still counts as a scan in the metric; a URL with any
// finding is scanned, audited and refused every time; the memory is bounded. The timed inspector
// (one per configuration) remembers the paths and hosts maskSecrets left unchanged, the same way.
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { createInspector, type Inspector } from '../../src/inspect/index.js';
import { REMEMBERED_TEXTS, timedInspector } from '../../src/inspect/timed.js';
import { Metrics } from '../../src/metrics.js';
import { ProxyError } from '../../src/pipeline/errors.js';
import { Exchange } from '../../src/pipeline/exchange.js';
import { Flow } from '../../src/pipeline/flow.js';
import { REMEMBERED_URLS, inspectUrlStage } from '../../src/pipeline/stages/inspect-url.js';
import type { Action } from '../../src/config/schema.js';
import { Rng, make } from '../corpus/secrets.js';

const token = make.githubPat(new Rng(702));

/** A real inspector that counts the bodies it is asked to scan. */
function countingInspector(actions: Record<string, Action> = {}): Inspector & { scans: string[] } {
  const inner = createInspector(configSchema.parse({ inspect: { rules: { actions } } }).inspect, { fingerprintKey: 'k' });
  const scans: string[] = [];
  return {
    scans,
    scanText: (t) => inner.scanText(t),
    maskSecrets: (t) => {
      scans.push(`mask ${t}`);
      return inner.maskSecrets(t);
    },
    inspectBody: (body, meta) => {
      scans.push(body.toString('latin1'));
      return inner.inspectBody(body, meta);
    },
  };
}

function exchange(path: string, query = '', action: Action = 'block'): Exchange {
  const req = new IncomingMessage(new Socket());
  const ex = new Exchange(new Flow('gateway', { ip: '127.0.0.1', user: null }, 'POST', path), req, new ServerResponse(req));
  ex.rawPath = path;
  ex.query = query;
  ex.target = { route: 'r', origin: 'https://x', hostHeader: 'x', path, action, bucket: { rate: 1, burst: 1 }, bucketIsOverride: false, websocket: 'inspect' };
  return ex;
}

async function outcome(stage: ReturnType<typeof inspectUrlStage>, ex: Exchange): Promise<string> {
  try {
    await stage(ex);
    return 'passed';
  } catch (err) {
    if (err instanceof ProxyError) return err.type;
    throw err;
  }
}

describe('remembered clean URLs', () => {
  it('scans a clean URL once, and counts every request as a scan', async () => {
    const counting = countingInspector();
    const metrics = new Metrics({ processMetrics: false });
    const stage = inspectUrlStage(timedInspector(counting, metrics));
    for (let i = 0; i < 3; i++) expect(await outcome(stage, exchange('/openai/chat/completions', '?api-version=1'))).toBe('passed');
    expect(counting.scans).toEqual(['/openai/chat/completions?api-version=1']);
    // Scan-duration observations are recorded once the scan's promise settles.
    await new Promise((r) => setImmediate(r));
    const { values } = await metrics.scanDuration.get();
    expect(values.find((v) => v.metricName === 'aigate_scan_duration_seconds_count')?.value).toBe(3);
  });

  it('remembers per action: the same URL under another action is scanned', async () => {
    const counting = countingInspector();
    const stage = inspectUrlStage(counting);
    await stage(exchange('/v1/messages', '', 'block'));
    await stage(exchange('/v1/messages', '', 'monitor'));
    await stage(exchange('/v1/messages', '', 'block'));
    expect(counting.scans).toEqual(['/v1/messages', '/v1/messages']);
  });

  it('scans a URL with a secret every time, and refuses it every time', async () => {
    const counting = countingInspector();
    const stage = inspectUrlStage(counting);
    for (let i = 0; i < 2; i++) {
      const ex = exchange(`/repos/${token}/issues`);
      expect(await outcome(stage, ex)).toBe('sensitive_content');
      expect(ex.flow.findings.map((f) => f.rule)).toEqual(['github-pat']);
    }
    expect(counting.scans).toHaveLength(2);
  });

  it('never remembers a URL with a monitor-only finding: each request is audited with it', async () => {
    const counting = countingInspector({ 'github-pat': 'monitor' });
    const stage = inspectUrlStage(counting);
    for (let i = 0; i < 2; i++) {
      const ex = exchange(`/repos/${token}/issues`);
      expect(await outcome(stage, ex)).toBe('passed');
      expect(ex.flow.findings.map((f) => [f.rule, f.action])).toEqual([['github-pat', 'monitor']]);
    }
    expect(counting.scans).toHaveLength(2);
  });

  it('forgets everything past its bound, then remembers again', async () => {
    const counting = countingInspector();
    const stage = inspectUrlStage(counting);
    for (let i = 0; i < REMEMBERED_URLS; i++) await stage(exchange(`/p/${i}`));
    await stage(exchange('/p/0'));
    expect(counting.scans).toHaveLength(REMEMBERED_URLS); // still remembered
    await stage(exchange('/p/new')); // one past the bound: all forgotten
    await stage(exchange('/p/0'));
    await stage(exchange('/p/0'));
    expect(counting.scans).toHaveLength(REMEMBERED_URLS + 2);
  });
});

describe('remembered unmasked texts', () => {
  it('masks a clean text once, a text with a secret every time', () => {
    const counting = countingInspector();
    const timed = timedInspector(counting, new Metrics({ processMetrics: false }));
    const withSecret = `/repos/${token}/issues`;
    for (let i = 0; i < 3; i++) {
      expect(timed.maskSecrets('/openai/chat/completions')).toBe('/openai/chat/completions');
      expect(timed.maskSecrets(withSecret)).toBe('/repos/[REDACTED:github-pat]/issues');
    }
    expect(counting.scans).toEqual(['mask /openai/chat/completions', ...Array(3).fill(`mask ${withSecret}`)]);
  });

  it('each timed inspector (one per configuration) remembers on its own, within its bound', () => {
    const counting = countingInspector();
    const metrics = new Metrics({ processMetrics: false });
    const a = timedInspector(counting, metrics);
    const b = timedInspector(counting, metrics);
    a.maskSecrets('api.openai.com');
    b.maskSecrets('api.openai.com');
    expect(counting.scans).toHaveLength(2);
    for (let i = 0; i < REMEMBERED_TEXTS; i++) a.maskSecrets(`/p/${i}`);
    a.maskSecrets('api.openai.com'); // one past the bound: all forgotten, this one masked again
    a.maskSecrets('api.openai.com');
    expect(counting.scans).toHaveLength(2 + REMEMBERED_TEXTS + 1);
  });
});

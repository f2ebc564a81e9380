// The per-request metrics are counted without prom-client's per-call label hashing
// (metrics-counter.ts, metrics-histogram.ts): what /metrics prints must be what prom-client's own
// Counter and Histogram print for the same counts.
import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { FastCounter } from '../../src/metrics-counter.js';
import { FastHistogram } from '../../src/metrics-histogram.js';

const HELP = 'help text';

describe('fast metrics print as prom-client does', () => {
  it('counter with labels', async () => {
    const theirs = new Registry();
    const ours = new Registry();
    const c = new Counter({ name: 'x_total', help: HELP, labelNames: ['route', 'decision', 'status'] as const, registers: [theirs] });
    const f = new FastCounter('x_total', HELP, ['route', 'decision', 'status'], ours);
    const incs: Array<[string, string, string]> = [['openai', 'allow', '200'], ['openai', 'allow', '200'], ['a"b\\c', 'block', '403'], ['openai', 'error', '502']];
    for (const [route, decision, status] of incs) {
      c.labels({ route, decision, status }).inc();
      f.child(route, decision, status).inc();
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    f.reset();
    c.reset();
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  it('histogram with one label', async () => {
    const buckets = [0.005, 0.1, 1, 60];
    const theirs = new Registry();
    const ours = new Registry();
    const h = new Histogram({ name: 'd_seconds', help: HELP, labelNames: ['route'] as const, buckets, registers: [theirs] });
    const f = new FastHistogram('d_seconds', HELP, 'route', buckets, ours);
    for (const [route, v] of [['openai', 0.004], ['openai', 0.1], ['claude', 2], ['claude', 120], ['openai', 0.05]] as const) {
      h.labels({ route }).observe(v);
      f.child(route).observe(v);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });
});

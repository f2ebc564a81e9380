// Reads aigate's own counters and gauges in-process (the registry /metrics renders), so tests
// assert on what the proxy counted rather than on memory or timing.
import type { Metrics } from '../../src/metrics.js';

/** The sum of a metric's values whose labels include `labels`; NaN when there is no such metric. */
export async function metricValue(metrics: Metrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = metrics.registry.getSingleMetric(name);
  if (!metric) return NaN;
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, l]) => (v.labels as Record<string, unknown>)[k] === l))
    .reduce((sum, v) => sum + v.value, 0);
}

// A histogram for the per-request path. prom-client's Histogram, even through a child kept from
// labels(), validates and hashes the label set and finds the bucket through a string-keyed object
// on every observe (measured: ~12k instructions a request for the request and scan histograms,
// bench/instructions.mjs). This one counts into a Float64Array per series and builds prom-client's
// export shape only when scraped, so the registry prints it and --workers sums it like any other.
import type { Metric, Registry } from 'prom-client';

export interface HistogramSeries {
  observe(value: number): void;
}

class Series implements HistogramSeries {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }
  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    if (i < bounds.length) this.counts[i]! += 1;
    this.sum += value;
    this.count += 1;
  }
}

interface ExportValue {
  labels: Record<string, string | number>;
  value: number;
  metricName: string;
}

export class FastHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<string, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    /** The one label, or null for an unlabelled histogram. */
    private readonly labelName: string | null,
    private readonly bounds: readonly number[],
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Metric);
  }

  /** The series of one label value (kept: look it up once per label value, not per observation). */
  child(labelValue = ''): HistogramSeries {
    let s = this.series.get(labelValue);
    if (s === undefined) {
      s = new Series(this.bounds);
      this.series.set(labelValue, s);
    }
    return s;
  }

  reset(): void {
    this.series.clear();
  }

  get(): Promise<{ name: string; help: string; type: string; values: ExportValue[]; aggregator: string }> {
    const values: ExportValue[] = [];
    for (const [labelValue, s] of this.series) {
      const base: Record<string, string> = this.labelName === null ? {} : { [this.labelName]: labelValue };
      let cumulative = 0;
      this.bounds.forEach((bound, i) => {
        cumulative += s.counts[i]!;
        values.push({ labels: { le: bound, ...base }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { le: '+Inf', ...base }, value: s.count, metricName: `${this.name}_bucket` });
      values.push({ labels: base, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: base, value: s.count, metricName: `${this.name}_count` });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator });
  }
}

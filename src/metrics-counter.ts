// A counter for the per-request path. prom-client's Counter hashes and validates the label object on
// every inc, even through the child labels() returns (it binds the labels, not a series): ~3.4k
// instructions a request (bench/instructions.mjs). This one keeps a plain count per series and
// builds prom-client's export shape only when scraped, so the registry prints it and --workers
// sums it like any other.
import type { Metric, Registry } from 'prom-client';

export interface CounterSeries {
  inc(): void;
}

class Series implements CounterSeries {
  value = 0;
  constructor(readonly labels: Record<string, string>) {}
  inc(): void {
    this.value += 1;
  }
}

export class FastCounter {
  readonly type = 'counter';
  readonly aggregator = 'sum';
  /** By label values joined with NUL (looked up once per series by callers that keep it). */
  private readonly series = new Map<string, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[],
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Metric);
  }

  /** The series of these label values, in labelNames' order (kept by the caller: look it up once). */
  child(...values: string[]): CounterSeries {
    const key = values.join('\u0000');
    let s = this.series.get(key);
    if (s === undefined) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((name, i) => (labels[name] = values[i] ?? ''));
      s = new Series(labels);
      this.series.set(key, s);
    }
    return s;
  }

  reset(): void {
    this.series.clear();
  }

  get(): Promise<{ name: string; help: string; type: string; values: Array<{ labels: Record<string, string>; value: number }>; aggregator: string }> {
    const values = [...this.series.values()].map((s) => ({ labels: { ...s.labels }, value: s.value }));
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator });
  }
}

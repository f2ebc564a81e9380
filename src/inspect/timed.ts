// aigate_scan_duration_seconds: every body and message passes Inspector.inspectBody, so timing it
// there times every channel (HTTP bodies, URL parts, RPC messages, WebSocket messages).
import type { FastHistogram, HistogramSeries } from '../metrics-histogram.js';
import type { Inspector } from './index.js';

/** The scan-duration series of each timed inspector, for verdicts answered without it. */
const SERIES = new WeakMap<Inspector, HistogramSeries>();

export function timedInspector(inner: Inspector, metrics: { scanDuration: FastHistogram }): Inspector {
  const histogram = metrics.scanDuration.child();
  const timed: Inspector = {
    scanText: (text) => inner.scanText(text),
    maskSecrets: (text) => inner.maskSecrets(text),
    inspectBody(body, meta) {
      const started = process.hrtime.bigint();
      const done = () => histogram.observe(Number(process.hrtime.bigint() - started) / 1e9);
      const outcome = inner.inspectBody(body, meta);
      outcome.then(done, done);
      return outcome;
    },
  };
  SERIES.set(timed, histogram);
  return timed;
}

/**
 * One scan of `inspector` answered from a remembered verdict (a URL already proven clean, see
 * pipeline/stages/inspect-url.ts): it still counts as one scan, of the time the answer took, so
 * the metric counts every part inspected whichever way it was answered. A no-op for an inspector
 * timedInspector did not make.
 */
export function observeRememberedScan(inspector: Inspector, seconds: number): void {
  SERIES.get(inspector)?.observe(seconds);
}

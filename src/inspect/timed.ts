// The inspector as the proxy uses it, one per configuration: every body and message passes
// Inspector.inspectBody, so timing it here (aigate_scan_duration_seconds) times every channel
// (HTTP bodies, URL parts, RPC messages, WebSocket messages); and what maskSecrets left unchanged
// is remembered here, with the configuration it was judged under.
import type { FastHistogram, HistogramSeries } from '../metrics-histogram.js';
import type { Inspector } from './index.js';

/** The scan-duration series of each timed inspector, for verdicts answered without it. */
const SERIES = new WeakMap<Inspector, HistogramSeries>();

/** Texts longer than this are masked every time, never remembered. */
export const REMEMBERED_TEXT_LENGTH = 2048;
/** How many unchanged texts an inspector remembers; past it, it forgets them all and starts again. */
export const REMEMBERED_TEXTS = 1024;

export function timedInspector(inner: Inspector, metrics: { scanDuration: FastHistogram }): Inspector {
  const histogram = metrics.scanDuration.child();
  // Every audit line masks its path and host (AuditLog.maskPath), and those are the same few
  // again and again; the answer depends only on the text and this inspector's rules. A text with
  // something masked is masked every time and never kept.
  const unmasked = new Set<string>();
  const timed: Inspector = {
    scanText: (text) => inner.scanText(text),
    maskSecrets(text) {
      if (unmasked.has(text)) return text;
      const out = inner.maskSecrets(text);
      if (out === text && text.length <= REMEMBERED_TEXT_LENGTH) {
        if (unmasked.size >= REMEMBERED_TEXTS) unmasked.clear();
        unmasked.add(text);
      }
      return out;
    },
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

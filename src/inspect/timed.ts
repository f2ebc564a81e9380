// aigate_scan_duration_seconds: every body and message passes Inspector.inspectBody, so timing it
// there times every channel (HTTP bodies, URL parts, RPC messages, WebSocket messages).
import type { FastHistogram } from '../metrics-histogram.js';
import type { Inspector } from './index.js';

export function timedInspector(inner: Inspector, metrics: { scanDuration: FastHistogram }): Inspector {
  const histogram = metrics.scanDuration.child();
  return {
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
}

// What aigate's HTTP/2 layer refuses before a request exists — a stream nghttp2 reset on its own
// (malformed header block, header list over the limit, past the stream limit), a session ended
// for a protocol violation — leaves no audit line (there was no request to audit) and no flow
// metric. Each refusal is counted here instead, and logged at most every 10 s with the count.
import type { Logger } from 'pino';
import { throttledReport } from '../log-throttle.js';
import type { Metrics } from '../metrics.js';

/**
 * stream_refused:   a stream reset by nghttp2 before aigate saw it; nghttp2 does not say why
 *                   (malformed or forbidden header, header list over 16 KiB, too many streams).
 * session_error:    the session ended on a protocol violation nghttp2 reported (`code`).
 * session_stalled:  nghttp2 ended the session without reporting it (a GOAWAY for a protocol
 *                   error) and it no longer answered a PING; closed then instead of at timeouts.idle.
 * no_connection:    a stream whose connection aigate no longer tracks (a race with its close).
 */
export type H2RefusalReason = 'stream_refused' | 'session_error' | 'session_stalled' | 'no_connection';

export interface H2Refusal {
  reason: H2RefusalReason;
  /** Refusals this one stands for (streams skipped at once). */
  count: number;
  /** The client's address. */
  client: string;
  /** The error code nghttp2 or Node gave, when there was one. */
  code?: string;
}

export type H2RefusalSink = (refusal: H2Refusal) => void;

const LOG_EVERY_MS = 10_000;

const MESSAGES: Record<H2RefusalReason, string> = {
  stream_refused: 'HTTP/2 stream refused before it became a request (malformed or forbidden header, header list over 16 KiB, or past the stream limit)',
  session_error: 'HTTP/2 connection closed on a protocol error from the client',
  session_stalled: 'HTTP/2 connection ended by the protocol layer (a protocol error it did not report) and unresponsive: closed',
  no_connection: 'HTTP/2 stream refused: its connection was closing',
};

/** Counts every refusal in aigate_h2_refusals_total{listener, reason}; logs each reason at most every 10 s. */
export function h2RefusalReporter(listener: 'gateway' | 'forward', metrics: Metrics, logger: Logger): H2RefusalSink {
  const logs = new Map<H2RefusalReason, (r: H2Refusal) => void>();
  for (const reason of Object.keys(MESSAGES) as H2RefusalReason[]) {
    // throttledReport counts calls; a refusal that stands for several streams is one call, so the
    // logged `refused` counts events and the metric counts streams.
    logs.set(
      reason,
      throttledReport(LOG_EVERY_MS, (events, r: H2Refusal) =>
        logger.warn({ listener, client: r.client, reason, ...(r.code ? { code: r.code } : {}), refused: events }, MESSAGES[reason]),
      ),
    );
  }
  return (r) => {
    metrics.h2Refusals.inc({ listener, reason: r.reason }, r.count);
    logs.get(r.reason)!(r);
  };
}

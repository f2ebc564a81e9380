// Telling operators the store is failing without flooding the log: every failed check is counted
// in the metric, but a warning goes out at most once per interval, carrying the counts since the
// previous one. A Redis that is down for an hour costs ~360 lines, not one per request.
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';

export interface ReporterOptions {
  logger: Logger;
  metrics?: Metrics;
  /** Monotonic clock in ms. */
  now: () => number;
  /** Where the store is, safe to log (no password). */
  target: string;
  onStoreError: 'allow' | 'deny';
  /** Strings to scrub from error messages before logging (the Redis password). */
  secrets: string[];
  intervalMs?: number;
}

export class StoreFailureReporter {
  private failedChecks = 0;
  private connectionErrors = 0;
  private lastLogAt = Number.NEGATIVE_INFINITY;
  private lastError = '';
  /** A warning went out and no "reachable again" since: the next recovery is worth a line. */
  private warned = false;
  private connectedOnce = false;
  private readonly intervalMs: number;

  constructor(private readonly opts: ReporterOptions) {
    this.intervalMs = opts.intervalMs ?? 10_000;
  }

  /** A check that the store could not answer; `onStoreError` answered it. */
  checkFailed(err: unknown): void {
    this.opts.metrics?.rateLimitStoreErrors.inc();
    this.failedChecks++;
    this.note(err);
  }

  /** The client's own connection trouble (reconnect attempts), reported with the same throttle. */
  connectionError(err: unknown): void {
    this.connectionErrors++;
    this.note(err);
  }

  /** The store is usable again. */
  connected(): void {
    const { logger, target } = this.opts;
    if (!this.connectedOnce) {
      this.connectedOnce = true;
      if (!this.warned) logger.info({ rateLimitStore: target }, 'rate-limit store connected');
    }
    if (!this.warned) return;
    this.warned = false;
    logger.info(
      { rateLimitStore: target, failedChecks: this.failedChecks, connectionErrors: this.connectionErrors },
      'rate-limit store reachable again; shared rate limiting resumed',
    );
    this.failedChecks = 0;
    this.connectionErrors = 0;
  }

  private note(err: unknown): void {
    this.lastError = this.scrub(err instanceof Error ? err.message : String(err));
    const t = this.opts.now();
    if (t - this.lastLogAt < this.intervalMs) return;
    this.lastLogAt = t;
    this.warned = true;
    const { logger, target, onStoreError } = this.opts;
    logger.warn(
      {
        rateLimitStore: target,
        failedChecks: this.failedChecks,
        connectionErrors: this.connectionErrors,
        onStoreError,
        err: this.lastError,
      },
      `rate-limit store unavailable; checks answered by onStoreError=${onStoreError} ` +
        `(counts since the previous line, at most one line per ${Math.round(this.intervalMs / 1000)}s)`,
    );
    this.failedChecks = 0;
    this.connectionErrors = 0;
  }

  private scrub(message: string): string {
    let out = message;
    for (const s of this.opts.secrets) if (s) out = out.split(s).join('***');
    return out;
  }
}

// Runs a flow through its stages and audits it exactly once when its response is over, whatever
// happened: answered by a stage, forwarded, failed upstream or abandoned by the client.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { AuditLog, AuditRecord } from '../audit/log.js';
import type { Metrics } from '../metrics.js';
import { ProxyError } from './errors.js';
import { Exchange, type Stage } from './exchange.js';
import { Flow, type Client, type Mode } from './flow.js';
import { sendError } from './respond.js';
import { ClientAbortedError } from './stages/read-body.js';
import type { ActivityTracker } from './activity.js';
import type { UpstreamFailureLog } from '../upstream/failure-log.js';

export interface PipelineDeps {
  audit: AuditLog;
  metrics: Metrics;
  logger: Logger;
  activity: ActivityTracker;
  /** Writes the operational log line of an upstream failure (rate-limited). */
  upstreamFailures?: UpstreamFailureLog;
}

/** Status audited for a request the client abandoned before any response (nginx's convention). */
export const CLIENT_CLOSED = 499;

export class Pipeline {
  /**
   * The latest flow of each connection until both its request and its response are over: a parser
   * error on that connection belongs to it while its request is still being read (client-error.ts),
   * so one broken or abandoned request still makes one audit line.
   */
  private readonly latest = new WeakMap<object, Exchange>();

  private stages: readonly Stage[];
  /** Counts this pipeline's flows: the process's tracker, or the current configuration generation's. */
  private activity: ActivityTracker;

  constructor(stages: readonly Stage[], private readonly deps: PipelineDeps) {
    this.stages = stages;
    this.activity = deps.activity;
  }

  /**
   * A configuration reload: flows from now on run `stages` and count in `activity` (the new
   * generation's); flows already running finish with the stages they started with.
   */
  replaceStages(stages: readonly Stage[], activity: ActivityTracker): void {
    this.stages = stages;
    this.activity = activity;
  }

  /** Starts a flow for a request; `configure` lets a listener preset state (forward mode's target). */
  handle(mode: Mode, client: Client, req: IncomingMessage, res: ServerResponse, configure?: (ex: Exchange) => void): Exchange {
    const flow = new Flow(mode, client, req.method ?? null, null);
    if (req.httpVersionMajor === 2) flow.protocol = 'h2';
    const ex = new Exchange(flow, req, res);
    configure?.(ex);
    const release = this.activity.begin();
    const socket = req.socket;
    this.latest.set(socket, ex);
    let open = 2;
    const forget = () => {
      if (--open === 0 && this.latest.get(socket) === ex) this.latest.delete(socket);
    };
    req.once('close', forget);
    res.once('close', () => {
      forget();
      this.finish(ex);
      release();
    });
    void this.run(ex, this.stages);
    return ex;
  }

  /** The connection's latest flow whose request or response is not over yet, if any. */
  latestOn(socket: object): Exchange | undefined {
    return this.latest.get(socket);
  }

  private async run(ex: Exchange, stages: readonly Stage[]): Promise<void> {
    try {
      for (const stage of stages) {
        // Several stages finish synchronously: awaiting only real promises saves a microtask turn each.
        const pending = stage(ex);
        if (pending) await pending;
        if (ex.res.writableEnded || ex.res.destroyed) return;
      }
    } catch (err) {
      this.fail(ex, err);
    }
  }

  private fail(ex: Exchange, err: unknown): void {
    // Already answered (a parser error on its connection, client-error.ts): the body reader that
    // failed when the connection closed behind that answer changes nothing.
    if (ex.res.writableEnded && (err instanceof ClientAbortedError || err instanceof ProxyError)) return;
    if (err instanceof ClientAbortedError || ex.res.destroyed) {
      ex.flow.aborted = true;
      ex.res.destroy();
      return;
    }
    if (err instanceof ProxyError) {
      sendError(ex, err);
      return;
    }
    this.deps.logger.error({ err, requestId: ex.flow.id }, 'internal error while handling a request');
    sendError(ex, new ProxyError('internal_error', `internal error in aigate (request id ${ex.flow.id}); the proxy log has details`));
  }

  private finish(ex: Exchange): void {
    const { flow, res } = ex;
    // A stage that took the connection over (WebSocket) sets the status itself.
    if (flow.status === 0) {
      if (!res.writableFinished && flow.decision !== 'error') flow.aborted = true;
      flow.status = res.headersSent ? res.statusCode : CLIENT_CLOSED;
    }
    const record = this.deps.audit.writeFlow(flow);
    this.deps.metrics.countRequest(flow.route ?? '', record.decision, record.status);
    // A WebSocket's line lasts as long as its connection: not a request latency.
    if (record.status !== 101) this.deps.metrics.observeRequest(flow.route ?? '', record.durationMs / 1000);
    for (const f of flow.findings) this.deps.metrics.findings.inc({ rule: f.rule });
    if (flow.error !== null) reportUpstreamFailure(this.deps.upstreamFailures, flow, record);
  }
}

/** The operational log line of a flow that failed upstream (its audit line says the same). */
export function reportUpstreamFailure(log: UpstreamFailureLog | undefined, flow: Flow, record: AuditRecord): void {
  log?.report({ requestId: flow.id, route: flow.route, host: record.host, code: flow.error ?? '', reason: record.reason, status: record.status });
}

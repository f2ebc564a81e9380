// The audit log (SPEC §8): one JSON line per flow, through pino to a file (reopened on SIGHUP for
// logrotate) and/or stdout. Lines are written asynchronously and flushed synchronously on exit.
import { dirname } from 'node:path';
import { mkdirSync } from 'node:fs';
import pino, { type DestinationStream, type Logger } from 'pino';
import type { Flow } from '../pipeline/flow.js';

export interface AuditOptions {
  file: string | null;
  stdout: boolean;
}

interface Flushable {
  flushSync(): void;
  reopen?(file?: string): void;
  end?(): void;
}

export class AuditLog {
  private readonly logger: Logger | null;
  private readonly sinks: Flushable[] = [];
  /** Called with every record written (dashboard, tests); never with secrets. */
  private readonly listeners = new Set<(record: AuditRecord) => void>();

  constructor(readonly opts: AuditOptions) {
    const streams: DestinationStream[] = [];
    if (opts.file) {
      mkdirSync(dirname(opts.file), { recursive: true });
      const file = pino.destination({ dest: opts.file, sync: false, mkdir: true });
      this.sinks.push(file);
      streams.push(file);
    }
    if (opts.stdout) {
      const out = pino.destination({ dest: 1, sync: false });
      this.sinks.push(out);
      streams.push(out);
    }
    const first = streams[0];
    this.logger =
      first === undefined
        ? null
        : pino(
            {
              base: null,
              // No level and no pid/hostname: an audit line is exactly the SPEC §8 record. pino
              // emits the timestamp right after '{' when the level is empty, so it carries no
              // leading comma here (the file test parses every line to keep this honest).
              timestamp: () => `"time":"${this.lineTime}"`,
              formatters: { level: () => ({}) },
            },
            streams.length === 1 ? first : pino.multistream(streams),
          );
  }

  private lineTime = '';

  write(record: AuditRecord): void {
    if (this.logger) {
      const { time, ...rest } = record;
      this.lineTime = time;
      this.logger.info(rest);
    }
    for (const l of this.listeners) l(record);
  }

  writeFlow(flow: Flow): AuditRecord {
    const record = toRecord(flow);
    this.write(record);
    return record;
  }

  onRecord(listener: (record: AuditRecord) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** For logrotate: `postrotate kill -HUP` makes the next line go to a fresh file. */
  reopen(): void {
    for (const s of this.sinks) s.reopen?.();
  }

  flush(): void {
    for (const s of this.sinks) {
      try {
        s.flushSync();
      } catch {
        // Nothing buffered yet (sonic-boom throws before its file is open): nothing to lose.
      }
    }
  }

  close(): void {
    this.flush();
    for (const s of this.sinks) s.end?.();
  }
}

export interface AuditRecord {
  time: string;
  event: Flow['event'];
  id: string;
  mode: Flow['mode'];
  client: Flow['client'];
  route: string | null;
  method: string | null;
  host: string | null;
  path: string | null;
  status: number;
  decision: Flow['decision'];
  reason: Flow['reason'];
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  findings: Flow['findings'];
  aborted?: true;
}

export function toRecord(flow: Flow): AuditRecord {
  const record: AuditRecord = {
    time: new Date().toISOString(),
    event: flow.event,
    id: flow.id,
    mode: flow.mode,
    client: flow.client,
    route: flow.route,
    method: flow.method,
    host: flow.host,
    path: flow.path,
    status: flow.status,
    decision: flow.decision,
    reason: flow.reason,
    bytesIn: flow.bytesIn,
    bytesOut: flow.bytesOut,
    durationMs: Math.round(flow.durationMs() * 1000) / 1000,
    findings: flow.findings,
  };
  if (flow.aborted) record.aborted = true;
  return record;
}

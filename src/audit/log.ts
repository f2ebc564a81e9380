// The audit log (SPEC §8): one JSON line per flow, to a file (reopened on SIGHUP for logrotate)
// and/or stdout.
//
// The sinks are pino's destinations (sonic-boom: reopen, partial writes, EAGAIN), but a line is the
// record itself, JSON.stringify'd: an audit line has a fixed shape with no level, pid or hostname,
// and pino's generic serialiser around it cost ~8 µs of a ~170 µs request (profiled under S1 load,
// bench/profile.js) against ~2 µs for JSON.stringify.
//
// Lines are buffered and written FLUSH_BYTES at a time, or FLUSH_AFTER_MS after the oldest unwritten
// one — nginx's `access_log … buffer= flush=`. Writing every few lines cost ~7% of S1 throughput
// (bench/ab.mjs): an asynchronous write is a round trip through libuv's thread pool, a synchronous
// one a system call per event-loop turn. Nothing is lost on the way out: drain, SIGTERM and any
// exit of the process, an uncaught exception included, write what is buffered synchronously; a
// SIGKILL can lose at most the last FLUSH_AFTER_MS. The file is written synchronously (a write()
// into the page cache does not wait for the disk, and nothing is in flight when the process
// exits); stdout asynchronously, since a pipe whose reader stalls must not stop the proxy.
import { dirname } from 'node:path';
import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import pino from 'pino';
import type { Flow } from '../pipeline/flow.js';
import { ChainSealer } from './chain.js';
import { recordJson } from './record-json.js';
import { ecsChainEvent, ecsConfigEvent, toEcs } from './ecs.js';
import { ocsfChainEvent, ocsfConfigEvent, toOcsf } from './ocsf.js';
import { SyslogSink, severityOf, type FacilityName } from './syslog.js';

export interface AuditOptions {
  file: string | null;
  stdout: boolean;
  /** `deny`: traffic is refused while the log fails (refusesTraffic). Default `allow`. */
  onWriteError?: 'allow' | 'deny';
  /** HMAC-SHA256 key of the hash chain (chain.ts); empty or absent: plain SHA-256. */
  chainKey?: string;
  /** A running chain writes a checkpoint line this often (0: never), so a cut tail shows. */
  checkpointSeconds?: number;
  /** Mode of an audit file aigate creates (the umask applies). Default 0o640. */
  fileMode?: number;
  /** The shape of a line: aigate's record (default), ECS (ecs.ts) or OCSF (ocsf.ts). */
  format?: AuditFormat | undefined;
  /** Also send every line to a syslog receiver (syslog.ts). */
  syslog?: { url: string; facility: FacilityName | number; ca?: string | undefined } | null | undefined;
}

export type SinkName = 'file' | 'stdout' | 'syslog';
export type AuditFormat = 'aigate' | 'ecs' | 'ocsf';

/** Each format's mapping of a record and of a chain record; aigate's is the record itself. */
const FORMATS: Record<
  Exclude<AuditFormat, 'aigate'>,
  { map: (r: AuditRecord) => object; chainEvent: (event: string, time: string) => object; configEvent: (e: ConfigEvent, time: string) => object }
> = {
  ecs: { map: toEcs, chainEvent: ecsChainEvent, configEvent: ecsConfigEvent },
  ocsf: { map: toOcsf, chainEvent: ocsfChainEvent, configEvent: ocsfConfigEvent },
};

/** `audit.checkpointSeconds` when not configured. */
export const CHECKPOINT_SECONDS = 60;

export interface AuditHooks {
  /** A sink could not write (disk full, I/O error): it keeps its lines and retries with the next ones. */
  onError?: (err: Error, sink: SinkName) => void;
  /** A failing sink holds MAX_BUFFERED_BYTES unwritten: from now until it recovers, lines are dropped. */
  onDrop?: (sink: SinkName) => void;
  /** A failing sink wrote again: what it kept is out; `droppedBytes` were lost meanwhile. */
  onRecovered?: (sink: SinkName, droppedBytes: number) => void;
}

/** Buffered lines are written once they reach this size (string length: audit lines are ASCII)… */
export const FLUSH_BYTES = 64 * 1024;
/** …or this long after the oldest of them was buffered. */
export const FLUSH_AFTER_MS = 200;

/** Unwritten bytes a failing sink keeps before it drops lines (a full disk must not eat the heap). */
export const MAX_BUFFERED_BYTES = 64 * 1024 * 1024;
/**
 * A failing sink tries its kept lines again this often even when no new line comes: with
 * `audit.onWriteError: deny` no traffic may come (refused, or routed away by /readyz) until it works.
 */
export const RETRY_AFTER_MS = 1000;

type Destination = ReturnType<typeof pino.destination>;

export class AuditLog {
  private readonly sinks: Destination[] = [];
  /**
   * Applied to each request path and host before it is logged: a secret in a URL (a token as a
   * path segment, or as a label of a CONNECT host) must not reach the audit log or the dashboard.
   * Set by the proxy to the detector's.
   */
  maskPath: (path: string) => string = (path) => path;
  /** Called with every record written (dashboard, tests); never with secrets. */
  private readonly listeners = new Set<(record: AuditRecord) => void>();
  /** Lines not yet handed to the sinks. */
  private pending = '';
  private flushTimer: NodeJS.Timeout | undefined;
  private stdout: Destination | undefined;
  /** Sinks whose last write failed: they keep their lines and retry them with the next batch. */
  private readonly failing = new Set<Destination | SyslogSink>();
  private syslog: SyslogSink | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly format: (typeof FORMATS)[keyof typeof FORMATS] | undefined;
  /** Seals every line into this process's hash chain (chain.ts). */
  readonly chain: ChainSealer;
  private checkpointTimer: NodeJS.Timeout | undefined;

  /** True from a failed write until a sink writes again (the state `audit.onWriteError` acts on). */
  isFailing(): boolean {
    return this.failing.size > 0;
  }

  /** `audit.onWriteError: deny` and failing: new requests and CONNECTs are refused, /readyz is 503. */
  refusesTraffic(): boolean {
    return this.opts.onWriteError === 'deny' && this.failing.size > 0;
  }

  constructor(
    readonly opts: AuditOptions,
    hooks: AuditHooks = {},
  ) {
    this.chain = new ChainSealer(opts.chainKey ? Buffer.from(opts.chainKey) : null);
    this.format = opts.format && opts.format !== 'aigate' ? FORMATS[opts.format] : undefined;
    if (opts.file) {
      mkdirSync(dirname(opts.file), { recursive: true });
      const mode = opts.fileMode ?? 0o640;
      this.addSink('file', pino.destination({ dest: opts.file, sync: true, mkdir: true, mode, maxLength: MAX_BUFFERED_BYTES }), hooks);
    }
    if (opts.stdout) {
      this.stdout = pino.destination({ dest: 1, sync: false, maxLength: MAX_BUFFERED_BYTES });
      this.addSink('stdout', this.stdout, hooks);
    }
    if (opts.syslog) {
      // Throws SyslogError for a URL or CA file it cannot use.
      const sink: SyslogSink = new SyslogSink(
        { ...opts.syslog, maxBufferedBytes: MAX_BUFFERED_BYTES },
        {
          onError: (err) => {
            this.failing.add(sink);
            hooks.onError?.(err, 'syslog');
          },
          onDrop: () => hooks.onDrop?.('syslog'),
          onRecovered: (dropped) => {
            this.failing.delete(sink);
            hooks.onRecovered?.('syslog', dropped);
          },
        },
      );
      this.syslog = sink;
    }
    if (this.sinks.length > 0 || this.syslog) {
      OPEN_LOGS.add(this);
      const every = opts.checkpointSeconds ?? CHECKPOINT_SECONDS;
      if (every > 0) {
        this.checkpointTimer = setInterval(() => this.appendEvent('checkpoint'), every * 1000);
        this.checkpointTimer.unref();
      }
    }
  }

  private addSink(name: 'file' | 'stdout', sink: Destination, hooks: AuditHooks): void {
    // Without an error listener a failed write would throw out of the event loop. Each hook is
    // called once per failing spell, not once per batch.
    let dropped = 0;
    sink.on('error', (err: Error) => {
      const first = !this.failing.has(sink);
      this.failing.add(sink); // before the hook, so it sees the log failing
      if (first) hooks.onError?.(err, name);
      this.scheduleRetry();
    });
    sink.on('drop', (data: string) => {
      if (dropped === 0) hooks.onDrop?.(name);
      dropped += Buffer.byteLength(data);
    });
    sink.on('write', () => {
      if (!this.failing.delete(sink)) return;
      hooks.onRecovered?.(name, dropped);
      dropped = 0;
    });
    this.sinks.push(sink);
  }

  write(record: AuditRecord): void {
    this.emit(record, JSON.stringify);
  }

  /** `json` is JSON.stringify or a faster equivalent for this record's shape (record-json.ts). */
  private emit(record: AuditRecord, json: (record: AuditRecord) => string): void {
    // `time` is the record's first key, so it leads the line as in every log shipper's default.
    // The mapping to ECS or OCSF is done once per line, for every sink; listeners (the dashboard)
    // get the plain record.
    if (OPEN_LOGS.has(this)) {
      const text = this.format ? JSON.stringify(this.format.map(record)) : json(record);
      this.append(this.chain.seal(text), severityOf(record.decision), record.time);
    }
    for (const l of this.listeners) l(record);
  }

  private appendEvent(event: 'checkpoint' | 'chain-end'): void {
    const time = isoTime(Date.now());
    const line = this.format ? this.chain.seal(JSON.stringify(this.format.chainEvent(event, time))) : this.chain.sealEvent(event, time);
    this.append(line, severityOf(undefined), time);
  }

  /**
   * A configuration event (a reload applied or refused) on the trail, sealed in the chain like
   * every line: who changed the policy and when is part of what auditors ask.
   */
  writeConfigEvent(e: ConfigEvent): void {
    if (!OPEN_LOGS.has(this)) return;
    const time = isoTime(Date.now());
    const doc = this.format ? this.format.configEvent(e, time) : { time, ...e };
    this.append(this.chain.seal(JSON.stringify(doc)), severityOf(e.outcome === 'applied' ? undefined : 'deny'), time);
  }

  /** Buffers one sealed line for the sinks. */
  private append(line: string, severity: number, time: string): void {
    this.pending += line;
    this.syslog?.add(line.slice(0, -1), severity, time);
    if (this.pending.length >= FLUSH_BYTES) this.writePending();
    else if (this.flushTimer === undefined) {
      this.flushTimer = setTimeout(this.writePending, FLUSH_AFTER_MS);
      this.flushTimer.unref();
    }
  }

  writeFlow(flow: Flow): AuditRecord {
    const record = toRecord(flow);
    if (record.path !== null) record.path = this.maskPath(record.path);
    if (record.host !== null) record.host = this.maskHost(record.host, flow.hostAsSent);
    this.emit(record, recordJson);
    return record;
  }

  /**
   * A host as it may be logged (audit lines, operational log): masked as the client spelt it when
   * that shows a secret the canonical lower-case `host` hides from case-sensitive rules.
   */
  maskHost(host: string, asSent: string | null = null): string {
    if (asSent !== null && asSent !== host) {
      const masked = this.maskPath(asSent);
      if (masked !== asSent) return masked;
    }
    return this.maskPath(host);
  }

  private readonly writePending = (): void => {
    if (this.flushTimer !== undefined) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    }
    const lines = this.pending;
    if (lines.length === 0) return;
    this.pending = '';
    for (const sink of this.sinks) sink.write(lines);
    this.syslog?.flush();
  };

  private scheduleRetry(): void {
    if (this.retryTimer !== undefined || !OPEN_LOGS.has(this)) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.retryFailing(true);
    }, RETRY_AFTER_MS);
    this.retryTimer.unref();
  }

  /**
   * An empty write makes a failing sink try its kept lines again (a sink that fails again
   * schedules the next try). stdout writes asynchronously: left to the timer unless `withStdout`.
   */
  private retryFailing(withStdout: boolean): void {
    // The syslog sink retries by reconnecting, on its own timer.
    for (const sink of [...this.failing]) if (!(sink instanceof SyslogSink) && (withStdout || sink !== this.stdout)) sink.write('');
  }

  onRecord(listener: (record: AuditRecord) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** For logrotate: `postrotate kill -HUP` makes the next line go to a fresh file. */
  reopen(): void {
    this.writePending(); // lines buffered so far belong to the file being rotated out
    for (const s of this.sinks) {
      if (s === this.stdout) continue;
      try {
        s.reopen();
      } catch {
        // The new file cannot be opened: the sink reported it through onError and keeps writing
        // to the file it had.
      }
    }
    this.chain.newFile();
  }

  flush(): void {
    // The file sink writes synchronously: handing it the buffered lines writes them, and what it
    // kept from failed writes, if it can now.
    this.writePending();
    this.retryFailing(false);
    const stdout = this.stdout;
    // sonic-boom's flushSync retries a failing write forever (100 ms sleeps): a closed stdout pipe
    // would hang the drain.
    if (stdout && !this.failing.has(stdout)) {
      try {
        stdout.flushSync();
      } catch {
        // Not open yet: nothing was handed to it.
      }
    }
  }

  close(): void {
    if (!OPEN_LOGS.has(this)) return;
    // A clean stop ends the chain: verify tells it from a cut tail or a killed process.
    this.appendEvent('chain-end');
    this.flush();
    OPEN_LOGS.delete(this);
    clearTimeout(this.retryTimer);
    clearInterval(this.checkpointTimer);
    for (const s of this.sinks) s.end();
    this.syslog?.close();
  }
}

/**
 * The errno code (EISDIR, EACCES, ENOTDIR…) for which AuditLog could not open `file` for appending,
 * or null when it could — found without creating anything (for `aigate check --offline`).
 */
export function appendProblem(file: string): string | null {
  let path = file;
  try {
    if (statSync(path).isDirectory()) return 'EISDIR';
    accessSync(path, constants.W_OK);
    return null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return (err as NodeJS.ErrnoException).code ?? 'EIO';
  }
  // Missing: AuditLog creates it and its directories, under the nearest directory that exists.
  for (path = dirname(path); ; path = dirname(path)) {
    try {
      if (!statSync(path).isDirectory()) return 'ENOTDIR';
      accessSync(path, constants.W_OK | constants.X_OK);
      return null;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' || path === dirname(path)) return code ?? 'EIO';
    }
  }
}

/** Logs not closed yet: what they buffer is written out when the process exits, however it exits. */
const OPEN_LOGS = new Set<AuditLog>();
process.on('exit', () => {
  for (const log of OPEN_LOGS) log.flush();
});

/** A configuration event on the audit trail (`event: "reload"`). */
export interface ConfigEvent {
  event: 'reload';
  outcome: 'applied' | 'refused';
  /** Why it was refused (the config error, with its key path), or null. */
  reason: string | null;
  /** The configuration file read. */
  config: string;
  /** SHA-256 of that file's bytes as read, or null when it could not be read. */
  sha256: string | null;
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
  /** An upstream failure's cause (`ECONNREFUSED`, `ERR_TLS_CERT_ALTNAME_INVALID`, `pin_mismatch`…). */
  error?: string;
  /** A refused proxy login named this user of the users file. */
  attemptedUser?: string;
  /** event "message": the WebSocket connection's id. */
  parent?: string;
  /** An inspected WebSocket connection's line: its message counts. */
  messages?: NonNullable<Flow['messages']>;
  /** "h2" when the request was an HTTP/2 stream; absent for HTTP/1.x. */
  protocol?: 'h2';
}

export function toRecord(flow: Flow): AuditRecord {
  const record: AuditRecord = {
    time: isoTime(Date.now()),
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
  if (flow.error !== null) record.error = flow.error;
  if (flow.attemptedUser !== null) record.attemptedUser = flow.attemptedUser;
  if (flow.parent !== null) record.parent = flow.parent;
  if (flow.messages !== undefined) record.messages = flow.messages;
  if (flow.protocol !== null) record.protocol = flow.protocol;
  return record;
}

let isoSecond = NaN;
let isoPrefix = '';

/**
 * `new Date(ms).toISOString()` for a time from 1970 on, without formatting the date on every call:
 * V8 builds it with snprintf (~7k instructions, 2% of a small request); the part up to the
 * seconds is kept while the second lasts.
 */
export function isoTime(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== isoSecond) {
    isoSecond = second;
    isoPrefix = new Date(second * 1000).toISOString().slice(0, 20); // 2026-11-29T08:35:12.
  }
  const milli = ms - second * 1000;
  return `${isoPrefix}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
}

// The syslog sink of the audit log (`audit.syslog`, SPEC §11): each audit line, as written to the
// file (hash chain included), is the MSG of one RFC 5424 message; over TCP and TLS the messages
// are framed by octet counting (RFC 6587 §3.4.1: `LEN SP MSG`, so a line may hold any byte), over
// UDP each is one datagram (RFC 5426).
//
// The JSON line is the MSG rather than structured data: SIEMs parse the JSON as they parse the
// file, and the line's hash covers exactly those bytes, so a line received by syslog verifies
// like a line in the file. PRI = facility × 8 + severity, the severity from the decision (block,
// deny: warning; error: err), so a receiver can route refusals without parsing the JSON.
//
// Delivery: messages are batched with the file's (AuditLog's 64 KiB / 200 ms); while the
// connection is down they are kept, up to MAX_BUFFERED_BYTES, and sent once a reconnection
// (backoff 100 ms doubling to 5 s) succeeds; beyond that they are dropped and counted. A sink that
// cannot deliver is failing, and `audit.onWriteError` applies to it as to the file. TCP syslog has
// no acknowledgement: what the kernel had accepted when a receiver dies is lost (RELP would be
// needed to know); a receiver that closes cleanly is noticed before the next batch.
import { readFileSync } from 'node:fs';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { connect as tlsConnect } from 'node:tls';

export const FACILITIES = {
  kern: 0, user: 1, mail: 2, daemon: 3, auth: 4, syslog: 5, lpr: 6, news: 7, uucp: 8, cron: 9, authpriv: 10, ftp: 11,
  ntp: 12, security: 13, console: 14, 'solaris-cron': 15,
  local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23,
} as const;
export type FacilityName = keyof typeof FACILITIES;

/** RFC 5424 severities used by the audit trail. */
export const SEVERITY = { err: 3, warning: 4, notice: 5, info: 6 } as const;

/** The severity of an audit line for its decision (chain records are info). */
export function severityOf(decision: string | undefined): number {
  switch (decision) {
    case 'block':
    case 'deny':
      return SEVERITY.warning;
    case 'error':
      return SEVERITY.err;
    case 'redact':
    case 'rate_limited':
      return SEVERITY.notice;
    default:
      return SEVERITY.info;
  }
}

/** Largest UDP payload (IPv4: 65535 − 20 IP − 8 UDP). A longer message is dropped, not cut. */
export const MAX_DATAGRAM_BYTES = 65_507;
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5_000;
/** On close, how long the receiver has to take what is still unsent. */
const CLOSE_TIMEOUT_MS = 2_000;

export interface SyslogOptions {
  url: string;
  facility: FacilityName | number;
  /** PEM file of the CA that signs the receiver's certificate (tls://); default: the system's. */
  ca?: string | undefined;
  appName?: string;
  /** Unsent bytes kept while the receiver is unreachable. */
  maxBufferedBytes: number;
}

export interface SinkHooks {
  onError: (err: Error) => void;
  onDrop: () => void;
  onRecovered: (droppedBytes: number) => void;
}

export class SyslogError extends Error {}

export function parseSyslogUrl(url: string): { protocol: 'tcp' | 'tls' | 'udp'; host: string; port: number } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new SyslogError(`not a URL: ${url}`);
  }
  const protocol = u.protocol.slice(0, -1);
  if (protocol !== 'tcp' && protocol !== 'tls' && protocol !== 'udp') throw new SyslogError(`scheme must be tcp://, tls:// or udp://, not ${u.protocol}//`);
  const port = Number(u.port);
  if (!u.hostname || !Number.isInteger(port) || port < 1) throw new SyslogError(`needs a host and a port: ${url}`);
  if (u.pathname && u.pathname !== '/') throw new SyslogError(`has a path: ${url}`);
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  return { protocol, host, port };
}

/** RFC 5424 HOSTNAME: printable US-ASCII, at most 255, `-` when unknown. */
function headerName(name: string, max: number): string {
  const clean = name.replace(/[^\x21-\x7e]/g, '').slice(0, max);
  return clean === '' ? '-' : clean;
}

export class SyslogSink {
  private readonly protocol: 'tcp' | 'tls' | 'udp';
  private readonly host: string;
  private readonly port: number;
  private readonly facility: number;
  /** `1 ` … up to MSGID and `- ` (no structured data), after the timestamp. */
  private readonly headerTail: string;
  private readonly ca: Buffer | undefined;
  /** Messages of the current batch (framed for TCP/TLS; one per datagram for UDP). */
  private batch: string[] = [];
  /** Messages kept while the receiver is unreachable, oldest first. */
  private kept: string[] = [];
  private keptBytes = 0;
  private dropped = 0;
  private socket: Socket | undefined;
  private udp: UdpSocket | undefined;
  private connected = false;
  private failing = false;
  private closed = false;
  private backoff = BACKOFF_MIN_MS;
  private reconnectTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly opts: SyslogOptions,
    private readonly hooks: SinkHooks,
  ) {
    const { protocol, host, port } = parseSyslogUrl(opts.url);
    this.protocol = protocol;
    this.host = host;
    this.port = port;
    this.facility = typeof opts.facility === 'number' ? opts.facility : FACILITIES[opts.facility];
    try {
      this.ca = opts.ca ? readFileSync(opts.ca) : undefined;
    } catch (err) {
      throw new SyslogError(`cannot read the CA file ${opts.ca} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    this.headerTail = ` ${headerName(hostname(), 255)} ${headerName(opts.appName ?? 'aigate', 48)} ${process.pid} audit - `;
    if (protocol === 'udp') {
      this.udp = createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
      this.udp.on('error', (err) => this.fail(err));
      this.udp.unref();
    } else this.connect();
  }

  isFailing(): boolean {
    return this.failing;
  }

  /** Adds one audit line (without its newline) to the batch; `time` is its RFC 3339 timestamp. */
  add(line: string, severity: number, time: string): void {
    const msg = `<${this.facility * 8 + severity}>1 ${time}${this.headerTail}${line}`;
    this.batch.push(this.protocol === 'udp' ? msg : `${Buffer.byteLength(msg)} ${msg}`);
  }

  /** Sends the batch (or keeps it while the receiver is unreachable). */
  flush(): void {
    if (this.batch.length === 0) return;
    const batch = this.batch;
    this.batch = [];
    if (this.protocol === 'udp') return this.sendDatagrams(batch);
    if (!this.connected || this.kept.length > 0) {
      for (const m of batch) this.keep(m);
      return;
    }
    const socket = this.socket!;
    if (socket.writableLength > this.opts.maxBufferedBytes) {
      // Connected, but the receiver does not read: the kernel's and Node's buffers are full.
      if (this.dropped === 0) this.hooks.onDrop();
      for (const m of batch) this.dropped += Buffer.byteLength(m);
      return;
    }
    socket.write(batch.join(''));
  }

  close(): void {
    this.flush();
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    if (this.udp) {
      // Sends already queued go out before the socket closes.
      const udp = this.udp;
      setImmediate(() => udp.close());
      return;
    }
    const socket = this.socket;
    if (!socket) return;
    socket.ref(); // what is written (or kept until the connection is up) goes out before the process exits
    if (this.connected) socket.end(); // else onConnect writes what is kept, then ends
    // A receiver that is unreachable or stops reading must not hold the process: what it has not
    // taken by then is lost.
    setTimeout(() => socket.destroy(), CLOSE_TIMEOUT_MS).unref();
  }

  private keep(msg: string): void {
    const bytes = Buffer.byteLength(msg);
    if (this.keptBytes + bytes > this.opts.maxBufferedBytes) {
      if (this.dropped === 0) this.hooks.onDrop();
      this.dropped += bytes;
      return;
    }
    this.kept.push(msg);
    this.keptBytes += bytes;
  }

  private sendDatagrams(batch: string[]): void {
    for (const msg of batch) {
      const buf = Buffer.from(msg);
      if (buf.length > MAX_DATAGRAM_BYTES) {
        if (this.dropped === 0) this.hooks.onDrop();
        this.dropped += buf.length;
        continue;
      }
      this.udp!.send(buf, this.port, this.host, (err) => {
        if (err) this.fail(err);
        else if (this.failing) this.recover();
      });
    }
  }

  private connect(): void {
    const onConnect = () => {
      this.connected = true;
      this.backoff = BACKOFF_MIN_MS;
      if (this.kept.length > 0) {
        socket.write(this.kept.join(''));
        this.kept = [];
        this.keptBytes = 0;
      }
      if (this.failing) this.recover();
      if (this.closed) socket.end();
    };
    const socket: Socket =
      this.protocol === 'tls'
        ? tlsConnect({ host: this.host, port: this.port, servername: isIP(this.host) ? undefined : this.host, ...(this.ca ? { ca: this.ca } : {}) }, onConnect)
        : netConnect({ host: this.host, port: this.port }, onConnect);
    this.socket = socket;
    socket.setNoDelay(true);
    // Nothing is read from a syslog receiver; its end (a restart) is noticed as the connection's end.
    socket.on('data', () => {});
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.connected = false;
      if (this.closed) return;
      this.reconnectTimer = setTimeout(() => this.connect(), this.backoff);
      this.reconnectTimer.unref();
      this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
    });
    socket.on('end', () => socket.destroy());
    // The connection must not keep a drained proxy alive; close() ends it explicitly.
    socket.unref();
  }

  private fail(err: Error): void {
    if (this.failing || this.closed) return;
    this.failing = true;
    this.hooks.onError(err);
  }

  private recover(): void {
    this.failing = false;
    const dropped = this.dropped;
    this.dropped = 0;
    this.hooks.onRecovered(dropped);
  }
}

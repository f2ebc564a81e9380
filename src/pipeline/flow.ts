// One request's state as it passes the stages (DESIGN "a request is a flow through stages").
// Stages read and fill it; the audit stage writes it out once when the response is finished.
import { randomUUID } from 'node:crypto';
import type { ErrorType } from './errors.js';

export type Mode = 'gateway' | 'forward';
export type AuditEvent = 'request' | 'connect' | 'tunnel' | 'message';
export type Decision = 'allow' | 'redact' | 'block' | 'deny' | 'rate_limited' | 'error';

export interface Finding {
  rule: string;
  line: number;
  action: 'block' | 'redact' | 'monitor';
  fingerprint: string;
  /** protected-code findings: the protected file and line range, `path:12-40` (never code). */
  source?: string;
}

/** A WebSocket connection's messages, counted for its audit line at close. */
export interface MessageCounts {
  /** Client messages judged (complete, and received before aigate ended the connection). */
  in: number;
  /** Complete messages the upstream sent to the client. */
  out: number;
  /** Client messages forwarded upstream (as sent, redacted or monitored). */
  forwarded: number;
  blocked: number;
  redacted: number;
  /** Forwarded unchanged with monitor-only findings. */
  monitored: number;
}

export interface Client {
  ip: string;
  user: string | null;
  /** HMAC fingerprint (16 hex) of the vendor key the request carried, when it carried one (stages/credential.ts). */
  credential?: string;
}

export class Flow {
  readonly id = randomUUID();
  readonly startedAt = Date.now();
  readonly startedHr = process.hrtime.bigint();
  event: AuditEvent = 'request';
  route: string | null = null;
  host: string | null = null;
  /**
   * Forward mode: the host as the client spelt it (CONNECT target, absolute-form URL), before it
   * was lower-cased and decoded into `host`. Secret masking reads it: lower case can hide a token
   * from a case-sensitive rule without making it any less of a leak.
   */
  hostAsSent: string | null = null;
  status = 0;
  decision: Decision = 'allow';
  reason: ErrorType | null = null;
  /** What failed underneath an upstream failure (errno / TLS code): the audit line's `error`. */
  error: string | null = null;
  findings: Finding[] = [];
  bytesIn = 0;
  bytesOut = 0;
  /** True when the client went away before the response was complete. */
  aborted = false;
  /** A refused proxy login's user name, when the users file has it (never the password). */
  attemptedUser: string | null = null;
  /** A message's flow: the id of the WebSocket connection it travelled on. */
  parent: string | null = null;
  /** An inspected WebSocket connection: its message counts. */
  messages: MessageCounts | undefined;
  /** 'h2' for a request that was an HTTP/2 stream; null for HTTP/1.x (the audit line omits it). */
  protocol: 'h2' | null = null;

  constructor(
    readonly mode: Mode,
    readonly client: Client,
    readonly method: string | null,
    /** The normalised path without the query string, once the request target was parsed. */
    public path: string | null,
  ) {}

  durationMs(): number {
    return Number(process.hrtime.bigint() - this.startedHr) / 1e6;
  }
}

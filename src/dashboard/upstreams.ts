// Upstream health for the dashboard, judged from audit records: an upstream is healthy when the
// last request that went to it got an answer. Requests refused before the upstream (blocked,
// denied, limited, bad requests) say nothing about it and are ignored.
import type { AuditRecord } from '../audit/log.js';
import type { Mode } from '../pipeline/flow.js';

const UPSTREAM_ERRORS: ReadonlySet<string> = new Set(['upstream_unavailable', 'upstream_certificate', 'upstream_timeout']);

export interface UpstreamHealth {
  /** Route name (gateway) or allowed host (forward). */
  name: string;
  mode: Mode;
  /** The configured upstream, when known (gateway routes). */
  target: string | null;
  state: 'ok' | 'failing' | 'unknown';
  lastOkAt: string | null;
  lastErrorAt: string | null;
  lastError: string | null;
  /** Upstream failures since the last success. */
  consecutiveErrors: number;
}

interface UpstreamState {
  name: string;
  mode: Mode;
  target: string | null;
  lastOk: number;
  lastError: number;
  lastErrorReason: string | null;
  consecutiveErrors: number;
  touched: number;
}

export class UpstreamHealthTracker {
  private readonly upstreams = new Map<string, UpstreamState>();

  constructor(
    private readonly max: number,
    /** Known from config, listed as `unknown` until traffic says otherwise. */
    known: Array<{ name: string; mode: Mode; target: string | null }>,
  ) {
    for (const u of known) this.state(u.mode, u.name, u.target);
  }

  record(r: AuditRecord, nowMs: number): void {
    // A CONNECT's own record is the tunnel opening, not an upstream answer.
    if (r.route === null || r.event === 'connect') return;
    const failed = r.decision === 'error' && r.reason !== null && UPSTREAM_ERRORS.has(r.reason);
    // Any upstream answer counts as reachable, 5xx included: this is about the path to the vendor.
    const reached = (r.decision === 'allow' || r.decision === 'redact') && r.status > 0;
    if (!failed && !reached) return;
    const s = this.state(r.mode, r.route, null);
    s.touched = nowMs;
    if (failed) {
      s.lastError = nowMs;
      s.lastErrorReason = r.reason;
      s.consecutiveErrors++;
    } else {
      s.lastOk = nowMs;
      s.consecutiveErrors = 0;
    }
  }

  list(): UpstreamHealth[] {
    const iso = (ms: number) => (ms > 0 ? new Date(ms).toISOString() : null);
    return [...this.upstreams.values()]
      .map((s) => ({
        name: s.name,
        mode: s.mode,
        target: s.target,
        state: s.lastOk === 0 && s.lastError === 0 ? ('unknown' as const) : s.lastError > s.lastOk ? ('failing' as const) : ('ok' as const),
        lastOkAt: iso(s.lastOk),
        lastErrorAt: iso(s.lastError),
        lastError: s.lastErrorReason,
        consecutiveErrors: s.consecutiveErrors,
      }))
      // Configured gateway routes first, then forward-mode hosts as they are met.
      .sort((a, b) => (a.mode === b.mode ? 0 : a.mode === 'gateway' ? -1 : 1) || a.name.localeCompare(b.name));
  }

  private state(mode: Mode, name: string, target: string | null): UpstreamState {
    const key = `${mode}\u0000${name}`;
    let s = this.upstreams.get(key);
    if (!s) {
      if (this.upstreams.size >= this.max) {
        // Forget the one least recently heard of (forward mode can meet many hosts under a wildcard).
        let oldest: [string, UpstreamState] | undefined;
        for (const e of this.upstreams) if (!oldest || e[1].touched < oldest[1].touched) oldest = e;
        if (oldest) this.upstreams.delete(oldest[0]);
      }
      s = { name, mode, target, lastOk: 0, lastError: 0, lastErrorReason: null, consecutiveErrors: 0, touched: 0 };
      this.upstreams.set(key, s);
    }
    return s;
  }
}

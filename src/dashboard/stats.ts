// In-memory statistics behind the admin dashboard, fed by audit records (SPEC §8). Every structure
// is a fixed-size ring or a capped map, so memory stays bounded however long the proxy runs and
// however many distinct clients or paths it sees. Records carry no secrets; of their findings only
// rule ids and actions are kept (never fingerprints, which would let a watcher correlate values).
//
// A WebSocket message audited on its own (event "message": findings, or refused) is not a request:
// the request is its connection, audited once at close. Its findings count under the rules, the
// message under `lastHourMessages`, and the rule ids show on its connection's attempt row.
import type { AuditRecord } from '../audit/log.js';
import type { Decision, Mode } from '../pipeline/flow.js';
import { UpstreamHealthTracker, type UpstreamHealth } from './upstreams.js';

export type { UpstreamHealth } from './upstreams.js';

export const DECISIONS = ['allow', 'redact', 'block', 'deny', 'rate_limited', 'error'] as const satisfies readonly Decision[];
const DECISION_INDEX: Record<Decision, number> = { allow: 0, redact: 1, block: 2, deny: 3, rate_limited: 4, error: 5 };
/** Decisions listed as "attempts" on the dashboard and pushed to live viewers at once. */
const ATTEMPT_DECISIONS: ReadonlySet<Decision> = new Set(['block', 'deny', 'rate_limited', 'error']);
const ACTIONS = ['block', 'redact', 'monitor'] as const;
/** Paths are client-controlled and unbounded in principle; the dashboard needs only their start. */
const MAX_PATH_CHARS = 300;

export type DecisionCounts = Record<Decision, number>;

export interface Attempt {
  /** Increases by one per attempt recorded, so a viewer can tell new rows from old. */
  seq: number;
  /** The request id: the audit line's `id` and the X-Aigate-Request-Id the client got. */
  id: string;
  time: string;
  decision: Decision;
  client: { ip: string; user: string | null };
  mode: Mode;
  route: string | null;
  host: string | null;
  method: string | null;
  path: string | null;
  status: number;
  reason: string | null;
  /** An upstream failure's cause (audit `error`). */
  error?: string;
  /** Distinct rule ids of the findings, in order of first appearance. */
  rules: string[];
}

export interface TopClient {
  ip: string;
  user: string | null;
  requests: number;
  /** Blocked, denied or rate-limited. */
  refused: number;
}

export interface TopRule {
  rule: string;
  findings: number;
  byAction: Record<(typeof ACTIONS)[number], number>;
}

export interface RateLimitHealth {
  store: 'memory' | 'redis';
  healthy: boolean;
}

export interface DashboardSnapshot {
  now: string;
  startedAt: string;
  /** Requests per second by decision, one value per second, oldest first; the last is `end`. */
  series: { end: number; seconds: number; decisions: Record<Decision, number[]> };
  /** Mean requests per second by decision over the last `rateWindowSeconds` complete seconds. */
  rates: DecisionCounts;
  rateWindowSeconds: number;
  lastHour: DecisionCounts;
  /** WebSocket messages audited on their own (findings, or refused) over the last hour, by decision; not requests. */
  lastHourMessages: DecisionCounts;
  recent: Attempt[];
  topClients: TopClient[];
  /** Clients not counted individually because a minute had too many distinct ones. */
  otherClients: TopClient | null;
  topRules: TopRule[];
  otherRules: number;
  health: { rateLimit: RateLimitHealth | null; upstreams: UpstreamHealth[] };
}

export interface DashboardStatsOptions {
  /** Milliseconds since the epoch; injectable for tests. */
  now?: () => number;
  /** Length of the per-second series. */
  seriesSeconds?: number;
  rateWindowSeconds?: number;
  recentSize?: number;
  /** Window of the top lists, in one-minute buckets. */
  topMinutes?: number;
  /** Distinct clients (and rules) counted per minute before the rest go to "other". */
  maxKeysPerBucket?: number;
  topN?: number;
  maxUpstreams?: number;
  rateLimit?: () => RateLimitHealth | undefined;
  /** Upstreams known from config, shown as `unknown` until traffic says otherwise. */
  upstreams?: Array<{ name: string; mode: Mode; target: string | null }>;
}

interface MinuteBucket {
  minute: number;
  decisions: Float64Array;
  /** WebSocket message lines, by decision. */
  messages: Float64Array;
  clients: Map<string, { requests: number; refused: number }>;
  otherClients: { requests: number; refused: number };
  rules: Map<string, number[]>;
  otherRules: number;
}

const N_DECISIONS = DECISIONS.length;
/** Connections whose messages' rule ids wait for the connection's own line (the oldest go first). */
const MAX_OPEN_CONNECTIONS_WITH_FINDINGS = 1000;
/** Distinct rule ids kept per connection for its attempt row. */
const MAX_RULES_PER_CONNECTION = 32;

export class DashboardStats {
  private readonly now: () => number;
  private readonly seriesSeconds: number;
  private readonly rateWindowSeconds: number;
  private readonly recentSize: number;
  private readonly topMinutes: number;
  private readonly maxKeys: number;
  private readonly topN: number;
  private readonly rateLimit: (() => RateLimitHealth | undefined) | undefined;
  private readonly startedAt: number;

  /** seriesSeconds slots × decisions; a slot is valid only while its stamp is its second. */
  private readonly secondCounts: Float64Array;
  private readonly secondStamps: Float64Array;
  private readonly minutes: Array<MinuteBucket | undefined>;
  private readonly recent: Array<Attempt | undefined>;
  private attemptSeq = 0;
  private readonly upstreams: UpstreamHealthTracker;
  private readonly attemptListeners = new Set<(a: Attempt) => void>();
  /** Rule ids found in messages of connections not yet audited, by connection id. */
  private readonly messageRules = new Map<string, string[]>();
  /** Bumped on every record, so a cached snapshot knows when it went stale. */
  private version = 0;
  private cached: { version: number; at: number; snapshot: DashboardSnapshot } | undefined;

  constructor(opts: DashboardStatsOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.seriesSeconds = opts.seriesSeconds ?? 300;
    this.rateWindowSeconds = Math.min(opts.rateWindowSeconds ?? 10, this.seriesSeconds - 1);
    this.recentSize = opts.recentSize ?? 100;
    this.topMinutes = opts.topMinutes ?? 60;
    this.maxKeys = opts.maxKeysPerBucket ?? 1000;
    this.topN = opts.topN ?? 10;
    this.rateLimit = opts.rateLimit;
    this.startedAt = this.now();
    this.secondCounts = new Float64Array(this.seriesSeconds * N_DECISIONS);
    this.secondStamps = new Float64Array(this.seriesSeconds).fill(-1);
    this.minutes = new Array<MinuteBucket | undefined>(this.topMinutes).fill(undefined);
    this.recent = new Array<Attempt | undefined>(this.recentSize).fill(undefined);
    this.upstreams = new UpstreamHealthTracker(opts.maxUpstreams ?? 256, opts.upstreams ?? []);
  }

  /** Subscribe with `audit.onRecord((r) => stats.record(r))`. */
  record(r: AuditRecord): void {
    const nowMs = this.now();
    const d = DECISION_INDEX[r.decision];
    this.version++;
    if (r.event === 'message') {
      this.recordMessage(r, d, nowMs);
      return;
    }

    const second = Math.floor(nowMs / 1000);
    const slot = second % this.seriesSeconds;
    if (this.secondStamps[slot] !== second) {
      this.secondStamps[slot] = second;
      this.secondCounts.fill(0, slot * N_DECISIONS, (slot + 1) * N_DECISIONS);
    }
    this.secondCounts[slot * N_DECISIONS + d]! += 1;

    const bucket = this.minuteBucket(Math.floor(nowMs / 60_000));
    bucket.decisions[d]! += 1;
    const refused = r.decision === 'block' || r.decision === 'deny' || r.decision === 'rate_limited' ? 1 : 0;
    const clientKey = `${r.client.ip}\u0000${r.client.user ?? ''}`;
    const client = bucket.clients.get(clientKey) ?? (bucket.clients.size < this.maxKeys ? newClientCount(bucket, clientKey) : bucket.otherClients);
    client.requests++;
    client.refused += refused;
    this.countFindings(bucket, r);

    this.upstreams.record(r, nowMs);

    const messageRules = this.messageRules.get(r.id);
    if (messageRules) this.messageRules.delete(r.id);
    if (ATTEMPT_DECISIONS.has(r.decision)) {
      const attempt = toAttempt(r, ++this.attemptSeq);
      for (const rule of messageRules ?? []) if (!attempt.rules.includes(rule)) attempt.rules.push(rule);
      this.recent[attempt.seq % this.recentSize] = attempt;
      for (const l of this.attemptListeners) l(attempt);
    }
  }

  /** A WebSocket message's own line: its findings and itself are counted, its rule ids kept for its connection's line. */
  private recordMessage(r: AuditRecord, d: number, nowMs: number): void {
    const bucket = this.minuteBucket(Math.floor(nowMs / 60_000));
    bucket.messages[d]! += 1;
    this.countFindings(bucket, r);
    if (r.parent === undefined || r.findings.length === 0) return;
    let rules = this.messageRules.get(r.parent);
    if (!rules) {
      if (this.messageRules.size >= MAX_OPEN_CONNECTIONS_WITH_FINDINGS) this.messageRules.delete(this.messageRules.keys().next().value as string);
      this.messageRules.set(r.parent, (rules = []));
    }
    for (const f of r.findings) if (!rules.includes(f.rule) && rules.length < MAX_RULES_PER_CONNECTION) rules.push(f.rule);
  }

  private countFindings(bucket: MinuteBucket, r: AuditRecord): void {
    for (const f of r.findings) {
      let byAction = bucket.rules.get(f.rule);
      if (!byAction) {
        if (bucket.rules.size >= this.maxKeys) {
          bucket.otherRules++;
          continue;
        }
        byAction = [0, 0, 0];
        bucket.rules.set(f.rule, byAction);
      }
      const a = ACTIONS.indexOf(f.action);
      if (a >= 0) byAction[a]! += 1;
    }
  }

  /** Called for every blocked, denied, rate-limited or failed request, after it is counted. */
  onAttempt(listener: (a: Attempt) => void): () => void {
    this.attemptListeners.add(listener);
    return () => this.attemptListeners.delete(listener);
  }

  snapshot(): DashboardSnapshot {
    const nowMs = this.now();
    // Several viewers ask every second: one computation serves them while nothing changed.
    const c = this.cached;
    if (c && c.version === this.version && Math.floor(c.at / 1000) === Math.floor(nowMs / 1000)) return c.snapshot;
    const snapshot = this.compute(nowMs);
    this.cached = { version: this.version, at: nowMs, snapshot };
    return snapshot;
  }

  private compute(nowMs: number): DashboardSnapshot {
    const end = Math.floor(nowMs / 1000);
    const decisions = emptySeries(this.seriesSeconds);
    for (let i = 0; i < this.seriesSeconds; i++) {
      const second = end - this.seriesSeconds + 1 + i;
      const slot = ((second % this.seriesSeconds) + this.seriesSeconds) % this.seriesSeconds;
      if (this.secondStamps[slot] !== second) continue;
      for (let d = 0; d < N_DECISIONS; d++) decisions[DECISIONS[d]!][i] = this.secondCounts[slot * N_DECISIONS + d]!;
    }
    // The current second is still filling: rates use the complete seconds before it.
    const rates = zeroCounts();
    for (const name of DECISIONS) {
      const values = decisions[name];
      let sum = 0;
      for (let i = values.length - 1 - this.rateWindowSeconds; i < values.length - 1; i++) sum += values[i]!;
      rates[name] = Math.round((sum / this.rateWindowSeconds) * 100) / 100;
    }

    const lastHour = zeroCounts();
    const lastHourMessages = zeroCounts();
    const clients = new Map<string, { requests: number; refused: number }>();
    const other = { requests: 0, refused: 0 };
    const rules = new Map<string, number[]>();
    let otherRules = 0;
    for (const b of this.liveBuckets(Math.floor(nowMs / 60_000))) {
      for (let d = 0; d < N_DECISIONS; d++) {
        lastHour[DECISIONS[d]!] += b.decisions[d]!;
        lastHourMessages[DECISIONS[d]!] += b.messages[d]!;
      }
      for (const [k, v] of b.clients) {
        const acc = clients.get(k);
        if (acc) {
          acc.requests += v.requests;
          acc.refused += v.refused;
        } else clients.set(k, { ...v });
      }
      other.requests += b.otherClients.requests;
      other.refused += b.otherClients.refused;
      for (const [k, v] of b.rules) {
        const acc = rules.get(k);
        if (acc) for (let i = 0; i < v.length; i++) acc[i]! += v[i]!;
        else rules.set(k, [...v]);
      }
      otherRules += b.otherRules;
    }
    // Ops look here for who is being stopped: refusals first, then volume.
    const topClients = [...clients]
      .map(([key, v]): TopClient => {
        const [ip = '', user = ''] = key.split('\u0000');
        return { ip, user: user === '' ? null : user, ...v };
      })
      .sort((a, b) => b.refused - a.refused || b.requests - a.requests || a.ip.localeCompare(b.ip))
      .slice(0, this.topN);
    const topRules = [...rules]
      .map(([rule, v]): TopRule => ({
        rule,
        findings: v.reduce((s, x) => s + x, 0),
        byAction: { block: v[0]!, redact: v[1]!, monitor: v[2]! },
      }))
      .sort((a, b) => b.findings - a.findings || a.rule.localeCompare(b.rule))
      .slice(0, this.topN);

    const recent: Attempt[] = [];
    for (let seq = this.attemptSeq; seq > this.attemptSeq - this.recentSize && seq > 0; seq--) {
      const a = this.recent[seq % this.recentSize];
      if (a) recent.push(a);
    }

    return {
      now: new Date(nowMs).toISOString(),
      startedAt: new Date(this.startedAt).toISOString(),
      series: { end, seconds: this.seriesSeconds, decisions },
      rates,
      rateWindowSeconds: this.rateWindowSeconds,
      lastHour,
      lastHourMessages,
      recent,
      topClients,
      otherClients: other.requests > 0 ? { ip: '(other)', user: null, ...other } : null,
      topRules,
      otherRules,
      health: { rateLimit: this.rateLimit?.() ?? null, upstreams: this.upstreams.list() },
    };
  }

  private minuteBucket(minute: number): MinuteBucket {
    const slot = minute % this.topMinutes;
    let b = this.minutes[slot];
    if (!b || b.minute !== minute) {
      b = {
        minute,
        decisions: new Float64Array(N_DECISIONS),
        messages: new Float64Array(N_DECISIONS),
        clients: new Map(),
        otherClients: { requests: 0, refused: 0 },
        rules: new Map(),
        otherRules: 0,
      };
      this.minutes[slot] = b;
    }
    return b;
  }

  private *liveBuckets(currentMinute: number): Generator<MinuteBucket> {
    for (const b of this.minutes) if (b && b.minute > currentMinute - this.topMinutes && b.minute <= currentMinute) yield b;
  }
}

function newClientCount(bucket: MinuteBucket, key: string): { requests: number; refused: number } {
  const v = { requests: 0, refused: 0 };
  bucket.clients.set(key, v);
  return v;
}

function zeroCounts(): DecisionCounts {
  return { allow: 0, redact: 0, block: 0, deny: 0, rate_limited: 0, error: 0 };
}

function emptySeries(n: number): Record<Decision, number[]> {
  const s = {} as Record<Decision, number[]>;
  for (const d of DECISIONS) s[d] = new Array<number>(n).fill(0);
  return s;
}

/** Only what an operator needs to see; findings are reduced to their rule ids. */
function toAttempt(r: AuditRecord, seq: number): Attempt {
  const rules: string[] = [];
  for (const f of r.findings) if (!rules.includes(f.rule)) rules.push(f.rule);
  return {
    seq,
    id: r.id,
    time: r.time,
    decision: r.decision,
    client: { ip: r.client.ip, user: r.client.user },
    mode: r.mode,
    route: r.route,
    host: r.host,
    method: r.method,
    path: r.path === null ? null : r.path.length > MAX_PATH_CHARS ? `${r.path.slice(0, MAX_PATH_CHARS)}…` : r.path,
    status: r.status,
    reason: r.reason,
    ...(r.error !== undefined ? { error: r.error } : {}),
    rules,
  };
}

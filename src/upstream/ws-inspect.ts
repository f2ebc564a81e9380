// An inspected WebSocket connection's policy side (the framing is ws-relay.ts): each client
// message through the one inspection entry point, its verdict in WebSocket terms (forward, or the
// SPEC §11 error event and close 1008), its audit line and metrics, and the connection's counts.
import type { Duplex } from 'node:stream';
import type { Exchange } from '../pipeline/exchange.js';
import { ProxyError, errorBody } from '../pipeline/errors.js';
import { Flow, type Decision, type MessageCounts } from '../pipeline/flow.js';
import { blockMessage, inspectMessage } from '../pipeline/stages/inspect.js';
import { budgetKey, type BudgetScope } from '../pipeline/body-budget.js';
import type { WebSocketOptions } from './websocket.js';
import type { DeflateParams } from './ws-framing.js';
import { InspectedRelay, MAX_CLOSE_REASON, type Termination, type TerminationKind, type Verdict } from './ws-relay.js';

/** How a connection aigate closed is audited. */
const TERMINATION: Record<TerminationKind, { decision: Decision; reason: ProxyError['type'] | null }> = {
  blocked: { decision: 'block', reason: 'sensitive_content' },
  too_large: { decision: 'block', reason: 'body_too_large' },
  over_budget: { decision: 'error', reason: 'overloaded' },
  malformed: { decision: 'error', reason: 'bad_request' },
  upstream_malformed: { decision: 'error', reason: 'upstream_unavailable' },
  internal: { decision: 'error', reason: 'internal_error' },
  shutdown: { decision: 'allow', reason: null },
};

/** `sensitive_content: rule-a, rule-b` within a close frame's 123 bytes, cut at a rule id (`+N` more). */
export function blockCloseReason(rules: readonly string[]): string {
  const head = 'sensitive_content: ';
  for (let shown = rules.length; shown > 0; shown--) {
    const more = rules.length - shown;
    const text = head + rules.slice(0, shown).join(', ') + (more > 0 ? ` +${more}` : '');
    if (Buffer.byteLength(text) <= MAX_CLOSE_REASON) return text;
  }
  return `sensitive_content: ${rules.length} rules`;
}

/**
 * The inspected relay for one upgraded connection: each client message through the one inspection
 * entry point; a message with findings gets its own audit line (event "message", parent = the
 * connection); the connection's line at close carries the counts and how it ended.
 */
export function inspectMessages(
  ex: Exchange,
  opts: WebSocketOptions,
  client: Duplex,
  upstream: Duplex,
  head: Buffer,
  deflate: (() => DeflateParams[]) | null,
): void {
  const { flow, res } = ex;
  const target = ex.target!;
  const counts: MessageCounts = { in: 0, out: 0, forwarded: 0, blocked: 0, redacted: 0, monitored: 0 };
  flow.messages = counts;
  const series = new Map<string, { inc(): void }>();
  const countMessage = (decision: string) => {
    let s = series.get(decision);
    if (!s) series.set(decision, (s = opts.metrics.websocketMessages.labels({ route: target.route, decision })));
    s.inc();
  };
  /** A message's own flow, started when it arrived complete (its durationMs is its judging). */
  const messageFlow = (bytesIn: number) => {
    const m = new Flow(flow.mode, flow.client, flow.method, flow.path);
    m.event = 'message';
    m.parent = flow.id;
    m.route = flow.route;
    m.host = flow.host;
    m.status = flow.status;
    m.bytesIn = bytesIn;
    return m;
  };
  const audit = (m: Flow) => {
    opts.audit.writeFlow(m);
    for (const f of m.findings) opts.metrics.findings.inc({ rule: f.rule });
  };

  const judge = async (message: Buffer, binary: boolean): Promise<Verdict> => {
    const m = messageFlow(message.length);
    counts.in++;
    // RFC 6455: a text message is UTF-8 (the receiver refuses anything else with 1007); a binary
    // one is bytes, which the inspector reads as UTF-16/32 only where it opens like JSON.
    const contentType = binary ? 'application/octet-stream' : 'text/plain; charset=utf-8';
    const verdict = await inspectMessage(opts.inspector, message, { action: target.action, contentType }, opts.maxBodyBytes, 'message');
    countMessage(verdict.decision);
    m.findings = verdict.findings;
    if (verdict.decision === 'block') {
      counts.blocked++;
      const event = errorBody('sensitive_content', verdict.refusal!.message);
      m.decision = 'block';
      m.reason = 'sensitive_content';
      m.bytesOut = Buffer.byteLength(event);
      audit(m);
      return { block: { event, reason: blockCloseReason(verdict.blockingRules ?? []) } };
    }
    counts.forwarded++;
    if (verdict.decision === 'redact') {
      counts.redacted++;
      m.decision = 'redact';
    }
    if (verdict.decision === 'monitor') counts.monitored++;
    if (m.findings.length > 0) audit(m);
    return { forward: verdict.body };
  };

  /**
   * A control frame's payload (a ping's data, a close reason) is scanned as bytes. It is passed on
   * as it came or not at all: a finding that would redact blocks, as in an RPC message. Not a
   * message: only one with findings is counted and audited (a message line naming the frame).
   */
  const judgeControl = async (payload: Buffer, kind: 'ping' | 'pong' | 'close'): Promise<Verdict> => {
    const what = kind === 'close' ? 'close reason' : kind;
    const verdict = await inspectMessage(opts.inspector, payload, { action: target.action, contentType: 'application/octet-stream' }, opts.maxBodyBytes, what);
    if (verdict.findings.length === 0) return { forward: payload };
    const m = messageFlow(payload.length);
    m.findings = verdict.findings.map((f) => (f.action === 'redact' ? { ...f, action: 'block' } : f));
    const blocking = m.findings.filter((f) => f.action === 'block');
    if (blocking.length === 0) {
      countMessage('monitor');
      counts.monitored++;
      audit(m);
      return { forward: payload };
    }
    countMessage('block');
    counts.blocked++;
    const event = errorBody('sensitive_content', blockMessage(blocking, what));
    m.decision = 'block';
    m.reason = 'sensitive_content';
    m.bytesOut = Buffer.byteLength(event);
    audit(m);
    return { block: { event, reason: blockCloseReason([...new Set(blocking.map((f) => f.rule))]) } };
  };

  let ended: Termination | null = null;
  // What the relay holds of the client's counts against the body budgets, like a request body.
  const budgetKeyOf = budgetKey(flow.client);
  let refusedScope: BudgetScope | null = null;
  const budget = opts.budget && {
    take: (bytes: number) => (refusedScope = opts.budget!.take(budgetKeyOf, bytes)) === null,
    release: (bytes: number) => opts.budget!.give(budgetKeyOf, bytes),
  };
  const relay = new InspectedRelay({
    client,
    upstream,
    head,
    deflate,
    maxPayload: opts.maxBodyBytes,
    judge,
    judgeControl,
    ...(budget ? { budget } : {}),
    onTerminate: (t) => {
      ended = t;
      if (t.kind !== 'shutdown') {
        const { decision, reason } = TERMINATION[t.kind];
        flow.decision = decision;
        // The client's own budget is its rate (429's type); the process's is everyone's (503's).
        flow.reason = t.kind === 'over_budget' && refusedScope === 'client' ? 'rate_limited' : reason;
      }
      if (t.kind === 'too_large') {
        // Refused while it arrived: its size is unknown past the limit, and nothing of it was forwarded.
        countMessage('block');
        const m = messageFlow(0);
        m.decision = 'block';
        m.reason = 'body_too_large';
        audit(m);
      }
    },
    onClosed: () => {
      counts.out = relay.messagesOut;
      if (ended === null && counts.redacted > 0) flow.decision = 'redact';
      res.emit('close');
    },
  });
  relay.start();
  // A drain ends the connection as a server going away does (RFC 6455 §7.4.1: 1001) on both sides.
  const unregister = opts.activity.onForcedEnd(() => relay.goingAway());
  res.once('close', unregister);
}

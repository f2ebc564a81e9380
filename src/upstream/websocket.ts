// WebSocket upgrades on a route (SPEC §3, §11): the handshake goes to the same upstream through the
// same dialling rules (SNI, CA, pins, connectTo) as plain requests. Then, by the destination's
// `websocket` policy: `inspect` (default) judges every client message like a body before it is
// forwarded (ws-relay.ts), `relay` pipes bytes both ways uninspected, `refuse` answers 426 first.
import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { AuditLog } from '../audit/log.js';
import type { Inspector } from '../inspect/index.js';
import type { Metrics } from '../metrics.js';
import type { ActivityTracker } from '../pipeline/activity.js';
import type { Exchange, Stage } from '../pipeline/exchange.js';
import { ProxyError, errorBody } from '../pipeline/errors.js';
import { Flow, type Decision, type MessageCounts } from '../pipeline/flow.js';
import { inspectMessage } from '../pipeline/stages/inspect.js';
import { clientResponseHeaders, upstreamRequestHeaders, type HeaderMap } from './headers.js';
import { upstreamError } from './forward.js';
import { ExtensionError, acceptedDeflate, deflateOffersOnly, type DeflateParams } from './ws-framing.js';
import { InspectedRelay, MAX_CLOSE_REASON, type Termination, type TerminationKind, type Verdict } from './ws-relay.js';

export interface WebSocketOptions {
  dispatcher: Dispatcher;
  firstByteTimeout: number;
  idleTimeout: number;
  inspector: Inspector;
  /** inspect.maxBodyBytes: the largest message, reassembled and inflated. */
  maxBodyBytes: number;
  audit: AuditLog;
  metrics: Metrics;
  /** A drain ends open WebSockets through it once its grace period is over. */
  activity: ActivityTracker;
}

/** A refusal is a few hundred bytes of JSON; more than this is cut rather than relayed. */
const REFUSAL_BODY_LIMIT = 64 * 1024;

type Upgraded = { socket: Duplex; headers: IncomingHttpHeaders };

/**
 * The last stage of an upgrade flow. The Exchange's response is a ServerResponse bound to the raw
 * socket (so refusals, aigate's or the upstream's, use the normal response path); once upgraded it
 * is detached, and its `close` is emitted by hand when the piped connection ends, which is when the
 * flow is audited.
 */
export function websocketStage(opts: WebSocketOptions): Stage {
  return async (ex) => {
    const { req, res, flow } = ex;
    const target = ex.target!;
    if (String(req.headers['upgrade'] ?? '').toLowerCase() !== 'websocket') {
      throw new ProxyError('bad_request', 'only WebSocket upgrades are proxied');
    }
    // Node hands over whatever follows an upgrade request's head as if it were WebSocket frames,
    // so a body would reach the upstream after the 101 unread by anyone: refused instead.
    const contentLength = req.headers['content-length'];
    if (req.method !== 'GET' || req.headers['transfer-encoding'] !== undefined || (contentLength !== undefined && contentLength !== '0')) {
      throw new ProxyError('bad_request', 'a WebSocket handshake is a GET without a body (RFC 6455 §4.1); nothing was forwarded');
    }
    if (target.websocket === 'refuse') {
      throw new ProxyError('websocket_refused', `WebSocket is not allowed to ${target.route} (websocket: refuse); use HTTP`);
    }
    const inspect = target.websocket === 'inspect';
    const clientSocket = req.socket as Duplex;
    const headers = upstreamRequestHeaders(req.rawHeaders, {
      host: target.hostHeader,
      clientIp: flow.client.ip,
      dropContentEncoding: false,
      proto: ex.destination?.scheme ?? 'https',
    });
    if (inspect && headers['sec-websocket-extensions'] !== undefined) {
      const offers = deflateOffersOnly(headers['sec-websocket-extensions']);
      if (offers === null) delete headers['sec-websocket-extensions'];
      else headers['sec-websocket-extensions'] = offers;
    }
    const upgraded = await upgradeOrRelay(ex, opts, headers);
    if (!upgraded) return;
    const upstream = upgraded.socket;
    if (clientSocket.destroyed) {
      upstream.destroy();
      return;
    }
    let deflate: (() => DeflateParams[]) | null = null;
    if (inspect) {
      try {
        deflate = acceptedDeflate(upgraded.headers['sec-websocket-extensions']);
      } catch (err) {
        if (!(err instanceof ExtensionError)) throw err;
        upstream.destroy();
        throw new ProxyError('upstream_unavailable', `${err.message}; the upgrade was not completed`);
      }
    }

    const lines = ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade'];
    const responseHeaders = { ...clientResponseHeaders(upgraded.headers), ...ex.responseHeaders };
    for (const [name, value] of Object.entries(responseHeaders)) {
      for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${v}`);
    }
    res.detachSocket(clientSocket as never);
    flow.status = 101;
    clientSocket.write(lines.join('\r\n') + '\r\n\r\n');
    const head = ex.body;
    flow.bytesIn += head.length;
    clientSocket.on('data', (chunk: Buffer) => (flow.bytesIn += chunk.length));
    upstream.on('data', (chunk: Buffer) => (flow.bytesOut += chunk.length));
    for (const s of [clientSocket, upstream] as Array<Duplex & { setTimeout?: (ms: number, cb: () => void) => void }>) {
      s.setTimeout?.(opts.idleTimeout, () => s.destroy());
    }
    clientSocket.on('error', () => clientSocket.destroy());
    upstream.on('error', () => upstream.destroy());
    if (inspect) {
      inspectMessages(ex, opts, clientSocket, upstream, head, deflate);
      return;
    }
    const unregister = opts.activity.onForcedEnd(() => {
      clientSocket.destroy();
      upstream.destroy();
    });
    res.once('close', unregister);
    if (head.length > 0) upstream.write(head);
    let closed = 0;
    const onClose = () => {
      clientSocket.destroy();
      upstream.destroy();
      if (++closed === 2) res.emit('close');
    };
    clientSocket.once('close', onClose);
    upstream.once('close', onClose);
    clientSocket.pipe(upstream);
    upstream.pipe(clientSocket);
  };
}

/**
 * Asks the upstream to upgrade. Resolves with null when it answered with an ordinary response
 * instead (401 for an expired token, 403, 429): that is the vendor's answer, not an aigate failure,
 * so it goes to the client as sent and is audited with its own status (SPEC §3).
 */
function upgradeOrRelay(
  ex: Exchange,
  opts: WebSocketOptions,
  headers: HeaderMap,
): Promise<Upgraded | null> {
  const { res, flow } = ex;
  const target = ex.target!;
  return new Promise((resolve, reject) => {
    let relayed = 0;
    let settled = false;
    const settle = (value: Upgraded | null, err?: unknown) => {
      if (settled) return;
      settled = true;
      if (err === undefined) resolve(value);
      else reject(upstreamError(err, target.hostHeader));
    };
    opts.dispatcher.dispatch(
      {
        origin: target.origin,
        path: target.path,
        method: 'GET',
        headers,
        upgrade: 'websocket',
        headersTimeout: opts.firstByteTimeout,
        bodyTimeout: opts.idleTimeout,
      },
      {
        onRequestStart(c) {
          if (res.destroyed) c.abort(new Error('client closed the connection'));
        },
        onRequestUpgrade(_c, _statusCode, upstreamHeaders, socket) {
          settle({ socket, headers: upstreamHeaders });
        },
        onResponseStart(_c, statusCode, upstreamHeaders) {
          if (statusCode < 200) return;
          res.writeHead(statusCode, Object.assign(clientResponseHeaders(upstreamHeaders), ex.responseHeaders));
        },
        onResponseData(c, chunk) {
          const room = REFUSAL_BODY_LIMIT - relayed;
          const part = chunk.length <= room ? chunk : chunk.subarray(0, room);
          relayed += part.length;
          flow.bytesOut += part.length;
          if (part === chunk) {
            res.write(part);
            return;
          }
          // Cut once what fits is out, never ended: a truncated body must not look complete.
          settle(null);
          c.abort(new Error('WebSocket refusal body over the relay limit'));
          res.write(part, () => res.destroy());
        },
        onResponseEnd() {
          res.end();
          settle(null);
        },
        onResponseError(_c, err) {
          if (settled) return;
          if (!res.headersSent) return settle(null, err);
          // Failed mid-body, audited as forward.ts does; the status is already out, so cut the stream.
          flow.decision = 'error';
          flow.reason = (err as { code?: string }).code === 'UND_ERR_BODY_TIMEOUT' ? 'upstream_timeout' : 'upstream_unavailable';
          res.destroy();
          settle(null);
        },
      },
    );
  });
}

/** How a connection aigate closed is audited. */
const TERMINATION: Record<TerminationKind, { decision: Decision; reason: ProxyError['type'] | null }> = {
  blocked: { decision: 'block', reason: 'sensitive_content' },
  too_large: { decision: 'block', reason: 'body_too_large' },
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
function inspectMessages(
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

  const judge = async (message: Buffer): Promise<Verdict> => {
    const m = messageFlow(message.length);
    counts.in++;
    const verdict = await inspectMessage(opts.inspector, message, { action: target.action }, opts.maxBodyBytes, 'message');
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

  let ended: Termination | null = null;
  const relay = new InspectedRelay({
    client,
    upstream,
    head,
    deflate,
    maxPayload: opts.maxBodyBytes,
    judge,
    onTerminate: (t) => {
      ended = t;
      if (t.kind !== 'shutdown') {
        const { decision, reason } = TERMINATION[t.kind];
        flow.decision = decision;
        flow.reason = reason;
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

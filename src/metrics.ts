// Prometheus metrics (SPEC §9). One registry per running proxy, passed to whoever records, so tests
// can start several proxies in one process without sharing counters.
import { createRequire } from 'node:module';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { FastCounter, type CounterSeries } from './metrics-counter.js';
import { FastHistogram, type HistogramSeries } from './metrics-histogram.js';

const { version: AIGATE_VERSION } = createRequire(import.meta.url)('../package.json') as { version: string };
/** End-to-end and upstream latencies of AI APIs: milliseconds for a refusal, minutes for a long stream. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export class Metrics {
  readonly registry = new Registry();

  // FastCounter (metrics-counter.ts): counted on every request.
  readonly requests = new FastCounter(
    'aigate_requests_total',
    'HTTP requests handled (the requests inside an intercepted tunnel included; CONNECTs are in aigate_tunnels_total), by route (or allowed host), decision and status sent',
    ['route', 'decision', 'status'],
    this.registry,
  );

  readonly findings = new Counter({
    name: 'aigate_findings_total',
    help: 'Sensitive-content findings, by rule id',
    labelNames: ['rule'] as const,
    registers: [this.registry],
  });

  readonly rateLimitStoreErrors = new Counter({
    name: 'aigate_ratelimit_store_errors_total',
    help: 'Rate-limit checks answered by onStoreError because the store was unreachable or slow',
    registers: [this.registry],
  });

  // FastHistogram (metrics-histogram.ts), as the two below: observed on every request.
  readonly upstreamDuration = new FastHistogram(
    'aigate_upstream_duration_seconds',
    'Time from sending a request upstream to its response headers',
    'route',
    LATENCY_BUCKETS,
    this.registry,
  );

  readonly tunnels = new Counter({
    name: 'aigate_tunnels_total',
    help: 'CONNECT requests on the forward listener (answered, refused or relayed), by allowed host, decision and status sent; counted when the tunnel closes',
    labelNames: ['route', 'decision', 'status'] as const,
    registers: [this.registry],
  });

  // FastHistogram (metrics-histogram.ts): observed on every request and every scan.
  readonly requestDuration = new FastHistogram(
    'aigate_request_duration_seconds',
    'Time from a request arriving to its response ending (audit durationMs), by route (or allowed host)',
    'route',
    LATENCY_BUCKETS,
    this.registry,
  );

  readonly scanDuration = new FastHistogram(
    'aigate_scan_duration_seconds',
    'Time to inspect one body or message (decode, scan, actions), on the event loop or a scan thread',
    null,
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    this.registry,
  );

  /** Set by the proxy: requests whose responses are not over, and connections carrying a stream. */
  openWork: () => { requests: number; streams: number } = () => ({ requests: 0, streams: 0 });

  readonly requestsInFlight: Gauge = new Gauge({
    name: 'aigate_requests_in_flight',
    help: 'HTTP requests received whose responses are not over yet (a long SSE response counts until it ends)',
    registers: [this.registry],
    collect: () => this.requestsInFlight.set(this.openWork().requests),
  });

  readonly streamsOpen: Gauge = new Gauge({
    name: 'aigate_streams_open',
    help: 'Client connections carrying bytes outside HTTP request/response now: blind tunnels, WebSockets, CONNECTs being answered',
    registers: [this.registry],
    collect: () => this.streamsOpen.set(this.openWork().streams),
  });

  readonly buildInfo = new Gauge({
    name: 'aigate_build_info',
    help: 'Always 1; the labels say which aigate and Node.js run',
    labelNames: ['version', 'node'] as const,
    registers: [this.registry],
    aggregator: 'first',
  });

  readonly configReloads = new Counter({
    name: 'aigate_config_reloads_total',
    help: 'Configuration reloads (SIGHUP, aigate reload) by outcome: applied, or refused (the running configuration kept)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly certificateExpiry = new Gauge({
    name: 'aigate_certificate_expiry_timestamp_seconds',
    help: 'When a configured certificate stops being valid (Unix time; the earliest of a CA bundle), by config key (tls.cert, tls.ca.cert, upstreamTls.ca[i])',
    labelNames: ['certificate'] as const,
    registers: [this.registry],
    aggregator: 'min',
  });

  readonly upstreamCertificateErrors = new Counter({
    name: 'aigate_upstream_certificate_errors_total',
    help: 'Upstream TLS connections refused for a bad chain or a pin mismatch, by host',
    labelNames: ['host'] as const,
    registers: [this.registry],
  });

  readonly websocketMessages = new Counter({
    name: 'aigate_websocket_messages_total',
    help: 'WebSocket messages from clients on inspected connections, by route (or allowed host) and decision (allow, monitor, redact, block)',
    labelNames: ['route', 'decision'] as const,
    registers: [this.registry],
  });

  readonly auditWriteErrors = new Counter({
    name: 'aigate_audit_write_errors_total',
    help: 'Times an audit log sink started failing to write (disk full, I/O error), by sink',
    labelNames: ['sink'] as const,
    registers: [this.registry],
  });

  readonly auditFailing = new Gauge({
    name: 'aigate_audit_failing',
    help: '1 while an audit log sink cannot write (its lines are kept in memory, then dropped), else 0; summed over --workers',
    labelNames: ['sink'] as const,
    registers: [this.registry],
  });

  // limits.* (issue #19). Gauges read their source when scraped (see watch…), so the hot path
  // touches no metric while a body grows.
  private bufferedBodiesSource: () => number = () => 0;
  private authPendingSource: () => number = () => 0;

  readonly bufferedBodyBytes: Gauge = new Gauge({
    name: 'aigate_buffered_body_bytes',
    help: 'Request-body bytes held for inspection now (limits.bufferedBodyBytes, a budget per process; summed over --workers)',
    registers: [this.registry],
    collect: (): void => this.bufferedBodyBytes.set(this.bufferedBodiesSource()),
  });

  readonly bodyBudgetRefusals = new Counter({
    name: 'aigate_body_budget_refusals_total',
    help: 'Requests refused because their body would pass a buffered-body budget: client (429) or process (503)',
    labelNames: ['scope'] as const,
    registers: [this.registry],
  });

  readonly authPending: Gauge = new Gauge({
    name: 'aigate_auth_checks_pending',
    help: 'Proxy-auth password checks queued or running now (limits.authPending)',
    registers: [this.registry],
    collect: (): void => this.authPending.set(this.authPendingSource()),
  });

  readonly authChecks = new Counter({
    name: 'aigate_auth_checks_total',
    help: 'Proxy-auth bcrypt comparisons run, by result (valid | invalid)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly authChecksDropped = new Counter({
    name: 'aigate_auth_checks_dropped_total',
    help: 'Queued proxy-auth checks dropped without running because their clients left',
    registers: [this.registry],
  });

  readonly authRefusals = new Counter({
    name: 'aigate_auth_refusals_total',
    help: 'Proxy logins refused unchecked: queue_full (503, limits.authPending) or too_many_failures (429, limits.authFailuresPerMinute)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  /** aigate_buffered_body_bytes reads `bytes` when scraped. */
  watchBufferedBodies(bytes: () => number): void {
    this.bufferedBodiesSource = bytes;
  }

  /** aigate_auth_checks_pending reads `pending` when scraped. */
  watchAuthPending(pending: () => number): void {
    this.authPendingSource = pending;
  }

  readonly connectionsRefused = new Counter({
    name: 'aigate_connections_refused_total',
    help: 'Client connections refused at accept, by listener and reason (per_client_limit: limits.connectionsPerClient)',
    labelNames: ['listener', 'reason'] as const,
    registers: [this.registry],
  });

  readonly h2Refusals = new Counter({
    name: 'aigate_h2_refusals_total',
    help: 'HTTP/2 streams and connections refused before a request existed (no audit line), by listener and reason (stream_refused, session_error, session_stalled, no_connection)',
    labelNames: ['listener', 'reason'] as const,
    registers: [this.registry],
  });

  /** Set by the proxy: how many client connections are open (read when /metrics is scraped). */
  openConnections: () => number = () => 0;

  readonly connectionsOpen: Gauge = new Gauge({
    name: 'aigate_connections_open',
    help: 'Client connections open on the gateway and forward listeners (tunnels and WebSockets included)',
    registers: [this.registry],
    collect: () => this.connectionsOpen.set(this.openConnections()),
  });

  readonly acceptErrors = new Counter({
    name: 'aigate_accept_errors_total',
    help: 'Connections a listener failed to accept, by listener and error code (EMFILE: out of file descriptors)',
    labelNames: ['listener', 'code'] as const,
    registers: [this.registry],
  });

  readonly fdExhausted = new Counter({
    name: 'aigate_fd_exhausted_total',
    help: 'Once-a-second checks that found the process out of file descriptors (new connections are then dropped unseen)',
    registers: [this.registry],
  });

  constructor(opts: { processMetrics?: boolean } = {}) {
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.buildInfo.set({ version: AIGATE_VERSION, node: process.version }, 1);
  }

  // prom-client hashes a label object on every inc/observe (sorting its keys); the label sets of
  // the per-request series are few (routes from config, decisions, status codes), so each one's
  // child is looked up once and kept.
  // Keyed route → decision → status, not by a joined string: the route and decision strings are
  // the same objects every time (their hashes cached), a joined key would be built and hashed anew.
  private readonly requestSeries = new Map<string, Map<string, Map<number, CounterSeries>>>();
  private readonly upstreamSeries = new Map<string, HistogramSeries>();
  private readonly durationSeries = new Map<string, HistogramSeries>();
  private readonly tunnelSeries = new Map<string, ReturnType<Metrics['tunnels']['labels']>>();

  /** aigate_requests_total{route, decision, status} += 1 */
  countRequest(route: string, decision: string, status: number): void {
    let byDecision = this.requestSeries.get(route);
    if (byDecision === undefined) this.requestSeries.set(route, (byDecision = new Map()));
    let byStatus = byDecision.get(decision);
    if (byStatus === undefined) byDecision.set(decision, (byStatus = new Map()));
    let series = byStatus.get(status);
    if (series === undefined) {
      series = this.requests.child(route, decision, String(status));
      byStatus.set(status, series);
    }
    series.inc();
  }

  /** One observation of aigate_upstream_duration_seconds{route}. */
  observeUpstream(route: string, seconds: number): void {
    let series = this.upstreamSeries.get(route);
    if (series === undefined) {
      series = this.upstreamDuration.child(route);
      this.upstreamSeries.set(route, series);
    }
    series.observe(seconds);
  }

  /** One observation of aigate_request_duration_seconds{route}. */
  observeRequest(route: string, seconds: number): void {
    let series = this.durationSeries.get(route);
    if (series === undefined) {
      series = this.requestDuration.child(route);
      this.durationSeries.set(route, series);
    }
    series.observe(seconds);
  }

  /** aigate_tunnels_total{route, decision, status} += 1: one CONNECT, whatever became of it. */
  countTunnel(route: string, decision: string, status: number): void {
    const key = `${route}\n${decision}\n${status}`;
    let series = this.tunnelSeries.get(key);
    if (series === undefined) {
      series = this.tunnels.labels({ route, decision, status: String(status) });
      this.tunnelSeries.set(key, series);
    }
    series.inc();
  }
}

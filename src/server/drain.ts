// The drain (SIGTERM/SIGINT, SPEC §10): listeners stop accepting, HTTP/2 clients get GOAWAY, idle
// connections close at once, work in progress gets the grace period, then everything still open
// is closed and given a moment to write its audit line before the log closes.
import type { Server } from 'node:net';
import type { Logger } from 'pino';
import type { ActivityTracker } from '../pipeline/activity.js';
import type { ConnectionRegistry } from './connections.js';
import type { H2Sessions } from './h2.js';

export interface DrainTargets {
  /** Every listener; `admin` keeps answering (/readyz says 503) until the end. */
  servers: ReadonlyArray<{ name: string; server: Server }>;
  h2Listeners: readonly H2Sessions[];
  connections: ConnectionRegistry;
  /** The process's tracker: flows, WebSockets, tunnels and CONNECTs of every configuration generation. */
  activity: ActivityTracker;
  /** Open dashboard event streams, ended before the admin server closes. */
  dashboard?: { close(): void } | undefined;
  logger: Logger;
}

/** Drains the listeners; resolves how many units of work the grace period had to cut. */
export async function drainListeners(t: DrainTargets, graceMs: number): Promise<{ forced: number }> {
  const { servers, h2Listeners, connections, activity, logger } = t;
  for (const s of servers) if (s.name !== 'admin') s.server.close();
  // HTTP/2 clients are told to go elsewhere (GOAWAY): their open streams finish, no new one starts.
  for (const h2 of h2Listeners) h2.goAway();
  // Connections between requests (keep-alive, idle intercepted tunnels) would hold the drain
  // open: close them now and again as in-flight responses finish (they turn idle).
  connections.closeIdle();
  const sweeper = setInterval(() => connections.closeIdle(), 100);
  const finished = await activity.idle(graceMs);
  clearInterval(sweeper);
  const forced = finished ? 0 : activity.active;
  if (!finished) {
    // Inspected WebSockets are ended their own way first (close 1001 both ways), with a
    // moment to flush it before every connection left is closed.
    activity.endAll();
    await activity.idle(WEBSOCKET_CLOSE_WAIT_MS);
  }
  // Every connection still open — streams, WebSockets, blind tunnels, CONNECTs in progress —
  // is closed; each flow on it writes its line as its socket closes, before the log closes.
  // Closing costs ~0.2 ms a connection (2,000 idle tunnels: ~0.4 s, measured by the soak), so
  // the wait for their lines grows with how many there are.
  const closeWaitMs = CLOSE_WAIT_MS + connections.size;
  connections.closeAll();
  t.dashboard?.close();
  for (const s of servers) {
    (s.server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
    s.server.close();
  }
  const [idle, empty] = await Promise.all([activity.idle(closeWaitMs), connections.empty(closeWaitMs)]);
  if (!idle || !empty) {
    logger.error({ flows: activity.active, connections: connections.size, waitedMs: closeWaitMs }, 'connections still closing after the drain; their audit lines may be lost');
  }
  return { forced };
}

/** After the grace period, how long closed connections get to write their lines (plus 1 ms each). */
const CLOSE_WAIT_MS = 500;
/** After the grace period, how long ended WebSockets get to send their close frames. */
const WEBSOCKET_CLOSE_WAIT_MS = 200;

// The ioredis client for `rateLimit.store: redis`, tuned so the limiter never makes a request wait
// on Redis: it answers from Redis within `commandTimeout` or fails at once and `onStoreError`
// decides (SPEC §6).
//
// ---- README: shared rate limits with Redis -------------------------------------------------
// With `rateLimit.store: redis` every proxy process and replica takes from the same bucket per
// key: one atomic Lua script run per request, on Redis's own clock (EVALSHA, loaded once per
// connection); the requests that arrive while a call is out share the next one. Buckets are hashes
// `<prefix><key>` that expire by themselves once full again, so idle clients leave no keys behind.
// Redis 4 or later; Redis 6+/7 recommended.
//
//   rateLimit:
//     store: redis
//     redis:
//       url: "${REDIS_URL:-redis://127.0.0.1:6379}"  # redis://[user[:password]@]host[:port][/db],
//                                                    # rediss:// for TLS; percent-encode @ : / in
//                                                    # the password. It is never logged.
//       prefix: "aigate:rl:"      # key prefix; use one per deployment sharing a Redis
//       commandTimeout: 50ms      # a check slower than this counts as a store error
//     onStoreError: allow         # allow (fail open) | deny (429, Retry-After: 1) while Redis is down
//
// Sentinel: list the sentinels and the master group name; `url` then only supplies the data
// nodes' user, password, db and TLS (its host is ignored; rediss:// means TLS to the data nodes,
// the sentinels are asked in plain text, without a password). Failover is followed automatically.
//
//       url: "redis://:${REDIS_PASSWORD}@ignored/0"
//       sentinels: [ { host: sentinel-1, port: 26379 }, { host: sentinel-2, port: 26379 } ]
//       name: mymaster
//
// Cluster: list some nodes (the rest are discovered); `url` supplies user, password and TLS, the
// database must be 0. Each bucket is one key, so it lives in one slot.
//
//       url: "redis://:${REDIS_PASSWORD}@ignored"
//       cluster: [ { host: redis-1, port: 6379 }, { host: redis-2, port: 6379 } ]
//
// While Redis is unreachable or slower than `commandTimeout`, each check is answered by
// `onStoreError` at once (nothing is queued), `aigate_ratelimit_store_errors_total` counts them and
// a warning is logged at most every 10 s with the number of failures since the last one. The client
// reconnects in the background (backoff capped at 1 s) and shared limiting resumes by itself.
// ----------------------------------------------------------------------------------------------
import { createRequire } from 'node:module';
import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import type { RateLimitConfig } from '../config/schema.js';
import { parseRedisUrl, type RedisUrl } from './redis-url.js';

let loaded: typeof import('ioredis') | undefined;

/**
 * ioredis, loaded on first use: a proxy on the memory store does not need it. The version is held
 * at 5.x: ioredis 6 declares `class VerbatimString extends String`, which changes String.prototype,
 * after which V8 no longer inlines string methods anywhere in the process (a charCodeAt loop over
 * 256 KiB: 0.42 → 2.2 ms on the bench host). test/unit/ratelimit.test.ts checks that neither store
 * does that, so an upgrade that brings it back fails the tests.
 */
export function ioredis(): typeof import('ioredis') {
  loaded ??= createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
  return loaded;
}

export type RedisConfig = RateLimitConfig['redis'];
export type RedisClient = Redis | Cluster;

export interface RedisConnection {
  client: RedisClient;
  /** Where it connects, fit for logs: never contains the password. */
  target: string;
  /** Values to scrub from anything logged (the password, when there is one). */
  secrets: string[];
  isCluster: boolean;
}

/** Reconnect delay: quick first retries so a restarted Redis is used again within ~1 s. */
export function reconnectDelay(times: number): number {
  return Math.min(25 * 2 ** Math.min(times, 6), 1000) + Math.floor(Math.random() * 50);
}

const CONNECT_TIMEOUT_MS = 2000;

function nodeList(nodes: { host: string; port: number }[]): string {
  return nodes.map((n) => `${n.host}:${n.port}`).join(',');
}

/** Creates the client; it connects in the background and never throws for an unreachable Redis. */
export function createRedisConnection(cfg: RedisConfig): RedisConnection {
  let url: RedisUrl;
  try {
    url = parseRedisUrl(cfg.url);
  } catch (err) {
    throw new Error(`rateLimit.redis.url: ${(err as Error).message}`);
  }
  const secrets = url.password ? [url.password] : [];
  const user = url.username ? `${url.username}@` : '';
  const scheme = url.tls ? 'rediss' : 'redis';

  // What makes a down Redis cheap: no offline queue (a command while disconnected fails at once),
  // no retries or replays of a take (it was already answered by onStoreError; replaying would
  // charge it twice), and a socket timeout so a silently dead connection is dropped and redialled
  // instead of timing out request after request. The per-take timeout for a Redis that is up but
  // stuck (`commandTimeout`) is the store's own (redis.ts: withDeadline), not ioredis's, which
  // misfires after event-loop stalls.
  const perNode = {
    username: url.username,
    password: url.password,
    tls: url.tls ? {} : undefined,
    socketTimeout: Math.max(1000, cfg.commandTimeout * 20),
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: CONNECT_TIMEOUT_MS,
    connectionName: 'aigate-ratelimit',
  } satisfies RedisOptions;

  if (cfg.sentinels && cfg.cluster) {
    throw new Error('rateLimit.redis: give either sentinels (with name) or cluster, not both');
  }

  if (cfg.cluster) {
    if (cfg.cluster.length === 0) throw new Error('rateLimit.redis.cluster: must list at least one node');
    if (url.db !== 0) throw new Error('rateLimit.redis.url: Redis Cluster only has database 0');
    const options: ClusterOptions = {
      enableOfflineQueue: false,
      clusterRetryStrategy: reconnectDelay,
      // Redirections and failover retries happen inside ioredis; the store's timeout bounds the
      // whole take, these keep the retries themselves short.
      retryDelayOnFailover: 10,
      retryDelayOnClusterDown: 10,
      retryDelayOnTryAgain: 10,
      slotsRefreshTimeout: 1000,
      redisOptions: perNode,
    };
    const cluster = new (ioredis().Cluster)(cfg.cluster, options);
    // ioredis opens a connection to a cluster node lazily, on the first command for it, and with
    // no offline queue the checks that race that connect fail. Open each one as soon as the node
    // is known instead (at start-up, after failover, after resharding).
    cluster.on('+node', (node: Redis) => {
      if (node.status === 'wait') node.connect().catch(() => undefined);
    });
    return {
      client: cluster,
      target: `${scheme} cluster ${nodeList(cfg.cluster)}${user ? `, user ${url.username}` : ''}`,
      secrets,
      isCluster: true,
    };
  }

  const common: RedisOptions = {
    ...perNode,
    db: url.db,
    enableOfflineQueue: false,
    retryStrategy: reconnectDelay,
  };

  if (cfg.sentinels) {
    if (cfg.sentinels.length === 0) throw new Error('rateLimit.redis.sentinels: must list at least one sentinel');
    if (!cfg.name) throw new Error('rateLimit.redis.name: the Sentinel master group name is required with sentinels');
    return {
      client: new (ioredis().Redis)({
        ...common,
        sentinels: cfg.sentinels,
        name: cfg.name,
        sentinelRetryStrategy: reconnectDelay,
        sentinelCommandTimeout: CONNECT_TIMEOUT_MS,
        // rediss:// means TLS to the data nodes; the sentinels themselves are asked in plain text.
        enableTLSForSentinelMode: url.tls,
      }),
      target: `${scheme} sentinel master "${cfg.name}" via ${nodeList(cfg.sentinels)}, db ${url.db}${user ? `, user ${url.username}` : ''}`,
      secrets,
      isCluster: false,
    };
  }
  if (cfg.name) throw new Error('rateLimit.redis.name: only used with sentinels');

  const hostPort = url.host.includes(':') ? `[${url.host}]:${url.port}` : `${url.host}:${url.port}`;
  return {
    client: new (ioredis().Redis)({ ...common, host: url.host, port: url.port }),
    target: `${scheme}://${user}${hostPort}/${url.db}`,
    secrets,
    isCluster: false,
  };
}

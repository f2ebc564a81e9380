// `rateLimit.redis.url`, parsed in one place: by the config schema (so `aigate check --offline`
// refuses what `start` would) and by the connection that uses it.

export interface RedisUrl {
  host: string;
  port: number;
  username: string | undefined;
  password: string | undefined;
  db: number;
  tls: boolean;
}

/** The parts of `rateLimit.redis.url`; throws an Error saying what is wrong (never echoing the value). */
export function parseRedisUrl(url: string): RedisUrl {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    // Not echoing the value: it may hold the password.
    throw new Error('must be a URL like redis://[user[:password]@]host[:port][/db]');
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new Error(`scheme must be redis:// or rediss://, got ${u.protocol}//`);
  }
  const dbText = u.pathname.replace(/^\/+/, '');
  const db = dbText === '' ? 0 : Number(dbText);
  if (!Number.isInteger(db) || db < 0) {
    throw new Error(`the path must be a database number, got /${dbText}`);
  }
  return {
    host: u.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1',
    port: u.port === '' ? 6379 : Number(u.port),
    username: u.username === '' ? undefined : decodeURIComponent(u.username),
    password: u.password === '' ? undefined : decodeURIComponent(u.password),
    db,
    tls: u.protocol === 'rediss:',
  };
}

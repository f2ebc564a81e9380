// Gateway routing (SPEC §3): the request target is normalised first, then matched against route
// prefixes. Only the path decides; the Host header and any absolute-form authority are ignored, so
// no request can be steered to a host the config does not name.
import type { RouteConfig, Action, BucketConfig, WebSocketPolicy } from '../config/schema.js';

export interface RouteTarget {
  route: string;
  origin: string;
  hostHeader: string;
  /** Path and query to send upstream. */
  path: string;
  action: Action | undefined;
  bucket: BucketConfig | undefined;
  websocket: WebSocketPolicy | undefined;
}

export class BadPathError extends Error {}

interface CompiledRoute {
  name: string;
  prefix: string; // "/copilot/"
  bare: string; // "/copilot"
  origin: string;
  hostHeader: string;
  basePath: string; // upstream path without trailing slash ("" for the root)
  action: Action | undefined;
  bucket: BucketConfig | undefined;
  websocket: WebSocketPolicy | undefined;
}

// Percent-encodings that change how a path splits into segments; anything else is passed on as
// the client wrote it so upstream signatures and encodings are untouched.
const STRUCTURAL_ESCAPES = /%(2e|2f|5c)/gi;
const MAX_PATH_LENGTH = 8192;
// Non-empty segments that neither start with "." nor hold "%", "\\" or control characters: such a
// path is its own normal form (nearly every real request), so the rewrite below can be skipped.
// eslint-disable-next-line no-control-regex
const ALREADY_NORMAL = /^\/(?:[^/\\%.\x00-\x1f\x7f][^/\\%\x00-\x1f\x7f]*(?:\/[^/\\%.\x00-\x1f\x7f][^/\\%\x00-\x1f\x7f]*)*\/?)?$/;

/**
 * Resolves `.` and `..` segments, collapses empty segments and decodes `%2e`, `%2f`, `%5c`.
 * Returns the normalised absolute path (always starting with "/"), keeping a trailing slash.
 */
export function normalisePath(rawPath: string): string {
  if (rawPath.length > MAX_PATH_LENGTH) throw new BadPathError(`path longer than ${MAX_PATH_LENGTH} bytes`);
  if (ALREADY_NORMAL.test(rawPath)) return rawPath;
  // Control characters and NUL never belong in a path and confuse some upstream parsers.
  if (/[\x00-\x1f\x7f]/.test(rawPath) || /%(0[0-9a-f]|1[0-9a-f]|7f)/i.test(rawPath)) {
    throw new BadPathError('path contains control characters');
  }
  const decoded = rawPath.replace(STRUCTURAL_ESCAPES, (m) => {
    const c = m.toLowerCase();
    return c === '%2e' ? '.' : '/';
  }).replace(/\\/g, '/');
  const segments = decoded.split('/');
  const out: string[] = [];
  for (const seg of segments) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      out.pop();
      continue;
    }
    out.push(seg);
  }
  const last = segments[segments.length - 1];
  const trailing = out.length > 0 && (last === '' || last === '.' || last === '..');
  return '/' + out.join('/') + (trailing ? '/' : '');
}

/** Splits an origin-form or absolute-form request target into path and query ("?…" or ""). */
export function splitTarget(target: string): { path: string; query: string } {
  let t = target;
  if (!t.startsWith('/')) {
    // absolute-form ("https://host/x") or asterisk-form: only the path is ever used.
    const m = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(t);
    if (!m) throw new BadPathError('request target must be a path');
    t = t.slice(m[0].length) || '/';
    if (!t.startsWith('/')) t = '/' + t;
  }
  const hash = t.indexOf('#');
  if (hash !== -1) t = t.slice(0, hash);
  const q = t.indexOf('?');
  return q === -1 ? { path: t, query: '' } : { path: t.slice(0, q), query: t.slice(q) };
}

export class Router {
  private readonly routes: CompiledRoute[];

  constructor(routes: RouteConfig[]) {
    this.routes = routes.map((r) => {
      const u = new URL(r.upstream);
      return {
        name: r.name,
        prefix: r.prefix,
        bare: r.prefix.slice(0, -1),
        origin: u.origin,
        hostHeader: u.host,
        basePath: u.pathname.replace(/\/+$/, ''),
        action: r.action,
        bucket: r.rateLimit,
        websocket: r.websocket,
      };
    });
  }

  /** The route for a normalised path, or undefined. First matching prefix wins (SPEC §3). */
  match(normalisedPath: string, query: string): RouteTarget | undefined {
    for (const r of this.routes) {
      let rest: string;
      if (normalisedPath.startsWith(r.prefix)) rest = normalisedPath.slice(r.prefix.length - 1);
      else if (normalisedPath === r.bare) rest = '/';
      else continue;
      return {
        route: r.name,
        origin: r.origin,
        hostHeader: r.hostHeader,
        path: r.basePath + rest + query,
        action: r.action,
        bucket: r.bucket,
        websocket: r.websocket,
      };
    }
    return undefined;
  }
}

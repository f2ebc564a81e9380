// A node:https client for tests that must send what undici refuses to (hop-by-hop headers,
// spoofed Host, raw paths): the proxy has to cope with clients that do.
import { request } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export function httpsRequest(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer; ca: string; path?: string },
): Promise<RawResponse> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        // A raw path lets tests send targets URL parsing would normalise away (`/a/../b`, `%2f`).
        path: opts.path ?? u.pathname + u.search,
        method: opts.method ?? 'GET',
        headers: opts.headers,
        ca: opts.ca,
        servername: 'localhost',
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

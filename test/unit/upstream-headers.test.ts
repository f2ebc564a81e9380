// The request headers sent upstream, from the client's raw list: hop-by-hop fields and those
// aigate sets are dropped whatever their case, repeated fields kept, aigate's own values win.
import { describe, expect, it } from 'vitest';
import { upstreamRequestHeaders } from '../../src/upstream/headers.js';

const base = { host: 'api.example.com', clientIp: '10.0.0.7', dropContentEncoding: false, proto: 'https' as const };

describe('upstreamRequestHeaders', () => {
  it('drops hop-by-hop, proxy-set, framing and listed fields in any case; keeps repeats in order', () => {
    const raw = [
      'Host', 'evil.example', 'Connection', 'keep-alive, X-Drop-Me', 'Keep-Alive', 'timeout=5', 'Proxy-Connection', 'x',
      'Proxy-Authorization', 'Basic eA==', 'TE', 'trailers', 'Trailer', 'x', 'Transfer-Encoding', 'chunked', 'Upgrade', 'h2c',
      'X-Forwarded-For', '6.6.6.6', 'X-Real-IP', '6.6.6.6', 'X-Forwarded-Proto', 'http', 'X-Forwarded-Host', 'e', 'Forwarded', 'for=x',
      'Content-Length', '12', 'Expect', '100-continue', 'x-drop-me', '1', 'Content-Type', 'application/json',
      'Accept', 'a', 'accept', 'b', 'ACCEPT', 'c', 'Content-Encoding', 'gzip', 'Authorization', 'Bearer k',
    ];
    expect(upstreamRequestHeaders(raw, base)).toEqual({
      'content-type': 'application/json',
      accept: ['a', 'b', 'c'],
      'content-encoding': 'gzip',
      authorization: 'Bearer k',
      host: 'api.example.com',
      'x-real-ip': '10.0.0.7',
      'x-forwarded-for': '10.0.0.7',
      'x-forwarded-proto': 'https',
    });
  });

  it('keeps te: trailers only for a client that reads trailers, and never when Connection lists it', () => {
    const raw = [':method', 'POST', ':path', '/x', 'te', 'Trailers', 'content-encoding', 'br'];
    expect(upstreamRequestHeaders(raw, { ...base, trailers: true, dropContentEncoding: true })).toEqual({
      te: 'Trailers',
      host: 'api.example.com',
      'x-real-ip': '10.0.0.7',
      'x-forwarded-for': '10.0.0.7',
      'x-forwarded-proto': 'https',
    });
    expect(upstreamRequestHeaders(['TE', 'trailers'], base)).not.toHaveProperty('te');
    expect(upstreamRequestHeaders(['Connection', 'TE', 'te', 'trailers'], { ...base, trailers: true })).not.toHaveProperty('te');
  });

  it('set replaces every client value of the same name', () => {
    const out = upstreamRequestHeaders(['X-Tenant', 'mine', 'x-tenant', 'also'], { ...base, set: [['x-tenant', 'corp']] });
    expect(out['x-tenant']).toBe('corp');
  });
});

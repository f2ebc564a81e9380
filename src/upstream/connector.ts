// How aigate dials an upstream: TLS with SNI = the upstream host, the trust of tls/trust.ts (bundled
// roots, NODE_EXTRA_CA_CERTS and the OS store, plus `upstreamTls.ca`), SPKI pins checked on every
// new connection, and `connectTo` / a destination policy deciding which address is dialled (the
// name in SNI and Host never changes).
import { createSecureContext, type TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import { buildConnector } from 'undici';
import { spkiPin } from '../tls/spki.js';
import { upstreamCaCertificates } from '../tls/trust.js';

export class PinMismatchError extends Error {
  readonly code = 'ERR_AIGATE_PIN_MISMATCH';
  constructor(
    readonly host: string,
    readonly seen: string,
  ) {
    super(`certificate of ${host} does not match any configured pin (saw ${seen})`);
    this.name = 'PinMismatchError';
  }
}

export interface DialTarget {
  host: string;
  port: number;
}

export interface ConnectorOptions {
  /** Extra PEM CA certificates (upstreamTls.ca) trusted beside the system store. */
  extraCa: string[];
  /** host (lower-case) → accepted `sha256/<base64>` SPKI pins. */
  pins: Record<string, string[]>;
  /** Milliseconds for TCP + TLS. */
  connectTimeout: number;
  /**
   * Chooses the address to dial for host:port. Gateway mode maps through `connectTo`; forward
   * mode also resolves and checks the address here, at dial time, so the address that was
   * checked is the address that is dialled (no DNS-rebinding window).
   */
  dialTarget: (host: string, port: number) => DialTarget | Promise<DialTarget>;
  onPinMismatch?: (err: PinMismatchError) => void;
  /** Offer ALPN h2 beside http/1.1 (the upstream chooses; undici then speaks HTTP/2 on it). */
  allowH2?: boolean;
}

export function createConnector(opts: ConnectorOptions): buildConnector.connector {
  const base = buildConnector({
    // One context for every upstream connection. Given `ca` instead, tls.connect would build a
    // fresh context per connection, parsing the ~140 system roots each time: ~40 ms of blocked
    // event loop per new upstream connection, felt by every stream the process carries.
    secureContext: createSecureContext({ ca: upstreamCaCertificates(opts.extraCa) }),
    timeout: opts.connectTimeout,
    keepAlive: true,
    maxCachedSessions: 1000,
    allowH2: opts.allowH2 ?? false,
  });
  const pins = new Map(Object.entries(opts.pins).map(([h, p]) => [h.toLowerCase(), new Set(p)]));

  return (connectOpts, callback) => {
    const host = connectOpts.hostname;
    const port = Number(connectOpts.port) || (connectOpts.protocol === 'http:' ? 80 : 443);
    const finish = (target: DialTarget) =>
      base(
        {
          ...connectOpts,
          hostname: target.host,
          port: String(target.port),
          // SNI and certificate verification stay on the name the request was for.
          servername: connectOpts.servername || (isIpLiteral(host) ? undefined : host),
        } as buildConnector.Options,
        (err, socket) => {
          if (err || !socket) return callback(err ?? new Error('connect failed'), null);
          const expected = pins.get(host.toLowerCase());
          if (expected) {
            const cert = (socket as TLSSocket).getPeerX509Certificate();
            const seen = cert ? spkiPin(cert) : 'no certificate';
            if (!expected.has(seen)) {
              (socket as Socket).destroy();
              const pinErr = new PinMismatchError(host, seen);
              opts.onPinMismatch?.(pinErr);
              return callback(pinErr, null);
            }
          }
          callback(null, socket);
        },
      );
    let target: DialTarget | Promise<DialTarget>;
    try {
      target = opts.dialTarget(host, port);
    } catch (err) {
      callback(err as Error, null);
      return;
    }
    if (target instanceof Promise) target.then(finish, (err: Error) => callback(err, null));
    else finish(target);
  };
}

function isIpLiteral(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

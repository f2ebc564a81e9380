// Binding a listener and naming an address, shared by every listener aigate opens.
import type { AddressInfo, Server } from 'node:net';

/** Resolves once listening; rejects with a message an operator can act on. */
export function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(new Error(`cannot listen on ${host}:${port}: ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** `host:port`, IPv6 in brackets. */
export function formatAddress(a: Pick<AddressInfo, 'address' | 'port'>): string {
  return a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

// A syslog receiver for the bench's `syslog` variant: accepts TCP connections and discards what
// arrives (counting bytes), so the variant measures aigate's cost of sending, not a receiver's.
import { createServer } from 'node:net';

export async function startSyslogReceiver() {
  let bytes = 0;
  const server = createServer((s) => s.on('data', (d) => (bytes += d.length)));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref(); // the bench's process ends when its work does
  return { port: server.address().port, bytes: () => bytes, close: () => server.close() };
}

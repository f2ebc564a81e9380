// The bench's WebSocket upstream (its own process): echoes every message as it came (text as
// text, binary as binary) over TLS, without compression on /plain and with permessage-deflate
// (context takeover) on /deflate. Idle connections are simply held.
//   node bench/lib/ws-server.mjs PORT CERT KEY
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { WebSocketServer } from 'ws';

const [port, certFile, keyFile] = process.argv.slice(2);
const servers = {
  '/plain': new WebSocketServer({ noServer: true, perMessageDeflate: false }),
  '/deflate': new WebSocketServer({ noServer: true, perMessageDeflate: { threshold: 0 } }),
};
const server = createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, (_req, res) => res.writeHead(404).end());
server.on('upgrade', (req, socket, head) => {
  const wss = servers[new URL(req.url, 'https://x').pathname];
  if (!wss) return socket.destroy();
  wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (data, binary) => ws.send(data, { binary })));
});
server.maxConnections = 20_000;
server.listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => {
  for (const wss of Object.values(servers)) for (const c of wss.clients) c.terminate();
  server.close(() => process.exit(0));
});

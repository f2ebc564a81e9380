// The bench's streaming upstream (its own process, so its work never lands in a client's or a
// proxy's event loop): an Anthropic-style SSE endpoint over TLS.
//   POST /v1/messages?events=N&gap=MS  → reads the body, sends the first event at once, then one
//                                        event every MS ms, N in all, then ends the stream.
//   POST /v1/messages?hold=1           → sends one event and keeps the stream open (idle) until
//                                        the client goes away (S6 memory).
//   node bench/lib/sse-server.mjs PORT CERT KEY [h2]
// h2: the same endpoint on node:http2 (ALPN h2 and http/1.1), the direct contender of S3h2. aigate's
// own upstream stays the HTTP/1.1 one (an h2 upstream would change what S3 and S6 measure).
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { createSecureServer } from 'node:http2';

const [port, certFile, keyFile, mode = 'h1'] = process.argv.slice(2);
const event = (type, data) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
const DELTA = (i) => event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: ` token${i}` } });

const handler = (req, res) => {
  req.resume();
  req.on('end', () => {
    const url = new URL(req.url, 'https://x');
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write(event('message_start', { message: { id: 'msg_bench', type: 'message', role: 'assistant', model: 'claude-bench' } }));
    if (url.searchParams.get('hold')) return; // open until the client closes it
    const n = Number(url.searchParams.get('events') ?? 10);
    const gap = Number(url.searchParams.get('gap') ?? 1);
    let i = 1;
    const next = () => {
      if (res.destroyed || res.stream?.destroyed) return;
      if (i >= n) {
        res.end(event('message_stop', {}));
        return;
      }
      res.write(DELTA(i++));
      setTimeout(next, gap);
    };
    setTimeout(next, gap);
  });
};
const tls = { cert: readFileSync(certFile), key: readFileSync(keyFile) };
const server = mode === 'h2' ? createSecureServer({ ...tls, allowHTTP1: true }, handler) : createServer({ ...tls, keepAliveTimeout: 120_000 }, handler);
server.maxConnections = 20_000;
server.listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => {
  server.closeAllConnections?.();
  server.close(() => process.exit(0));
  // http2 sessions do not close with the server: do not wait for the clients.
  setTimeout(() => process.exit(0), 500).unref();
});

// Reference contender: the least a Node reverse proxy can do on the same path — TLS in, the whole
// body read (as aigate must, to inspect it), one undici dispatch over a keep-alive TLS pool with
// SNI and verification, the response streamed back. No routing, inspection, limiting, audit or
// metrics: what is left between it and nginx is Node's TLS and HTTP stacks and undici.
//   node bench/lib/bare-proxy.mjs PORT CERT KEY UPSTREAM_PORT UPSTREAM_CA SERVERNAME
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { createSecureContext, rootCertificates } from 'node:tls';
import { Agent } from 'undici';

const [port, certFile, keyFile, upstreamPort, caFile, servername] = process.argv.slice(2);
const dispatcher = new Agent({
  connect: { secureContext: createSecureContext({ ca: [...rootCertificates, readFileSync(caFile, 'utf8')] }), servername },
  keepAliveTimeout: 30_000,
});
const origin = `https://127.0.0.1:${upstreamPort}`;
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'host', 'te', 'upgrade', 'proxy-connection']);

const server = createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile), requestTimeout: 0 }, (req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const headers = { host: servername };
    for (const [k, v] of Object.entries(req.headers)) if (!HOP.has(k)) headers[k] = v;
    dispatcher.dispatch(
      { origin, path: req.url.replace(/^\/openai\//, '/v1/'), method: req.method, headers, body: body.length ? body : null },
      {
        onRequestStart() {},
        onResponseStart(_c, status, h) {
          const out = {};
          for (const [k, v] of Object.entries(h)) if (!HOP.has(k) || k === 'content-length') out[k] = v;
          res.writeHead(status, out);
        },
        onResponseData(c, chunk) {
          if (!res.write(chunk)) {
            c.pause();
            res.once('drain', () => c.resume());
          }
        },
        onResponseEnd() {
          res.end();
        },
        onResponseError() {
          if (res.headersSent) res.destroy();
          else res.writeHead(502).end();
        },
      },
    );
  });
});
server.listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});

// Reference contender: the least a Node reverse proxy can do on the same path — TLS in, the whole
// body read (as aigate must, to inspect it), one undici dispatch over a keep-alive TLS pool with
// SNI and verification, the response streamed back. No routing, inspection, limiting, audit or
// metrics: what is left between it and nginx is Node's TLS and HTTP stacks and undici.
//   node bench/lib/bare-proxy.mjs PORT CERT KEY UPSTREAM_PORT UPSTREAM_CA SERVERNAME [h1|h2|h2stream]
// h1 (default): node:https. h2: node:http2 (ALPN h2 and http/1.1) through its compatibility API,
// the same handler. h2stream: node:http2's stream API ('stream' event, respond()), no compatibility
// objects: the floor for HTTP/2 in Node.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { createSecureServer } from 'node:http2';
import { createSecureContext, rootCertificates } from 'node:tls';
import { Agent } from 'undici';

const [port, certFile, keyFile, upstreamPort, caFile, servername, mode = 'h1'] = process.argv.slice(2);
const dispatcher = new Agent({
  connect: { secureContext: createSecureContext({ ca: [...rootCertificates, readFileSync(caFile, 'utf8')] }), servername },
  keepAliveTimeout: 30_000,
});
const origin = `https://127.0.0.1:${upstreamPort}`;
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'host', 'te', 'upgrade', 'proxy-connection']);

const handler = (req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const headers = { host: servername };
    for (const [k, v] of Object.entries(req.headers)) if (!HOP.has(k) && k[0] !== ':') headers[k] = v;
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
};

/** The same proxy on node:http2's stream API: a 'stream' per request, respond() and end(). */
function onStream(stream, reqHeaders) {
  const chunks = [];
  stream.on('data', (c) => chunks.push(c));
  stream.on('error', () => undefined);
  stream.on('end', () => {
    const body = Buffer.concat(chunks);
    const headers = { host: servername };
    for (const [k, v] of Object.entries(reqHeaders)) if (!HOP.has(k) && k[0] !== ':') headers[k] = v;
    dispatcher.dispatch(
      { origin, path: reqHeaders[':path'].replace(/^\/openai\//, '/v1/'), method: reqHeaders[':method'], headers, body: body.length ? body : null },
      {
        onRequestStart() {},
        onResponseStart(_c, status, h) {
          const out = { ':status': status };
          for (const [k, v] of Object.entries(h)) if (!HOP.has(k) || k === 'content-length') out[k] = v;
          stream.respond(out);
        },
        onResponseData(c, chunk) {
          if (!stream.write(chunk)) {
            c.pause();
            stream.once('drain', () => c.resume());
          }
        },
        onResponseEnd() {
          stream.end();
        },
        onResponseError() {
          if (stream.headersSent) stream.close(2);
          else stream.respond({ ':status': 502 }, { endStream: true });
        },
      },
    );
  });
}

const tls = { cert: readFileSync(certFile), key: readFileSync(keyFile) };
let server;
if (mode === 'h1') server = createServer({ ...tls, requestTimeout: 0 }, handler);
else if (mode === 'h2') server = createSecureServer({ ...tls, allowHTTP1: true }, handler);
else if (mode === 'h2stream') server = createSecureServer({ ...tls, allowHTTP1: true }).on('stream', onStream);
else throw new Error(`unknown mode ${mode}`);
server.listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => {
  server.closeAllConnections?.();
  server.close(() => process.exit(0));
  // http2 sessions do not close with the server: do not wait for the clients.
  setTimeout(() => process.exit(0), 500).unref();
});

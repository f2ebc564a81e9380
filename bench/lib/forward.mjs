// S5 forward mode: the connection set-up an IDE pays through HTTPS_PROXY (CONNECT + TLS with a
// leaf minted by aigate, from its cache after the first) against a direct TLS handshake with the
// upstream and a TLS handshake with the gateway; then small requests/s inside intercepted tunnels
// against the same load through the gateway — same Node client (undici) for both, so their ratio
// is what the tunnel costs.
import net from 'node:net';
import tls from 'node:tls';
import { Agent, ProxyAgent, request } from 'undici';

function tlsHandshake(opts) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ ...opts, ALPNProtocols: ['http/1.1'] });
    s.setTimeout(5000, () => s.destroy(new Error('handshake timed out')));
    s.once('secureConnect', () => {
      s.destroy();
      resolve();
    });
    s.once('error', reject);
  });
}

/** CONNECT host:443 on the forward listener, then TLS inside the tunnel. */
function connectHandshake(forwardPort, host, ca) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(forwardPort, '127.0.0.1');
    socket.setTimeout(5000, () => socket.destroy(new Error('CONNECT timed out')));
    socket.once('error', reject);
    let buf = '';
    socket.on('data', function onData(d) {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      if (!buf.startsWith('HTTP/1.1 200')) return reject(new Error(`CONNECT refused: ${buf.split('\r\n')[0]}`));
      tlsHandshake({ socket, servername: host, ca }).then(() => {
        socket.destroy();
        resolve();
      }, reject);
    });
    socket.write(`CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\n\r\n`);
  });
}

/** Sequential set-ups of each kind, interleaved; returns arrays of milliseconds per kind. */
export async function handshakeTimes(kinds, iterations) {
  const out = Object.fromEntries(kinds.map((k) => [k.name, []]));
  for (const k of kinds) for (let i = 0; i < 10; i++) await k.run(); // warm-up (and the first mint)
  for (let i = 0; i < iterations; i++) {
    for (const k of kinds) {
      const t = process.hrtime.bigint();
      await k.run();
      out[k.name].push(Number(process.hrtime.bigint() - t) / 1e6);
    }
  }
  return out;
}

export function handshakeKinds({ upstreamPort, gatewayPort, forwardPort, vendorCa, proxyCa, host }) {
  return [
    { name: 'direct TLS to upstream', run: () => tlsHandshake({ host: '127.0.0.1', port: upstreamPort, servername: host, ca: vendorCa }) },
    { name: 'TLS to aigate gateway', run: () => tlsHandshake({ host: '127.0.0.1', port: gatewayPort, servername: 'localhost', ca: proxyCa }) },
    { name: 'CONNECT + intercepted TLS', run: () => connectHandshake(forwardPort, host, proxyCa) },
  ];
}

/** `connections` concurrent request loops for `seconds`; requests/s and latency samples. */
export async function undiciLoad({ dispatcher, url, body, seconds, connections }) {
  const deadline = Date.now() + seconds * 1000;
  let done = 0;
  let errors = 0;
  const lat = [];
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (Date.now() < deadline) {
        const t = process.hrtime.bigint();
        try {
          const res = await request(url, { method: 'POST', body, headers: { 'content-type': 'application/json' }, dispatcher });
          await res.body.dump();
          if (res.statusCode !== 200) errors++;
          else done++;
        } catch {
          errors++;
        }
        lat.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
    }),
  );
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return { rps: done / s, errors, lat };
}

export function tunnelDispatchers({ gatewayPort, forwardPort, proxyCa, connections }) {
  return {
    gateway: { dispatcher: new Agent({ connections, connect: { ca: proxyCa } }), url: `https://localhost:${gatewayPort}/openai/chat/completions` },
    tunnel: {
      dispatcher: new ProxyAgent({ uri: `http://127.0.0.1:${forwardPort}`, connections, requestTls: { ca: proxyCa } }),
      url: 'https://api.openai.com/v1/chat/completions',
    },
  };
}

// S3: time to the first SSE event and to the end of the stream, one stream at a time over a
// keep-alive connection (as an IDE does), measured from the moment the request is written.
import { Agent, request } from 'node:https';
import { connect as h2connect } from 'node:http2';

const BODY = JSON.stringify({ model: 'claude-bench', max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'Say hello.' }] });

/** contender: { port, servername, ca, path } */
export function sseAgent(contender) {
  return new Agent({ keepAlive: true, maxSockets: 1, ca: contender.ca, servername: contender.servername });
}

export function streamOnce(contender, agent) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    let first = 0n;
    const req = request(
      {
        host: '127.0.0.1',
        port: contender.port,
        path: contender.path,
        method: 'POST',
        agent,
        servername: contender.servername,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY), host: contender.servername },
      },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`SSE ${contender.name}: status ${res.statusCode}`));
          return;
        }
        res.on('data', (chunk) => {
          if (first === 0n && chunk.includes('data:')) first = process.hrtime.bigint();
        });
        res.on('end', () => {
          const end = process.hrtime.bigint();
          resolve({ firstMs: Number(first - t0) / 1e6, totalMs: Number(end - t0) / 1e6 });
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error(`SSE ${contender.name}: no answer in 10 s`)));
    req.on('error', reject);
    req.end(BODY);
  });
}

/** `iterations` streams in a row; returns arrays of first-event and total times (ms). */
export async function sseRun(contender, { iterations, warmup = 20 }) {
  const agent = sseAgent(contender);
  try {
    for (let i = 0; i < warmup; i++) await streamOnce(contender, agent);
    const first = [];
    const total = [];
    for (let i = 0; i < iterations; i++) {
      const r = await streamOnce(contender, agent);
      first.push(r.firstMs);
      total.push(r.totalMs);
    }
    return { first, total };
  } finally {
    agent.destroy();
  }
}

/** S3h2: one node:http2 session per contender (as an IDE keeps one), one stream at a time on it. */
export function sseSessionH2(contender) {
  return new Promise((resolve, reject) => {
    const session = h2connect(`https://127.0.0.1:${contender.port}`, { ca: contender.ca, servername: contender.servername });
    session.once('connect', () => {
      session.off('error', reject);
      session.on('error', () => undefined);
      if (session.alpnProtocol !== 'h2') reject(new Error(`SSE h2 ${contender.name}: ALPN chose ${session.alpnProtocol}`));
      else resolve(session);
    });
    session.once('error', reject);
  });
}

export function streamOnceH2(contender, session) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    let first = 0n;
    const stream = session.request({ ':method': 'POST', ':path': contender.path, ':authority': contender.servername, 'content-type': 'application/json' });
    const timer = setTimeout(() => stream.close(0x8), 10_000);
    stream.on('response', (h) => {
      if (h[':status'] !== 200) reject(new Error(`SSE h2 ${contender.name}: status ${h[':status']}`));
    });
    stream.on('data', (chunk) => {
      if (first === 0n && chunk.includes('data:')) first = process.hrtime.bigint();
    });
    stream.on('end', () => {
      clearTimeout(timer);
      const end = process.hrtime.bigint();
      resolve({ firstMs: Number(first - t0) / 1e6, totalMs: Number(end - t0) / 1e6 });
    });
    stream.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    stream.end(BODY);
  });
}

/** sseRun over HTTP/2: `iterations` streams in a row on one session. */
export async function sseRunH2(contender, { iterations, warmup = 20 }) {
  const session = await sseSessionH2(contender);
  try {
    for (let i = 0; i < warmup; i++) await streamOnceH2(contender, session);
    const first = [];
    const total = [];
    for (let i = 0; i < iterations; i++) {
      const r = await streamOnceH2(contender, session);
      first.push(r.firstMs);
      total.push(r.totalMs);
    }
    return { first, total };
  } finally {
    session.destroy();
  }
}

// Fake vendor upstreams: one local HTTPS server that serves a certificate per SNI name (issued by
// a test CA) and imitates the wire shapes of the real APIs — OpenAI chat completions (JSON and
// SSE ending in `data: [DONE]`), Anthropic messages (JSON and SSE message_start … message_stop),
// Copilot-style completions — plus a WebSocket echo and misbehaviours for error tests (a
// response that never starts, one that dies mid-body).
// Every request is recorded (SNI, Host, path, headers, body) so tests assert what arrived.
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

export interface RecordedRequest {
  sni: string | null;
  host: string | undefined;
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

export interface KeyPair {
  cert: string;
  key: string;
}

/** One WebSocket connection the fake vendors accepted, with every message and ping it received. */
export interface RecordedWebSocket {
  /** The request target (path and query). */
  url: string;
  /** Sec-WebSocket-Extensions as the server accepted it ('' for none). */
  extensions: string;
  messages: Array<{ data: Buffer; binary: boolean }>;
  pings: Buffer[];
  /** Set once the server saw the client's close. */
  closed?: { code: number; reason: string };
}

export interface FakeVendors {
  port: number;
  requests: RecordedRequest[];
  webSockets: RecordedWebSocket[];
  /** Releases streams held with `x-test-hold: <name>` (they send one event, then wait). */
  release(name: string): void;
  /** Resolves when a request with `x-test-hold: <name>` has sent its first event. */
  held(name: string): Promise<void>;
  close(): Promise<void>;
}

/** `certs` maps SNI names to key pairs; `fallback` serves clients that send no or another name. */
export async function startFakeVendors(opts: { certs: Record<string, KeyPair>; fallback: KeyPair }): Promise<FakeVendors> {
  const contexts = new Map<string, SecureContext>();
  for (const [name, pair] of Object.entries(opts.certs)) contexts.set(name, createSecureContext(pair));
  const requests: RecordedRequest[] = [];
  const gates = new Map<string, { open: Promise<void>; release: () => void; started: Promise<void>; start: () => void }>();
  const gate = (name: string) => {
    let g = gates.get(name);
    if (!g) {
      let release!: () => void;
      let start!: () => void;
      const open = new Promise<void>((r) => (release = r));
      const started = new Promise<void>((r) => (start = r));
      g = { open, release, started, start };
      gates.set(name, g);
    }
    return g;
  };

  const server: Server = createServer(
    {
      ...opts.fallback,
      SNICallback: (name, cb) => cb(null, contexts.get(name.toLowerCase())),
    },
    (req, res) => {
      // Early answers: respond before reading the body, as vendors do with 401/413.
      if (req.url === '/early') {
        record(req, Buffer.alloc(0));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"early":true}');
        return;
      }
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        record(req, body);
        void handle(req, res, body).catch(() => res.destroy());
      });
    },
  );

  function record(req: IncomingMessage, body: Buffer) {
    requests.push({
      sni: (req.socket as TLSSocket).servername || null,
      host: req.headers.host,
      method: req.method ?? '',
      path: req.url ?? '',
      headers: req.headers,
      body,
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse, body: Buffer) {
    const url = new URL(req.url ?? '/', 'https://fake');
    const path = url.pathname;
    const holdName = req.headers['x-test-hold'] as string | undefined;
    const hold = holdName ? gate(holdName) : undefined;

    if (path === '/slow') return; // never answers: the proxy's firstByte timeout must fire
    if (path === '/die-mid-body') {
      // An upstream that dies mid-response: drops the connection part way through a chunked body
      // (after the hold is released, when the request has one). No Content-Length, so nothing
      // but the proxy's reset can tell a client the body is cut.
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('the first part of a body that never ends');
      if (hold) {
        hold.start();
        await hold.open;
      }
      res.socket?.destroy();
      return;
    }
    if (path.startsWith('/status/')) {
      const code = Number(path.slice('/status/'.length));
      res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify({ status: code }));
      return;
    }
    if (path === '/echo') {
      res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'] });
      res.end(JSON.stringify({ method: req.method, path: req.url, headers: req.headers, body: body.toString('utf8') }));
      return;
    }
    if (path === '/big') {
      const size = Number(url.searchParams.get('bytes') ?? 1024 * 1024);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) });
      res.end(Buffer.alloc(size, 0x61));
      return;
    }
    const json = parseJson(body);
    if (path.endsWith('/chat/completions')) return openai(res, json, hold);
    if (path === '/v1/messages') return anthropic(res, json, hold);
    if (/\/v1\/engines\/[^/]+\/completions$/.test(path)) return copilot(res, json, hold);
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: `fake vendor: no ${path}` } }));
  }

  // One server per permessage-deflate setting, chosen by path (RFC 7692 §7.1 parameters).
  const wsServers = new Map<string, WebSocketServer>([
    ['/ws', new WebSocketServer({ noServer: true })],
    ['/ws-deflate', new WebSocketServer({ noServer: true, perMessageDeflate: { threshold: 0 } })],
    [
      '/ws-deflate-no-takeover',
      new WebSocketServer({ noServer: true, perMessageDeflate: { threshold: 0, clientNoContextTakeover: true, serverNoContextTakeover: true } }),
    ],
    ['/ws-deflate-bits', new WebSocketServer({ noServer: true, perMessageDeflate: { threshold: 0, clientMaxWindowBits: 9, serverMaxWindowBits: 10 } })],
    ['/v1/responses', new WebSocketServer({ noServer: true, perMessageDeflate: { threshold: 0 } })],
    // Misbehaviours: opens a fragmented text message and never finishes it; sends a masked frame.
    ['/ws-open-fragment', new WebSocketServer({ noServer: true })],
    ['/ws-masked-server', new WebSocketServer({ noServer: true })],
  ]);
  const webSockets: RecordedWebSocket[] = [];
  // The extension parameters as the 101 said them (ws.extensions has only their names).
  const acceptedExtensions = new WeakMap<IncomingMessage, string>();
  for (const wss of wsServers.values()) {
    wss.on('headers', (headers, req) => {
      const line = headers.find((h) => h.toLowerCase().startsWith('sec-websocket-extensions:'));
      acceptedExtensions.set(req, line ? line.slice(line.indexOf(':') + 1).trim() : '');
    });
  }
  server.on('upgrade', (req, socket, head) => {
    record(req, Buffer.alloc(0));
    if (req.url === '/ws-unauthorized') {
      // Refuses the handshake with an ordinary response, as a vendor does for an expired token.
      const body = JSON.stringify({ error: { type: 'authentication_error', message: 'token expired' } });
      socket.end(
        'HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n' +
          'WWW-Authenticate: Bearer realm="fake", error="invalid_token"\r\n' +
          `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      return;
    }
    if (req.url === '/ws-forbidden-big') {
      // A refusal whose close-delimited body never seems to end: the proxy must not buffer it all.
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n\r\n' + 'a'.repeat(1024 * 1024));
      return;
    }
    const path = new URL(req.url ?? '/', 'https://fake').pathname;
    // `/ws-deflate/anything` is served like `/ws-deflate`: tests tag their connections by path.
    const key = [...wsServers.keys()].sort((x, y) => y.length - x.length).find((k) => path === k || path.startsWith(`${k}/`));
    const wss = wsServers.get(key ?? '') ?? (path.startsWith('/ws') ? wsServers.get('/ws') : undefined);
    if (!wss) {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const seen: RecordedWebSocket = { url: req.url ?? '', extensions: acceptedExtensions.get(req) ?? '', messages: [], pings: [] };
      webSockets.push(seen);
      ws.on('ping', (data) => seen.pings.push(data));
      ws.on('close', (code, reason) => (seen.closed = { code, reason: reason.toString() }));
      if (key === '/ws-open-fragment') ws.send('the start of a message that never ends', { fin: false });
      if (key === '/ws-masked-server') {
        // RFC 6455 §5.1: a server must not mask. Written raw, as ws itself never would.
        const payload = Buffer.from('masked');
        (ws as unknown as { _socket: import('node:net').Socket })._socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length, 0, 0, 0, 0]), payload]));
      }
      ws.on('message', (raw, isBinary) => {
        const data = Buffer.isBuffer(raw) ? raw : Buffer.concat(raw as Buffer[]);
        seen.messages.push({ data, binary: isBinary });
        if (key === '/v1/responses') return responsesEvents(ws, data);
        ws.send(isBinary ? data : `echo: ${data.toString()}`, { binary: isBinary });
      });
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    webSockets,
    release: (name) => gate(name).release(),
    held: (name) => gate(name).started,
    close: async () => {
      for (const g of gates.values()) g.release();
      for (const wss of wsServers.values()) for (const c of wss.clients) c.terminate();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

type Hold = { open: Promise<void>; start: () => void } | undefined;

function parseJson(body: Buffer): Record<string, unknown> {
  try {
    const v = JSON.parse(body.toString('utf8')) as unknown;
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function lastUserText(json: Record<string, unknown>): string {
  const messages = Array.isArray(json['messages']) ? (json['messages'] as Array<{ content?: unknown }>) : [];
  const content = messages[messages.length - 1]?.content;
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((c: { text?: string }) => c.text ?? '').join('');
  return '';
}

function sse(res: ServerResponse) {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.flushHeaders();
}

/** Sends `events` in order; with a hold, sends the first, signals, and waits for release. */
async function stream(res: ServerResponse, events: string[], hold: Hold) {
  for (let i = 0; i < events.length; i++) {
    res.write(events[i]);
    if (i === 0 && hold) {
      hold.start();
      await hold.open;
    }
  }
  res.end();
}

const WORDS = ['Hello', ' from', ' the', ' fake', ' vendor', '.'];

async function openai(res: ServerResponse, json: Record<string, unknown>, hold: Hold) {
  const model = String(json['model'] ?? 'gpt-4o');
  const text = `echo: ${lastUserText(json)}`;
  if (json['stream']) {
    sse(res);
    const base = { id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: 1_700_000_000, model };
    const events = [
      { ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] },
      ...WORDS.map((w) => ({ ...base, choices: [{ index: 0, delta: { content: w }, finish_reason: null }] })),
      { ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] },
    ].map((e) => `data: ${JSON.stringify(e)}\n\n`);
    await stream(res, [...events, 'data: [DONE]\n\n'], hold);
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(
    JSON.stringify({
      id: 'chatcmpl-fake',
      object: 'chat.completion',
      created: 1_700_000_000,
      model,
      choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop', logprobs: null }],
      usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
    }),
  );
}

async function anthropic(res: ServerResponse, json: Record<string, unknown>, hold: Hold) {
  const model = String(json['model'] ?? 'claude-sonnet-4-5');
  const text = `echo: ${lastUserText(json)}`;
  const message = {
    id: 'msg_fake',
    type: 'message',
    role: 'assistant',
    model,
    content: [] as Array<{ type: 'text'; text: string }>,
    stop_reason: null as string | null,
    stop_sequence: null,
    usage: { input_tokens: 10, output_tokens: 1 },
  };
  if (json['stream']) {
    sse(res);
    const ev = (type: string, data: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
    const events = [
      ev('message_start', { message }),
      ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
      ev('ping', {}),
      ...WORDS.map((w) => ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: w } })),
      ev('content_block_stop', { index: 0 }),
      ev('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 6 } }),
      ev('message_stop', {}),
    ];
    await stream(res, events, hold);
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ ...message, content: [{ type: 'text', text }], stop_reason: 'end_turn' }));
}

async function copilot(res: ServerResponse, json: Record<string, unknown>, hold: Hold) {
  sse(res);
  const prompt = String(json['prompt'] ?? '');
  const events = WORDS.map(
    (w, i) => `data: ${JSON.stringify({ id: 'cmpl-fake', created: 1_700_000_000, model: 'copilot-codex', choices: [{ text: w, index: 0, finish_reason: i === WORDS.length - 1 ? 'stop' : null }], prompt_chars: prompt.length })}\n\n`,
  );
  await stream(res, [...events, 'data: [DONE]\n\n'], hold);
}

/**
 * The OpenAI Responses API over WebSocket, as Codex uses it: each `response.create` event is
 * answered with response.created, output_text deltas echoing the input text, response.completed.
 */
function responsesEvents(ws: import('ws').WebSocket, data: Buffer) {
  let event: { type?: string; input?: Array<{ content?: Array<{ text?: string }> }> };
  try {
    event = JSON.parse(data.toString('utf8')) as typeof event;
  } catch {
    ws.send(JSON.stringify({ type: 'error', error: { type: 'invalid_request_error', message: 'not JSON' } }));
    return;
  }
  if (event.type !== 'response.create') return;
  const text = (event.input ?? []).flatMap((i) => i.content ?? []).map((c) => c.text ?? '').join('');
  const reply = `echo: ${text.slice(-200)}`;
  const response = { id: 'resp_fake', object: 'response', status: 'in_progress', model: 'gpt-5-codex', output: [] as unknown[] };
  const item = { type: 'message', id: 'msg_fake', status: 'in_progress', role: 'assistant', content: [] as unknown[] };
  const done = { ...item, status: 'completed', content: [{ type: 'output_text', text: reply, annotations: [] }] };
  const usage = { input_tokens: 10, output_tokens: 5, total_tokens: 15, input_tokens_details: { cached_tokens: 0 }, output_tokens_details: { reasoning_tokens: 0 } };
  let seq = 0;
  const send = (e: Record<string, unknown>) => ws.send(JSON.stringify({ ...e, sequence_number: seq++ }));
  send({ type: 'response.created', response });
  send({ type: 'response.output_item.added', output_index: 0, item });
  send({ type: 'response.content_part.added', item_id: 'msg_fake', output_index: 0, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } });
  for (const delta of ['echo: ', text.slice(-200)]) send({ type: 'response.output_text.delta', item_id: 'msg_fake', output_index: 0, content_index: 0, delta });
  send({ type: 'response.output_text.done', item_id: 'msg_fake', output_index: 0, content_index: 0, text: reply });
  send({ type: 'response.output_item.done', output_index: 0, item: done });
  send({ type: 'response.completed', response: { ...response, status: 'completed', output: [done], usage } });
}

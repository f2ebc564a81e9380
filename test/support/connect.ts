// A Connect service for tests, built at runtime from a FileDescriptorProto (no generated code, no
// protoc): aigate.test.Chat with a unary, a server-streaming and a client-streaming method. And a
// fake upstream serving it with @connectrpc/connect-node over HTTPS/1.1 (Connect, gRPC-Web), which
// records each message as it arrives, so tests can see what was forwarded and when.
import { EventEmitter } from 'node:events';
import { createServer, type Server } from 'node:https';
import { createSecureServer, type Http2SecureServer, type Http2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { create, createFileRegistry, type DescMessage, type DescService } from '@bufbuild/protobuf';
import { FieldDescriptorProto_Label, FieldDescriptorProto_Type, FileDescriptorProtoSchema, MethodOptions_IdempotencyLevel } from '@bufbuild/protobuf/wkt';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import type { ConnectRouter } from '@connectrpc/connect';

const { STRING: TYPE_STRING, BYTES: TYPE_BYTES, INT32: TYPE_INT32, MESSAGE: TYPE_MESSAGE } = FieldDescriptorProto_Type;
const OPTIONAL = FieldDescriptorProto_Label.OPTIONAL;

const file = create(FileDescriptorProtoSchema, {
  name: 'aigate/test/chat.proto',
  package: 'aigate.test',
  syntax: 'proto3',
  messageType: [
    {
      name: 'Context',
      field: [
        { name: 'file', number: 1, type: TYPE_STRING, label: OPTIONAL, jsonName: 'file' },
        { name: 'blob', number: 2, type: TYPE_BYTES, label: OPTIONAL, jsonName: 'blob' },
      ],
    },
    {
      name: 'Prompt',
      field: [
        { name: 'text', number: 1, type: TYPE_STRING, label: OPTIONAL, jsonName: 'text' },
        { name: 'context', number: 2, type: TYPE_MESSAGE, typeName: '.aigate.test.Context', label: OPTIONAL, jsonName: 'context' },
      ],
    },
    {
      name: 'Reply',
      field: [
        { name: 'text', number: 1, type: TYPE_STRING, label: OPTIONAL, jsonName: 'text' },
        { name: 'count', number: 2, type: TYPE_INT32, label: OPTIONAL, jsonName: 'count' },
      ],
    },
  ],
  service: [
    {
      name: 'Chat',
      method: [
        { name: 'Say', inputType: '.aigate.test.Prompt', outputType: '.aigate.test.Reply' },
        // Without side effects: Connect serves it over GET too, the message in the query string.
        { name: 'Peek', inputType: '.aigate.test.Prompt', outputType: '.aigate.test.Reply', options: { idempotencyLevel: MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS } },
        { name: 'Listen', inputType: '.aigate.test.Prompt', outputType: '.aigate.test.Reply', serverStreaming: true },
        { name: 'Upload', inputType: '.aigate.test.Prompt', outputType: '.aigate.test.Reply', clientStreaming: true },
        { name: 'Converse', inputType: '.aigate.test.Prompt', outputType: '.aigate.test.Reply', clientStreaming: true, serverStreaming: true },
      ],
    },
  ],
});

const registry = createFileRegistry(file, () => undefined);
export const ChatService = registry.getService('aigate.test.Chat') as DescService;
export const PromptSchema = registry.getMessage('aigate.test.Prompt') as DescMessage;
export const ReplySchema = registry.getMessage('aigate.test.Reply') as DescMessage;

export interface PromptShape {
  text?: string;
  context?: { file?: string; blob?: Uint8Array };
}

export interface FakeConnect {
  port: number;
  /** Texts of the messages the service received, in order, per call path. */
  received: Array<{ method: string; text: string }>;
  /** Emits 'message' ({ method, text }) as each request message is read by the service. */
  events: EventEmitter;
  /** Resolves when `count` messages of `method` have been received. */
  receivedCount(method: string, count: number): Promise<void>;
  /** Upload calls that ended with an error (the stream cut by aigate), with the error's message. */
  cut: string[];
  /** The HTTP version of each request, in order ("2.0" or "1.1"). */
  versions: string[];
  close(): Promise<void>;
}

type Msg = { text?: string };

/**
 * `http2`: served with node:http2 (ALPN h2, HTTP/1.1 still accepted), where Converse, the
 * bidirectional method, works; otherwise HTTPS/1.1.
 */
export async function startFakeConnect(tls: { cert: string; key: string }, opts: { http2?: boolean } = {}): Promise<FakeConnect> {
  const received: FakeConnect['received'] = [];
  const events = new EventEmitter();
  const cut: string[] = [];
  const versions: string[] = [];
  const record = (method: string, m: Msg) => {
    const entry = { method, text: m.text ?? '' };
    received.push(entry);
    events.emit('message', entry);
  };
  const routes = (router: ConnectRouter) => {
    router.service(ChatService, {
      say: (req: Msg) => {
        record('Say', req);
        return create(ReplySchema, { text: `echo: ${req.text ?? ''}` });
      },
      peek: (req: Msg) => {
        record('Peek', req);
        return create(ReplySchema, { text: `echo: ${req.text ?? ''}` });
      },
      async *listen(req: Msg) {
        record('Listen', req);
        for (let i = 1; i <= 3; i++) yield create(ReplySchema, { text: `part ${i}`, count: i });
      },
      async upload(messages: AsyncIterable<Msg>) {
        let count = 0;
        try {
          for await (const m of messages) {
            count++;
            record('Upload', m);
          }
        } catch (err) {
          cut.push((err as Error).message);
          throw err;
        }
        return create(ReplySchema, { text: 'uploaded', count });
      },
      // Full duplex: each message answered as it arrives, while the request stream stays open.
      async *converse(messages: AsyncIterable<Msg>) {
        let count = 0;
        try {
          for await (const m of messages) {
            record('Converse', m);
            yield create(ReplySchema, { text: `echo: ${m.text ?? ''}`, count: ++count });
          }
        } catch (err) {
          cut.push((err as Error).message);
          throw err;
        }
      },
    } as never);
  };
  const handler = connectNodeAdapter({ routes });
  const server: Server | Http2SecureServer = opts.http2
    ? createSecureServer({ ...tls, allowHTTP1: true }, handler as never)
    : createServer(tls, handler);
  /** HTTP versions the requests arrived in, in order. */
  server.on('request', (req: { httpVersion: string }) => versions.push(req.httpVersion));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const sessions = new Set<Http2Session>();
  server.on('session', (s: Http2Session) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  return {
    port: (server.address() as AddressInfo).port,
    received,
    events,
    cut,
    versions,
    receivedCount: (method, count) =>
      new Promise((resolve) => {
        const check = () => {
          if (received.filter((r) => r.method === method).length >= count) {
            events.off('message', check);
            resolve();
          }
        };
        events.on('message', check);
        check();
      }),
    close: async () => {
      if ('closeAllConnections' in server) server.closeAllConnections();
      else for (const s of sessions) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

// RFC 6455 framing and RFC 7692 permessage-deflate from the `ws` package, the parts aigate uses
// to read client frames and write them upstream. `ws` exports Receiver, Sender, PerMessageDeflate
// and extension from its package entry points (index.js and wrapper.mjs), but @types/ws does not
// describe them: the shapes aigate relies on are declared here, in this one place, so an upgrade
// of `ws` that changes them shows up in this file's tests rather than everywhere.
import type { Duplex } from 'node:stream';
import * as ws from 'ws';

export interface DeflateParams {
  server_no_context_takeover?: boolean;
  client_no_context_takeover?: boolean;
  server_max_window_bits?: number;
  client_max_window_bits?: number | boolean;
}

export interface PerMessageDeflate {
  params: DeflateParams | null;
  accept(configurations: DeflateParams[]): DeflateParams;
  cleanup(): void;
  /** Inflates one frame's payload (`fin`: the message's last frame); the Receiver calls it. */
  decompress(data: Buffer, fin: boolean, callback: (err: Error | null, result?: Buffer) => void): void;
}

type Extensions = Record<string, PerMessageDeflate>;

/** A Writable fed with the client's bytes; emits what they carry. */
export interface Receiver {
  write(chunk: Buffer): boolean;
  destroy(): void;
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): this;
  on(event: 'ping' | 'pong', listener: (data: Buffer) => void): this;
  on(event: 'conclude', listener: (code: number, reason: Buffer) => void): this;
  on(event: 'error', listener: (err: Error & { code?: string }) => void): this;
  on(event: 'drain', listener: () => void): this;
}

export interface Sender {
  send(data: Buffer, options: { binary: boolean; compress: boolean; fin: boolean; mask: boolean }, cb?: (err?: Error) => void): void;
  ping(data: Buffer, mask: boolean, cb?: (err?: Error) => void): void;
  pong(data: Buffer, mask: boolean, cb?: (err?: Error) => void): void;
  close(code: number | undefined, data: Buffer | string | undefined, mask: boolean, cb?: (err?: Error) => void): void;
}

interface WsFraming {
  Receiver: new (options: {
    extensions: Extensions;
    isServer: boolean;
    maxPayload: number;
    allowSynchronousEvents?: boolean;
  }) => Receiver;
  Sender: new (socket: Duplex, extensions: Extensions) => Sender & { frame?: never };
  PerMessageDeflate: (new (options: { isServer: boolean; maxPayload?: number; zlibDeflateOptions?: { memLevel: number } }) => PerMessageDeflate) & {
    extensionName: string;
  };
  extension: { parse(header: string): Record<string, DeflateParams[]> };
}

const framing = ws as unknown as WsFraming;
const { Receiver: ReceiverClass, Sender: SenderClass, PerMessageDeflate: DeflateClass, extension } = framing;

/** Frame builder for what aigate itself sends to a client (unmasked, uncompressed: RSV1 clear is always valid). */
const frameOf = (SenderClass as unknown as {
  frame(data: Buffer, options: { fin: boolean; mask: boolean; opcode: number; readOnly: boolean; rsv1: boolean }): Buffer[];
}).frame;

export class ExtensionError extends Error {}

/**
 * The permessage-deflate parameters the upstream accepted in its 101 (`Sec-WebSocket-Extensions`),
 * or null when it accepted none. Any other extension cannot be framed by aigate: ExtensionError.
 */
export function acceptedDeflate(header: string | string[] | undefined): (() => DeflateParams[]) | null {
  const value = Array.isArray(header) ? header.join(', ') : header;
  if (value === undefined || value.trim() === '') return null;
  let parsed: Record<string, DeflateParams[]>;
  try {
    parsed = extension.parse(value);
  } catch (err) {
    throw new ExtensionError(`unparsable Sec-WebSocket-Extensions in the upstream's 101: ${(err as Error).message}`);
  }
  const names = Object.keys(parsed);
  const other = names.find((n) => n !== DeflateClass.extensionName);
  if (other !== undefined) throw new ExtensionError(`the upstream accepted the WebSocket extension "${other}", which aigate cannot inspect`);
  if (names.length === 0) return null;
  // accept() normalises the parameter objects in place: each side gets its own parse.
  return () => extension.parse(value)[DeflateClass.extensionName]!;
}

/** Only permessage-deflate offers are passed upstream: an extension aigate cannot parse would blind it. */
export function deflateOffersOnly(header: string | string[]): string | null {
  const kept: string[] = [];
  for (const v of Array.isArray(header) ? header : [header]) {
    for (const offer of splitOffers(v)) {
      if (offer.split(';')[0]!.trim().toLowerCase() === DeflateClass.extensionName) kept.push(offer.trim());
    }
  }
  return kept.length > 0 ? kept.join(', ') : null;
}

/** Splits a Sec-WebSocket-Extensions value at the commas outside quoted strings. */
function splitOffers(value: string): string[] {
  const out: string[] = [];
  let quoted = false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === '"') quoted = !quoted;
    else if (c === '\\' && quoted) i++;
    else if (c === ',' && !quoted) {
      out.push(value.slice(start, i));
      start = i + 1;
    }
  }
  out.push(value.slice(start));
  return out.filter((o) => o.trim() !== '');
}

export interface ClientSide {
  receiver: Receiver;
  inflater: PerMessageDeflate | null;
}

/** What `onInflated` refusing makes the Receiver fail with (the caller has already said why). */
export class InflateRefused extends Error {
  readonly code = 'AIGATE_INFLATE_REFUSED';
}

/**
 * Reads what the client sends: masked frames, reassembled, inflated within `maxPayload` (a bomb is
 * a 1009, not memory). `onInflated` is told the size of each inflated frame of a fragmented
 * message that is not its last (the Receiver holds them until the last one comes); when it says
 * false the Receiver stops with InflateRefused. A frame is counted once inflated, so one frame's
 * output (at most maxPayload) exists before it can be refused; ws gives no finer hook.
 */
export function clientReceiver(
  deflate: (() => DeflateParams[]) | null,
  maxPayload: number,
  onInflated?: (bytes: number) => boolean,
): ClientSide {
  const extensions: Extensions = {};
  let inflater: PerMessageDeflate | null = null;
  if (deflate) {
    inflater = new DeflateClass({ isServer: true, maxPayload });
    inflater.accept(deflate());
    extensions[DeflateClass.extensionName] = inflater;
    if (onInflated) {
      const decompress = inflater.decompress.bind(inflater);
      inflater.decompress = (data, fin, callback) =>
        decompress(data, fin, (err, result) => {
          // A last frame's output becomes the message at once: the message's own size is counted then.
          if (err || fin || result === undefined || result.length === 0 || onInflated(result.length)) callback(err, result);
          else callback(new InflateRefused('inflated message over the body budget'));
        });
    }
  }
  return { receiver: new ReceiverClass({ extensions, isServer: true, maxPayload }), inflater };
}

/**
 * aigate's compressor towards the upstream: zlib's defaults (window 2^15, memLevel 8) hold
 * ~260 KiB while a message is compressed; 2^12 and 5 hold ~40 KiB (bench/websocket.mjs). The cost
 * is compression ratio, paid in upstream bytes only.
 */
const DEFLATE_WINDOW_BITS = 12;
const DEFLATE_MEM_LEVEL = 5;

export interface UpstreamSide {
  sender: Sender;
  deflater: PerMessageDeflate | null;
}

/** Writes to the upstream as a client does: masked, compressed with the parameters the upstream accepted, with its own context. */
export function upstreamSender(socket: Duplex, deflate: (() => DeflateParams[]) | null): UpstreamSide {
  const extensions: Extensions = {};
  let deflater: PerMessageDeflate | null = null;
  if (deflate) {
    deflater = new DeflateClass({ isServer: false, zlibDeflateOptions: { memLevel: DEFLATE_MEM_LEVEL } });
    const params = deflater.accept(deflate());
    // RFC 7692 §7.1.2: the negotiated window bits bound the sender's LZ77 window from above; a
    // smaller one is valid. ws sizes its compressor from this (its own copy of the parameters).
    const negotiated = typeof params.client_max_window_bits === 'number' ? params.client_max_window_bits : 15;
    params.client_max_window_bits = Math.min(negotiated, DEFLATE_WINDOW_BITS);
    // RFC 7692 §7.1.1.2: a compressor may always choose not to refer back to earlier messages
    // (the upstream's inflater keeps its window either way). Then aigate's compressor holds no
    // state between messages and is freed while the connection is idle (InspectedRelay).
    params.client_no_context_takeover = true;
    extensions[DeflateClass.extensionName] = deflater;
  }
  return { sender: new SenderClass(socket, extensions), deflater };
}

/** An unmasked, uncompressed text frame from aigate to the client. */
export function textFrame(text: string): Buffer {
  return Buffer.concat(frameOf(Buffer.from(text), { fin: true, mask: false, opcode: 0x01, readOnly: false, rsv1: false }));
}

/** An unmasked close frame from aigate to the client; `reason` must fit in 123 bytes. */
export function closeFrame(code: number, reason: string): Buffer {
  const payload = Buffer.alloc(2 + Buffer.byteLength(reason));
  payload.writeUInt16BE(code, 0);
  payload.write(reason, 2);
  return Buffer.concat(frameOf(payload, { fin: true, mask: false, opcode: 0x08, readOnly: false, rsv1: false }));
}

/** The close code RFC 6455 §7.4.1 gives a Receiver error (its `code`); 1002 for anything unlisted. */
const CLOSE_CODE: Readonly<Record<string, number>> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: 1009,
  WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH: 1009,
  WS_ERR_INVALID_UTF8: 1007,
  // zlib's own errors on a corrupt deflate stream (ws reports them as 1007).
  Z_DATA_ERROR: 1007,
  Z_BUF_ERROR: 1007,
  Z_STREAM_ERROR: 1007,
};

export function closeCodeFor(err: { code?: string }): number {
  return CLOSE_CODE[err.code ?? ''] ?? 1002;
}

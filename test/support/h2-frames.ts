// A raw HTTP/2 client for abuse tests: writes frames a well-behaved client library never would
// (rapid resets, endless CONTINUATION, streams past the advertised limit) and reads back the
// frames that matter (SETTINGS, HEADERS, RST_STREAM, GOAWAY). RFC 9113 framing, RFC 7541 HPACK
// literals only (no Huffman, no dynamic table).
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls';

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, GOAWAY: 7, CONTINUATION: 9 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK integer with an N-bit prefix (RFC 7541 §5.1). */
function integer(value: number, prefixBits: number, firstByte: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([firstByte | value]);
  const out = [firstByte | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}

function text(s: string): Buffer {
  const b = Buffer.from(s);
  return Buffer.concat([integer(b.length, 7, 0), b]);
}

/** Literal header field without indexing, new name (RFC 7541 §6.2.2). */
export function literal(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x00]), text(name), text(value)]);
}

/** A request header block: method, https, path, authority, plus any extra fields. */
export function requestBlock(method: 'GET' | 'POST', path: string, extra: Buffer[] = []): Buffer {
  return Buffer.concat([
    Buffer.from([method === 'GET' ? 0x82 : 0x83, 0x87]), // static table: :method, :scheme https
    Buffer.concat([Buffer.from([0x04]), text(path)]), // :path, name from the static table
    Buffer.concat([Buffer.from([0x01]), text('localhost')]), // :authority
    ...extra,
  ]);
}

export interface RawH2 {
  socket: TLSSocket;
  /** Frames received so far (type, flags, stream, payload). */
  frames: Array<{ type: number; flags: number; stream: number; payload: Buffer }>;
  /** Resolves when the server has closed the connection (or it errored). */
  closed: Promise<void>;
  /** Resolves with the first frame received that matches. */
  waitFor(match: (f: RawH2['frames'][number]) => boolean): Promise<RawH2['frames'][number]>;
  write(b: Buffer): boolean;
}

/**
 * TLS with ALPN h2 only, the connection preface and an empty SETTINGS; acknowledges the server's.
 * `allowHalfOpen`: the client does not close its side when the server closes its own (a client
 * that keeps a connection the server has ended).
 */
export function rawH2(port: number, ca: string, opts: { allowHalfOpen?: boolean } = {}): Promise<RawH2> {
  return new Promise((resolve, reject) => {
    // tls.connect passes allowHalfOpen on to its socket; its typings do not list it.
    const options: ConnectionOptions & { allowHalfOpen: boolean } = { host: '127.0.0.1', port, servername: 'localhost', ca, ALPNProtocols: ['h2'], allowHalfOpen: opts.allowHalfOpen ?? false };
    const socket = connect(options);
    const frames: RawH2['frames'] = [];
    const waiters: Array<{ match: (f: RawH2['frames'][number]) => boolean; resolve: (f: RawH2['frames'][number]) => void }> = [];
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 9 && pending.length >= 9 + pending.readUIntBE(0, 3)) {
        const length = pending.readUIntBE(0, 3);
        const f = { type: pending[3]!, flags: pending[4]!, stream: pending.readUInt32BE(5) & 0x7fffffff, payload: pending.subarray(9, 9 + length) };
        pending = pending.subarray(9 + length);
        frames.push(f);
        if (f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0 && socket.writable) socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
        for (const w of [...waiters]) {
          if (w.match(f)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(f);
          }
        }
      }
    });
    const closed = new Promise<void>((r) => {
      socket.once('close', () => r());
      socket.on('error', () => undefined);
    });
    socket.once('secureConnect', () => {
      if (socket.alpnProtocol !== 'h2') return reject(new Error(`ALPN chose ${String(socket.alpnProtocol)}`));
      socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]));
      resolve({
        socket,
        frames,
        closed,
        write: (b) => (socket.writable ? socket.write(b) : false),
        waitFor: (match) => {
          const found = frames.find(match);
          if (found) return Promise.resolve(found);
          return new Promise((res) => waiters.push({ match, resolve: res }));
        },
      });
    });
    socket.once('error', reject);
  });
}

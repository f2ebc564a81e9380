// The envelope channel adapter: a transform from a request's body bytes, in whatever chunks its
// transport delivers (a node:http request today, an h2 stream later), to the envelopes that may be
// forwarded — each one whole, decompressed, inspected and clean, yielded as soon as it is, in the
// bytes it arrived as. A refusal is thrown as a ProxyError (an RpcRefusal where the RPC code is
// not the one the audit type implies); the caller applies it in the protocol's terms.
import type { Action } from '../../config/schema.js';
import type { Inspector, ScanFinding } from '../../inspect/index.js';
import { ProxyError } from '../../pipeline/errors.js';
import { blockMessage } from '../../pipeline/stages/inspect.js';
import { Base64TextDecoder, EnvelopeParser, FramingError, type Envelope } from './framing.js';
import { inspectMessage, MessageError } from './message.js';
import { MESSAGE_ENCODINGS, type EnvelopeChannel } from './protocol.js';
import { RpcRefusal } from './refusal.js';

/** Flag bit 0: the message is compressed with the negotiated encoding. No other bit is defined for requests. */
const COMPRESSED = 0x01;

export interface EnvelopeAdapterOptions {
  action: Action;
  /** inspect.maxBodyBytes: the bound on each message, compressed and decoded. */
  maxMessageBytes: number;
  /** Findings of one message (1-based index), as they are found, whatever the decision. */
  onFindings?: (findings: readonly ScanFinding[], index: number) => void;
  /**
   * limits.bufferedBodyBytes*: what is held of the stream (a message arriving, a message being
   * inspected) counts as a request body does. `take` throws the refusal when it may not.
   */
  budget?: { take(bytes: number): void; release(bytes: number): void };
}

const ACCEPT_ENCODINGS = [...MESSAGE_ENCODINGS].filter((e) => e !== 'identity').join(',');

export class EnvelopeAdapter {
  /** Messages inspected so far. */
  messages = 0;

  constructor(
    private readonly inspector: Inspector,
    private readonly channel: EnvelopeChannel,
    private readonly opts: EnvelopeAdapterOptions,
  ) {}

  /** Refuses a negotiated compression aigate cannot undo, before a byte is read or forwarded. */
  checkEncoding(): void {
    const { encoding, protocol } = this.channel;
    if (MESSAGE_ENCODINGS.has(encoding)) return;
    // gRPC (doc/compression.md) and Connect both answer an unknown compression with UNIMPLEMENTED
    // and the encodings they accept.
    const header = protocol === 'connect' ? 'connect-accept-encoding' : 'grpc-accept-encoding';
    const name = protocol === 'connect' ? 'connect-content-encoding' : 'grpc-encoding';
    throw new RpcRefusal('bad_request', 'unimplemented', `unsupported message compression "${encoding}" (${name}): aigate inspects ${ACCEPT_ENCODINGS} and identity`, {
      [header]: ACCEPT_ENCODINGS,
    });
  }

  /** The clean envelopes of `body`, each yielded once inspected. Throws a ProxyError to refuse. */
  async *clean(body: AsyncIterable<Buffer>): AsyncGenerator<Buffer, void, undefined> {
    this.checkEncoding();
    const parser = new EnvelopeParser(this.opts.maxMessageBytes);
    const text = this.channel.base64 ? new Base64TextDecoder() : null;
    const budget = this.opts.budget;
    // Bytes of the stream held now: an envelope being assembled, and the envelopes of this chunk
    // until each is forwarded. A message withheld at its last byte holds its size, as a body does.
    let held = 0;
    const holdTo = (bytes: number) => {
      if (bytes > held) budget?.take(bytes - held);
      else budget?.release(held - bytes);
      held = bytes;
    };
    try {
      for await (const chunk of body) {
        const envelopes = parser.push(text ? text.push(chunk) : chunk);
        let waiting = envelopes.reduce((n, e) => n + e.raw.length, 0);
        holdTo(parser.buffered + waiting);
        for (const envelope of envelopes) {
          await this.inspect(envelope);
          yield envelope.raw;
          waiting -= envelope.raw.length;
          holdTo(parser.buffered + waiting);
        }
      }
      text?.end();
      parser.end();
    } catch (err) {
      throw framingRefusal(err);
    } finally {
      budget?.release(held);
    }
  }

  private async inspect(envelope: Envelope): Promise<void> {
    const index = ++this.messages;
    if ((envelope.flags & ~COMPRESSED) !== 0) {
      throw new ProxyError('bad_request', `message ${index} has envelope flags 0x${envelope.flags.toString(16).padStart(2, '0')}; a request message may only set 0x01 (compressed)`);
    }
    const compressed = (envelope.flags & COMPRESSED) !== 0;
    if (compressed && this.channel.encoding === 'identity') {
      throw new ProxyError('bad_request', `message ${index} is flagged compressed but the request negotiated no compression`);
    }
    let verdict;
    try {
      verdict = await inspectMessage(this.inspector, envelope.data, {
        codec: this.channel.codec,
        encoding: compressed ? this.channel.encoding : 'identity',
        action: this.opts.action,
        maxBytes: this.opts.maxMessageBytes,
      });
    } catch (err) {
      if (err instanceof MessageError) {
        if (err.kind === 'too_large') throw new ProxyError('body_too_large', `message ${index}: ${err.message}`);
        throw new ProxyError('bad_request', `message ${index} cannot be inspected: ${err.message}`);
      }
      throw err;
    }
    if (verdict.findings.length > 0) this.opts.onFindings?.(verdict.findings, index);
    if (verdict.decision === 'block') {
      throw new ProxyError('sensitive_content', `${blockMessage(verdict.findings.filter((f) => f.action === 'block'))} in message ${index}`);
    }
  }
}

function framingRefusal(err: unknown): unknown {
  if (!(err instanceof FramingError)) return err;
  if (err.kind === 'too_large') return new ProxyError('body_too_large', err.message, { connection: 'close' });
  return new ProxyError('bad_request', `malformed RPC body: ${err.message}`);
}

// An inspected WebSocket connection, after the 101 (DESIGN: a channel adapter only does framing).
//
// client → upstream: the client's frames are parsed (masking, fragments with control frames
//   between them, 16/64-bit lengths, permessage-deflate inflated within maxPayload), each complete
//   message is judged, and what may pass is framed again as a client does (masked, compressed with
//   the parameters the upstream accepted, in aigate's own deflate context). Messages and control
//   frames leave in the order they came; while one is being judged the client is not read
//   (backpressure), so what is buffered is at most one socket read.
// upstream → client: a byte pipe with backpressure, followed frame by frame (ws-downstream.ts) so
//   that aigate's own frames (an error event, a close) are only ever written between two frames.
//
// Nothing half-judged is forwarded: once aigate closes a connection (a blocked message, a frame
// it cannot parse, a message over the limit) the queue is dropped and no byte more goes upstream.
import type { Duplex } from 'node:stream';
import { DownstreamFrames, FrameError } from './ws-downstream.js';
import {
  InflateRefused,
  clientReceiver,
  closeCodeFor,
  closeFrame,
  textFrame,
  upstreamSender,
  type DeflateParams,
  type PerMessageDeflate,
  type Receiver,
  type Sender,
} from './ws-framing.js';

/** What happens to one client message. */
export type Verdict = { forward: Buffer } | { block: { event: string; reason: string } };

export type TerminationKind = 'blocked' | 'too_large' | 'over_budget' | 'malformed' | 'upstream_malformed' | 'internal' | 'shutdown';

export interface Termination {
  kind: TerminationKind;
  code: number;
}

export interface InspectedRelayOptions {
  client: Duplex;
  upstream: Duplex;
  /** Bytes the client sent after its handshake, before the 101. */
  head: Buffer;
  /** The permessage-deflate parameters the upstream accepted, or null. */
  deflate: (() => DeflateParams[]) | null;
  /** Largest message, after reassembly and inflation (inspect.maxBodyBytes). */
  maxPayload: number;
  judge(message: Buffer, binary: boolean): Promise<Verdict>;
  /**
   * Judges the payload of a client's ping, pong or close frame (its reason) before it is passed on:
   * up to 125 bytes each, but they reach the upstream as sent, as often as the client likes.
   */
  judgeControl?(payload: Buffer, kind: 'ping' | 'pong' | 'close'): Promise<Verdict>;
  /** aigate closed the connection (called once, before the close frames are written). */
  onTerminate(t: Termination): void;
  /** Both sockets are closed. */
  onClosed(): void;
  /**
   * The body budget (limits.bufferedBodyBytes*): takes `bytes` for what the relay holds of the
   * client's (a message arriving: its frames, and the inflated frames of a compressed one; a
   * message waiting to be judged) and says false when it may not; `release` gives bytes back.
   * Without it nothing is counted.
   */
  budget?: { take(bytes: number): boolean; release(bytes: number): void };
}

/** How long aigate's close waits for the upstream frame being relayed to end before cutting the connection. */
const BOUNDARY_WAIT_MS = 5_000;
/** How long a peer has to close its side once aigate (or the other peer) closed. */
const CLOSE_GRACE_MS = 5_000;
/** After a drain's 1001, how long the peers get before the sockets are cut (the drain waits ~1 s). */
const SHUTDOWN_GRACE_MS = 500;
/** RFC 6455 §5.5: a control frame's payload, so a close reason after its 2-byte code, is at most 123 bytes. */
export const MAX_CLOSE_REASON = 123;

type Item =
  | { kind: 'message'; data: Buffer; binary: boolean }
  | { kind: 'ping' | 'pong'; data: Buffer }
  | { kind: 'close'; code: number; reason: Buffer }
  | { kind: 'end' }
  | { kind: 'fail'; termination: Termination; reason: string };

/** `text` cut to at most `max` UTF-8 bytes, never inside a character. */
export function cutUtf8(text: string, max = MAX_CLOSE_REASON): string {
  if (Buffer.byteLength(text) <= max) return text;
  let out = '';
  let bytes = 0;
  for (const c of text) {
    const n = Buffer.byteLength(c);
    if (bytes + n > max) break;
    out += c;
    bytes += n;
  }
  return out;
}

export class InspectedRelay {
  private readonly client: Duplex;
  private readonly upstream: Duplex;
  private readonly receiver: Receiver;
  private readonly sender: Sender;
  private readonly inflater: PerMessageDeflate | null;
  private readonly deflater: PerMessageDeflate | null;
  private readonly downstream = new DownstreamFrames();
  private readonly queue: Item[] = [];
  private pumping = false;
  /** aigate closed the connection: nothing more is forwarded either way. */
  private terminated = false;
  /** The client's close frame, or a frame it got wrong, was read: its later bytes are not parsed. */
  private clientDone = false;
  private receiverFull = false;
  private upstreamWrites = 0;
  private endUpstreamWhenFlushed = false;
  /** aigate's close, waiting for a frame boundary on the upstream → client stream. */
  private pendingClose: { code: number; reason: string; event: string | undefined } | null = null;
  /** aigate's close went out: upstream bytes after it are dropped. */
  private downstreamDone = false;
  private readonly timers: NodeJS.Timeout[] = [];
  /**
   * Budget held (limits.bufferedBodyBytes*): the client's bytes since its last complete message
   * (frames the receiver buffers: fragments of a message withheld at its last byte would otherwise
   * hold maxPayload per connection, uncounted), the inflated frames of such a message when it is
   * compressed (its wire bytes are a poor measure: a few KiB of deflate can be maxPayload inflated),
   * and each message until it is judged.
   */
  private heldWire = 0;
  private heldInflated = 0;
  private heldMessages = 0;
  /** Both sockets closed and the budget given back: nothing may be taken any more. */
  private finished = false;

  constructor(private readonly opts: InspectedRelayOptions) {
    this.client = opts.client;
    this.upstream = opts.upstream;
    const onInflated = opts.budget ? (bytes: number) => this.holdInflated(bytes) : undefined;
    ({ receiver: this.receiver, inflater: this.inflater } = clientReceiver(opts.deflate, opts.maxPayload, onInflated));
    ({ sender: this.sender, deflater: this.deflater } = upstreamSender(opts.upstream, opts.deflate));
  }

  /** Complete messages the upstream sent to the client. */
  get messagesOut(): number {
    return this.downstream.messages;
  }

  start(): void {
    const { client, upstream, receiver } = this;
    receiver.on('message', (data, binary) => {
      // Its frames are now one message: the bytes held for them become the message's size.
      this.releaseWire(this.heldWire);
      this.opts.budget?.release(this.heldInflated);
      this.heldInflated = 0;
      if (!this.hold(data.length)) return;
      this.heldMessages += data.length;
      this.enqueue({ kind: 'message', data, binary });
    });
    receiver.on('ping', (data) => {
      this.releaseWire(data.length + 2);
      this.enqueue({ kind: 'ping', data });
    });
    receiver.on('pong', (data) => {
      this.releaseWire(data.length + 2);
      this.enqueue({ kind: 'pong', data });
    });
    receiver.on('conclude', (code, reason) => {
      this.clientDone = true;
      this.enqueue({ kind: 'close', code, reason });
    });
    receiver.on('error', (err) => {
      // Stopped by aigate itself (the budget refused an inflated frame): that refusal is already queued.
      if (err instanceof InflateRefused) return;
      this.clientDone = true;
      const code = closeCodeFor(err);
      const kind = code === 1009 ? 'too_large' : 'malformed';
      const reason = code === 1009 ? 'message too large for inspection (inspect.maxBodyBytes)' : err.message;
      this.enqueue({ kind: 'fail', termination: { kind, code }, reason });
    });
    receiver.on('drain', () => {
      this.receiverFull = false;
      this.updateFlow();
    });

    client.on('data', (chunk: Buffer) => this.fromClient(chunk));
    client.on('end', () => this.enqueue({ kind: 'end' }));
    client.on('drain', () => {
      if (!this.downstreamDone) upstream.resume();
    });
    upstream.on('data', (chunk: Buffer) => this.fromUpstream(chunk));
    upstream.on('drain', () => this.updateFlow());
    upstream.on('end', () => {
      if (this.pendingClose) this.closeDownstream();
      else if (!this.downstreamDone) client.end();
    });

    let closed = 0;
    const onClose = (other: Duplex) => () => {
      // The other side gets a clean end (its last frames flushed), then a bounded wait.
      if (!other.destroyed) {
        other.end();
        this.later(CLOSE_GRACE_MS, () => other.destroy());
      }
      if (++closed === 2) this.closed();
    };
    client.once('close', onClose(upstream));
    upstream.once('close', onClose(client));
    if (this.opts.head.length > 0) this.fromClient(this.opts.head);
  }

  private fromClient(chunk: Buffer): void {
    if (this.terminated || this.clientDone) return;
    if (!this.hold(chunk.length)) return;
    this.heldWire += chunk.length;
    if (!this.receiver.write(chunk)) this.receiverFull = true;
    this.updateFlow();
  }

  /** Takes budget; over it, the connection is closed 1013 (try again later) and false is said. */
  private hold(bytes: number): boolean {
    const budget = this.opts.budget;
    if (!budget || bytes === 0 || budget.take(bytes)) return true;
    this.clientDone = true;
    this.enqueue({ kind: 'fail', termination: { kind: 'over_budget', code: 1013 }, reason: 'aigate is holding too much of this client\'s data; try again later' });
    return false;
  }

  /** An inflated frame of a message still arriving, held by the receiver until the message is complete. */
  private holdInflated(bytes: number): boolean {
    if (this.finished || this.terminated) return false;
    if (!this.hold(bytes)) return false;
    this.heldInflated += bytes;
    return true;
  }

  private releaseWire(bytes: number): void {
    const n = Math.min(bytes, this.heldWire);
    this.heldWire -= n;
    this.opts.budget?.release(n);
  }

  private releaseAll(): void {
    this.opts.budget?.release(this.heldWire + this.heldInflated + this.heldMessages);
    this.heldWire = 0;
    this.heldInflated = 0;
    this.heldMessages = 0;
  }

  private enqueue(item: Item): void {
    if (this.terminated) return;
    this.queue.push(item);
    void this.pump();
  }

  /** The client is read only while nothing waits: a message being judged holds the next. */
  private updateFlow(): void {
    if (this.terminated) return;
    const hold = this.pumping || this.queue.length > 0 || this.receiverFull || this.upstream.writableNeedDrain;
    if (hold) this.client.pause();
    else this.client.resume();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    this.updateFlow();
    try {
      while (this.queue.length > 0 && !this.terminated) {
        const item = this.queue.shift()!;
        switch (item.kind) {
          case 'message': {
            let verdict: Verdict;
            try {
              verdict = await this.opts.judge(item.data, item.binary);
            } catch (err) {
              // What the inspector refuses is the message's fault: too large once its attachments
              // are decoded (1009), not decodable as what it claims (1007); anything else is ours.
              const type = (err as { type?: string }).type;
              if (type === 'body_too_large') this.terminate({ kind: 'too_large', code: 1009 }, 'message too large to inspect');
              else if (type === 'bad_request') this.terminate({ kind: 'malformed', code: 1007 }, 'message cannot be inspected');
              else this.terminate({ kind: 'internal', code: 1011 }, 'internal error in aigate');
              break;
            }
            if (this.terminated) break;
            if ('block' in verdict) {
              this.terminate({ kind: 'blocked', code: 1008 }, verdict.block.reason, verdict.block.event);
              break;
            }
            const data = verdict.forward;
            const compress = this.deflater !== null;
            this.toUpstream((cb) => this.sender.send(data, { binary: item.binary, compress, fin: true, mask: true }, cb));
            // Judged and handed to the sender: the budget it held is free (the socket's own
            // buffer is bounded by the backpressure that pauses the client).
            this.heldMessages -= item.data.length;
            this.opts.budget?.release(item.data.length);
            break;
          }
          case 'ping':
          case 'pong':
          case 'close': {
            const payload = item.kind === 'close' ? item.reason : item.data;
            if (payload.length > 0 && this.opts.judgeControl) {
              let verdict: Verdict;
              try {
                verdict = await this.opts.judgeControl(payload, item.kind);
              } catch {
                this.terminate({ kind: 'internal', code: 1011 }, 'internal error in aigate');
                break;
              }
              if (this.terminated) break;
              if ('block' in verdict) {
                this.terminate({ kind: 'blocked', code: 1008 }, verdict.block.reason, verdict.block.event);
                break;
              }
            }
            // 1005 is "no code given": the close is passed on as it came, empty.
            if (item.kind === 'close') this.toUpstream((cb) => this.sender.close(item.code === 1005 ? undefined : item.code, item.reason, true, cb));
            else if (item.kind === 'ping') this.toUpstream((cb) => this.sender.ping(item.data, true, cb));
            else this.toUpstream((cb) => this.sender.pong(item.data, true, cb));
            break;
          }
          case 'end':
            this.endUpstream();
            break;
          case 'fail':
            this.terminate(item.termination, item.reason);
            break;
        }
      }
    } finally {
      this.pumping = false;
      this.updateFlow();
    }
  }

  private toUpstream(write: (cb: (err?: Error) => void) => void): void {
    if (this.upstream.destroyed) return;
    this.upstreamWrites++;
    write(() => {
      this.upstreamWrites--;
      if (this.upstreamWrites > 0) return;
      // Nothing being compressed: an idle connection holds no compressor (it compresses each
      // message afresh, see upstreamSender).
      this.deflater?.cleanup();
      if (this.endUpstreamWhenFlushed) this.upstream.end();
    });
  }

  private endUpstream(): void {
    if (this.upstreamWrites === 0) this.upstream.end();
    else this.endUpstreamWhenFlushed = true;
  }

  /** aigate is shutting down (a drain's grace period is over): close 1001 both ways, then cut. */
  goingAway(): void {
    this.terminate({ kind: 'shutdown', code: 1001 }, 'aigate is shutting down');
    this.later(SHUTDOWN_GRACE_MS, () => {
      this.client.destroy();
      this.upstream.destroy();
    });
  }

  /** aigate ends the connection: the upstream gets a close now, the client at the next frame boundary. */
  private terminate(t: Termination, reason: string, event?: string): void {
    if (this.terminated) return;
    this.terminated = true;
    this.queue.length = 0;
    this.opts.onTerminate(t);
    // The client's remaining bytes are read and dropped, so its close reply and FIN arrive.
    this.client.resume();
    if (t.kind !== 'upstream_malformed') this.toUpstream((cb) => this.sender.close(t.code, 'closed by aigate', true, cb));
    this.endUpstream();
    this.pendingClose = { code: t.code, reason: cutUtf8(reason), event };
    if (this.downstream.atBoundary) this.closeDownstream();
    else {
      this.upstream.resume();
      this.later(BOUNDARY_WAIT_MS, () => this.client.destroy());
    }
  }

  private fromUpstream(chunk: Buffer): void {
    if (this.downstreamDone) return;
    let upto: number;
    try {
      upto = this.downstream.follow(chunk, this.pendingClose !== null);
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      // Only what precedes the bad frame has been relayed when its header began in this chunk.
      if (err.frameStart < 0) {
        this.client.destroy();
        return;
      }
      if (err.frameStart > 0) this.client.write(chunk.subarray(0, err.frameStart));
      this.downstream.dropFrame();
      this.terminate({ kind: 'upstream_malformed', code: 1002 }, err.message);
      this.upstream.destroy();
      return;
    }
    const part = upto === chunk.length ? chunk : chunk.subarray(0, upto);
    if (part.length > 0 && !this.client.write(part)) this.upstream.pause();
    if (this.pendingClose && this.downstream.atBoundary) this.closeDownstream();
  }

  /** Writes aigate's frames: the error event unless a fragmented message is open (RFC 6455 §5.4), then the close. */
  private closeDownstream(): void {
    const pending = this.pendingClose;
    if (!pending || this.downstreamDone) return;
    this.downstreamDone = true;
    if (!this.downstream.atBoundary) {
      this.client.destroy();
      return;
    }
    const frames = [];
    if (pending.event !== undefined && !this.downstream.fragmented) frames.push(textFrame(pending.event));
    frames.push(closeFrame(pending.code, pending.reason));
    this.client.end(Buffer.concat(frames));
    this.later(CLOSE_GRACE_MS, () => this.client.destroy());
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(fn, ms);
    this.timers.push(t);
  }

  private closed(): void {
    for (const t of this.timers) clearTimeout(t);
    this.finished = true;
    this.releaseAll();
    this.receiver.destroy();
    this.inflater?.cleanup();
    this.deflater?.cleanup();
    this.opts.onClosed();
  }
}

// The upstream → client frame follower (where aigate may write a frame of its own) and the close
// reason that names blocking rules within RFC 6455's 123 bytes.
import { describe, expect, it } from 'vitest';
import { DownstreamFrames, FrameError } from '../../src/upstream/ws-downstream.js';
import { blockCloseReason } from '../../src/upstream/ws-inspect.js';
import { cutUtf8 } from '../../src/upstream/ws-relay.js';

function serverFrame(opcode: number, length: number, fin = true): Buffer {
  const head = length > 65535 ? Buffer.alloc(10) : length > 125 ? Buffer.alloc(4) : Buffer.alloc(2);
  head[0] = (fin ? 0x80 : 0) | opcode;
  if (length > 65535) {
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(length), 2);
  } else if (length > 125) {
    head[1] = 126;
    head.writeUInt16BE(length, 2);
  } else head[1] = length;
  return Buffer.concat([head, Buffer.alloc(length, 0x61)]);
}

describe('DownstreamFrames', () => {
  it('follows frames of every length form split at every byte', () => {
    const stream = Buffer.concat([serverFrame(1, 5), serverFrame(2, 300), serverFrame(1, 70_000), serverFrame(9, 0)]);
    for (const size of [1, 2, 3, 7, 100, 65536]) {
      const frames = new DownstreamFrames();
      let followed = 0;
      for (let i = 0; i < stream.length; i += size) followed += frames.follow(stream.subarray(i, i + size));
      expect(followed).toBe(stream.length);
      expect(frames.atBoundary).toBe(true);
      expect(frames.messages).toBe(3);
    }
  });

  it('stops at the first frame end when asked, and knows a fragmented message is open', () => {
    const frames = new DownstreamFrames();
    const a = serverFrame(1, 10, false);
    const b = serverFrame(0, 10, true);
    const chunk = Buffer.concat([a, b]);
    expect(frames.follow(chunk.subarray(0, 5), true)).toBe(5);
    expect(frames.atBoundary).toBe(false);
    expect(frames.follow(chunk.subarray(5), true)).toBe(a.length - 5);
    expect(frames.atBoundary).toBe(true);
    expect(frames.fragmented).toBe(true);
    expect(frames.follow(b, true)).toBe(b.length);
    expect(frames.fragmented).toBe(false);
    expect(frames.messages).toBe(1);
  });

  it('refuses a masked frame and a 64-bit length with its top bits set, saying where the frame began', () => {
    const ok = serverFrame(1, 3);
    const masked = Buffer.from([0x81, 0x81, 1, 2, 3, 4, 0x61]);
    expect(() => new DownstreamFrames().follow(Buffer.concat([ok, masked]))).toThrow(FrameError);
    try {
      new DownstreamFrames().follow(Buffer.concat([ok, masked]));
    } catch (err) {
      expect((err as FrameError).frameStart).toBe(ok.length);
    }
    const huge = Buffer.from([0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1]);
    expect(() => new DownstreamFrames().follow(huge)).toThrow(/2\^53/);
  });
});

describe('close reasons', () => {
  it('name every blocking rule when they fit, else as many as fit and how many more, within 123 bytes', () => {
    expect(blockCloseReason(['github-pat'])).toBe('sensitive_content: github-pat');
    const many = Array.from({ length: 30 }, (_, i) => `custom-rule-number-${i}`);
    const reason = blockCloseReason(many);
    expect(Buffer.byteLength(reason)).toBeLessThanOrEqual(123);
    expect(reason).toMatch(/^sensitive_content: custom-rule-number-0, .* \+\d+$/);
  });

  it('a reason is cut at 123 bytes, never inside a character', () => {
    const cut = cutUtf8('é'.repeat(100));
    expect(Buffer.byteLength(cut)).toBe(122);
    expect(cut).toBe('é'.repeat(61));
  });
});

describe('extension negotiation', () => {
  it('only permessage-deflate offers go upstream (quoted commas kept inside their offer)', async () => {
    const { deflateOffersOnly } = await import('../../src/upstream/ws-framing.js');
    expect(deflateOffersOnly('permessage-deflate; client_max_window_bits, x-webkit-deflate-frame')).toBe('permessage-deflate; client_max_window_bits');
    expect(deflateOffersOnly(['x-foo; a="1,2"', 'permessage-deflate'])).toBe('permessage-deflate');
    expect(deflateOffersOnly('x-webkit-deflate-frame')).toBeNull();
  });

  it('an accepted extension other than permessage-deflate, or an unparsable one, is refused', async () => {
    const { acceptedDeflate, ExtensionError } = await import('../../src/upstream/ws-framing.js');
    expect(acceptedDeflate(undefined)).toBeNull();
    expect(acceptedDeflate('permessage-deflate; client_no_context_takeover')!()).toEqual([{ client_no_context_takeover: [true] }]);
    expect(() => acceptedDeflate('x-webkit-deflate-frame')).toThrow(ExtensionError);
    expect(() => acceptedDeflate('permessage-deflate; =')).toThrow(ExtensionError);
  });
});

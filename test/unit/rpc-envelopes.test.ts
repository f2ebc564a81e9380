// The envelope channel adapter without a transport: framing (chunks split anywhere, truncation,
// a length over the limit refused from the prefix), grpc-web-text base64 with per-message padding,
// the protobuf text walk (nested fields, a length prefix glued to a token, hostile nesting in
// linear time), per-message compression, and gRPC framing through EnvelopeAdapter.
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { EnvelopeAdapter } from '../../src/channels/envelopes/adapter.js';
import { Base64TextDecoder, EnvelopeParser, FramingError, ResponseFraming } from '../../src/channels/envelopes/framing.js';
import { inspectMessage } from '../../src/channels/envelopes/message.js';
import { rpcChannel, type EnvelopeChannel } from '../../src/channels/envelopes/protocol.js';
import { protobufTexts } from '../../src/channels/envelopes/protobuf-text.js';
import { grpcMessage, RpcRefusal } from '../../src/channels/envelopes/refusal.js';
import { configSchema } from '../../src/config/schema.js';
import { createInspector } from '../../src/inspect/index.js';
import { ProxyError } from '../../src/pipeline/errors.js';
import { withCpuTime } from '../support/cpu.js';
import { githubToken } from '../support/secrets.js';

const MAX = 64 * 1024;
const inspector = createInspector(configSchema.parse({ inspect: { maxBodyBytes: MAX } }).inspect, { fingerprintKey: 'k' });

const token = githubToken();

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/** A length-delimited protobuf field. */
function field(number: number, value: Buffer | string): Buffer {
  const bytes = Buffer.isBuffer(value) ? value : Buffer.from(value);
  return Buffer.concat([varint(number * 8 + 2), varint(bytes.length), bytes]);
}

function envelope(flags: number, message: Buffer): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = flags;
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

async function* chunked(bytes: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

function grpcChannel(encoding = 'gzip'): EnvelopeChannel {
  return rpcChannel('POST', { 'content-type': 'application/grpc+proto', 'grpc-encoding': encoding }, '') as EnvelopeChannel;
}

async function collect(gen: AsyncGenerator<Buffer>): Promise<{ out: Buffer[]; error: unknown }> {
  const out: Buffer[] = [];
  try {
    for await (const b of gen) out.push(b);
    return { out, error: undefined };
  } catch (error) {
    return { out, error };
  }
}

describe('EnvelopeParser', () => {
  it('yields whole envelopes whatever the chunking, as the bytes they arrived in', () => {
    const a = envelope(0, Buffer.from('first message'));
    const b = envelope(1, Buffer.alloc(0));
    const c = envelope(0, Buffer.from('x'.repeat(300)));
    const all = Buffer.concat([a, b, c]);
    for (const size of [1, 2, 4, 5, 6, 7, 300, all.length]) {
      const parser = new EnvelopeParser(MAX);
      const got = [];
      for (let i = 0; i < all.length; i += size) got.push(...parser.push(all.subarray(i, i + size)));
      parser.end();
      expect(got.map((e) => e.raw)).toEqual([a, b, c]);
      expect(got.map((e) => e.flags)).toEqual([0, 1, 0]);
      expect(got[0]!.data.toString()).toBe('first message');
    }
  });

  it('a body ending inside an envelope is truncated (prefix or message)', () => {
    const p1 = new EnvelopeParser(MAX);
    p1.push(Buffer.from([0, 0, 0]));
    expect(() => p1.end()).toThrow(FramingError);
    const p2 = new EnvelopeParser(MAX);
    expect(p2.push(Buffer.from([0, 0, 0, 0, 9, 1, 2]))).toEqual([]);
    expect(() => p2.end()).toThrow(/inside a 9-byte message/);
  });

  it('a length over the limit is refused from the prefix alone, holding no more than what arrived', () => {
    const parser = new EnvelopeParser(MAX);
    const prefix = Buffer.from([0, 0, 0, 0, 0]);
    prefix.writeUInt32BE(MAX + 1, 1);
    expect(() => parser.push(prefix)).toThrow(expect.objectContaining({ kind: 'too_large' }));
    expect(parser.buffered).toBe(5);
  });
});

describe('Base64TextDecoder (grpc-web-text)', () => {
  it('decodes envelopes each base64-encoded alone (padding mid-stream), in chunks of any size', () => {
    const parts = [envelope(0, Buffer.from('a')), envelope(0, Buffer.from('bc')), envelope(0, Buffer.from('def'))];
    const text = Buffer.from(parts.map((p) => p.toString('base64')).join(''));
    expect(text.toString()).toMatch(/=.+=/); // padding inside the stream, not only at its end
    for (const size of [1, 3, 5, 7, text.length]) {
      const dec = new Base64TextDecoder();
      const out: Buffer[] = [];
      for (let i = 0; i < text.length; i += size) out.push(dec.push(text.subarray(i, i + size)));
      dec.end();
      expect(Buffer.concat(out)).toEqual(Buffer.concat(parts));
    }
  });

  it('refuses characters outside base64 and a stray tail', () => {
    expect(() => new Base64TextDecoder().push(Buffer.from('AA*A'))).toThrow(FramingError);
    expect(() => new Base64TextDecoder().push(Buffer.from('A=AA'))).toThrow(FramingError);
    const dec = new Base64TextDecoder();
    dec.push(Buffer.from('AAAAA'));
    expect(() => dec.end()).toThrow(/stray/);
  });
});

describe('protobufTexts', () => {
  it('finds string fields, nested messages included, in wire order', () => {
    const inner = Buffer.concat([field(1, 'const x = 42; // inner text'), field(2, Buffer.from([0xff, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06]))]);
    const msg = Buffer.concat([Buffer.from([0x08, 0x96, 0x01]), field(1, 'the outer prompt text'), field(2, inner)]);
    expect(protobufTexts(msg)).toEqual(['the outer prompt text', 'const x = 42; // inner text']);
  });

  it('a token whose length prefix is a letter is found in the text view, and by the detector only there', async () => {
    // A string field of 71 bytes: its length byte is 0x47, 'G', glued to the token in the raw bytes.
    const text = `${token}${' '.repeat(71 - token.length)}`;
    const msg = field(1, text);
    expect(msg[1]).toBe(0x47);
    const raw = await inspector.inspectBody(msg, { contentType: 'application/octet-stream', action: 'block' });
    expect(raw.findings).toEqual([]); // what scanning the raw bytes alone missed
    const verdict = await inspectMessage(inspector, msg, { codec: 'proto', encoding: 'identity', action: 'block', maxBytes: MAX });
    expect(verdict.decision).toBe('block');
    expect(verdict.findings.map((f) => f.rule)).toEqual(['github-pat']);
  });

  it('hostile nesting (every field a message a level deeper, 1 MiB) takes linear time', async () => {
    let msg: Buffer = field(1, 'the innermost text');
    while (msg.length < 1024 * 1024) msg = field(1, Buffer.concat([msg, field(2, 'x'.repeat(4096))]));
    const { value, ms } = await withCpuTime(() => protobufTexts(msg));
    expect(value.length).toBeGreaterThan(0);
    expect(ms).toBeLessThan(2000);
  });
});

describe('inspectMessage', () => {
  it('undoes the message compression, refuses a bomb past the limit as too_large', async () => {
    const verdict = await inspectMessage(inspector, gzipSync(field(1, `key: "${token}"`)), { codec: 'proto', encoding: 'gzip', action: 'block', maxBytes: MAX });
    expect(verdict.decision).toBe('block');
    await expect(inspectMessage(inspector, gzipSync(Buffer.alloc(MAX * 8)), { codec: 'proto', encoding: 'gzip', action: 'block', maxBytes: MAX })).rejects.toMatchObject({ kind: 'too_large' });
  });

  it('redact blocks a protobuf message (it cannot be re-encoded in place); monitor lets it through with its findings', async () => {
    const msg = field(1, `token ${token}`);
    const redact = await inspectMessage(inspector, msg, { codec: 'proto', encoding: 'identity', action: 'redact', maxBytes: MAX });
    expect(redact.decision).toBe('block');
    expect(redact.findings.map((f) => f.action)).toEqual(['block']);
    const monitor = await inspectMessage(inspector, msg, { codec: 'proto', encoding: 'identity', action: 'monitor', maxBytes: MAX });
    expect(monitor.decision).toBe('monitor');
    expect(monitor.findings).toHaveLength(1);
  });
});

describe('EnvelopeAdapter with gRPC framing', () => {
  const adapter = (channel: EnvelopeChannel) => new EnvelopeAdapter(inspector, channel, { action: 'block', maxMessageBytes: MAX });
  const clean1 = envelope(1, gzipSync(field(1, 'first clean message')));
  const clean2 = envelope(0, field(1, 'second clean message'));
  const leaky = envelope(1, gzipSync(field(2, field(1, `auth = "${token}"`))));

  it('yields each clean message as it completes, then refuses the one with a secret', async () => {
    for (const size of [1, 7, 4096]) {
      const a = adapter(grpcChannel());
      const { out, error } = await collect(a.clean(chunked(Buffer.concat([clean1, clean2, leaky, clean1]), size)));
      expect(out).toEqual([clean1, clean2]);
      expect(error).toBeInstanceOf(ProxyError);
      expect((error as ProxyError).type).toBe('sensitive_content');
      expect((error as ProxyError).message).toMatch(/github-pat line 1\) in message 3$/);
    }
  });

  it('holds budget for the message being assembled and inspected, refuses past it, and gives all back', async () => {
    for (const size of [1, 7, 4096]) {
      let held = 0;
      let peak = 0;
      const budget = {
        take(bytes: number) {
          if (held + bytes > clean1.length + clean2.length) throw new ProxyError('rate_limited', 'over budget');
          held += bytes;
          peak = Math.max(peak, held);
        },
        release(bytes: number) {
          held -= bytes;
        },
      };
      const a = new EnvelopeAdapter(inspector, grpcChannel(), { action: 'block', maxMessageBytes: MAX, budget });
      const ok = await collect(a.clean(chunked(Buffer.concat([clean1, clean2]), size)));
      expect(ok.error).toBeUndefined();
      expect(peak).toBeGreaterThanOrEqual(Math.min(size, clean2.length));
      expect(held).toBe(0);
      // A message larger than the budget left is refused while it arrives, withheld last byte or not.
      const big = envelope(0, field(1, 'x'.repeat(clean1.length + clean2.length)));
      const refused = await collect(new EnvelopeAdapter(inspector, grpcChannel(), { action: 'block', maxMessageBytes: MAX, budget }).clean(chunked(big.subarray(0, big.length - 1), size)));
      expect((refused.error as ProxyError).type).toBe('rate_limited');
      expect(held).toBe(0);
    }
  });

  it('refuses bad framing, an unset compression, a response-only flag and an unknown encoding', async () => {
    const truncated = await collect(adapter(grpcChannel()).clean(chunked(clean1.subarray(0, clean1.length - 1), 3)));
    expect(truncated.out).toEqual([]);
    expect((truncated.error as ProxyError).type).toBe('bad_request');
    const unnegotiated = await collect(adapter(grpcChannel('identity')).clean(chunked(clean1, 64)));
    expect((unnegotiated.error as ProxyError).message).toMatch(/flagged compressed but the request negotiated no compression/);
    const trailerFlag = await collect(adapter(grpcChannel()).clean(chunked(envelope(0x80, Buffer.from('grpc-status: 0')), 64)));
    expect((trailerFlag.error as ProxyError).message).toMatch(/flags 0x80/);
    const unknown = await collect(adapter(grpcChannel('snappy')).clean(chunked(clean2, 64)));
    expect(unknown.error).toBeInstanceOf(RpcRefusal);
    expect((unknown.error as RpcRefusal).code).toBe('unimplemented');
    expect((unknown.error as RpcRefusal).headers).toEqual({ 'grpc-accept-encoding': 'gzip,deflate' });
  });
});

describe('rpcChannel', () => {
  it('recognises the RPC content types and nothing else', () => {
    const kind = (ct: string, extra: Record<string, string> = {}, method = 'POST', query = '') => rpcChannel(method, { 'content-type': ct, ...extra }, query);
    expect(kind('application/grpc')).toMatchObject({ protocol: 'grpc', codec: 'proto' });
    expect(kind('application/grpc+json')).toMatchObject({ protocol: 'grpc', codec: 'json' });
    expect(kind('application/grpc-web+proto')).toMatchObject({ protocol: 'grpc-web', base64: false });
    expect(kind('application/grpc-web-text')).toMatchObject({ protocol: 'grpc-web', base64: true });
    expect(kind('application/connect+json', { 'connect-content-encoding': 'GZIP' })).toMatchObject({ protocol: 'connect', codec: 'json', encoding: 'gzip' });
    expect(kind('application/proto')).toMatchObject({ kind: 'connect-unary', codec: 'proto' });
    expect(kind('application/json', { 'connect-protocol-version': '1' })).toMatchObject({ kind: 'connect-unary', codec: 'json' });
    expect(kind('', {}, 'GET', '?connect=v1&encoding=json&message=%7B%7D')).toMatchObject({ kind: 'connect-get', codec: 'json', message: '{}' });
    // A Connect server decodes the message with no connect parameter, or another version in it.
    expect(kind('', {}, 'GET', '?encoding=proto&base64=1&message=AA')).toMatchObject({ kind: 'connect-get', codec: 'proto', base64: true });
    expect(kind('', {}, 'GET', '?connect=v2&enc%6Fding=json&message=%7B%7D')).toMatchObject({ kind: 'connect-get', codec: 'json', message: '{}' });
    expect(kind('', {}, 'GET', '?message=hello')).toBeNull(); // no encoding: no Connect server decodes it
    expect(() => kind('', {}, 'GET', '?encoding=proto&message=a;&message=b')).toThrow(/message parameter is given more than once/);
    expect(kind('application/json')).toBeNull();
    expect(kind('application/grpcfoo')).toBeNull();
    expect(kind('text/plain')).toBeNull();
  });
});

describe('grpcMessage', () => {
  it('percent-encodes what is outside printable ASCII, and the percent sign (PROTOCOL-HTTP2.md)', () => {
    expect(grpcMessage('blocked: 100% (é)\n')).toBe('blocked: 100%25 (%C3%A9)%0A');
    expect(decodeURIComponent(grpcMessage('blocked: 100% (é)\n'))).toBe('blocked: 100% (é)\n');
  });
});

describe('ResponseFraming', () => {
  it('knows when a response is between envelopes, whatever the chunking, and that nothing may follow a final one', () => {
    const stream = Buffer.concat([envelope(0, Buffer.from('one')), envelope(1, Buffer.from('two!'))]);
    for (const size of [1, 2, 5, 6, stream.length]) {
      const framing = new ResponseFraming(0x02);
      expect(framing.atBoundary).toBe(true);
      const boundaries: number[] = [];
      for (let i = 0; i < stream.length; i += size) {
        framing.push(stream.subarray(i, i + size));
        if (framing.atBoundary) boundaries.push(Math.min(i + size, stream.length));
      }
      expect(boundaries).toContain(stream.length);
      expect(boundaries.every((b) => b === 8 || b === stream.length)).toBe(true);
      framing.push(envelope(0x02, Buffer.from('{}')));
      expect(framing.atBoundary).toBe(false);
    }
  });
});

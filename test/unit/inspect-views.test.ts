// Readings of a body other than its bytes as sent (src/inspect/views.ts), each once forwarded
// unscanned (issue #19 items 1-3): JSON in UTF-16/UTF-32 that Python's json.loads reads by its NUL
// pattern, multipart parts in base64 or quoted-printable that python-multipart decodes, and the
// plaintext a compressed container carries beside its data (gzip FNAME/FCOMMENT/FEXTRA, brotli
// metadata). The secret must be found, redacted exactly, or the body refused.
import { brotliCompressSync, crc32 as zcrc32, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { InspectError, createInspector, type InspectBodyMeta } from '../../src/inspect/index.js';
import { base64Lenient, multipartEncodedParts, quotedPrintable } from '../../src/inspect/views.js';
import { Rng, make } from '../corpus/secrets.js';
import { withCpuTime } from '../support/cpu.js';

const GH = make.githubPat(new Rng(21));
const inspector = createInspector(configSchema.parse({ inspect: { maxBodyBytes: '4mb' } }).inspect, { fingerprintKey: 'k' });
const block: InspectBodyMeta = { contentType: 'application/json', action: 'block' };
const rules = (o: { findings: Array<{ rule: string }> }) => o.findings.map((f) => f.rule);

async function rejection(p: Promise<unknown>): Promise<InspectError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof InspectError) return err;
    throw err;
  }
  throw new Error('expected an InspectError');
}

// --- encodings ---------------------------------------------------------------------------------

type Enc = 'utf-16le' | 'utf-16be' | 'utf-32le' | 'utf-32be';
function encode(text: string, enc: Enc): Buffer {
  if (enc === 'utf-16le') return Buffer.from(text, 'utf16le');
  if (enc === 'utf-16be') return Buffer.from(text, 'utf16le').swap16();
  const cps = [...text].map((c) => c.codePointAt(0)!);
  const out = Buffer.alloc(cps.length * 4);
  cps.forEach((cp, i) => (enc === 'utf-32le' ? out.writeUInt32LE(cp, i * 4) : out.writeUInt32BE(cp, i * 4)));
  return out;
}
function decode(buf: Buffer, enc: Enc): string {
  if (enc === 'utf-16le') return buf.toString('utf16le');
  if (enc === 'utf-16be') return Buffer.from(buf).swap16().toString('utf16le');
  let s = '';
  for (let i = 0; i < buf.length; i += 4) s += String.fromCodePoint(enc === 'utf-32le' ? buf.readUInt32LE(i) : buf.readUInt32BE(i));
  return s;
}

const chat = (content: string) => JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content }] });
const ENCODINGS: Enc[] = ['utf-16le', 'utf-16be', 'utf-32le', 'utf-32be'];

describe('JSON in UTF-16 or UTF-32 (item 1)', () => {
  describe.each(ENCODINGS)('%s', (enc) => {
    it.each([
      ['without a byte-order mark', ''],
      ['with a byte-order mark', '\ufeff'],
    ])('%s: found, and under redact redacted and written back in the same encoding', async (_name, bom) => {
      const text = `${bom}${chat(`my token ${GH} é ✓ 😀`)}`;
      const body = encode(text, enc);
      const found = await inspector.inspectBody(body, block);
      expect(found.decision).toBe('block');
      expect(rules(found)).toEqual(['github-pat']);

      const red = await inspector.inspectBody(body, { ...block, action: 'redact' });
      expect(red.decision).toBe('redact');
      const sent = decode(red.redactedBody!, enc);
      expect(sent).toBe(`${bom}${chat('my token [REDACTED:github-pat] é ✓ 😀')}`);
    });

    it('gzip-wrapped, no Content-Type, or text/plain with the charset', async () => {
      const body = encode(chat(`token ${GH}`), enc);
      expect(rules(await inspector.inspectBody(gzipSync(body), { ...block, contentEncoding: 'gzip' }))).toEqual(['github-pat']);
      expect(rules(await inspector.inspectBody(body, { action: 'block' }))).toEqual(['github-pat']);
      expect(rules(await inspector.inspectBody(body, { contentType: `text/plain; charset=${enc}`, action: 'block' }))).toEqual(['github-pat']);
      expect(rules(await inspector.inspectBody(body, { contentType: `application/json; charset="${enc.toUpperCase()}"`, action: 'block' }))).toEqual([
        'github-pat',
      ]);
    });
  });

  it('charset=utf-16 (no order) without a mark: both byte orders are read', async () => {
    // Text that starts with a non-ASCII character, so the NUL pattern does not reveal the order.
    const text = `✓ note: ${GH}`;
    for (const enc of ['utf-16le', 'utf-16be'] as const) {
      const out = await inspector.inspectBody(encode(text, enc), { contentType: 'text/plain; charset=utf-16', action: 'block' });
      expect(rules(out)).toEqual(['github-pat']);
    }
  });

  it('a clean UTF-16 body is allowed and forwarded as sent', async () => {
    const out = await inspector.inspectBody(encode(chat('hello there'), 'utf-16le'), block);
    expect(out.decision).toBe('allow');
  });

  it('what cannot be decoded is refused, never forwarded half-read', async () => {
    const le = encode(chat(`token ${GH}`), 'utf-16le');
    const cases: Array<[Buffer, InspectBodyMeta]> = [
      [le.subarray(0, le.length - 1), block], // odd length, NUL pattern says UTF-16LE
      [Buffer.concat([le, Buffer.from([0x00, 0xd8])]), block], // a lone high surrogate at the end
      [encode(chat(GH), 'utf-32le').subarray(0, 10), block], // not a multiple of 4
      [Buffer.concat([encode('{"a":"', 'utf-32be'), Buffer.from([0, 0x11, 0, 0]), encode('"}', 'utf-32be')]), block], // > U+10FFFF
      [Buffer.from(chat(GH).length % 2 ? chat(GH) : `${chat(GH)} `), { contentType: 'application/json; charset=utf-16le', action: 'block' }], // odd-length UTF-8 claiming UTF-16
      [Buffer.from(`{"a":"+AGc-hp_x"}`), { contentType: 'application/json; charset=utf-7', action: 'block' }],
    ];
    for (const [i, [body, meta]] of cases.entries()) {
      const err = await rejection(inspector.inspectBody(body, meta)).catch((e: Error) => new Error(`case ${i}: ${e.message}`));
      expect(err.message.startsWith('case') ? err.message : (err as InspectError).kind).toBe('undecodable');
    }
  });

  it('UTF-8 bytes that claim UTF-16 and decode as such: the byte reading is still scanned, and blocks under redact', async () => {
    const text = chat(`token ${GH}`).length % 2 ? `${chat(`token ${GH}`)} ` : chat(`token ${GH}`);
    const meta: InspectBodyMeta = { contentType: 'application/json; charset=utf-16le', action: 'redact' };
    const out = await inspector.inspectBody(Buffer.from(text), meta);
    expect(out.decision).toBe('block');
    expect(out.findings).toMatchObject([{ rule: 'github-pat', action: 'block' }]);
  });

  it('a binary body that merely starts like UTF-16 is not refused (protobuf, uploads)', async () => {
    const proto = Buffer.from([0x08, 0x00, 0x12, 0x03, 0x61, 0x62, 0x63]); // field 1 = 0, field 2 = "abc": odd length
    expect((await inspector.inspectBody(proto, { contentType: 'application/x-protobuf', action: 'block' })).decision).toBe('allow');
    expect((await inspector.inspectBody(Buffer.from([0xff, 0xfe, 0x01]), { contentType: 'application/octet-stream', action: 'block' })).decision).toBe(
      'allow',
    );
    // Nor read as UTF-16/32 text: a gRPC envelope or an MP4 file opens with NULs (00 00 00 …).
    const envelope = Buffer.concat([Buffer.from([0, 0, 0, 0, 0x5c]), encode(`note ${GH}`, 'utf-16le')]);
    expect((await inspector.inspectBody(envelope, { contentType: 'application/grpc', action: 'block' })).decision).toBe('allow');
    // …but JSON in UTF-16 under a binary type is (Flask's get_json(force=True) ignores the type).
    const forced = encode(chat(`token ${GH}`), 'utf-16le');
    const out = await inspector.inspectBody(forced, { contentType: 'application/octet-stream', action: 'redact' });
    expect(out.decision).toBe('block');
    expect(rules(out)).toEqual(['github-pat']);
  });

  it('UTF-8 JSON is untouched: redaction still writes UTF-8', async () => {
    const out = await inspector.inspectBody(Buffer.from(chat(`token ${GH} é`)), { ...block, action: 'redact' });
    expect(out.redactedBody!.toString('utf8')).toBe(chat('token [REDACTED:github-pat] é'));
  });
});

// --- multipart ---------------------------------------------------------------------------------

const BOUNDARY = '----aigate7MA4YWxkTrZu0gW';
const formType = `multipart/form-data; boundary=${BOUNDARY}`;
function multipart(parts: Array<{ headers: string[]; data: string }>, eol = '\r\n', close = true): Buffer {
  let out = '';
  for (const p of parts) out += `--${BOUNDARY}${eol}${p.headers.join(eol)}${eol}${eol}${p.data}${eol}`;
  if (close) out += `--${BOUNDARY}--${eol}`;
  return Buffer.from(out, 'latin1');
}
const field = (name: string) => `Content-Disposition: form-data; name="${name}"`;
/** Quoted-printable with a soft break every 10 characters and `=XX` for every `_`. */
const qp = (s: string) => s.replace(/(.{10})/g, '$1=\r\n').replace(/_/g, '=5F');

describe('multipart parts in base64 or quoted-printable (item 2)', () => {
  it.each([
    ['base64', Buffer.from(`token ${GH}`).toString('base64').replace(/(.{8})/g, '$1\r\n')],
    ['BASE64', Buffer.from(`token ${GH}`).toString('base64')],
    ['quoted-printable', qp(`token ${GH}`)],
  ])('Content-Transfer-Encoding: %s is decoded and scanned; under redact it blocks', async (cte, data) => {
    const body = multipart([
      { headers: [field('purpose')], data: 'assistants' },
      { headers: [field('file'), 'Content-Type: text/plain', `content-transfer-encoding: ${cte}`], data },
    ]);
    const out = await inspector.inspectBody(body, { contentType: formType, action: 'block' });
    expect(rules(out)).toEqual(['github-pat']);
    const red = await inspector.inspectBody(body, { contentType: formType, action: 'redact' });
    expect(red.decision).toBe('block');
    expect(red.findings).toMatchObject([{ rule: 'github-pat', action: 'block' }]);
  });

  it('LF line ends, a quoted boundary, no close delimiter, multipart/mixed', async () => {
    const data = Buffer.from(GH).toString('base64');
    const body = multipart([{ headers: [field('a'), 'Content-Transfer-Encoding: base64'], data }], '\n', false);
    for (const ct of [formType, `multipart/mixed; boundary="${BOUNDARY}"`]) {
      expect(rules(await inspector.inspectBody(body, { contentType: ct, action: 'block' }))).toEqual(['github-pat']);
    }
  });

  it('a part in UTF-16 (its charset, a byte-order mark or the NUL pattern) is read as such; under redact it blocks', async () => {
    const le = Buffer.from(`token ${GH}`, 'utf16le');
    const cases: Array<[string[], Buffer]> = [
      [[field('file'), 'Content-Type: text/plain; charset=UTF-16BE'], Buffer.from(le).swap16()],
      [[field('file')], Buffer.concat([Buffer.from([0xff, 0xfe]), le])],
      [[field('file')], le],
      [[field('file'), 'Content-Type: application/octet-stream'], Buffer.from(`{"k":"token ${GH}"}`, 'utf16le')],
      [[field('file'), 'Content-Transfer-Encoding: base64'], Buffer.from(le.toString('base64'))],
    ];
    for (const [headers, data] of cases) {
      const body = multipart([{ headers, data: data.toString('latin1') }, { headers: [field('model')], data: 'whisper-1' }]);
      expect(rules(await inspector.inspectBody(body, { contentType: formType, action: 'block' }))).toEqual(['github-pat']);
      expect((await inspector.inspectBody(body, { contentType: formType, action: 'redact' })).decision).toBe('block');
    }
  });

  it('binary parts are not read as UTF-16/32 (an MP4 upload opens 00 00 00 18)', async () => {
    const mp4 = Buffer.concat([Buffer.from([0, 0, 0, 0x18]), Buffer.from('ftypmp42'), encode(`x ${GH}`, 'utf-32be')]);
    const body = multipart([{ headers: [field('file'), 'Content-Type: audio/mp4'], data: mp4.toString('latin1') }]);
    expect((await inspector.inspectBody(body, { contentType: formType, action: 'block' })).decision).toBe('allow');
  });

  it('the bytes read from parts count against maxBodyBytes', async () => {
    const small = createInspector(configSchema.parse({ inspect: { maxBodyBytes: '64kb' } }).inspect, { fingerprintKey: 'k' });
    // A 30 KB part declared UTF-16 without a byte order is read both ways: 60 KB of the 64 KB.
    const data = Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from('x'.repeat(15_000), 'utf16le').swap16()]);
    const part = { headers: [field('f'), 'Content-Type: text/plain; charset=utf-16'], data: data.toString('latin1') };
    expect((await small.inspectBody(multipart([part]), { contentType: formType, action: 'block' })).decision).toBe('allow');
    const err = await rejection(small.inspectBody(multipart([part, part]), { contentType: formType, action: 'block' }));
    expect(err.kind).toBe('too_large');
  });

  it('a plain part is found where it stands and redacted as before', async () => {
    const body = multipart([{ headers: [field('prompt')], data: `token ${GH}` }]);
    const red = await inspector.inspectBody(body, { contentType: formType, action: 'redact' });
    expect(red.decision).toBe('redact');
    expect(red.redactedBody!.toString()).toContain('token [REDACTED:github-pat]\r\n');
  });

  it('base64 as lenient decoders read it: both alphabets, junk skipped, data after padding', () => {
    expect(base64Lenient('Zg==Zm9v').toString()).toBe('ffoo');
    expect(base64Lenient('Zm9v\r\n Ym!Fy').toString()).toBe('foobar');
    expect(quotedPrintable('gh=\r\np=5Fx=\ny=3d=ZZ').toString()).toBe('ghp_xy==ZZ');
  });

  it('linear on hostile multipart: a million tiny parts, no close delimiter, no header ends', async () => {
    const big = createInspector(configSchema.parse({ inspect: { maxBodyBytes: '16mb' } }).inspect, { fingerprintKey: 'k' });
    const type = 'multipart/form-data; boundary=b';
    const encoded = Buffer.from('--b\r\nContent-Transfer-Encoding: base64\r\n\r\nZm9v\r\n'.repeat(200_000) + '--b\r\nX: y\r\n'.repeat(500_000));
    const noHeaders = Buffer.from('--b\r\n'.repeat(2_000_000));
    const noBreaks = Buffer.from('--b'.repeat(3_000_000));
    for (const body of [encoded, noHeaders, noBreaks]) {
      const { value, ms } = await withCpuTime(async () => multipartEncodedParts(body, type));
      expect(value.length).toBeLessThanOrEqual(200_000);
      expect(ms).toBeLessThan(5000);
      expect((await big.inspectBody(body, { contentType: type, action: 'block' })).decision).toBe('allow');
    }
  });
});

// --- compressed containers ----------------------------------------------------------------------

/** A gzip member of `data` with the optional header fields set (RFC 1952 §2.3). */
function gzipWith(data: Buffer, fields: { name?: string; comment?: string; extra?: Buffer }): Buffer {
  const plain = gzipSync(data);
  let flg = 0;
  const parts: Buffer[] = [];
  if (fields.extra) {
    flg |= 4;
    const len = Buffer.alloc(2);
    len.writeUInt16LE(fields.extra.length);
    parts.push(len, fields.extra);
  }
  if (fields.name !== undefined) {
    flg |= 8;
    parts.push(Buffer.from(`${fields.name}\0`, 'latin1'));
  }
  if (fields.comment !== undefined) {
    flg |= 16;
    parts.push(Buffer.from(`${fields.comment}\0`, 'latin1'));
  }
  const header = Buffer.from(plain.subarray(0, 10));
  header[3] = flg;
  return Buffer.concat([header, ...parts, plain.subarray(10)]);
}

/** A brotli stream: a metadata meta-block holding `metadata` (at most 256 bytes), then `data` uncompressed (RFC 7932 §9.2). */
function brotliWithMetadata(metadata: Buffer, data: Buffer): Buffer {
  const bytes: number[] = [];
  let acc = 0;
  let nbits = 0;
  const bits = (value: number, n: number) => {
    for (let i = 0; i < n; i++) {
      acc |= ((value >> i) & 1) << nbits++;
      if (nbits === 8) {
        bytes.push(acc);
        acc = 0;
        nbits = 0;
      }
    }
  };
  const align = () => {
    if (nbits > 0) bits(0, 8 - nbits);
  };
  bits(0, 1); // WBITS = 16
  // Metadata: ISLAST 0, MNIBBLES code 3 (= 0), reserved 0, MSKIPBYTES 2, MSKIPLEN - 1.
  bits(0, 1);
  bits(3, 2);
  bits(0, 1);
  bits(1, 2); // one byte of length: a length's last byte must not be zero
  bits(metadata.length - 1, 8);
  align();
  bytes.push(...metadata);
  // Uncompressed: ISLAST 0, MNIBBLES 4, MLEN - 1, ISUNCOMPRESSED 1.
  bits(0, 1);
  bits(0, 2);
  bits(data.length - 1, 16);
  bits(1, 1);
  align();
  bytes.push(...data);
  bits(1, 1); // ISLAST
  bits(1, 1); // ISLASTEMPTY
  align();
  return Buffer.from(bytes);
}

describe('plaintext carried beside compressed data (item 3)', () => {
  const clean = Buffer.from(chat('refactor this function'));
  const carriers: Array<[string, () => Buffer, string]> = [
    ['gzip FNAME', () => gzipWith(clean, { name: `${GH}.json` }), 'gzip'],
    ['gzip FCOMMENT', () => gzipWith(clean, { comment: `token ${GH}` }), 'gzip'],
    ['gzip FEXTRA', () => gzipWith(clean, { extra: Buffer.from(`AG${String.fromCharCode(GH.length + 1)}\0 ${GH}`, 'latin1') }), 'gzip'],
    ['gzip FNAME in the second member', () => Buffer.concat([gzipSync(clean.subarray(0, 10)), gzipWith(clean.subarray(10), { name: GH })]), 'gzip'],
    ['brotli metadata meta-block', () => brotliWithMetadata(Buffer.from(`token ${GH}`), clean), 'br'],
    ['gzip FNAME inside brotli (an intermediate layer)', () => brotliCompressSync(gzipWith(clean, { name: GH })), 'gzip, br'],
  ];

  it.each(carriers)('%s: the container still decodes to the clean body', async (_name, make, coding) => {
    const out = await inspector.inspectBody(make(), { action: 'monitor', contentType: 'application/json', contentEncoding: coding });
    expect(out.decodedBytes).toBe(clean.length);
  });

  it.each(carriers)('%s: found; block blocks, monitor is audited, redact forwards the decoded body without it', async (_name, make, coding) => {
    const meta = { contentType: 'application/json', contentEncoding: coding };
    const blocked = await inspector.inspectBody(make(), { ...meta, action: 'block' });
    expect(blocked.decision).toBe('block');
    expect(rules(blocked)).toEqual(['github-pat']);
    expect((await inspector.inspectBody(make(), { ...meta, action: 'monitor' })).decision).toBe('monitor');
    const red = await inspector.inspectBody(make(), { ...meta, action: 'redact' });
    expect(red.decision).toBe('redact');
    expect(red.redactedBody).toEqual(clean);
  });

  it('a gzip header with an FHCRC over the fields still decodes, and is read', async () => {
    const base = gzipWith(clean, { name: GH });
    const header = Buffer.from(base.subarray(0, 10 + GH.length + 1));
    header[3] = header[3]! | 2;
    const crc = Buffer.alloc(2);
    crc.writeUInt16LE(zcrc32(header) & 0xffff);
    const body = Buffer.concat([header, crc, base.subarray(header.length)]);
    expect(rules(await inspector.inspectBody(body, { ...block, contentEncoding: 'gzip' }))).toEqual(['github-pat']);
  });

  it('more than maxBodyBytes of intermediate layers is too large', async () => {
    const small = createInspector(configSchema.parse({ inspect: { maxBodyBytes: '64kb' } }).inspect, { fingerprintKey: 'k' });
    // 60 KB of incompressible bytes in three stored gzip layers: each layer is under the limit,
    // the two intermediate ones together are over it.
    const noise = new Rng(3).bytes(60_000);
    const meta = { contentType: 'application/octet-stream', action: 'block' as const };
    const once = gzipSync(noise, { level: 0 });
    expect((await small.inspectBody(once, { ...meta, contentEncoding: 'gzip' })).decision).toBe('allow');
    const thrice = gzipSync(gzipSync(once, { level: 0 }), { level: 0 });
    expect((await rejection(small.inspectBody(thrice, { ...meta, contentEncoding: 'gzip, gzip, gzip' }))).kind).toBe('too_large');
  });
});

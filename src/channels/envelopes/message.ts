// One RPC message through the one inspection entry point (Inspector.inspectBody): per-message
// compression undone with the body decoder (bounded the same way), then the message as JSON
// (JSON codec) or, for protobuf, its raw bytes and, as a second view, its text fields joined by
// newlines. A message cannot be redacted in place (re-encoding protobuf exactly is not possible
// here), so a finding whose action is redact blocks it.
import { DecodeError, decodeContent } from '../../inspect/decode.js';
import { InspectError, type Inspector, type ScanFinding } from '../../inspect/index.js';
import type { Action } from '../../config/schema.js';
import type { Codec } from './protocol.js';
import { protobufTexts } from './protobuf-text.js';

export interface MessageVerdict {
  /** 'block' also stands for what redact would have done. */
  decision: 'allow' | 'monitor' | 'block';
  findings: ScanFinding[];
}

/** Why a message was not inspected: each maps onto the protocol's own error code. */
export class MessageError extends Error {
  constructor(
    readonly kind: 'too_large' | 'undecodable',
    message: string,
  ) {
    super(message);
    this.name = 'MessageError';
  }
}

export interface MessageMeta {
  codec: Codec;
  /** Compression the message is in ('identity' for none). */
  encoding: string;
  action: Action;
  maxBytes: number;
}

export async function inspectMessage(inspector: Inspector, data: Buffer, meta: MessageMeta): Promise<MessageVerdict> {
  let decoded = data;
  try {
    if (meta.encoding !== 'identity') decoded = await decodeContent(data, meta.encoding, meta.maxBytes);
    else if (data.length > meta.maxBytes) throw new DecodeError('too_large', `message exceeds ${meta.maxBytes} bytes`);
    if (decoded.length === 0) return { decision: 'allow', findings: [] };
    if (meta.codec === 'json') {
      return verdict([await inspector.inspectBody(decoded, { contentType: 'application/json', action: meta.action })]);
    }
    // The text view first: its findings' lines count lines of the joined text fields, which a
    // user can relate to what they sent; the raw bytes add what only shows there.
    const outcomes = [];
    const texts = protobufTexts(decoded);
    if (texts.length > 0) {
      const view = Buffer.from(texts.join('\n'));
      if (view.length > meta.maxBytes) throw new DecodeError('too_large', `text fields of the message exceed ${meta.maxBytes} bytes`);
      outcomes.push(await inspector.inspectBody(view, { contentType: 'text/plain', action: meta.action }));
    }
    outcomes.push(await inspector.inspectBody(decoded, { contentType: 'application/octet-stream', action: meta.action }));
    return verdict(outcomes);
  } catch (err) {
    if (err instanceof DecodeError || err instanceof InspectError) {
      throw new MessageError(err.kind, err.kind === 'too_large' ? `decoded message exceeds the ${meta.maxBytes}-byte limit (inspect.maxBodyBytes)` : err.message);
    }
    throw err;
  }
}

function verdict(outcomes: ReadonlyArray<{ findings: ScanFinding[]; decision: string }>): MessageVerdict {
  const findings: ScanFinding[] = [];
  const seen = new Set<string>();
  let block = false;
  for (const o of outcomes) {
    if (o.decision === 'block' || o.decision === 'redact') block = true;
    for (const f of o.findings) {
      // The same secret seen in the raw bytes and in the text view is one finding.
      const key = `${f.rule}\u0000${f.fingerprint}`;
      if (seen.has(key)) continue;
      seen.add(key);
      findings.push(f.action === 'redact' ? { ...f, action: 'block' } : f);
    }
  }
  return { decision: block ? 'block' : findings.length > 0 ? 'monitor' : 'allow', findings };
}

// A JSON body's string values, walked: each scanned unescaped (keys and values), strings that hold
// JSON walked in turn (tool-call arguments), `"key": "value"` pairs scanned as the text they are,
// and encoded attachments decoded and analysed as strings of their own; then the findings listed
// in order and, under redact, the JSON rebuilt with only the redacted strings re-encoded.
import type { Action } from '../config/schema.js';
import { AttachmentBudget, AttachmentLimitError, encodeAttachment, findAttachments, type Attachment } from './attachments.js';
import type { Candidate, Detector } from './detector.js';
import { splice, type Edit } from './edits.js';
import { latin1Json } from './json-escapes.js';
import { jsonStrings, looksLikeJson, type JsonString } from './json.js';
import { InspectError, MAX_FINDINGS, type ScanFinding } from './types.js';

/** JSON strings nested inside JSON strings (tool-call arguments) are walked this deep. */
export const MAX_NESTED_JSON = 3;
/** No rule can match in fewer characters; shorter JSON strings are not scanned alone. */
export const MIN_SCAN_LENGTH = 8;
const PAIR_KEY = /pass|pwd|key|token|secret|credential/i;

/** Attachments inside attachments (base64 of JSON holding base64…) are decoded this deep. */
const MAX_ATTACHMENT_DEPTH = 3;

export interface JsonNode {
  token: JsonString;
  candidates: Candidate[];
  nested: { text: string; nodes: JsonNode[] } | null;
  /** Encoded attachments in the string (attachments.ts), each with its decoded text analysed. */
  attachments?: AttachedText[];
}

interface AttachedText {
  attachment: Attachment;
  /** The decoded text, analysed as a string value of its own (it may be JSON, or hold more attachments). */
  inner: JsonNode;
}

/** What the walk needs of the inspector: its detector, its candidates in a text, and its policy. */
export interface WalkScanner {
  readonly detector: Detector;
  candidatesIn(text: string): Candidate[];
  actionFor(ruleIndex: number, policy: Action): Action;
  redactionSpan(text: string, c: Candidate): { start: number; end: number };
  redactionEdits(text: string, candidates: readonly Candidate[], policy: Action): Edit[];
  toFindings(text: string, candidates: readonly Candidate[], policy: Action, limit: number): ScanFinding[];
}

export class JsonWalk {
  constructor(
    private readonly scanner: WalkScanner,
    private readonly maxBodyBytes: number,
  ) {}

  /** The string tokens of a JSON text analysed, with decoded attachments limited to `budget` bytes (else InspectError too_large). */
  analyse(tokens: readonly JsonString[], budget: number): JsonNode[] {
    try {
      return this.analyseJson(tokens, 0, new AttachmentBudget(budget));
    } catch (err) {
      if (err instanceof AttachmentLimitError) throw new InspectError('too_large', `body exceeds ${this.maxBodyBytes} bytes once its attachments are decoded`);
      throw err;
    }
  }

  /** `budget`: decoded attachment bytes left (analyseJsonBounded makes it and turns its overrun into an InspectError). */
  private analyseJson(tokens: readonly JsonString[], depth: number, budget: AttachmentBudget, attachmentDepth = 0): JsonNode[] {
    const nodes: JsonNode[] = tokens.map((token) => this.analyseString(token, depth, budget, attachmentDepth));
    // `"password": "<value>"` as JSON: key and value are separate strings, so run the rules over
    // the pair once more, as the text it is, and keep what falls inside the value.
    for (let i = 0; i + 1 < nodes.length; i++) {
      const k = nodes[i]!.token;
      const v = nodes[i + 1]!;
      if (!k.isKey || v.token.isKey || v.nested || !PAIR_KEY.test(k.value) || k.value.length > 64) continue;
      if (v.token.value.length > 256 || /["\\\n]/.test(k.value + v.token.value)) continue;
      const prefix = `"${k.value}": "`;
      const pair = `${prefix}${v.token.value}"`;
      const shift = prefix.length;
      const extra = this.scanner.detector
        .detect(pair)
        .filter((c) => c.start >= shift && c.end <= pair.length - 1)
        .map((c) => ({ ...c, start: c.start - shift, end: c.end - shift }));
      if (extra.length > 0) v.candidates = this.scanner.detector.resolve([...v.candidates, ...extra]);
    }
    return nodes;
  }

  private analyseString(token: JsonString, depth: number, budget: AttachmentBudget, attachmentDepth: number): JsonNode {
    const v = token.value;
    if (depth < MAX_NESTED_JSON && v.length >= MIN_SCAN_LENGTH && looksLikeJson(v)) {
      const inner = jsonStrings(v);
      if (inner !== null) return { token, candidates: [], nested: { text: v, nodes: this.analyseJson(inner, depth + 1, budget, attachmentDepth) } };
    }
    const node: JsonNode = { token, candidates: v.length >= MIN_SCAN_LENGTH ? this.scanner.candidatesIn(v) : [], nested: null };
    if (attachmentDepth < MAX_ATTACHMENT_DEPTH && v.length >= MIN_SCAN_LENGTH) {
      const found = findAttachments(v, budget);
      if (found.length > 0) {
        node.attachments = found.map((attachment) => ({
          attachment,
          inner: this.analyseString({ start: 0, end: 0, value: attachment.text, isKey: false }, depth, budget, attachmentDepth + 1),
        }));
      }
    }
    return node;
  }

  collectFindings(
    nodes: readonly JsonNode[],
    policy: Action,
    out: ScanFinding[],
    count: (candidates: readonly Candidate[], cannotRedact?: boolean) => void,
    cannotRedact = false,
  ): void {
    for (const node of nodes) {
      if (node.nested) this.collectFindings(node.nested.nodes, policy, out, count, cannotRedact);
      else if (node.candidates.length > 0) {
        count(node.candidates, cannotRedact);
        for (const f of this.scanner.toFindings(node.token.value, node.candidates, policy, MAX_FINDINGS - out.length)) {
          out.push(cannotRedact && f.action === 'redact' ? { ...f, action: 'block' } : f);
        }
      }
      // Findings inside an attachment: the line is the line in its decoded text.
      for (const a of node.attachments ?? []) {
        this.collectFindings([a.inner], policy, out, count, cannotRedact || this.attachmentFate(node, a, policy) === 'blocked');
      }
    }
  }

  /** The JSON text with redacted string tokens re-encoded, or null when nothing changed. */
  rebuild(text: string, nodes: readonly JsonNode[], policy: Action, latin1: boolean): string | null {
    let out = '';
    let last = 0;
    let changed = false;
    for (const node of nodes) {
      const replacement = this.rebuildString(node, policy, latin1);
      if (replacement === null) continue;
      out += text.slice(last, node.token.start) + (latin1 ? latin1Json(replacement) : JSON.stringify(replacement));
      last = node.token.end;
      changed = true;
    }
    return changed ? out + text.slice(last) : null;
  }

  /**
   * What redaction does to an attachment: encode its redacted text back ('rewrite'); nothing, as
   * a redacted secret of the string itself spans all of it ('covered': `"api_key": "<base64>"`);
   * or nothing it can do, so its redactions block ('blocked'): its shape cannot be rebuilt
   * exactly, or a redacted finding of the string itself overlaps part of it.
   */
  private attachmentFate(node: JsonNode, a: AttachedText, policy: Action): 'rewrite' | 'covered' | 'blocked' {
    const { start, end, rewritable } = a.attachment;
    let fate: 'rewrite' | 'covered' | 'blocked' = rewritable ? 'rewrite' : 'blocked';
    // Only a redacted finding edits the string: one that blocks decides alone, one only monitored stays.
    for (const candidate of node.candidates) {
      if (this.scanner.actionFor(candidate.rule, policy) !== 'redact') continue;
      const c = this.scanner.redactionSpan(node.token.value, candidate);
      if (c.end <= start || c.start >= end) continue;
      if (c.start <= start && c.end >= end) return 'covered';
      fate = 'blocked';
    }
    return fate;
  }

  /**
   * A string value with its redactions applied, or null when nothing changed: secrets replaced,
   * nested JSON rebuilt, and each attachment whose decoded text changed encoded back in its own
   * shape (a blocked one is left as it is: its findings blocked the body).
   */
  private rebuildString(node: JsonNode, policy: Action, latin1: boolean): string | null {
    if (node.nested) return this.rebuild(node.nested.text, node.nested.nodes, policy, latin1);
    const edits = this.scanner.redactionEdits(node.token.value, node.candidates, policy);
    for (const a of node.attachments ?? []) {
      if (this.attachmentFate(node, a, policy) !== 'rewrite') continue;
      const inner = this.rebuildString(a.inner, policy, a.attachment.form.charset === 'latin1');
      if (inner !== null) edits.push({ start: a.attachment.start, end: a.attachment.end, text: encodeAttachment(a.attachment, inner) });
    }
    if (edits.length === 0) return null;
    edits.sort((x, y) => x.start - y.start);
    return splice(node.token.value, edits, (i) => edits[i]!.text);
  }
}

// The detector's public face. Knows nothing of HTTP: the proxy passes a body with its
// Content-Type/Content-Encoding and the route's policy action; `aigate scan` passes file text.
//
// Action of a finding, first that applies:
//   inspect.rules.actions[rule id]  →  the custom rule's `action`  →  'monitor' for the few
//   low-confidence builtin rules (defaultAction)  →  the policy action passed in (route/egress
//   override, else inspect.action).
// Decision for a request: 'block' if any finding blocks, else 'redact' if any redacts, else
// 'monitor' if there are findings (all monitor-only), else 'allow'. Under 'redact' only the
// findings whose action is 'redact' are replaced; monitor-only findings are left as sent.
import { isAscii, isUtf8 } from 'node:buffer';
import { createHmac, randomBytes } from 'node:crypto';
import type { Action, InspectConfig } from '../config/schema.js';
import { MIN_LINE as ATTACHMENT_RUN_MIN, mayHoldAttachment, mayHoldAttachmentBytes } from './attachments.js';
import { CleanProof } from './clean.js';
import { compileCustomRule, type CompiledCustomRule } from './custom.js';
import { DecodeError, decodeContent } from './decode.js';
import { Detector, type Candidate, type DetectorRule } from './detector.js';
import { mergeEdits, splice, type Edit } from './edits.js';
import { escapedViews, escapesToWalk, percentDecoded } from './json-escapes.js';
import { JsonWalk } from './json-walk.js';
import { jsonStrings, looksLikeJson } from './json.js';
import { BUILTIN_RULES } from './rules/index.js';
import { CLASSIFICATION_PREFIX, compileClassification, MAX_MARKER_SHOWN } from './classification.js';
import { loadProtectedCode, PROTECTED_PREFIX, ProtectedCode, type ProtectedCodeSource } from './protected.js';
import { InspectError, MAX_FINDINGS, type InspectBodyMeta, type InspectDecision, type InspectOutcome, type Inspector, type ScanFinding } from './types.js';
import { multipartViews, wideReading, type WideText } from './views.js';

export { BUILTIN_RULES } from './rules/index.js';
export type { Rule } from './rules/index.js';
export { InspectError, MAX_FINDINGS } from './types.js';
export type { InspectBodyMeta, InspectDecision, InspectOutcome, Inspector, ScanFinding } from './types.js';

/** What the inspector reads of a rule, the detector's or a protected-code source's. */
type RuleInfo = Pick<DetectorRule, 'id' | 'description' | 'maskPrefix' | 'defaultAction'>;

/** The media type of a Content-Type value, lower-case, without parameters ('' when absent). */
function mediaType(contentType: string | undefined): string {
  return contentType ? contentType.split(';')[0]!.trim().toLowerCase() : '';
}

function isJsonMediaType(mime: string): boolean {
  return mime === 'application/json' || mime.endsWith('+json') || mime.endsWith('/json');
}

export function maskValue(value: string, prefix: number): string {
  if (value.startsWith('-----BEGIN')) {
    const end = value.indexOf('-----', 11);
    return `${value.slice(0, end < 0 ? 10 : end + 5)}…`;
  }
  const p = Math.min(prefix, Math.floor(value.length / 2));
  const rest = value.length - p;
  const tail = rest >= 16 ? 4 : rest >= 10 ? 2 : 0;
  return `${value.slice(0, p)}…${tail > 0 ? value.slice(-tail) : ''}`;
}

function checkRuleIds(ids: readonly string[], known: ReadonlySet<string>, key: (i: number) => string): void {
  ids.forEach((id, i) => {
    if (!known.has(id)) throw new Error(`${key(i)}: unknown rule "${id}" (see README for the rule list)`);
  });
}

class DetectorInspector implements Inspector {
  readonly detector: Detector;
  private readonly key: Buffer;
  private readonly actionOverride: ReadonlyMap<string, Action>;
  private readonly customAction = new Map<string, Action>();
  /** JSON escapes that can hide a keyword (see keywordFree); null: a keyword holds `"`. */
  private readonly walkEscapes: readonly string[] | null;
  /** Protected-code indexes (protected.ts), or null when none is configured. */
  private readonly protectedCode: ProtectedCode | null;
  /** Rules after the detector's: one per protected-code source (Candidate.rule indexes both). */
  private readonly protectedRules: RuleInfo[];
  /** The fast path (clean.ts), or null when turned off. */
  private readonly clean: CleanProof | null;
  private readonly walk: JsonWalk;

  constructor(
    private readonly cfg: InspectConfig,
    fingerprintKey: string | Buffer,
    protectedSources: readonly ProtectedCodeSource[],
    fastPath = true,
    wasm = true,
  ) {
    this.key = fingerprintKey.length > 0 ? Buffer.from(fingerprintKey) : randomBytes(32);
    const builtinIds = new Set(BUILTIN_RULES.map((r) => r.id));
    const { builtin, disable, actions, custom } = cfg.rules;
    if (Array.isArray(builtin)) checkRuleIds(builtin, builtinIds, (i) => `inspect.rules.builtin[${i}]`);
    const compiledIds = new Set<string>();
    const compiled: CompiledCustomRule[] = custom.map((c, i) => {
      if (builtinIds.has(c.id)) throw new Error(`inspect.rules.custom[${i}].id: "${c.id}" is a builtin rule id; choose another`);
      if (compiledIds.has(c.id)) throw new Error(`inspect.rules.custom[${i}].id: duplicate id "${c.id}"`);
      compiledIds.add(c.id);
      return compileCustomRule(c, i);
    });
    const allIds = new Set([...builtinIds, ...compiledIds]);
    checkRuleIds(disable, allIds, (i) => `inspect.rules.disable[${i}]`);
    checkRuleIds(Object.keys(actions), allIds, () => 'inspect.rules.actions');
    const disabled = new Set(disable);
    const selected = builtin === 'all' ? builtinIds : builtin === 'none' ? new Set<string>() : new Set(builtin);
    const rules = BUILTIN_RULES.filter((r) => selected.has(r.id) && !disabled.has(r.id));
    // Classification markers run as custom rules (classification.ts), their action the level's.
    const customRules = [...compiled.filter((c) => !disabled.has(c.id)), ...compileClassification(cfg.classification)];
    for (const c of customRules) if (c.action) this.customAction.set(c.id, c.action);
    this.actionOverride = new Map(Object.entries(actions));
    this.detector = new Detector(rules, customRules, new Set(cfg.allowValues));
    this.walkEscapes = escapesToWalk(this.detector.keywords);
    this.protectedCode = protectedSources.length > 0 ? new ProtectedCode(protectedSources) : null;
    this.protectedRules = protectedSources.map((s) => ({ id: `${PROTECTED_PREFIX}${s.label}`, description: `code of the protected codebase ${s.label}`, maskPrefix: 0 }));
    protectedSources.forEach((s) => {
      if (s.action) this.customAction.set(`${PROTECTED_PREFIX}${s.label}`, s.action);
    });
    this.clean = fastPath ? new CleanProof(this.detector, this.walkEscapes, { wasm }) : null;
    this.walk = new JsonWalk(this, cfg.maxBodyBytes);
  }

  private ruleAt(index: number): RuleInfo {
    const n = this.detector.rules.length;
    return index < n ? this.detector.rules[index]! : this.protectedRules[index - n]!;
  }

  /**
   * The detector's candidates in `text` plus its protected code (unresolved against each other:
   * a secret inside protected code is both a secret and protected code), sorted by start.
   */
  candidatesIn(text: string): Candidate[] {
    const found = this.detector.detect(text);
    if (this.protectedCode === null) return found;
    const hits = this.protectedCode.find(text);
    if (hits.length === 0) return found;
    const n = this.detector.rules.length;
    const all = found.concat(hits.map((h) => ({ rule: n + h.source, start: h.start, end: h.end, value: `${this.protectedRules[h.source]!.id.slice(PROTECTED_PREFIX.length)}:${h.where}` })));
    return all.sort((a, b) => a.start - b.start);
  }

  /**
   * What redaction replaces for a candidate: a secret itself; a classification marker's tagged
   * region, from the start of its line to the end of the text (classification.ts); protected code's
   * whole lines (already the candidate's span).
   */
  redactionSpan(text: string, c: Candidate): { start: number; end: number } {
    if (!this.ruleAt(c.rule).id.startsWith(CLASSIFICATION_PREFIX)) return c;
    return { start: text.lastIndexOf('\n', c.start - 1) + 1, end: text.length };
  }

  /** Redaction edits for `candidates` in `text`, sorted; an edit overlapping an earlier one is merged into it. */
  redactionEdits(text: string, candidates: readonly Candidate[], policy: Action): Edit[] {
    const edits = candidates
      .filter((c) => this.actionFor(c.rule, policy) === 'redact')
      .map((c) => ({ ...this.redactionSpan(text, c), text: `[REDACTED:${this.ruleAt(c.rule).id}]` }));
    return mergeEdits(edits);
  }

  scanText(text: string): ScanFinding[] {
    return this.toFindings(text, this.candidatesIn(text), this.cfg.action, MAX_FINDINGS);
  }

  maskSecrets(text: string): string {
    const masked = this.maskView(text);
    if (!masked.includes('%')) return masked;
    // Secrets left in percent-encoded form: the decoded text is what is logged if it hides one.
    const decoded = percentDecoded(masked);
    const remasked = this.maskView(decoded);
    return remasked === decoded ? masked : remasked;
  }

  private maskView(text: string): string {
    if (this.walkEscapes !== null && !this.detector.hasKeyword(text)) return text;
    const found = this.detector.detect(text);
    return found.length === 0 ? text : splice(text, found, (i) => `[REDACTED:${this.detector.rules[found[i]!.rule]!.id}]`);
  }

  /** `recheck`: a redacted outcome is scanned again (checkRedacted); false for that scan itself. */
  async inspectBody(body: Buffer, meta: InspectBodyMeta, recheck = true): Promise<InspectOutcome> {
    const max = this.cfg.maxBodyBytes;
    if (body.length > max) throw new InspectError('too_large', `body exceeds ${max} bytes`);
    let decoded = body; // already checked against the limit above
    const layers: Buffer[] = [];
    const mime = mediaType(meta.contentType);
    let wide: { primary: WideText | null; others: string[] };
    let parts: string[];
    try {
      if (meta.contentEncoding) decoded = await decodeContent(body, meta.contentEncoding, max, layers);
      wide = wideReading(decoded, meta.contentType, isJsonMediaType(mime) || mime === '' ? 'json' : mime.startsWith('text/') ? 'text' : 'other');
      parts = mime.startsWith('multipart/') ? multipartViews(decoded, meta.contentType, max) : [];
    } catch (err) {
      if (err instanceof DecodeError) throw new InspectError(err.kind, err.message);
      throw err;
    }
    // Every rule is only ever tried where one of its keywords occurs: with none (every rule
    // disabled), nothing can be found and the text is not needed.
    if (this.detector.keywords.length === 0 && this.protectedCode === null) return { findings: [], decision: 'allow', decodedBytes: decoded.length };
    // Bytes that are not UTF-8 are read as latin1: one character per byte, so redaction can
    // splice and re-encode without changing any byte it does not replace. ASCII (most prompts)
    // reads the same either way and latin1 decodes it twice as fast (256 KiB: 0.68 → 0.31 ms);
    // a redacted ASCII body is still written back as UTF-8, since a JSON escape such as \u00e9
    // that it re-serialises may leave ASCII.
    const ascii = isAscii(decoded);
    const encoding: BufferEncoding = !ascii && !isUtf8(decoded) ? 'latin1' : 'utf8';
    const form = mime === 'application/x-www-form-urlencoded';
    // The fast path: windows of the bytes around each keyword prove most bodies clean without
    // decoding them whole (clean.ts). Forms (percent-decoding) and bodies read as UTF-16/32 take
    // the full path; the other readings (views.ts) are checked as below.
    // An attachment's secret has no keyword in the raw bytes: a body that may hold an attachment
    // takes the full path. Protected code has no keywords either: with indexes configured, a body
    // proved clean of secrets and attachments is looked up in them (ProtectedCode.inBody: the very
    // texts the full path would look up), and takes the full path only when that finds some.
    // The encoded layers are read once (as latin1), whichever path needs them first.
    const layerTexts = layers.map((b) => b.toString('latin1'));
    let read: string | null = null;
    if (this.clean !== null && !wide.primary && !form) {
      const others = [...wide.others, ...parts, ...layerTexts];
      const clean = this.clean;
      if (others.every((t) => this.keywordFree(t)) && clean.provesClean(decoded, encoding === 'latin1') && !mayHoldAttachmentBytes(decoded, clean.runsOfLastBody(ATTACHMENT_RUN_MIN))) {
        if (this.protectedCode === null) return { findings: [], decision: 'allow', decodedBytes: decoded.length };
        // From the bytes where it can (no copy of the body as a string), else from its text.
        let holds = this.protectedCode.inBodyBytes(decoded, encoding === 'utf8', isJsonMediaType(mime));
        if (holds === null) {
          read = decoded.toString(ascii ? 'latin1' : encoding);
          holds = this.protectedCode.inBody(read, isJsonMediaType(mime));
        }
        if (!holds) return { findings: [], decision: 'allow', decodedBytes: decoded.length };
      }
    }
    const byteText = read ?? decoded.toString(ascii ? 'latin1' : encoding);
    // A body in UTF-16/32 (views.ts) is inspected, and redacted, as the text it encodes; the byte
    // reading and the other readings of it, multipart parts decoded from base64 or
    // quoted-printable, and the still-encoded layers of a Content-Encoding (plaintext headers and
    // metadata) are further views below: what shows only there cannot be redacted in place.
    const text = wide.primary ? wide.primary.text : byteText;
    const views: Array<{ text: string; unescape: boolean; dropped: boolean }> = [
      ...(wide.primary ? [byteText] : []).concat(wide.others).map((t) => ({ text: t, unescape: true, dropped: false })),
      ...parts.map((t) => ({ text: t, unescape: true, dropped: false })),
      // A redacted body is forwarded decoded (identity): its encoded layers are dropped with it.
      ...layerTexts.map((t) => ({ text: t, unescape: false, dropped: true })),
    ];
    const mayHide = (t: string): boolean => !this.keywordFree(t) || (form && t.includes('%'));
    // Protected code has no keywords: a body that may hold some is never waved through here.
    if (!mayHide(text) && !views.some((v) => mayHide(v.text)) && !mayHoldAttachment(text) && !this.protectedCode?.mayHold(text)) {
      return { findings: [], decision: 'allow', decodedBytes: decoded.length };
    }
    const tokens = isJsonMediaType(mime) || looksLikeJson(text) ? jsonStrings(text) : null;

    // Every candidate counts towards the decision; only the first MAX_FINDINGS become findings.
    let total = 0;
    let blocks = false;
    let redacts = false;
    const count = (candidates: readonly Candidate[], cannotRedact = false): void => {
      for (const c of candidates) {
        total++;
        const action = this.actionFor(c.rule, meta.action);
        if (action === 'block' || (cannotRedact && action === 'redact')) blocks = true;
        else if (action === 'redact') redacts = true;
      }
    };
    let findings: ScanFinding[];
    let redacted: () => string | null;
    const seen = new Set<string>();
    /** What only shows in a view: redacted if the redacted body drops its carrier, else a redact there blocks. */
    const scanView = (view: string, dropped: boolean): void => {
      // Values already found in the text (for JSON: those listed, by fingerprint) are not found twice.
      const listed = new Set(findings.map((f) => f.fingerprint));
      const hidden = this.detector.detect(view).filter((c) => !seen.has(c.value) && !listed.has(this.fingerprint(c.value)));
      if (hidden.length === 0) return;
      for (const c of hidden) seen.add(c.value);
      count(hidden);
      if (!dropped && hidden.some((c) => this.actionFor(c.rule, meta.action) === 'redact')) blocks = true;
      for (const f of this.toFindings(view, hidden, meta.action, MAX_FINDINGS - findings.length)) {
        findings.push(f.action === 'redact' && !dropped ? { ...f, action: 'block' } : f);
      }
    };
    if (tokens !== null) {
      const nodes = this.walk.analyse(tokens, max - decoded.length);
      findings = [];
      this.walk.collectFindings(nodes, meta.action, findings, count);
      redacted = () => this.walk.rebuild(text, nodes, meta.action, encoding === 'latin1' && !wide.primary);
    } else {
      const candidates = this.candidatesIn(text);
      count(candidates);
      findings = this.toFindings(text, candidates, meta.action, MAX_FINDINGS);
      redacted = () => this.redactText(text, candidates, meta.action);
      // Not JSON to the tokenizer (NaN, JSON5, a form…), yet the upstream may still undo escapes
      // in it: what only shows in such a view counts too.
      for (const c of candidates) seen.add(c.value);
      for (const view of escapedViews(text, form)) scanView(view, false);
    }
    for (const v of views) {
      if (!mayHide(v.text)) continue;
      scanView(v.text, v.dropped);
      if (v.unescape) for (const view of escapedViews(v.text, form)) scanView(view, false);
    }

    const decision: InspectDecision = blocks ? 'block' : redacts ? 'redact' : total > 0 ? 'monitor' : 'allow';
    const outcome: InspectOutcome = { findings, decision, decodedBytes: decoded.length };
    if (total > findings.length) outcome.omittedFindings = total - findings.length;
    if (decision === 'redact') {
      outcome.redactedBody = wide.primary ? wide.primary.encode(redacted() ?? text) : Buffer.from(redacted() ?? text, encoding);
      return recheck ? this.checkRedacted(outcome, meta) : outcome;
    }
    return outcome;
  }

  /**
   * What is forwarded after redaction must hold nothing the scanner would redact or block. A
   * secret can show only once another is replaced: a token's line glued to the base64 block
   * below it (read as one block, they decode to binary), a rule's context (azure-sas-token's
   * `sv=`) moved into reach by a shorter text. The redacted body is scanned again, once (that
   * scan's own redaction is not checked: whatever it would redact blocks); anything that would not
   * only be monitored there blocks the request, listed with the first findings.
   */
  private async checkRedacted(outcome: InspectOutcome, meta: InspectBodyMeta): Promise<InspectOutcome> {
    const again = await this.inspectBody(outcome.redactedBody!, { contentType: meta.contentType, action: meta.action }, false);
    if (again.decision === 'allow' || again.decision === 'monitor') return outcome;
    const left = again.findings.filter((f) => f.action !== 'monitor').map((f) => ({ ...f, action: 'block' as const }));
    const findings = [...outcome.findings, ...left].slice(0, MAX_FINDINGS);
    const omitted = (outcome.omittedFindings ?? 0) + (again.omittedFindings ?? 0) + outcome.findings.length + left.length - findings.length;
    const blocked: InspectOutcome = { findings, decision: 'block', decodedBytes: outcome.decodedBytes };
    if (omitted > 0) blocked.omittedFindings = omitted;
    return blocked;
  }

  /**
   * True when `text` holds no keyword, so nothing in it can be found, whether it is JSON or not —
   * most prompts: then the JSON walk (tokens, unescaping, one keyword pass per string) is skipped
   * (bench/instructions.mjs: 391k → 358k instructions per 1 KiB chat request). A JSON string's
   * keywords are in the raw text as they are in the string, unless an escape produced one of their
   * characters: `\uXXXX` always could, `\/`, `\\`, `\n`… only for a keyword holding `/`, `\`, a
   * newline… — a text with such an escape is walked. A keyword holding `"` could also match across
   * a key and its value (see analyseJson's pairs), so with one the walk is never skipped.
   */
  private keywordFree(text: string): boolean {
    if (this.walkEscapes === null || this.detector.hasKeyword(text)) return false;
    for (const e of this.walkEscapes) if (text.includes(e)) return false;
    return true;
  }

  actionFor(ruleIndex: number, policy: Action): Action {
    const rule = this.ruleAt(ruleIndex);
    return this.actionOverride.get(rule.id) ?? this.customAction.get(rule.id) ?? rule.defaultAction ?? policy;
  }

  private fingerprint(value: string): string {
    return createHmac('sha256', this.key).update(value).digest('hex').slice(0, 16);
  }

  toFindings(text: string, candidates: readonly Candidate[], policy: Action, limit: number): ScanFinding[] {
    const out: ScanFinding[] = [];
    let line = 1;
    let lineStart = 0;
    for (const c of candidates) {
      if (out.length >= limit) break;
      // Candidates are sorted by start: count newlines incrementally.
      for (let nl = text.indexOf('\n', lineStart); nl !== -1 && nl < c.start; nl = text.indexOf('\n', lineStart)) {
        line++;
        lineStart = nl + 1;
      }
      const rule = this.ruleAt(c.rule);
      // A marker is a label, not a secret: shown as written. Protected code: its file and lines.
      const source = c.rule >= this.detector.rules.length ? c.value.slice(rule.id.length - PROTECTED_PREFIX.length + 1) : undefined;
      const masked = source ?? (rule.id.startsWith(CLASSIFICATION_PREFIX) ? c.value.slice(0, MAX_MARKER_SHOWN) : maskValue(c.value, rule.maskPrefix));
      const finding: ScanFinding = {
        rule: rule.id,
        description: rule.description,
        line,
        col: c.start - lineStart + 1,
        start: c.start,
        end: c.end,
        masked,
        action: this.actionFor(c.rule, policy),
        fingerprint: this.fingerprint(c.value),
      };
      if (source !== undefined) finding.source = source;
      out.push(finding);
    }
    return out;
  }

  private redactText(text: string, candidates: readonly Candidate[], policy: Action): string | null {
    const edits = this.redactionEdits(text, candidates, policy);
    if (edits.length === 0) return null;
    return splice(text, edits, (i) => edits[i]!.text);
  }

}

/**
 * Builds an inspector from the `inspect` config section. Throws an Error whose message starts with
 * the offending key (`inspect.rules.custom[2].pattern: …`) for an invalid custom rule or an
 * unknown rule id, so `aigate start`/`check` can print it as a start-up error.
 */
export function createInspector(
  cfg: InspectConfig,
  opts: {
    fingerprintKey: string | Buffer;
    /** inspect.fingerprints already loaded (the proxy shares them with its scan threads); default: read now. */
    protectedCode?: readonly ProtectedCodeSource[] | undefined;
    /** Off: every body takes the full scan (tests compare the two). */
    fastPath?: boolean;
    /** Off: the fast path finds keywords with the JavaScript automaton, not WebAssembly (tests). */
    wasm?: boolean;
  },
): Inspector {
  return new DetectorInspector(cfg, opts.fingerprintKey, opts.protectedCode ?? loadProtectedCode(cfg.fingerprints), opts.fastPath ?? true, opts.wasm ?? true);
}

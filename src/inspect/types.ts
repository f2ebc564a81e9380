// The inspector's public types: what the proxy, the scan threads and `aigate scan` exchange with it.
import type { Action } from '../config/schema.js';

export class InspectError extends Error {
  constructor(
    readonly kind: 'too_large' | 'undecodable',
    message: string,
  ) {
    super(message);
    this.name = 'InspectError';
  }
}

export interface ScanFinding {
  rule: string;
  description: string;
  /** 1-based line in the scanned text; for a JSON body, the line inside the string value. */
  line: number;
  /** 1-based column (UTF-16 code units) on that line. */
  col: number;
  /** Offsets of the secret in the scanned text (for a JSON body: in the string value). */
  start: number;
  end: number;
  /** e.g. `ghp_…abcd`: a format prefix and at most the last 4 characters, never the value. */
  masked: string;
  action: Action;
  /** First 16 hex characters of HMAC-SHA256(fingerprintKey, value). */
  fingerprint: string;
  /** protected-code findings: the protected file and its lines, `path:12-40` (never code). */
  source?: string;
}

export type InspectDecision = 'allow' | 'block' | 'redact' | 'monitor';

export interface InspectOutcome {
  findings: ScanFinding[];
  decision: InspectDecision;
  /** The body to forward when decision is 'redact' (identity-encoded: drop Content-Encoding, fix Content-Length). */
  redactedBody?: Buffer;
  /** Size of the body after Content-Encoding was undone. */
  decodedBytes: number;
  /**
   * Findings beyond MAX_FINDINGS that were counted (and acted on: decided, redacted) but not listed,
   * so a body stuffed with a million candidates cannot turn the audit line into a million entries.
   */
  omittedFindings?: number;
}

/** At most this many findings are listed per body or text; the rest still count and are redacted. */
export const MAX_FINDINGS = 1000;

export interface InspectBodyMeta {
  contentType?: string | undefined;
  contentEncoding?: string | undefined;
  /** The route's (or egress rule's) policy action, else inspect.action. */
  action: Action;
}

export interface Inspector {
  /** Scans plain text (a file, stdin) with the configured policy action `inspect.action`; lists at most MAX_FINDINGS. */
  scanText(text: string): ScanFinding[];
  /** Decodes, scans and applies the actions to a request body. Throws InspectError. */
  inspectBody(body: Buffer, meta: InspectBodyMeta): Promise<InspectOutcome>;
  /**
   * `text` with every secret in it replaced by `[REDACTED:<rule-id>]` (percent-encoding undone
   * first where that is what hides one): for what is logged, such as a request path.
   */
  maskSecrets(text: string): string;
}

// One operational log line (warn) per upstream failure, with what an operator needs to act: the
// request id (to find its audit line), route, upstream host and the cause. A dead upstream fails
// every request sent to it, so lines are limited per route, host and cause: a few per window,
// then one line at the end of the window saying how many were left out.
import type { Logger } from 'pino';

export interface UpstreamFailure {
  requestId: string;
  route: string | null;
  /** As the audit line has it (masked: a secret can be a host label). */
  host: string | null;
  /** The cause: errno, undici or TLS code. */
  code: string;
  /** The SPEC §7 type the client got. */
  reason: string | null;
  status: number;
}

export interface FailureLogOptions {
  /** Lines per route, host and cause within a window. */
  burst?: number;
  windowMs?: number;
  /** Distinct route/host/cause keys tracked (forward mode can reach many hosts). */
  maxKeys?: number;
  now?: () => number;
}

interface Spell {
  windowStart: number;
  logged: number;
  suppressed: number;
}

export class UpstreamFailureLog {
  private readonly spells = new Map<string, Spell>();
  private readonly burst: number;
  private readonly windowMs: number;
  private readonly maxKeys: number;
  private readonly now: () => number;

  constructor(
    private readonly logger: Logger,
    opts: FailureLogOptions = {},
  ) {
    this.burst = opts.burst ?? 3;
    this.windowMs = opts.windowMs ?? 10_000;
    this.maxKeys = opts.maxKeys ?? 1000;
    this.now = opts.now ?? Date.now;
  }

  report(f: UpstreamFailure): void {
    const now = this.now();
    const key = `${f.route ?? ''}\n${f.host ?? ''}\n${f.code}`;
    let spell = this.spells.get(key);
    let suppressed = 0;
    if (spell === undefined || now - spell.windowStart >= this.windowMs) {
      suppressed = spell?.suppressed ?? 0;
      if (spell === undefined && this.spells.size >= this.maxKeys) this.spells.clear();
      spell = { windowStart: now, logged: 0, suppressed: 0 };
      this.spells.set(key, spell);
    }
    if (spell.logged >= this.burst) {
      spell.suppressed++;
      return;
    }
    spell.logged++;
    const fields: Record<string, unknown> = { requestId: f.requestId, route: f.route, host: f.host, code: f.code, reason: f.reason, status: f.status };
    // Lines left out in the previous window of this key: said once, on its next line.
    if (suppressed > 0) fields['suppressed'] = suppressed;
    this.logger.warn(fields, 'upstream failed');
  }
}

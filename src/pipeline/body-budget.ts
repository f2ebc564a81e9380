// How many request-body bytes one aigate process holds at once (limits.bufferedBodyBytes, and
// .bufferedBodyBytesPerClient per client). Bodies are held whole until they are inspected and
// forwarded (SPEC §5: nothing goes upstream unscanned), so without a bound clients that start
// large uploads and withhold the last byte make the process hold all of them (issue #19: 150 × 7 MiB
// from one ip took RSS from 87 MB to 1.2 GB). Each `--workers` process has its own budget.
//
// A body takes budget as it arrives (all of a declared Content-Length at once, a chunked body as it
// grows) and gives all of it back once, when its response is over or it is refused or abandoned.

/** Which bound a refused body would have passed: the client's own, or the whole process's. */
export type BudgetScope = 'client' | 'process';

export interface BodyBudgetLimits {
  /** Bytes held at once by the whole process. */
  totalBytes: number;
  /** Bytes held at once for one client (its key: see `budgetKey`). */
  perClientBytes: number;
}

/**
 * Refused requests are told to come back after this many seconds: long enough for in-flight uploads
 * of ordinary size to finish even on a slow link, short enough that SDKs (the OpenAI and Anthropic
 * clients honour up to 60 s) retry rather than give up.
 */
export const BUDGET_RETRY_AFTER_SECONDS = 5;

export class BodyBudget {
  private used = 0;
  private readonly byClient = new Map<string, number>();
  /** Bodies refused so far, by the bound they would have passed. */
  readonly refused: Record<BudgetScope, number> = { client: 0, process: 0 };
  /** Told of each refusal (metrics). */
  onRefused: ((scope: BudgetScope) => void) | undefined;

  /** `limits` may be replaced (a reload): bodies held keep counting against the new bounds. */
  constructor(public limits: BodyBudgetLimits) {}

  /** Bytes held now by the whole process. */
  get usedBytes(): number {
    return this.used;
  }

  /** Clients holding budget now. */
  get clientCount(): number {
    return this.byClient.size;
  }

  /** Bytes held now for `client`. */
  usedBy(client: string): number {
    return this.byClient.get(client) ?? 0;
  }

  /** A body of `client`'s that takes budget as it grows and gives it all back once. */
  open(client: string): BodyReservation {
    return new BodyReservation(this, client);
  }

  /** Takes `n` bytes for `client`: null when granted; else the bound it would pass, and nothing is taken. */
  take(client: string, n: number): BudgetScope | null {
    const mine = this.byClient.get(client) ?? 0;
    // The client's own bound first: a client over it is told so (429), even when the process is full too.
    if (mine + n > this.limits.perClientBytes) return this.refuse('client');
    if (this.used + n > this.limits.totalBytes) return this.refuse('process');
    this.byClient.set(client, mine + n);
    this.used += n;
    return null;
  }

  /** Gives back `n` bytes `client` took. */
  give(client: string, n: number): void {
    if (n <= 0) return;
    const left = (this.byClient.get(client) ?? 0) - n;
    if (left > 0) this.byClient.set(client, left);
    else this.byClient.delete(client); // no entry per client that ever sent a body
    this.used -= n;
  }

  private refuse(scope: BudgetScope): BudgetScope {
    this.refused[scope]++;
    this.onRefused?.(scope);
    return scope;
  }
}

/** The budget one body holds. `release` is idempotent, so every way a request ends may call it. */
export class BodyReservation {
  private held = 0;
  private released = false;

  constructor(
    private readonly budget: BodyBudget,
    readonly client: string,
  ) {}

  /** Holds at least `bytes` in all: null when granted, else the bound that refused it (nothing more is held). */
  growTo(bytes: number): BudgetScope | null {
    if (this.released || bytes <= this.held) return null;
    const refused = this.budget.take(this.client, bytes - this.held);
    if (refused === null) this.held = bytes;
    return refused;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.budget.give(this.client, this.held);
    this.held = 0;
  }
}

/** The key a client's bodies count under: its proxy-auth user where known, else its address. */
export function budgetKey(client: { ip: string; user: string | null }): string {
  return client.user !== null ? `user:${client.user}` : `ip:${client.ip}`;
}

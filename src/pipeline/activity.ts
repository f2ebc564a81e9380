// Counts open flows, WebSockets and tunnels so a drain can wait until the last one is over.
// A child tracker counts the work of one configuration generation (a reload builds a new one):
// its work counts in the parent too, so the drain sees everything, and the generation's own
// count tells when what a replaced configuration built can be closed.

export class ActivityTracker {
  private open = 0;
  private waiters: Array<() => void> = [];
  /** How to end each open connection the listeners no longer own (upgraded WebSockets). */
  private readonly enders = new Set<() => void>();

  constructor(private readonly parent?: ActivityTracker) {}

  /** A tracker whose work also counts here (one configuration generation). */
  child(): ActivityTracker {
    return new ActivityTracker(this);
  }

  /** Registers how to end a connection when a drain's grace period is over; returns the unregister. */
  onForcedEnd(end: () => void): () => void {
    if (this.parent) return this.parent.onForcedEnd(end);
    this.enders.add(end);
    return () => this.enders.delete(end);
  }

  /** A drain's grace period is over: every registered connection is ended. */
  endAll(): void {
    if (this.parent) return this.parent.endAll();
    for (const end of [...this.enders]) end();
  }

  get active(): number {
    return this.open;
  }

  /** Marks one unit of work open; call the returned function exactly once when it is over. */
  begin(): () => void {
    this.open++;
    const releaseParent = this.parent?.begin();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      releaseParent?.();
      this.open--;
      if (this.open === 0) {
        const waiters = this.waiters;
        this.waiters = [];
        for (const w of waiters) w();
      }
    };
  }

  /** Resolves once nothing is open, however long that takes. */
  whenIdle(): Promise<void> {
    if (this.open === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Resolves true when nothing is open, or false when `timeoutMs` passes first. */
  idle(timeoutMs: number): Promise<boolean> {
    if (this.open === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== onIdle);
        resolve(false);
      }, timeoutMs);
      timer.unref();
      const onIdle = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.waiters.push(onIdle);
    });
  }
}

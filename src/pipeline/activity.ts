// Counts open flows, WebSockets and tunnels so a drain can wait until the last one is over.

export class ActivityTracker {
  private open = 0;
  private waiters: Array<() => void> = [];

  get active(): number {
    return this.open;
  }

  /** Marks one unit of work open; call the returned function exactly once when it is over. */
  begin(): () => void {
    this.open++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.open--;
      if (this.open === 0) {
        const waiters = this.waiters;
        this.waiters = [];
        for (const w of waiters) w();
      }
    };
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

// The waiting line of password checks, shared fairly among clients (issue #19: 300 wrong logins from
// one address made a real user's sign-in wait 22.8 s behind them in one FIFO). The next item is the
// oldest one of the owner served least recently (an owner with nothing waiting forgets its turn),
// so a client waits behind at most one check per other client with checks waiting, however many
// each of them queued. Small by construction (limits.authPending): linear scans are fine.

export class FairQueue<T> {
  private readonly owners = new Map<string, { items: T[]; lastServed: number }>();
  private readonly arrival = new Map<T, number>();
  private served = 0;
  private arrived = 0;

  get size(): number {
    return this.arrival.size;
  }

  /** Items `owner` has waiting. */
  countOf(owner: string): number {
    return this.owners.get(owner)?.items.length ?? 0;
  }

  push(owner: string, item: T): void {
    let o = this.owners.get(owner);
    if (!o) this.owners.set(owner, (o = { items: [], lastServed: 0 }));
    o.items.push(item);
    this.arrival.set(item, ++this.arrived);
  }

  /** Takes the next item: the owner served least recently goes first, then the earliest arrival. */
  shift(): T | undefined {
    let best: { owner: string; lastServed: number; first: number } | undefined;
    for (const [owner, o] of this.owners) {
      const first = this.arrival.get(o.items[0]!)!;
      if (!best || o.lastServed < best.lastServed || (o.lastServed === best.lastServed && first < best.first)) {
        best = { owner, lastServed: o.lastServed, first };
      }
    }
    if (!best) return undefined;
    const o = this.owners.get(best.owner)!;
    const item = o.items.shift()!;
    this.arrival.delete(item);
    o.lastServed = ++this.served;
    if (o.items.length === 0) this.owners.delete(best.owner);
    return item;
  }

  /** Takes `item` out of the line wherever it is; false when it was not waiting. */
  remove(owner: string, item: T): boolean {
    const o = this.owners.get(owner);
    const at = o?.items.indexOf(item) ?? -1;
    if (!o || at < 0) return false;
    o.items.splice(at, 1);
    this.arrival.delete(item);
    if (o.items.length === 0) this.owners.delete(owner);
    return true;
  }

  /**
   * With the line full, the item to give up so that `owner` gets a place: the latest arrival of the
   * owner with the most waiting, if it has at least two more than `owner` (taking from an owner
   * with only one more would just swap who is ahead). Undefined: no one holds more than a fair share.
   */
  victimFor(owner: string): { owner: string; item: T } | undefined {
    const own = this.countOf(owner);
    let top: { owner: string; items: T[] } | undefined;
    for (const [name, o] of this.owners) if (!top || o.items.length > top.items.length) top = { owner: name, items: o.items };
    if (!top || top.items.length < own + 2) return undefined;
    return { owner: top.owner, item: top.items[top.items.length - 1]! };
  }
}

// A log line per event would let a flood (refused connections, failed accepts) flood the log too:
// events are counted and reported at most once per interval, with how many happened since.

/** `report(count, ...args)` at most every `everyMs`; `count` is the events since the last report. */
export function throttledReport<A extends unknown[]>(everyMs: number, report: (count: number, ...args: A) => void): (...args: A) => void {
  let last = 0;
  let count = 0;
  return (...args) => {
    count++;
    const now = Date.now();
    if (now - last < everyMs) return;
    last = now;
    report(count, ...args);
    count = 0;
  };
}

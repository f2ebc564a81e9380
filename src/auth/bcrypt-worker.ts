// bcrypt comparisons on worker threads. bcryptjs is pure JS and bcrypt is slow on purpose (~70 ms
// at cost 10 here); on the main thread every new credential would stall every stream the proxy
// carries. Each thread runs one comparison at a time and the queue stays on the main thread
// (htpasswd.ts), so a check whose client left can still be dropped before it runs and the next
// check is picked fairly among clients. Several threads (see `defaultBcryptThreads`), so one slow
// check (a high cost, a flood) does not hold every other sign-in behind it.
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

// Inline source: runs unchanged from src/ under vitest and from dist/ in production.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const bcrypt = require(workerData.bcryptPath);
parentPort.on('message', ({ password, hash }) => {
  let ok = false;
  try { ok = bcrypt.compareSync(password, hash); } catch { ok = false; }
  parentPort.postMessage(ok);
});
`;

/** Two threads, or one on a single core: more would take cores from the traffic itself. */
export function defaultBcryptThreads(): number {
  return Math.min(2, availableParallelism());
}

interface Slot {
  worker: Worker | null;
  /** The comparison this thread runs now. */
  running: { resolve(ok: boolean): void; reject(err: Error): void } | null;
}

export class BcryptPool {
  private readonly slots: Slot[];

  constructor(readonly threads = defaultBcryptThreads()) {
    this.slots = Array.from({ length: Math.max(1, threads) }, () => ({ worker: null, running: null }));
  }

  /** Threads free to start a comparison now. */
  get idle(): number {
    let n = 0;
    for (const s of this.slots) if (s.running === null) n++;
    return n;
  }

  /**
   * Resolves true when `password` matches the bcrypt `hash`, on a free thread (callers check
   * `idle` first: a call with none free is a bug). Never logs or retains the password.
   */
  compare(password: string, hash: string): Promise<boolean> {
    const slot = this.slots.find((s) => s.running === null);
    if (!slot) return Promise.reject(new Error('no bcrypt thread free'));
    const worker = this.start(slot);
    return new Promise((resolve, reject) => {
      slot.running = { resolve, reject };
      worker.ref(); // keep the process alive while a check is outstanding
      worker.postMessage({ password, hash });
    });
  }

  async close(): Promise<void> {
    const workers: Worker[] = [];
    for (const s of this.slots) {
      if (s.worker) workers.push(s.worker);
      s.worker = null;
      const running = s.running;
      s.running = null;
      running?.reject(new Error('bcrypt threads closed'));
    }
    await Promise.all(workers.map((w) => w.terminate()));
  }

  private start(slot: Slot): Worker {
    if (slot.worker) return slot.worker;
    const bcryptPath = createRequire(import.meta.url).resolve('bcryptjs');
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { bcryptPath } });
    // Events of a thread this slot no longer uses (closed, replaced) concern nobody.
    const settle = (): Slot['running'] => {
      if (slot.worker !== worker) return null;
      const running = slot.running;
      slot.running = null;
      worker.unref(); // an idle worker must not hold the process open
      return running;
    };
    worker.on('message', (ok: boolean) => settle()?.resolve(ok));
    const fail = (err: Error): void => {
      const running = settle();
      if (slot.worker === worker) slot.worker = null;
      running?.reject(err);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`bcrypt worker exited with code ${code}`)));
    worker.unref();
    slot.worker = worker;
    return worker;
  }
}

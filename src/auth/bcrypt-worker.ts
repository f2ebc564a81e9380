// bcrypt comparisons on a worker thread. bcryptjs is pure JS and bcrypt is slow on purpose (~70 ms
// at cost 10 here); on the main thread every new credential would stall every stream the proxy
// carries. One worker is enough: results are cached and concurrent identical checks coalesced
// (see htpasswd.ts), so the worker only sees distinct (user, password) pairs.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

// Inline source: runs unchanged from src/ under vitest and from dist/ in production.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const bcrypt = require(workerData.bcryptPath);
parentPort.on('message', ({ id, password, hash }) => {
  let ok = false;
  try { ok = bcrypt.compareSync(password, hash); } catch { ok = false; }
  parentPort.postMessage({ id, ok });
});
`;

interface Pending {
  resolve(ok: boolean): void;
  reject(err: Error): void;
}

export class BcryptWorker {
  private worker: Worker | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  /** Resolves true when `password` matches the bcrypt `hash`. Never logs or retains the password. */
  compare(password: string, hash: string): Promise<boolean> {
    const worker = this.start();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.ref(); // keep the process alive while a check is outstanding
      worker.postMessage({ id, password, hash });
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const bcryptPath = createRequire(import.meta.url).resolve('bcryptjs');
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { bcryptPath } });
    worker.on('message', ({ id, ok }: { id: number; ok: boolean }) => {
      const p = this.pending.get(id);
      this.pending.delete(id);
      if (this.pending.size === 0) worker.unref(); // an idle worker must not hold the process open
      p?.resolve(ok);
    });
    const fail = (err: Error): void => {
      if (this.worker === worker) this.worker = null;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (this.pending.size > 0) fail(new Error(`bcrypt worker exited with code ${code}`));
      if (this.worker === worker) this.worker = null;
    });
    worker.unref();
    this.worker = worker;
    return worker;
  }
}

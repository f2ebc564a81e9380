// Large bodies are inspected on a small pool of worker threads (`inspect.scanThreads`), so a
// multi-megabyte scan neither stalls every other request and SSE stream on the event loop nor
// leaves the host's other cores idle. Small bodies are scanned inline: handing a body to a thread
// and back costs more than scanning a few kilobytes. So is a large body whose request is the only
// work in flight: there is nobody to stall, and the hand-off only adds latency (measured, one
// 256 KiB request at a time through the proxy: p99 11 ms inline, 21 ms via a thread).
//
// Both sides build the inspector from the same config and fingerprint key, so a body gets the
// same findings, decision, fingerprints and redaction whichever thread scanned it. Never
// forwarded unscanned: if a thread dies, its bodies are scanned again inline, and the thread is
// replaced when next needed.
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { InspectConfig } from '../config/schema.js';
import { InspectError, type InspectBodyMeta, type InspectOutcome, type Inspector, type ScanFinding } from './index.js';
import type { ProtectedCodeSource } from './protected.js';
import type { ScanReply, ScanRequest } from './scan-worker.js';

/**
 * Bodies from this size (before decoding) go to a thread. Measured on the development machine:
 * a round trip to a thread costs ~0.1 ms; scanning 64 KiB of JSON costs ~0.6 ms.
 */
export const THREAD_MIN_BYTES = 64 * 1024;

/**
 * `inspect.scanThreads`: a number as given; `auto` is one thread per core, at most 4 (the event
 * loop itself does little CPU work for a large body, so it does not need a core of its own), and
 * one thread in each process of `--workers N`, whose siblings share the cores. Threads start
 * when the first large bodies arrive, so a proxy that never sees one never starts any.
 */
export function resolveScanThreads(setting: number | 'auto', opts: { clusterWorker: boolean }): number {
  if (setting !== 'auto') return setting;
  if (opts.clusterWorker) return 1;
  return Math.min(4, availableParallelism());
}

/**
 * The compiled scan-worker.js beside this module; under the test runner this module is the
 * TypeScript source, and the worker comes from the build (`npm test` builds first).
 */
function workerUrl(): URL {
  const beside = new URL('./scan-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(beside))) return beside;
  return new URL('../../dist/inspect/scan-worker.js', import.meta.url);
}

interface Pending {
  body: Buffer;
  meta: InspectBodyMeta;
  resolve(outcome: InspectOutcome): void;
  reject(err: unknown): void;
}

class ScanThread {
  readonly pending = new Map<number, Pending>();
  private readonly worker: Worker;
  dead = false;
  /** Whether it ever answered: a thread that dies before that cannot start at all. */
  answered = false;

  constructor(url: URL, workerData: unknown, onDeath: (thread: ScanThread) => void) {
    this.worker = new Worker(url, { workerData });
    // An idle pool must not keep the process alive, nor a busy one delay its exit.
    this.worker.unref();
    this.worker.on('message', (reply: ScanReply) => {
      this.answered = true;
      const task = this.pending.get(reply.id);
      if (!task) return;
      this.pending.delete(reply.id);
      if ('outcome' in reply) {
        const outcome = reply.outcome;
        // Structured clone turns a Buffer into a plain Uint8Array.
        if (outcome.redactedBody) outcome.redactedBody = Buffer.from(outcome.redactedBody.buffer, outcome.redactedBody.byteOffset, outcome.redactedBody.byteLength);
        task.resolve(outcome);
      } else if ('inspectError' in reply) task.reject(new InspectError(reply.inspectError.kind, reply.inspectError.message));
      else task.reject(new Error(`scan thread failed: ${reply.failure}`));
    });
    const die = () => {
      if (this.dead) return;
      this.dead = true;
      onDeath(this);
    };
    this.worker.on('error', die);
    this.worker.on('exit', die);
  }

  post(id: number, task: Pending): void {
    this.pending.set(id, task);
    const { body } = task;
    if (body.buffer instanceof SharedArrayBuffer) {
      // Read into shared memory (read-body.ts): the thread reads the bytes the request will
      // forward, nobody writes them, and a thread that dies mid-scan takes nothing with it.
      const msg: ScanRequest = { id, body, meta: task.meta };
      this.worker.postMessage(msg);
      return;
    }
    // The request keeps its body (it is forwarded after the scan): the thread gets a copy, moved.
    const copy = new Uint8Array(body.byteLength);
    copy.set(body);
    const msg: ScanRequest = { id, body: copy, meta: task.meta };
    this.worker.postMessage(msg, [copy.buffer]);
  }

  terminate(): Promise<number> {
    this.dead = true;
    return this.worker.terminate();
  }
}

export interface PooledInspectorOptions {
  config: InspectConfig;
  fingerprintKey: Buffer;
  /** inspect.fingerprints as the main thread loaded them (columns in shared memory: not copied per thread). */
  protectedCode?: readonly ProtectedCodeSource[] | undefined;
  threads: number;
  /** Test hook: bodies from this size go to a thread (default THREAD_MIN_BYTES). */
  minBytes?: number;
  /** True when the body's own request is the only work in flight: it is then scanned inline. */
  alone?: () => boolean;
  /** Called once if threads cannot start and the pool falls back to scanning inline. */
  onDisabled?: (reason: string) => void;
  /** Test hook: the worker script (default: scan-worker.js beside this module). */
  workerUrl?: URL;
}

/** Threads that die this many times in a row before answering anything mean threads cannot start. */
const MAX_FAILED_STARTS = 3;

export class PooledInspector implements Inspector {
  private readonly threads: ScanThread[] = [];
  private readonly url: URL;
  private readonly minBytes: number;
  private nextId = 0;
  private failedStarts = 0;
  private disabled = false;

  constructor(
    private readonly local: Inspector,
    private readonly opts: PooledInspectorOptions,
  ) {
    this.minBytes = opts.minBytes ?? THREAD_MIN_BYTES;
    this.url = opts.workerUrl ?? workerUrl();
  }

  scanText(text: string): ScanFinding[] {
    return this.local.scanText(text);
  }

  maskSecrets(text: string): string {
    return this.local.maskSecrets(text);
  }

  inspectBody(body: Buffer, meta: InspectBodyMeta): Promise<InspectOutcome> {
    if (this.disabled || this.opts.threads === 0 || body.length < this.minBytes || this.opts.alone?.()) {
      return this.local.inspectBody(body, meta);
    }
    let thread: ScanThread;
    try {
      thread = this.leastBusy();
    } catch {
      return this.local.inspectBody(body, meta); // a thread could not even be created
    }
    return new Promise<InspectOutcome>((resolve, reject) => {
      thread.post(this.nextId++, { body, meta, resolve, reject });
    });
  }

  /** Threads started so far (they start on first use). */
  get size(): number {
    return this.threads.length;
  }

  /** Stops every thread; bodies they held are scanned inline. */
  async close(): Promise<void> {
    const threads = this.threads.splice(0);
    await Promise.all(threads.map((t) => t.terminate()));
    for (const t of threads) this.rescan(t);
  }

  /** Tests: kill the threads as a crash would, with whatever they are scanning. */
  async crashForTest(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.terminate().then(() => this.onDeath(t))));
  }

  private leastBusy(): ScanThread {
    let best: ScanThread | undefined;
    for (const t of this.threads) if (!best || t.pending.size < best.pending.size) best = t;
    if (best && (best.pending.size === 0 || this.threads.length >= this.opts.threads)) return best;
    const thread = new ScanThread(this.url, { config: this.opts.config, fingerprintKey: this.opts.fingerprintKey, protectedCode: this.opts.protectedCode ?? [] }, (t) => this.onDeath(t));
    this.threads.push(thread);
    return thread;
  }

  private onDeath(thread: ScanThread): void {
    const i = this.threads.indexOf(thread);
    if (i !== -1) this.threads.splice(i, 1);
    this.rescan(thread);
    // A missing or broken scan-worker.js (a partial copy of dist/) would otherwise cost a thread
    // start per large body, forever.
    this.failedStarts = thread.answered ? 0 : this.failedStarts + 1;
    if (this.failedStarts >= MAX_FAILED_STARTS && !this.disabled) {
      this.disabled = true;
      this.opts.onDisabled?.(`${MAX_FAILED_STARTS} scan threads in a row stopped before answering (${fileURLToPath(this.url)})`);
    }
  }

  private rescan(thread: ScanThread): void {
    const tasks = [...thread.pending.values()];
    thread.pending.clear();
    for (const task of tasks) this.local.inspectBody(task.body, task.meta).then(task.resolve, task.reject);
  }
}

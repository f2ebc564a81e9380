// Scan threads (inspect/pool.ts): a large body gets exactly the outcome the event loop would have
// produced (findings, fingerprints, decision, redacted bytes), the event loop keeps turning while
// it is scanned, and a thread that dies costs no body its scan.
import { availableParallelism } from 'node:os';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { InspectError, createInspector, type InspectBodyMeta, type InspectOutcome } from '../../src/inspect/index.js';
import { PooledInspector, THREAD_MIN_BYTES, resolveScanThreads } from '../../src/inspect/pool.js';
import { Rng, githubClassic } from '../corpus/secrets.js';

const config = configSchema.parse({
  inspect: { maxBodyBytes: '16mb', rules: { actions: { 'github-pat': 'redact' } } },
}).inspect;
const key = Buffer.from('pool-test-key');
const local = createInspector(config, { fingerprintKey: key });
const pools: PooledInspector[] = [];
afterEach(async () => {
  for (const p of pools.splice(0)) await p.close();
});

function pool(threads = 2): PooledInspector {
  const p = new PooledInspector(local, { config, fingerprintKey: key, threads });
  pools.push(p);
  return p;
}

/** A chat request of about `bytes` whose prompt is made-up code plus `secrets`. */
function chatBody(bytes: number, secrets: string[]): Buffer {
  const lines: string[] = [];
  for (let i = 0, size = 0; size < bytes; i++) {
    const line = `  const item${i} = compute(list[${i % 97}], "label ${i}", { depth: ${i % 7} }); // step ${i}`;
    lines.push(line);
    size += line.length + 1;
  }
  secrets.forEach((s, i) => lines.splice(((i + 1) * lines.length) / (secrets.length + 1), 0, s));
  return Buffer.from(JSON.stringify({ model: 'gpt-x', messages: [{ role: 'user', content: lines.join('\n') }] }));
}

/** toEqual, but a redacted body (megabytes) is compared with Buffer.equals, not element by element. */
function expectSameOutcome(actual: InspectOutcome, expected: InspectOutcome): void {
  const { redactedBody: a, ...restA } = actual;
  const { redactedBody: b, ...restB } = expected;
  expect(restA).toEqual(restB);
  expect(a === undefined).toBe(b === undefined);
  if (a && b) {
    expect(Buffer.isBuffer(a)).toBe(true);
    expect(a.equals(b)).toBe(true);
  }
}

const meta = (action: InspectBodyMeta['action']): InspectBodyMeta => ({ contentType: 'application/json', action });

async function ticksWhile(p: Promise<unknown>): Promise<number> {
  let ticks = 0;
  let done = false;
  void p.finally(() => (done = true)).catch(() => undefined);
  await new Promise<void>((resolve) => {
    const spin = () => {
      if (done) return resolve();
      ticks++;
      setImmediate(spin);
    };
    setImmediate(spin);
  });
  return ticks;
}

describe('scan threads', () => {
  const rng = new Rng(5);
  const tokens = [githubClassic(rng), githubClassic(rng), githubClassic(rng)];

  it('give a large body the outcome the event loop gives it: findings, fingerprints, decision, redacted bytes', async () => {
    const body = chatBody(512 * 1024, [`const a = "${tokens[0]}"`, 'password = "Zq8vLm2pRt7x"', `token: ${tokens[1]}`]);
    const p = pool();
    for (const action of ['redact', 'block', 'monitor'] as const) {
      const inline = await local.inspectBody(body, meta(action));
      const threaded = await p.inspectBody(body, meta(action));
      expect(p.size).toBe(1);
      expectSameOutcome(threaded, inline);
      expect(threaded.findings.length).toBeGreaterThanOrEqual(3);
    }
  });

  it('read a body in shared memory in place: same outcome, gzip too, the body untouched, a dying thread costs nothing', async () => {
    const shared = (b: Buffer) => {
      const out = Buffer.from(new SharedArrayBuffer(b.length));
      b.copy(out);
      return out;
    };
    const plain = chatBody(512 * 1024, [`const a = "${tokens[0]}"`, 'password = "Zq8vLm2pRt7x"']);
    const body = shared(plain);
    const gz = shared(gzipSync(chatBody(2 * 1024 * 1024, [`t = "${tokens[1]}"`])));
    expect(gz.length).toBeGreaterThan(THREAD_MIN_BYTES);
    const p = pool(1);
    for (const action of ['redact', 'block'] as const) {
      expectSameOutcome(await p.inspectBody(body, meta(action)), await local.inspectBody(plain, meta(action)));
    }
    const gzMeta: InspectBodyMeta = { contentType: 'application/json', contentEncoding: 'gzip', action: 'block' };
    expectSameOutcome(await p.inspectBody(gz, gzMeta), await local.inspectBody(gz, gzMeta));
    expect(p.size).toBe(1);
    expect(body.equals(plain)).toBe(true);

    const held = p.inspectBody(body, meta('block'));
    await p.crashForTest();
    expectSameOutcome(await held, await local.inspectBody(plain, meta('block')));
    expect(body.equals(plain)).toBe(true);
  });

  it('keep the event loop turning while a large body is scanned (inline, it stops)', async () => {
    const body = chatBody(4 * 1024 * 1024, [`x = "${tokens[2]}"`]);
    const p = pool(1);
    await p.inspectBody(chatBody(THREAD_MIN_BYTES, []), meta('block')); // thread started and warm
    const threadedTicks = await ticksWhile(p.inspectBody(body, meta('block')));
    const inlineTicks = await ticksWhile(local.inspectBody(body, meta('block')));
    // A 4 MiB scan takes tens of milliseconds: thousands of turns on a free loop, at most a couple
    // when the scan runs on it.
    expect(threadedTicks).toBeGreaterThan(50);
    expect(inlineTicks).toBeLessThan(5);
  });

  it('spread concurrent bodies over at most `threads` threads, each getting its own outcome', async () => {
    const p = pool(2);
    const bodies = Array.from({ length: 12 }, (_, i) => chatBody(THREAD_MIN_BYTES + i * 1024, i % 3 === 0 ? [`t = "${tokens[i % 3]}"`] : []));
    const outcomes = await Promise.all(bodies.map((b) => p.inspectBody(b, meta('block'))));
    expect(p.size).toBe(2);
    for (let i = 0; i < bodies.length; i++) {
      expectSameOutcome(outcomes[i]!, await local.inspectBody(bodies[i]!, meta('block')));
      expect(outcomes[i]!.decision).toBe(i % 3 === 0 ? 'redact' : 'allow'); // github-pat is set to redact above
    }
  });

  it('refuse a compression bomb with the same InspectError', async () => {
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024, 'a'));
    const padded = Buffer.concat([bomb, Buffer.alloc(0)]);
    expect(padded.length).toBeLessThan(THREAD_MIN_BYTES * 2);
    const p = new PooledInspector(local, { config, fingerprintKey: key, threads: 1, minBytes: 1024 });
    pools.push(p);
    const err = await p.inspectBody(padded, { contentEncoding: 'gzip', action: 'block' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InspectError);
    expect((err as InspectError).kind).toBe('too_large');
    expect(p.size).toBe(1);
  });

  it('scan inline what a dying thread held, and start a new thread for the next body', async () => {
    const body = chatBody(2 * 1024 * 1024, [`k = "${tokens[0]}"`]);
    const p = pool(1);
    const expected = await local.inspectBody(body, meta('block'));
    const held = p.inspectBody(body, meta('block'));
    await p.crashForTest();
    expect(p.size).toBe(0);
    expectSameOutcome(await held, expected);
    expectSameOutcome(await p.inspectBody(body, meta('block')), expected);
    expect(p.size).toBe(1);
  });

  it('fall back to scanning inline, and say so once, when threads cannot start', async () => {
    const reasons: string[] = [];
    const p = new PooledInspector(local, {
      config,
      fingerprintKey: key,
      threads: 2,
      workerUrl: new URL('file:///nonexistent/aigate/scan-worker.js'),
      onDisabled: (reason) => reasons.push(reason),
    });
    pools.push(p);
    const body = chatBody(THREAD_MIN_BYTES * 2, [`k = "${tokens[2]}"`]);
    const expected = await local.inspectBody(body, meta('block'));
    for (let i = 0; i < 5; i++) expectSameOutcome(await p.inspectBody(body, meta('block')), expected);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toContain('/nonexistent/aigate/scan-worker.js');
    expect(p.size).toBe(0);
  });

  it('leave small bodies on the event loop and start no thread for them', async () => {
    const p = pool();
    const small = chatBody(4 * 1024, ['password = "Zq8vLm2pRt7x"']);
    expect((await p.inspectBody(small, meta('block'))).decision).toBe('block');
    expect(p.size).toBe(0);
  });

  it('scan a large body inline when its request is the only work in flight', async () => {
    let others = 0;
    const p = new PooledInspector(local, { config, fingerprintKey: key, threads: 2, alone: () => others === 0 });
    pools.push(p);
    const body = chatBody(THREAD_MIN_BYTES * 2, [`k = "${tokens[1]}"`]);
    expectSameOutcome(await p.inspectBody(body, meta('block')), await local.inspectBody(body, meta('block')));
    expect(p.size).toBe(0);
    others = 3;
    expectSameOutcome(await p.inspectBody(body, meta('block')), await local.inspectBody(body, meta('block')));
    expect(p.size).toBe(1);
  });

  it('size the pool: a number as given, auto one per core up to 4, one per --workers process', () => {
    expect(resolveScanThreads(0, { clusterWorker: false })).toBe(0);
    expect(resolveScanThreads(3, { clusterWorker: true })).toBe(3);
    expect(resolveScanThreads('auto', { clusterWorker: true })).toBe(1);
    expect(resolveScanThreads('auto', { clusterWorker: false })).toBe(Math.min(4, availableParallelism()));
  });
});


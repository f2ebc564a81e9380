// The pieces that bound proxy-auth work (issue #19 item 10), alone: the fair queue's order, the
// per-address failure bucket's window (with a fake clock), and Htpasswd.check's answers when its
// queue is full, its client's address failed too often, or its client left.
import bcrypt from 'bcryptjs';
import { afterAll, describe, expect, it } from 'vitest';
import { FailureLimiter } from '../../src/auth/failure-limit.js';
import { FairQueue } from '../../src/auth/fair-queue.js';
import { Htpasswd, type CheckEvents, type HtpasswdOptions } from '../../src/auth/htpasswd.js';

const alice = bcrypt.hashSync('wonderland', 4);
/** Slow enough that a check started first is still running while the test queues others. */
const slow = bcrypt.hashSync('tortoise', 12);

const stores: Htpasswd[] = [];
const store = (opts: HtpasswdOptions) => {
  const s = Htpasswd.parse(`alice:${alice}\nslow:${slow}\n`, 'users.htpasswd', opts);
  stores.push(s);
  return s;
};
afterAll(async () => {
  await Promise.all(stores.map((s) => s.close()));
});

describe('FairQueue', () => {
  it('serves the owner served least recently first, so a newcomer waits behind no flood', () => {
    const q = new FairQueue<string>();
    for (const item of ['a1', 'a2', 'a3']) q.push('A', item);
    expect(q.shift()).toBe('a1');
    q.push('B', 'b1');
    q.push('A', 'a4');
    expect(q.shift()).toBe('b1'); // never served beats A, served a moment ago
    expect(q.shift()).toBe('a2');
    q.push('C', 'c1');
    expect(q.shift()).toBe('c1');
    expect([q.shift(), q.shift(), q.shift()]).toEqual(['a3', 'a4', undefined]);
    expect(q.size).toBe(0);
  });

  it('owners never served go in order of arrival', () => {
    const q = new FairQueue<string>();
    q.push('B', 'b1');
    q.push('A', 'a1');
    q.push('B', 'b2');
    expect([q.shift(), q.shift(), q.shift()]).toEqual(['b1', 'a1', 'b2']);
  });

  it('gives up the latest arrival of whoever holds at least two more than the newcomer', () => {
    const q = new FairQueue<string>();
    q.push('A', 'a1');
    expect(q.victimFor('B')).toBeUndefined(); // one more: taking it would only swap who is ahead
    q.push('A', 'a2');
    expect(q.victimFor('B')).toEqual({ owner: 'A', item: 'a2' });
    expect(q.victimFor('A')).toBeUndefined();
    expect(q.remove('A', 'a2')).toBe(true);
    expect(q.remove('A', 'a2')).toBe(false);
    expect(q.countOf('A')).toBe(1);
  });
});

describe('FailureLimiter', () => {
  it('allows perMinute failures, then one every 60/perMinute s, and is whole again after a quiet minute', () => {
    let now = 0;
    const limiter = new FailureLimiter(3, () => now);
    expect([limiter.take('ip'), limiter.take('ip'), limiter.take('ip'), limiter.take('ip')]).toEqual([true, true, true, false]);
    expect(limiter.retryAfterSeconds('ip')).toBe(20);
    expect(limiter.take('other')).toBe(true); // per address
    now = 19_999;
    expect(limiter.take('ip')).toBe(false);
    now = 20_000;
    expect(limiter.take('ip')).toBe(true);
    expect(limiter.take('ip')).toBe(false);
    now = 80_000; // a minute without failures
    expect([limiter.take('ip'), limiter.take('ip'), limiter.take('ip'), limiter.take('ip')]).toEqual([true, true, true, false]);
  });

  it('takes back nothing for checks that did not fail', () => {
    const limiter = new FailureLimiter(1, () => 0);
    expect(limiter.take('ip')).toBe(true);
    limiter.giveBack('ip');
    expect(limiter.take('ip')).toBe(true);
    expect(limiter.take('ip')).toBe(false);
  });

  it('0 is no limit', () => {
    const limiter = new FailureLimiter(0);
    for (let i = 0; i < 100; i++) expect(limiter.take('ip')).toBe(true);
  });
});

describe('Htpasswd.check under load', () => {
  const counting = () => {
    const seen = { dropped: 0, busy: 0, throttled: 0, checked: 0 };
    const events: CheckEvents = {
      dropped: () => seen.dropped++,
      refused: (r) => seen[r]++,
      checked: () => seen.checked++,
    };
    return { seen, events };
  };

  it('drops a queued check whose client left before it ran', async () => {
    const { seen, events } = counting();
    const s = store({ threads: 1, events });
    const running = s.check('slow', 'nope-1', { client: 'x' });
    const left = new AbortController();
    const queued = s.check('slow', 'nope-2', { client: 'x', signal: left.signal });
    expect(s.pending).toBe(2);
    left.abort();
    expect(await queued).toEqual({ kind: 'gone' });
    expect(s.pending).toBe(1);
    expect(seen.dropped).toBe(1);
    expect(await running).toEqual({ kind: 'invalid' });
    expect(s.comparisons).toBe(1);
    expect(seen.checked).toBe(1);
  });

  it('a check two clients wait for runs while one of them is still there', async () => {
    const s = store({ threads: 1 });
    const first = s.check('slow', 'nope-1', { client: 'x' });
    const a = new AbortController();
    const gone = s.check('alice', 'wonderland', { client: 'y', signal: a.signal });
    const staying = s.check('alice', 'wonderland', { client: 'z' });
    a.abort();
    expect(await gone).toEqual({ kind: 'gone' });
    expect(await staying).toEqual({ kind: 'valid' });
    await first;
    expect(s.comparisons).toBe(2);
  });

  it('answers busy beyond maxPending, with Retry-After', async () => {
    const { seen, events } = counting();
    const s = store({ threads: 1, maxPending: 2, failuresPerMinute: 0, events });
    const checks = [s.check('slow', 'a', { client: 'x' }), s.check('slow', 'b', { client: 'x' })];
    const busy = await s.check('slow', 'c', { client: 'x' });
    expect(busy).toMatchObject({ kind: 'busy' });
    expect((busy as { retryAfterSeconds: number }).retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(seen.busy).toBe(1);
    // The same credentials as a pending check join it: no new work, so never busy.
    const joined = s.check('slow', 'b', { client: 'y' });
    expect(s.pending).toBe(2);
    expect(await Promise.all([...checks, joined])).toEqual([{ kind: 'invalid' }, { kind: 'invalid' }, { kind: 'invalid' }]);
    expect(s.comparisons).toBe(2);
  });

  it('answers throttled once an address failed failuresPerMinute times; verified and cached credentials still pass', async () => {
    const { seen, events } = counting();
    const s = store({ failuresPerMinute: 2, events });
    expect(await s.check('alice', 'wonderland', { client: 'x' })).toEqual({ kind: 'valid' });
    expect(await s.check('alice', 'w1', { client: 'x' })).toEqual({ kind: 'invalid' });
    expect(await s.check('alice', 'w2', { client: 'x' })).toEqual({ kind: 'invalid' });
    expect(await s.check('alice', 'w3', { client: 'x' })).toMatchObject({ kind: 'throttled', retryAfterSeconds: 30 });
    expect(await s.check('alice', 'w1', { client: 'x' })).toEqual({ kind: 'invalid' }); // cached failure
    expect(await s.check('alice', 'wonderland', { client: 'x' })).toEqual({ kind: 'valid' }); // cached success
    expect(await s.check('alice', 'w3', { client: 'y' })).toEqual({ kind: 'invalid' });
    expect(seen.throttled).toBe(1);
    expect(s.comparisons).toBe(4);
  });

  it('a flood of failures does not evict the users who signed in', async () => {
    const s = store({ maxEntries: 10, failuresPerMinute: 0 });
    expect(await s.check('alice', 'wonderland')).toEqual({ kind: 'valid' });
    for (let i = 0; i < 30; i++) await s.check('alice', `w${i}`);
    const before = s.comparisons;
    expect(await s.check('alice', 'wonderland')).toEqual({ kind: 'valid' });
    expect(s.comparisons).toBe(before);
  });

  it('a success is remembered from its last use', async () => {
    let now = 0;
    const s = store({ successTtlMs: 1000, now: () => now });
    await s.check('alice', 'wonderland');
    for (now = 900; now <= 5000; now += 900) expect(await s.check('alice', 'wonderland')).toEqual({ kind: 'valid' });
    expect(s.comparisons).toBe(1);
    now += 1001;
    await s.check('alice', 'wonderland');
    expect(s.comparisons).toBe(2);
  });
});

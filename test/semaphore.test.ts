// Semaphore (weighted, FIFO, no starvation of large requests) and KeyedMutex (a lock per key, canonical order,
// no memory for free keys): behaviour, bad input, and their profiles.
import { describe, test, expect, beforeEach } from 'vitest';
import fc from 'fast-check';
import { Semaphore, KeyedMutex, setMutexProfileFraction, setBlockProfileRate, configureProfiler, setLockTracking, queryLocks, lookup, type Guard } from '../src/index.js';
import { Semaphore as DropInSemaphore } from '../src/async-mutex/index.js';
import { flush, track, manualClock, ms, samplesOf, totalsOf, names, abortListeners } from './helpers.js';

const clock = manualClock();
configureProfiler({ now: clock.now, random: () => 0 });
beforeEach(() => {
  setMutexProfileFraction(0);
  setBlockProfileRate(0);
});

describe('Semaphore', () => {
  test('permits are shared up to the count; a release grants the next waiter', async () => {
    const sem = new Semaphore(2, { name: 'pool' });
    expect([sem.name, sem.permits, sem.available]).toEqual(['pool', 2, 2]);
    const a = await sem.acquire();
    const b = await sem.acquire();
    expect(sem.available).toBe(0);
    const c = track(sem.acquire());
    await flush();
    expect([c.state, sem.waiting]).toEqual(['pending', 1]);
    a[Symbol.dispose]();
    await flush();
    expect([c.state, sem.available, sem.waiting]).toEqual(['fulfilled', 0, 0]);
    b[Symbol.dispose]();
    (c.value as Guard)[Symbol.dispose]();
    expect(sem.available).toBe(2);
  });

  test('a large request at the head blocks smaller ones behind it; grants go in order as permits return', async () => {
    const sem = new Semaphore(4);
    const held = await sem.acquire({ weight: 3 });
    const order: string[] = [];
    const big = sem.acquire({ weight: 4 }).then((g) => (order.push('big'), g));
    const small = sem.acquire({ weight: 1 }).then((g) => (order.push('small'), g));
    expect(sem.tryAcquire()).toBe(false); // one permit is free, but the head waits for four
    await flush();
    expect(order).toEqual([]);
    held[Symbol.dispose]();
    const g = await big;
    await flush();
    expect(order).toEqual(['big']);
    g[Symbol.dispose]();
    (await small)[Symbol.dispose]();
    expect(order).toEqual(['big', 'small']);
    expect(sem.available).toBe(4);
  });

  test('tryAcquire, release(weight) and withPermit', async () => {
    const sem = new Semaphore(3);
    expect(sem.tryAcquire(2)).toBe(true);
    expect(sem.tryAcquire(2)).toBe(false);
    sem.release(2);
    expect(await sem.withPermit(() => sem.available, { weight: 3 })).toBe(0);
    expect(sem.available).toBe(3);
    await expect(sem.withPermit(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(sem.available).toBe(3);
  });

  test('bad input throws a clear error and changes nothing', async () => {
    expect(() => new Semaphore(0)).toThrow(RangeError);
    expect(() => new Semaphore(1.5)).toThrow(RangeError);
    const sem = new Semaphore(2);
    for (const weight of [0, -1, 1.5, NaN, '1' as unknown as number]) await expect(sem.acquire({ weight })).rejects.toThrow(/weight must be a positive integer/);
    await expect(sem.acquire({ weight: 3 })).rejects.toThrow(/more than the semaphore's 2 permits: it could never be granted/);
    expect(() => sem.tryAcquire(3)).toThrow(RangeError);
    expect(() => sem.release()).toThrow(/release of 1 permits of Semaphore, which has 0 held/);
    const g = await sem.acquire();
    expect(() => sem.release(2)).toThrow(/which has 1 held/);
    g[Symbol.dispose]();
    expect(() => g[Symbol.dispose]()).toThrow(/already released/);
    expect([sem.available, sem.waiting]).toEqual([2, 0]);
  });

  test('abort: the waiter leaves; if it was the head, the ones behind it that fit are granted', async () => {
    const sem = new Semaphore(2);
    await sem.acquire();
    const ac = new AbortController();
    const big = track(sem.acquire({ weight: 2, signal: ac.signal }));
    const small = track(sem.acquire());
    await flush();
    expect(small.state).toBe('pending'); // behind the head
    ac.abort();
    await flush();
    expect([big.state, small.state, sem.waiting, abortListeners(ac.signal)]).toEqual(['rejected', 'fulfilled', 0, 0]);
  });

  test('profiled as the locks: the release that lets waiting end is charged the waiting, mutex = block', async () => {
    setMutexProfileFraction(1);
    setBlockProfileRate(1);
    const sem = new Semaphore(2, { name: 'sem-prof' });
    async function holdPermits(): Promise<void> {
      const g = await sem.acquire({ weight: 2 });
      const w1 = sem.acquire();
      const w2 = sem.acquire();
      clock.advance(10 * ms);
      g[Symbol.dispose](); // grants both: 20 ms of waiting ended
      for (const x of await Promise.all([w1, w2])) x[Symbol.dispose]();
    }
    await holdPermits();
    const m = await samplesOf('mutex', 'sem-prof');
    expect(m).toHaveLength(1);
    expect(names(m[0]).slice(0, 2)).toEqual(['Semaphore.release', 'holdPermits']);
    expect(m[0]).toMatchObject({ count: 1, delay: 20 * ms });
    expect(await totalsOf('block', 'sem-prof')).toEqual({ count: 2, delay: 20 * ms });
  });

  test("queryLocks lists it with kind 'Semaphore' and each holder's weight", async () => {
    setLockTracking('on');
    try {
      const sem = new Semaphore(5, { name: 'sem-live' });
      const g = await sem.acquire({ weight: 3 });
      const w = sem.acquire({ weight: 4 });
      const { held, pending } = queryLocks();
      expect(held.filter((s) => s.name === 'sem-live')).toEqual([expect.objectContaining({ kind: 'Semaphore', mode: 'shared', weight: 3 })]);
      expect(pending.filter((s) => s.name === 'sem-live')).toEqual([expect.objectContaining({ kind: 'Semaphore', weight: 4 })]);
      g[Symbol.dispose]();
      (await w)[Symbol.dispose]();
    } finally {
      setLockTracking('off');
    }
  });

  test('a waiter’s weight is in the live view untracked too, and for the async-mutex drop-in’s Semaphore (whose permits are not fixed)', async () => {
    const sem = new Semaphore(5, { name: 'sem-untracked' });
    const g = await sem.acquire({ weight: 3 });
    const w = sem.acquire({ weight: 4 });
    const dropIn = new DropInSemaphore(5, { name: 'dropin-live' });
    const [, release] = await dropIn.acquire(3);
    const v = dropIn.acquire(4);
    const { pending } = queryLocks();
    expect(pending.filter((s) => s.name === 'sem-untracked')).toEqual([expect.objectContaining({ kind: 'Semaphore', weight: 4 })]);
    expect(pending.filter((s) => s.name === 'dropin-live')).toEqual([expect.objectContaining({ kind: 'Semaphore', weight: 4 })]);
    g[Symbol.dispose]();
    (await w)[Symbol.dispose]();
    release();
    (await v)[1]();
  });

  test('a guard whose record a release(n) ended ends the next one: no holder outlives the permits', async () => {
    setLockTracking('on');
    try {
      const sem = new Semaphore(2, { name: 'sem-records' });
      const mine = (): number => queryLocks().held.filter((s) => s.name === 'sem-records').length;
      const g = await sem.acquire(); // the oldest record
      expect(sem.tryAcquire()).toBe(true);
      sem.release(); // without a guard: ends the oldest record of weight 1, g's
      expect(mine()).toBe(1);
      g[Symbol.dispose](); // its own record ended already: the other one ends
      expect(mine()).toBe(0);
    } finally {
      setLockTracking('off');
    }
  });
});

describe('KeyedMutex', () => {
  test('one lock per key: the same key excludes, different keys do not', async () => {
    const keyed = new KeyedMutex({ name: 'users' });
    const a = await keyed.lock('alice');
    const b = track(keyed.lock('bob'));
    const a2 = track(keyed.lock('alice'));
    await flush();
    expect([b.state, a2.state, keyed.isLocked('alice'), keyed.isLocked('carol'), keyed.size]).toEqual(['fulfilled', 'pending', true, false, 2]);
    a[Symbol.dispose]();
    await flush();
    expect(a2.state).toBe('fulfilled');
    (a2.value as Guard)[Symbol.dispose]();
    (b.value as Guard)[Symbol.dispose]();
    expect(keyed.size).toBe(0); // free keys are not kept
  });

  test('several keys are taken in one canonical order: overlapping sets in any order never deadlock', async () => {
    const keyed = new KeyedMutex();
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uniqueArray(fc.oneof(fc.constantFrom('a', 'b', 'c', 'd'), fc.constantFrom(1, 2, 3)), { minLength: 1, maxLength: 4 }), { minLength: 2, maxLength: 8 }),
        async (sets) => {
          let inside = new Set<string | number>();
          await Promise.all(
            sets.map((keys) =>
              keyed.withLock(keys, async () => {
                for (const k of keys) expect(inside.has(k)).toBe(false);
                inside = new Set([...inside, ...keys]);
                await flush();
                for (const k of keys) inside.delete(k);
              }),
            ),
          );
          expect(keyed.size).toBe(0);
        },
      ),
      { seed: 3, numRuns: 100 },
    );
  });

  test('an abort while some keys are taken releases them; bad keys are rejected and change nothing', async () => {
    const keyed = new KeyedMutex();
    const b = await keyed.lock('b');
    const ac = new AbortController();
    const both = track(keyed.lock(['b', 'a'], { signal: ac.signal })); // takes 'a' first, then waits for 'b'
    await flush();
    expect(keyed.isLocked('a')).toBe(true);
    ac.abort();
    await flush();
    expect([both.state, keyed.isLocked('a'), keyed.size]).toEqual(['rejected', false, 1]);
    b[Symbol.dispose]();
    expect(keyed.size).toBe(0);
    for (const bad of [null, {}, NaN, [1, {}]]) await expect(keyed.lock(bad as unknown as string)).rejects.toThrow(TypeError);
    const aborted = AbortSignal.abort();
    await expect(keyed.lock('x', { signal: aborted })).rejects.toBeDefined();
    expect(keyed.size).toBe(0);
  });

  test('profiled under its name; the key is a label only with keyLabel', async () => {
    setMutexProfileFraction(1);
    for (const [name, keyLabel] of [
      ['keyed-plain', false],
      ['keyed-labelled', true],
    ] as const) {
      const keyed = new KeyedMutex({ name, keyLabel });
      const g = await keyed.lock('user-7');
      const w = keyed.lock('user-7');
      clock.advance(ms);
      g[Symbol.dispose]();
      (await w)[Symbol.dispose]();
      expect((await samplesOf('mutex', name)).map((e) => e.pairs)).toEqual([keyLabel ? [['key', 'user-7']] : []]);
    }
  });
});

describe('the leaf of a sample names what the caller called', () => {
  test('KeyedMutex: KeyedMutex.lock and KeyedMutex.unlock in the block and mutex profiles, as in the locks profile', async () => {
    setMutexProfileFraction(1);
    setBlockProfileRate(1);
    const keyed = new KeyedMutex({ name: 'keyed-leaf' });
    const g = await keyed.lock('k');
    const w = keyed.lock('k');
    const locks = await lookup('locks').snapshot();
    clock.advance(ms);
    g[Symbol.dispose]();
    (await w)[Symbol.dispose]();
    expect((await samplesOf('mutex', 'keyed-leaf')).map((e) => names(e)[0])).toEqual(['KeyedMutex.unlock']);
    expect((await samplesOf('block', 'keyed-leaf')).map((e) => names(e)[0])).toEqual(['KeyedMutex.lock']);
    const waiting = locks.samples.filter((x) => x.labels.some(([k, v]) => k === 'lock' && v === 'keyed-leaf') && x.labels.some(([k, v]) => k === 'state' && v === 'waiting'));
    expect(waiting.map((x) => x.frames[0].name)).toEqual(['KeyedMutex.lock']);
  });

  test('Semaphore: a waiter is Semaphore.acquire in the locks profile, a release Semaphore.release', async () => {
    const sem = new Semaphore(1, { name: 'sem-leaf' });
    const g = await sem.acquire();
    const w = sem.acquire();
    const waiting = (await lookup('locks').snapshot()).samples.filter(
      (x) => x.labels.some(([k, v]) => k === 'lock' && v === 'sem-leaf') && x.labels.some(([k, v]) => k === 'state' && v === 'waiting'),
    );
    expect(waiting.map((x) => x.frames[0].name)).toEqual(['Semaphore.acquire']);
    g[Symbol.dispose]();
    (await w)[Symbol.dispose]();
    setMutexProfileFraction(1);
    const h = await sem.acquire();
    const w2 = sem.acquire();
    clock.advance(ms);
    sem.release();
    (await w2)[Symbol.dispose]();
    void h;
    expect((await samplesOf('mutex', 'sem-leaf')).map((e) => names(e)[0])).toEqual(['Semaphore.release']); // its line: test/stacks.test.ts
  });
});

// The contention profiles' numbers against ground truth, with an injected clock: no sleeps decide anything.
import { describe, test, expect } from 'vitest';
import { Mutex, RWMutex, setMutexProfileFraction, setBlockProfileRate, setBlockProfileFraction, configureProfiler, withLabels } from '../src/index.js';
import { useProfiler, resetProfiles, flush, ms, samplesOf, totalsOf, names, track, contend } from './helpers.js';

const clock = useProfiler();

describe('attribution', () => {
  test('Go fixture attrib/: holder keeps the lock 100 ms while 3 waiters queue → holder charged 300 ms, 1 contention', async () => {
    const mu = new Mutex({ name: 'attrib' });
    const entered: string[] = [];
    async function holder(): Promise<void> {
      await mu.lock();
      await flush(); // let the waiters queue
      clock.advance(100 * ms);
      mu.unlock();
    }
    async function waiter(id: string): Promise<void> {
      await mu.lock();
      entered.push(id);
      clock.advance(50 * ms);
      mu.unlock();
    }
    const h = holder();
    await Promise.all([waiter('w1'), waiter('w2'), waiter('w3'), h]);
    expect(entered).toEqual(['w1', 'w2', 'w3']);

    const m = await samplesOf('mutex', 'attrib');
    const byFn = (fn: string) => m.find((e) => names(e)[1] === fn)!;
    expect(names(byFn('holder'))[0]).toBe('Mutex.unlock');
    expect(byFn('holder').count).toBe(1);
    expect(byFn('holder').delay).toBe(300 * ms);
    // waiters' releases: w1 ends 2 × 50 ms of waiting, w2 ends 50 ms; one stack, two events
    expect(byFn('waiter')).toMatchObject({ count: 2, delay: 150 * ms });
    expect(await totalsOf('mutex', 'attrib')).toEqual({ count: 3, delay: 450 * ms });

    // block profile: each waiter's own wait (100, 150, 200 ms), at its lock() call
    const b = await samplesOf('block', 'attrib');
    expect(b).toHaveLength(1);
    expect(names(b[0]).slice(0, 2)).toEqual(['Mutex.lock', 'waiter']);
    expect(b[0]).toMatchObject({ count: 3, delay: 450 * ms });
  });

  test('readers delaying a writer share its wait in proportion', async () => {
    const rw = new RWMutex({ name: 'share' });
    await rw.rLock();
    await rw.rLock();
    const w = rw.lock();
    function readerA(): void {
      rw.rUnlock();
    }
    function readerB(): void {
      rw.rUnlock();
    }
    clock.advance(10 * ms);
    readerA();
    clock.advance(20 * ms);
    readerB();
    (await w)[Symbol.dispose]();
    const m = await samplesOf('mutex', 'share');
    expect(m.find((e) => names(e)[1] === 'readerA')).toMatchObject({ count: 1, delay: 10 * ms });
    expect(m.find((e) => names(e)[1] === 'readerB')).toMatchObject({ count: 1, delay: 20 * ms });
    expect(names(m[0])[0]).toBe('RWMutex.rUnlock');
    expect(await totalsOf('block', 'share')).toEqual({ count: 1, delay: 30 * ms });
  });

  test('a writer delaying a batch of readers is charged all their waits', async () => {
    const rw = new RWMutex({ name: 'batch' });
    await rw.lock();
    const readers = [0, 1, 2, 3].map((i) => {
      clock.advance(i * ms); // queue at 0, 1, 3, 6 ms
      return rw.rLock();
    });
    clock.advance(34 * ms); // now 40 ms after the first
    function writer(): void {
      rw.unlock();
    }
    writer();
    for (const g of await Promise.all(readers)) g[Symbol.dispose]();
    const m = await samplesOf('mutex', 'batch');
    expect(m).toHaveLength(1);
    expect(names(m[0]).slice(0, 2)).toEqual(['RWMutex.unlock', 'writer']);
    expect(m[0]).toMatchObject({ count: 1, delay: (40 + 39 + 37 + 34) * ms });
    expect(await totalsOf('block', 'batch')).toEqual({ count: 4, delay: 150 * ms });
  });

  test('aborted waiters keep their wait in the next event’s delay, and in the block profile', async () => {
    const mu = new Mutex({ name: 'abort' });
    await mu.lock();
    const ac = new AbortController();
    const a = track(mu.lock({ signal: ac.signal }));
    clock.advance(10 * ms);
    ac.abort();
    clock.advance(5 * ms);
    const b = mu.lock();
    clock.advance(15 * ms);
    mu.unlock(); // ends B's 15 ms and carries A's 10 ms
    (await b)[Symbol.dispose]();
    await flush();
    expect(a.state).toBe('rejected');
    expect(await totalsOf('mutex', 'abort')).toEqual({ count: 1, delay: 25 * ms });
    expect(await totalsOf('block', 'abort')).toEqual({ count: 2, delay: 25 * ms });
  });

  test('an abort with nobody left waiting is still charged to the next release', async () => {
    const mu = new Mutex({ name: 'abort-alone' });
    await mu.lock();
    const ac = new AbortController();
    const p = mu.lock({ signal: ac.signal });
    clock.advance(7 * ms);
    ac.abort();
    await expect(p).rejects.toBeDefined();
    mu.unlock();
    expect(await totalsOf('mutex', 'abort-alone')).toEqual({ count: 1, delay: 7 * ms });
    expect(await totalsOf('block', 'abort-alone')).toEqual({ count: 1, delay: 7 * ms });
  });

  test('readers admitted because the writer ahead aborted: their wait is carried, totals still agree', async () => {
    const rw = new RWMutex({ name: 'carry' });
    await rw.rLock();
    const ac = new AbortController();
    const w = rw.lock({ signal: ac.signal });
    const r = rw.rLock();
    clock.advance(4 * ms);
    ac.abort();
    await expect(w).rejects.toBeDefined();
    (await r)[Symbol.dispose]();
    rw.rUnlock();
    expect((await totalsOf('mutex', 'carry')).delay).toBe(8 * ms);
    expect(await totalsOf('block', 'carry')).toEqual({ count: 2, delay: 8 * ms });
  });

  test('an inherited release method called on two classes gives each its own frame', async () => {
    const mu = new Mutex({ name: 'inherited' });
    class Base {
      release(): void {
        mu.unlock();
      }
    }
    class Cache extends Base {}
    class Store extends Base {}
    for (const owner of [new Cache(), new Store(), new Cache()]) {
      await mu.lock();
      const w = mu.lock();
      clock.advance(ms);
      owner.release();
      (await w)[Symbol.dispose]();
    }
    const byName: Record<string, number> = {};
    for (const e of await samplesOf('mutex', 'inherited')) byName[names(e)[1]] = (byName[names(e)[1]] ?? 0) + e.count;
    expect(byName).toEqual({ 'Cache.release': 2, 'Store.release': 1 });
  });

  test('uncontended locks and waiters queued while profiling was off record nothing', async () => {
    setMutexProfileFraction(0);
    setBlockProfileRate(0);
    const mu = new Mutex({ name: 'off' });
    await mu.lock();
    const w = mu.lock();
    setMutexProfileFraction(1);
    setBlockProfileRate(1);
    clock.advance(5 * ms);
    mu.unlock();
    (await w)[Symbol.dispose]();
    await mu.withLock(() => clock.advance(ms));
    expect(await samplesOf('mutex', 'off')).toEqual([]);
    expect(await samplesOf('block', 'off')).toEqual([]);
  });
});

describe('rates', () => {
  test('sampled values are scaled when recorded; later rate changes never rescale them', async () => {
    const mu = new Mutex({ name: 'scale' });
    setMutexProfileFraction(4); // random() = 0 → every event sampled, weighted ×4
    await contend(mu, clock, 10 * ms);
    expect(await totalsOf('mutex', 'scale')).toEqual({ count: 4, delay: 40 * ms });
    expect(setMutexProfileFraction(1)).toBe(4);
    await contend(mu, clock, 10 * ms);
    expect(await totalsOf('mutex', 'scale')).toEqual({ count: 5, delay: 50 * ms });
    setMutexProfileFraction(0);
    await contend(mu, clock, 10 * ms);
    expect(await totalsOf('mutex', 'scale')).toEqual({ count: 5, delay: 50 * ms });
  });

  test('the block rate keeps long waits whole and weights short sampled ones (unbiased)', async () => {
    const mu = new Mutex({ name: 'blockrate' });
    setMutexProfileFraction(0);
    setBlockProfileRate(10 * ms);
    await contend(mu, clock, 30 * ms); // ≥ rate: count 1, delay 30 ms
    expect(await totalsOf('block', 'blockrate')).toEqual({ count: 1, delay: 30 * ms });
    await contend(mu, clock, 2 * ms); // < rate, sampled (random 0): count rate/dt = 5, delay rate = 10 ms
    expect(await totalsOf('block', 'blockrate')).toEqual({ count: 6, delay: 40 * ms });
    configureProfiler({ random: () => 0.5 });
    await contend(mu, clock, 2 * ms); // kept with probability 0.2: 0.5 is not below it
    expect(await totalsOf('block', 'blockrate')).toEqual({ count: 6, delay: 40 * ms });
  });

  test('the block fraction: 1 in N of the waits the rate selects, each weighted ×N', async () => {
    const mu = new Mutex({ name: 'blockfraction' });
    setMutexProfileFraction(0);
    setBlockProfileRate(1);
    setBlockProfileFraction(4);
    configureProfiler({ random: () => 0.5 }); // geometric gaps of 3 waits: the 3rd wait of each run of 3 is followed
    let followed = 0;
    for (let i = 0; i < 6; i++) {
      await contend(mu, clock, 10 * ms);
      const t = await totalsOf('block', 'blockfraction');
      if (t.count > followed * 4) followed++;
    }
    const t = await totalsOf('block', 'blockfraction');
    expect(t.count % 4).toBe(0); // every recorded wait weighs 4
    expect(t.delay).toBe(t.count * 10 * ms);
    expect(followed).toBeGreaterThan(0);
    expect(followed).toBeLessThan(6);
    expect(setBlockProfileFraction(1)).toBe(4);
    expect(setBlockProfileFraction(-1)).toBe(1);
    expect(setBlockProfileFraction(0)).toBe(1); // 0 means every wait, as 1
    expect(setBlockProfileFraction(-1)).toBe(1);
  });

  test.each([
    ['setMutexProfileFraction', setMutexProfileFraction],
    ['setBlockProfileRate', setBlockProfileRate],
    ['setBlockProfileFraction', setBlockProfileFraction],
  ] as const)('%s rejects bad rates and changes nothing', (_n, set) => {
    set(3);
    for (const bad of [1.5, NaN, Infinity, -Infinity, 2 ** 60]) expect(() => set(bad)).toThrow(RangeError);
    for (const bad of ['1', null, undefined, {}, 1n]) expect(() => set(bad as unknown as number)).toThrow(TypeError);
    expect(set(0)).toBe(3); // unchanged by the bad calls
  });

  test('setMutexProfileFraction(-1) only reads; setBlockProfileRate(≤0) turns off', () => {
    setMutexProfileFraction(7);
    expect(setMutexProfileFraction(-1)).toBe(7);
    expect(setMutexProfileFraction(-5)).toBe(7);
    setBlockProfileRate(9);
    expect(setBlockProfileRate(-3)).toBe(9);
    expect(setBlockProfileRate(1)).toBe(0);
  });
});

describe('labels', () => {
  test('lock name and nested withLabels (inner wins), across awaits, on both profiles', async () => {
    const mu = new Mutex({ name: 'labelled' });
    await withLabels({ route: '/outer', tenant: 'a' }, async () => {
      await withLabels({ route: '/inner' }, async () => {
        await flush();
        await mu.lock();
        const w = withLabels({ who: 'waiter' }, () => mu.lock());
        await flush();
        clock.advance(3 * ms);
        mu.unlock();
        (await w)[Symbol.dispose]();
      });
    });
    const [m] = await samplesOf('mutex', 'labelled');
    expect(m.pairs).toEqual([
      ['route', '/inner'],
      ['tenant', 'a'],
    ]);
    const [b] = await samplesOf('block', 'labelled');
    expect(b.pairs).toEqual([
      ['route', '/inner'],
      ['tenant', 'a'],
      ['who', 'waiter'],
    ]);
  });

  test('the labels option: on the wait, on the release (guard or unlock()), under withLabels’ (own keys win)', async () => {
    const mu = new Mutex({ name: 'opt-labels' });
    const HOLD = { route: '/hold', who: 'holder' };
    const WAIT = { route: '/wait' };
    async function holdWithOption(): Promise<void> {
      await mu.lock({ labels: HOLD });
      const w = withLabels({ tenant: 't1', route: '/outer' }, () => waitWithOption());
      await flush();
      clock.advance(2 * ms);
      mu.unlock(); // Go style: the acquisition's labels still apply
      await w;
    }
    async function waitWithOption(): Promise<void> {
      const g = await mu.lock({ labels: WAIT });
      const w2 = mu.lock();
      clock.advance(3 * ms);
      g[Symbol.dispose](); // released through the guard: WAIT's labels, under the waiter's context labels
      (await w2)[Symbol.dispose]();
    }
    await holdWithOption();
    const m = await samplesOf('mutex', 'opt-labels');
    expect(m.find((e) => names(e)[1] === 'holdWithOption')).toMatchObject({
      delay: 2 * ms,
      pairs: [
        ['route', '/hold'],
        ['who', 'holder'],
      ],
    });
    expect(m.find((e) => names(e)[1] === 'waitWithOption')).toMatchObject({
      delay: 3 * ms,
      pairs: [
        ['route', '/wait'],
        ['tenant', 't1'],
      ],
    });
    const b = await samplesOf('block', 'opt-labels');
    expect(b.find((e) => e.delay === 2 * ms)?.pairs).toEqual([
      ['route', '/wait'],
      ['tenant', 't1'],
    ]);
    expect(b.find((e) => e.delay === 3 * ms)?.pairs).toEqual([
      ['route', '/outer'],
      ['tenant', 't1'],
    ]); // w2: no option, its context's
  });

  test('a later acquisition without labels does not inherit the previous holder’s', async () => {
    const mu = new Mutex({ name: 'opt-stale' });
    await mu.lock({ labels: { route: '/first' } });
    mu.unlock();
    await mu.lock();
    const w = mu.lock();
    clock.advance(ms);
    mu.unlock();
    (await w)[Symbol.dispose]();
    expect((await samplesOf('mutex', 'opt-stale')).map((e) => e.pairs)).toEqual([[]]);
  });

  test('RWMutex: a writer’s and a reader’s labels option; a reader released by rUnlock() has none', async () => {
    const rw = new RWMutex({ name: 'opt-rw' });
    const r1 = await rw.rLock({ labels: { side: 'r1' } });
    await rw.rLock({ labels: { side: 'r2' } });
    const w = rw.lock({ labels: { side: 'w' } });
    clock.advance(ms);
    r1[Symbol.dispose]();
    clock.advance(ms);
    rw.rUnlock();
    const g = await w;
    const r3 = rw.rLock();
    clock.advance(ms);
    rw.unlock();
    (await r3)[Symbol.dispose]();
    void g;
    const m = await samplesOf('mutex', 'opt-rw');
    // the side that made others wait is the `mode` label: read for readers' releases, write for the writer's
    expect(m.map((e) => [e.delay / ms, e.pairs]).sort()).toEqual([
      [1, [['mode', 'read']]],
      [
        1,
        [
          ['mode', 'read'],
          ['side', 'r1'],
        ],
      ],
      [
        1,
        [
          ['mode', 'write'],
          ['side', 'w'],
        ],
      ],
    ]);
    // and the side that waited, in the block profile
    const b = await samplesOf('block', 'opt-rw');
    expect(b.map((e) => e.pairs).sort()).toEqual([
      [['mode', 'read']],
      [
        ['mode', 'write'],
        ['side', 'w'],
      ],
    ]);
  });

  test('bad labels options reject and change nothing', async () => {
    const mu = new Mutex();
    await expect(mu.lock({ labels: { lock: 'x' } })).rejects.toThrow(/reserved/);
    await expect(mu.lock({ labels: { a: 1 } as unknown as Record<string, string> })).rejects.toThrow(/must be a string/);
    await expect(mu.lock({ labels: 'x' as unknown as Record<string, string> })).rejects.toThrow(TypeError);
    expect(mu.locked).toBe(false);
    // a labels object is read once, when first used: it is a constant
    const name = 'opt-constant';
    const mu2 = new Mutex({ name });
    const labels: Record<string, string> = { route: '/a' };
    await mu2.lock({ labels });
    labels.route = '/b';
    const w = mu2.lock({ labels });
    clock.advance(ms);
    mu2.unlock();
    (await w)[Symbol.dispose]();
    expect((await samplesOf('mutex', name)).map((e) => e.pairs)).toEqual([[['route', '/a']]]);
  });

  test('withLabels rejects bad input and runs nothing', () => {
    let ran = false;
    const fn = (): void => void (ran = true);
    expect(() => withLabels(null as unknown as Record<string, string>, fn)).toThrow(TypeError);
    expect(() => withLabels({ a: 1 } as unknown as Record<string, string>, fn)).toThrow(/must be a string/);
    expect(() => withLabels({ lock: 'x' }, fn)).toThrow(/reserved/);
    expect(() => withLabels({ a: 'b' }, 3 as unknown as () => void)).toThrow(TypeError);
    expect(ran).toBe(false);
    expect(withLabels({ a: 'b' }, () => 5)).toBe(5);
  });
});

describe('test helpers', () => {
  test('resetProfiles empties every recorded profile, events still pending included', async () => {
    await contend(new Mutex({ name: 'before-reset' }), clock, 2 * ms);
    expect((await samplesOf('mutex', 'before-reset')).length).toBeGreaterThan(0);
    resetProfiles();
    expect(await samplesOf('mutex', 'before-reset')).toEqual([]);
    expect(await samplesOf('block', 'before-reset')).toEqual([]);
  });
});

// Who holds and who waits now, stalls, deadlocks and hold times: deterministic (an injected clock, and fake timers
// for the watchdog's interval), no sleep decides an outcome.
import { describe, test, expect, beforeEach, afterEach, vi } from 'vitest';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import {
  Mutex,
  RWMutex,
  configureProfiler,
  queryLocks,
  setLockTracking,
  setDeadlockDetection,
  setHoldProfileFraction,
  setMutexProfileFraction,
  setBlockProfileRate,
  watchLocks,
  withLabels,
  lookup,
  type StallReport,
} from '../src/index.js';
import { captureWarnings, manualClock, ms, seeded, names } from './helpers.js';

const clock = manualClock();
configureProfiler({ now: clock.now, random: () => 0 });

beforeEach(() => {
  setMutexProfileFraction(0);
  setBlockProfileRate(0);
});
afterEach(() => {
  setLockTracking('off');
  setDeadlockDetection('off');
  setHoldProfileFraction(0);
});

/** A holder that takes `mu` and keeps it until `release()` is called, and `n` waiters queued behind it. */
async function holderAndWaiters(mu: Mutex, n: number): Promise<{ release: () => Promise<void> }> {
  async function holdTheLock(): Promise<void> {
    await mu.lock();
  }
  async function waitForTheLock(i: number): Promise<void> {
    clock.advance(10 * ms * (i + 1));
    const g = await mu.lock();
    g[Symbol.dispose]();
  }
  await withLabels({ route: '/hold' }, holdTheLock);
  const waits: Promise<void>[] = [];
  for (let i = 0; i < n; i++) waits.push(withLabels({ route: `/wait${i}` }, () => waitForTheLock(i)));
  return {
    release: async () => {
      mu.unlock();
      await Promise.all(waits);
    },
  };
}

describe('queryLocks: the live view', () => {
  test("tracking 'on': the holder with its age and labels, three waiters oldest first; no stacks", async () => {
    setLockTracking('on');
    const mu = new Mutex({ name: 'live' });
    const t0 = clock.now();
    const { release } = await holderAndWaiters(mu, 3); // waiters queue at +10, +30, +60 ms
    clock.set(t0 + 100 * ms);
    const { held, pending } = queryLocks();
    const mine = (s: { name: string }): boolean => s.name === 'live';
    expect(held.filter(mine)).toEqual([{ name: 'live', kind: 'Mutex', mode: 'exclusive', ageMs: 100, labels: { lock: 'live', route: '/hold' }, stack: null, lockId: expect.any(Number) }]);
    expect(pending.filter(mine).map((s) => [s.ageMs, s.labels.route])).toEqual([
      [90, '/wait0'],
      [70, '/wait1'],
      [40, '/wait2'],
    ]);
    expect(new Set([...held, ...pending].filter(mine).map((s) => s.lockId)).size).toBe(1);
    await release();
    expect([...queryLocks().held, ...queryLocks().pending].filter(mine)).toEqual([]);
  });

  test("tracking 'stacks': each state carries its lock() call stack", async () => {
    setLockTracking('stacks');
    const mu = new Mutex({ name: 'live-stacks' });
    const { release } = await holderAndWaiters(mu, 3);
    const { held, pending } = queryLocks();
    expect(names({ frames: held.find((s) => s.name === 'live-stacks')!.stack! }).slice(0, 2)).toEqual(['Mutex.lock', 'holdTheLock']);
    const waiting = pending.filter((s) => s.name === 'live-stacks');
    expect(waiting).toHaveLength(3);
    for (const s of waiting) expect(names({ frames: s.stack! }).slice(0, 2)).toEqual(['Mutex.lock', 'waitForTheLock']);
    await release();
  });

  test("tracking 'off': every lock that has waiters, with its waiters (ages on the coarse clock); the holder without age", async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const mu = new Mutex({ name: 'live-off' });
      const quiet = new Mutex({ name: 'held-uncontended' });
      await quiet.lock(); // held, nobody waits: not listed while tracking is off
      const t0 = clock.now();
      const { release } = await holderAndWaiters(mu, 3);
      clock.set(t0 + 200 * ms);
      const { held, pending } = queryLocks();
      expect(held.filter((s) => s.name === 'live-off')).toEqual([expect.objectContaining({ mode: 'exclusive', ageMs: null, stack: null })]);
      expect(held.some((s) => s.name === 'held-uncontended')).toBe(false);
      const waiting = pending.filter((s) => s.name === 'live-off');
      expect(waiting).toHaveLength(3);
      // the clock is read when the lock gets its first waiter (+10 ms), then ticks every 10 ms: the other two
      // queued before a tick, and so carry the same, earliest, time
      for (const s of waiting) expect(s.ageMs).toBe(190);
      await release();
      quiet.unlock();
    } finally {
      vi.useRealTimers();
    }
  });

  test('RWMutex: shared holders and an exclusive waiter', async () => {
    setLockTracking('on');
    const rw = new RWMutex({ name: 'live-rw' });
    const r1 = await rw.rLock();
    const r2 = await rw.rLock();
    const w = rw.lock();
    const { held, pending } = queryLocks();
    expect(held.filter((s) => s.name === 'live-rw').map((s) => s.mode)).toEqual(['shared', 'shared']);
    expect(pending.filter((s) => s.name === 'live-rw').map((s) => s.mode)).toEqual(['exclusive']);
    r1[Symbol.dispose]();
    rw.rUnlock(); // r2's record ends too: readers share one count
    (await w)[Symbol.dispose]();
    void r2;
    expect(queryLocks().held.filter((s) => s.name === 'live-rw')).toEqual([]);
  });
});

describe('watchLocks: the stall watchdog', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  test('a wait past waitMs is reported once per episode, naming the holder, to onStall and the channel', async () => {
    setLockTracking('stacks');
    const reports: StallReport[] = [];
    const published: StallReport[] = [];
    const onPublish = (m: unknown): void => void published.push(m as StallReport);
    subscribe('mutexprof:stall', onPublish);
    const stop = watchLocks({ waitMs: 1000, intervalMs: 100, onStall: (r) => reports.push(r) });
    try {
      const mu = new Mutex({ name: 'stuck' });
      const t0 = clock.now();
      const { release } = await holderAndWaiters(mu, 2);
      clock.set(t0 + 900 * ms);
      vi.advanceTimersByTime(100);
      expect(reports).toEqual([]); // the oldest has waited 890 ms
      clock.set(t0 + 1500 * ms);
      vi.advanceTimersByTime(100);
      vi.advanceTimersByTime(100); // the same episode: no second report
      expect(reports).toHaveLength(1);
      const r = reports[0];
      expect(r).toMatchObject({ reason: 'wait', lock: 'stuck', kind: 'Mutex', waitMs: 1490, holdMs: 1500 });
      expect(r.holder).toMatchObject({ labels: { lock: 'stuck', route: '/hold' } });
      expect(names({ frames: r.holder!.stack! }).slice(0, 2)).toEqual(['Mutex.lock', 'holdTheLock']);
      expect(r.waiters.map((w) => w.labels.route)).toEqual(['/wait0', '/wait1']);
      expect(r.message).toBe('mutexprof: Mutex "stuck" stalled: 2 waiting, the oldest for 1490 ms; held for 1500 ms');
      expect(published).toEqual(reports);
      // the episode ends when nobody is waiting that long; a new one is reported again
      await release();
      vi.advanceTimersByTime(100);
      const again = await holderAndWaiters(mu, 1);
      clock.advance(2000 * ms);
      vi.advanceTimersByTime(100);
      expect(reports).toHaveLength(2);
      await again.release();
    } finally {
      stop();
      unsubscribe('mutexprof:stall', onPublish);
    }
  });

  test('holdMs: a lock held too long, even uncontended (tracking turned on while the watchdog runs)', async () => {
    const reports: StallReport[] = [];
    const stop = watchLocks({ holdMs: 500, onStall: (r) => reports.push(r) });
    const mu = new Mutex({ name: 'long-hold' });
    await withLabels({ job: 'nightly' }, () => mu.lock());
    clock.advance(600 * ms);
    vi.advanceTimersByTime(250);
    expect(reports.map((r) => [r.reason, r.lock, r.holdMs, r.holder?.labels.job])).toEqual([['hold', 'long-hold', 600, 'nightly']]);
    mu.unlock();
    stop();
    stop(); // stopping twice changes nothing
    const after = new Mutex({ name: 'after-stop' });
    await after.lock();
    expect(queryLocks().held.some((s) => s.name === 'after-stop')).toBe(false); // tracking is off again
    after.unlock();
  });

  test('without onStall: a process warning (code MUTEXPROF_STALL); bad options throw', async () => {
    const stop = watchLocks({ waitMs: 50 });
    try {
      const { warnings } = await captureWarnings(async () => {
        const mu = new Mutex({ name: 'warned' });
        const { release } = await holderAndWaiters(mu, 1);
        clock.advance(100 * ms);
        vi.advanceTimersByTime(25);
        await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
        await release();
      });
      const stalls = warnings.filter((w) => w.code === 'MUTEXPROF_STALL');
      expect(stalls).toHaveLength(1);
      expect(stalls[0].message).toBe('mutexprof: Mutex "warned" stalled: 1 waiting, the oldest for 100 ms');
    } finally {
      stop();
    }
    expect(() => watchLocks({ waitMs: -1 })).toThrow(RangeError);
    expect(() => watchLocks({ onStall: 3 as unknown as () => void })).toThrow(TypeError);
  });
});

describe('the hold profile', () => {
  test('rate 1: its totals equal the sum of the real hold times; uncontended holds count too', async () => {
    setHoldProfileFraction(1);
    const mu = new Mutex({ name: 'held-1' });
    const rw = new RWMutex({ name: 'held-rw' });
    const rand = seeded(11);
    let exact = 0;
    async function holdFor(ns: number): Promise<void> {
      await mu.lock();
      clock.advance(ns);
      mu.unlock();
    }
    for (let i = 0; i < 200; i++) {
      const ns = Math.round(rand() * 3 * ms);
      exact += ns;
      await holdFor(ns);
    }
    await rw.withRLock(() => clock.advance(5 * ms));
    const snap = await lookup('hold').snapshot();
    const mine = snap.samples.filter((s) => s.labels.some(([k, v]) => k === 'lock' && v === 'held-1'));
    expect(mine.reduce((t, s) => t + s.values[0], 0)).toBe(200);
    expect(mine.reduce((t, s) => t + s.values[1], 0)).toBe(exact);
    expect(mine[0].frames.map((f) => f.name).slice(0, 2)).toEqual(['Mutex.lock', 'holdFor']);
    const rws = snap.samples.filter((s) => s.labels.some(([k, v]) => k === 'lock' && v === 'held-rw'));
    expect(rws.map((s) => [s.labels, s.values])).toEqual([
      [
        [
          ['lock', 'held-rw'],
          ['mode', 'read'],
        ],
        [1, 5 * ms],
      ],
    ]);
    expect(lookup('hold').sampleTypes).toEqual([
      { type: 'acquisitions', unit: 'count' },
      { type: 'hold', unit: 'nanoseconds' },
    ]);
  });

  test('rate 10 over 20 000 acquisitions: within 10 % of the real totals', async () => {
    configureProfiler({ random: seeded(3) });
    setHoldProfileFraction(10);
    const mu = new Mutex({ name: 'held-10' });
    const rand = seeded(17);
    let exact = 0;
    for (let i = 0; i < 20_000; i++) {
      const ns = Math.round(rand() * 2 * ms);
      exact += ns;
      if (!mu.tryLock()) await mu.lock();
      clock.advance(ns);
      mu.unlock();
    }
    configureProfiler({ random: () => 0 });
    const samples = (await lookup('hold').snapshot()).samples.filter((s) => s.labels.some(([k, v]) => k === 'lock' && v === 'held-10'));
    const count = samples.reduce((t, s) => t + s.values[0], 0);
    const total = samples.reduce((t, s) => t + s.values[1], 0);
    expect(Math.abs(count - 20_000) / 20_000).toBeLessThan(0.1);
    expect(Math.abs(total - exact) / exact).toBeLessThan(0.1);
    expect(setHoldProfileFraction(0)).toBe(10);
  });
});

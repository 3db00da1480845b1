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
  detachedTask,
  DeadlockError,
  lookup,
  type DeadlockReport,
  type StallReport,
} from '../src/index.js';
import { manualClock, flush, ms, seeded, names, track } from './helpers.js';

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
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on('warning', onWarning);
    const stop = watchLocks({ waitMs: 50 });
    try {
      const mu = new Mutex({ name: 'warned' });
      const { release } = await holderAndWaiters(mu, 1);
      clock.advance(100 * ms);
      vi.advanceTimersByTime(25);
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
      const stalls = warnings.filter((w) => (w as { code?: string }).code === 'MUTEXPROF_STALL');
      expect(stalls).toHaveLength(1);
      expect(stalls[0].message).toBe('mutexprof: Mutex "warned" stalled: 1 waiting, the oldest for 100 ms');
      await release();
    } finally {
      stop();
      process.off('warning', onWarning);
    }
    expect(() => watchLocks({ waitMs: -1 })).toThrow(RangeError);
    expect(() => watchLocks({ onStall: 3 as unknown as () => void })).toThrow(TypeError);
  });
});

describe('deadlock detection', () => {
  const reports: DeadlockReport[] = [];
  const onReport = (m: unknown): void => void reports.push(m as DeadlockReport);
  beforeEach(() => {
    reports.length = 0;
    subscribe('mutexprof:deadlock', onReport);
  });
  afterEach(() => {
    unsubscribe('mutexprof:deadlock', onReport);
  });

  test("re-entry: rejected at once in 'throw' (nothing changes), reported in 'warn'", async () => {
    setDeadlockDetection('throw');
    const mu = new Mutex({ name: 'reentrant' });
    const other = track(new Promise(() => {}));
    void other;
    await mu.withLock(async () => {
      const err = await mu.lock().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DeadlockError);
      expect(err).toMatchObject({ code: 'ERR_MUTEXPROF_DEADLOCK', cycle: [{ lock: 'reentrant', kind: 'Mutex', mode: 'exclusive' }] });
      expect((err as Error).message).toMatch(/lock\(\) of Mutex "reentrant" in an async context that already holds it \(re-entry\)/);
      expect(mu.waiting).toBe(0); // not queued
    });
    expect(mu.locked).toBe(false);
    expect(reports.map((r) => r.kind)).toEqual(['reentry']);

    setDeadlockDetection('warn');
    const g = await mu.lock();
    const again = track(mu.lock()); // proceeds: it waits, as it would without detection
    await flush();
    expect(again.state).toBe('pending');
    expect(reports.map((r) => r.kind)).toEqual(['reentry', 'reentry']);
    g[Symbol.dispose]();
    await flush();
    expect(again.state).toBe('fulfilled');
    mu.unlock();
  });

  test('RWMutex: lock() while holding the read side is re-entry; a second rLock() is fine while no writer waits', async () => {
    setDeadlockDetection('throw');
    const rw = new RWMutex({ name: 'rw-reentrant' });
    await rw.withRLock(async () => {
      await rw.withRLock(() => 0); // granted at once: not a deadlock
      await expect(rw.lock()).rejects.toBeInstanceOf(DeadlockError);
    });
    expect(rw.readers).toBe(0);
  });

  async function cycle(n: number, mode: 'warn' | 'throw'): Promise<unknown[]> {
    setDeadlockDetection(mode);
    const locks = Array.from({ length: n }, (_, i) => new Mutex({ name: `cyc${n}-${i}` }));
    const gates = locks.map(() => {
      let open = (): void => {};
      const p = new Promise<void>((r) => (open = r));
      return { p, open };
    });
    // task i holds lock i, then (once every task holds its lock) asks for lock i+1
    const tasks = locks.map((mine, i) =>
      mine.withLock(async () => {
        gates[i].open();
        await Promise.all(gates.map((g) => g.p));
        if (i === n - 1) await flush(); // the last to ask closes the cycle
        return locks[(i + 1) % n].withLock(() => 'done').catch((e: unknown) => e);
      }),
    );
    if (mode === 'warn') {
      await flush();
      await flush();
      return reports.map((r) => r.kind);
    }
    return Promise.all(tasks);
  }

  test.each([2, 3])("a %i-lock cycle: the lock() that closes it is rejected in 'throw'; the others then proceed", async (n) => {
    const results = await cycle(n, 'throw');
    const errors = results.filter((r) => r instanceof DeadlockError) as DeadlockError[];
    expect(errors).toHaveLength(1);
    expect(results.filter((r) => r === 'done')).toHaveLength(n - 1);
    expect(errors[0].cycle.map((c) => c.lock)).toHaveLength(n);
    expect(errors[0].message).toMatch(/would close a wait cycle: Mutex "cyc\d-\d"( → Mutex "cyc\d-\d")+/);
    expect(reports.filter((r) => r.kind === 'cycle')).toHaveLength(1);
  });

  test("a 2-lock cycle in 'warn': reported, and the tasks stay deadlocked as they would", async () => {
    expect(await cycle(2, 'warn')).toContain('cycle');
  });

  test('a lock-order inversion is reported once, with both stacks, even if the two orders never ran together', async () => {
    setDeadlockDetection('warn');
    const a = new Mutex({ name: 'order-a' });
    const b = new Mutex({ name: 'order-b' });
    async function aThenB(): Promise<void> {
      await a.withLock(() => b.withLock(() => 0));
    }
    async function bThenA(): Promise<void> {
      await b.withLock(() => a.withLock(() => 0));
    }
    await aThenB();
    await bThenA();
    await bThenA();
    await aThenB();
    const inversions = reports.filter((r) => r.kind === 'inversion');
    expect(inversions).toHaveLength(1);
    expect(inversions[0].message).toBe('mutexprof: potential deadlock: Mutex "order-b" and Mutex "order-a" are taken in both orders (lock-order inversion)');
    expect(inversions[0].stacks.map((s) => s.map((f) => f.name).find((n) => n === 'aThenB' || n === 'bThenA'))).toEqual(['bThenA', 'aThenB']);
  });

  test('sibling calls started together (Promise.all over a map), with lock() and using, are never one task', async () => {
    setDeadlockDetection('throw');
    const mu = new Mutex({ name: 'siblings' });
    async function item(i: number): Promise<number> {
      using _g = await mu.lock(); // every sibling's first lock() runs in the same synchronous run
      await flush();
      return i;
    }
    expect(await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map(item))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    // and a setInterval's ticks share one context: the second tick is not the first one's task
    const ticks: unknown[] = [];
    await new Promise<void>((done) => {
      let n = 0;
      const timer = setInterval(() => {
        const i = n++;
        mu.lock().then(
          (g) => setTimeout(() => (ticks.push(i), g[Symbol.dispose](), i === 2 && (clearInterval(timer), done())), 5),
          (e: unknown) => (ticks.push(e), clearInterval(timer), done()),
        );
      }, 1);
    });
    expect(ticks).toEqual([0, 1, 2]);
    expect(reports).toEqual([]);
  });

  test('a flow that takes a lock with lock() and asks again after an await: re-entry', async () => {
    setDeadlockDetection('throw');
    const mu = new Mutex({ name: 'bare-reentry' });
    async function flow(): Promise<unknown> {
      using _g = await mu.lock();
      await flush();
      return mu.lock().catch((e: unknown) => e);
    }
    expect(await flow()).toBeInstanceOf(DeadlockError);
  });

  test('independent tasks that merely contend are never reported', async () => {
    setDeadlockDetection('throw');
    const mu = new Mutex({ name: 'busy' });
    const rw = new RWMutex({ name: 'busy-rw' });
    const rand = seeded(5);
    await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        for (let k = 0; k < 5; k++) {
          if (rand() < 0.5) await mu.withLock(() => flush());
          else await (i % 2 ? rw.withRLock(() => flush()) : rw.withLock(() => flush()));
          using g = await mu.lock();
          await flush();
          void g;
        }
      }),
    );
    expect(reports).toEqual([]);
  });

  test('work a holder starts without awaiting inherits its context: a lock() there is re-entry, unless started as detachedTask', async () => {
    setDeadlockDetection('throw');
    const mu = new Mutex({ name: 'detached' });
    // inherited: the holder waits for work that waits for the holder's lock — a real deadlock, rejected
    const inherited = await mu.withLock(
      () =>
        new Promise<unknown>((resolve) => {
          setImmediate(() => mu.lock().then(resolve, resolve));
        }),
    );
    expect(inherited).toBeInstanceOf(DeadlockError);
    // detached: a task of its own, which simply waits until the holder releases
    let detached: Promise<string> | undefined;
    await mu.withLock(() => {
      detached = new Promise((resolve) => setImmediate(() => detachedTask(() => mu.withLock(() => 'got it')).then(resolve)));
    });
    expect(await detached).toBe('got it');
    expect(reports.filter((r) => r.kind === 'reentry')).toHaveLength(1);
  });

  test("'off' lets go of the task store: no AsyncLocalStorage (and its promise hooks) left on for the process", async () => {
    const store = (): { enabled: boolean } => (globalThis as unknown as Record<symbol, { slots: Map<string, { tasks: { enabled: boolean } }> }>)[Symbol.for('mutexprof')].slots.get('deadlock')!.tasks;
    setDeadlockDetection('warn');
    const mu = new Mutex({ name: 'store' });
    await mu.withLock(async () => {
      await flush();
    });
    (await mu.lock())[Symbol.dispose]();
    expect(store().enabled).toBe(true);
    setDeadlockDetection('off');
    expect(store().enabled).toBe(false);
    setDeadlockDetection('warn'); // and on again: tasks start afresh, re-entry is still found
    const g = await mu.lock();
    const again = mu.lock(); // re-entry: reported in 'warn', and queued
    await flush();
    expect(reports.map((r) => r.kind)).toContain('reentry');
    g[Symbol.dispose]();
    (await again)[Symbol.dispose]();
    setDeadlockDetection('off');
  });

  test('bad modes throw and change nothing', () => {
    expect(() => setDeadlockDetection('loud' as 'warn')).toThrow(TypeError);
    expect(() => setLockTracking('all' as 'on')).toThrow(TypeError);
    expect(setDeadlockDetection('off')).toBe('off');
    expect(setLockTracking('off')).toBe('off');
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
    expect(rws.map((s) => [s.labels, s.values])).toEqual([[[['lock', 'held-rw'], ['mode', 'read']], [1, 5 * ms]]]);
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
      mu.tryLock() || (await mu.lock());
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

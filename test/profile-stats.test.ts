// Ground truth in bulk: the two profiles agree on random schedules, and sampled estimates are unbiased.
import { describe, test, expect, vi, onTestFinished } from 'vitest';
import fc from 'fast-check';
import { Mutex, RWMutex, Semaphore, setMutexProfileFraction, setBlockProfileRate, setBlockProfileFraction, configureProfiler, lookup, type Guard } from '../src/index.js';
import { observeWaits } from '../src/profile/contention.js';
import { manualClock, flush, ms, totalsOf, seeded, contend } from './helpers.js';

const clock = manualClock();
configureProfiler({ now: clock.now });

// One property, run against each lock kind through a factory: a random schedule of acquisitions (a kind-specific
// variant: a writer or a reader, a weight), clock steps, aborts and releases, then everything released.
interface Kind {
  make(name: string): { waiting: number; acquire(variant: number, signal?: AbortSignal): Promise<Guard>; settled(): void; view: { followed: number } };
  seed: number;
  runs: number;
}
const KINDS: Record<string, Kind> = {
  RWMutex: {
    make(name) {
      const rw = new RWMutex({ name });
      return {
        get waiting() {
          return rw.waiting;
        },
        acquire: (v, signal) => (v % 2 === 0 ? rw.lock({ signal }) : rw.rLock({ signal })),
        settled: () => expect(rw.locked || rw.readers > 0).toBe(false),
        view: rw as unknown as { followed: number },
      };
    },
    seed: 7,
    runs: 300,
  },
  Semaphore: {
    make(name) {
      const sem = new Semaphore(3, { name });
      return {
        get waiting() {
          return sem.waiting;
        },
        acquire: (v, signal) => sem.acquire({ weight: 1 + (v % 3), signal }), // waits that end over several releases
        settled: () => expect(sem.available).toBe(3),
        view: sem as unknown as { followed: number },
      };
    },
    seed: 11,
    runs: 200,
  },
};

/** The value an arbitrary makes. */
type OpOf<A> = A extends fc.Arbitrary<infer T> ? T : never;

/** One step of a random schedule: an acquisition (a kind's variant, abortable or not), a clock step, an abort, a release. */
const op = fc.oneof(
  fc.record({ k: fc.constant('acquire' as const), variant: fc.nat({ max: 5 }), abortable: fc.boolean() }),
  fc.record({ k: fc.constant('advance' as const), ns: fc.integer({ min: 1, max: 5 * ms }) }),
  fc.record({ k: fc.constant('abort' as const), pick: fc.nat() }),
  fc.record({ k: fc.constant('release' as const), pick: fc.nat() }),
);

/** Runs steps on `lock`; `acquire` may wrap each acquisition's call (to see what it is told). */
function schedule(lock: ReturnType<Kind['make']>) {
  const held: Guard[] = [];
  const ctrls: AbortController[] = [];
  const pending: Promise<unknown>[] = [];
  return {
    async apply(o: OpOf<typeof op>, acquire = (call: () => Promise<Guard>): Promise<Guard> => call()): Promise<void> {
      if (o.k === 'acquire') {
        const ac = o.abortable ? new AbortController() : undefined;
        if (ac) ctrls.push(ac);
        pending.push(
          acquire(() => lock.acquire(o.variant, ac?.signal)).then(
            (g) => void held.push(g),
            () => undefined,
          ),
        );
      } else if (o.k === 'advance') clock.advance(o.ns);
      else if (o.k === 'abort' && ctrls.length > 0) ctrls[o.pick % ctrls.length].abort();
      else if (o.k === 'release' && held.length > 0) held.splice(o.pick % held.length, 1)[0][Symbol.dispose]();
      await flush();
    },
    /** Releases everything, a millisecond apart, until no one holds or waits. */
    async drain(): Promise<void> {
      while (held.length > 0 || lock.waiting > 0) {
        clock.advance(ms);
        for (const g of held.splice(0)) g[Symbol.dispose]();
        await flush();
      }
      await Promise.all(pending);
    },
  };
}

describe.each(Object.keys(KINDS))('mutex total delay = block total delay at rate 1 (two views of one truth): %s', (kind) => {
  let run = 0;
  test('random schedules with aborts and clock steps, and a wait observer that follows all waits or every other', async () => {
    setMutexProfileFraction(1);
    setBlockProfileRate(1);
    // a third view: the waits a wait observer follows (all of them in even runs, every other one in odd runs) each
    // end once, and when it follows all, their times add up to the block profile's total
    let all = true;
    let asked = 0;
    const open = new Set<number>();
    let followed = 0;
    let ended = 0;
    let observed = 0;
    const stop = observeWaits({
      started: () => {
        if (!all && asked++ % 2 === 1) return null;
        open.add(++followed);
        return followed;
      },
      ended: (_lock, _w, times, token) => {
        expect(open.delete(token as number)).toBe(true);
        ended++;
        observed += times.end - times.t;
      },
    });
    onTestFinished(stop);
    const { make, seed, runs } = KINDS[kind];
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 30 }), async (ops) => {
        all = run % 2 === 0;
        followed = ended = observed = 0;
        open.clear();
        const name = `eq-${kind}-${run++}`;
        const lock = make(name);
        const steps = schedule(lock);
        for (const o of ops) await steps.apply(o);
        await steps.drain();
        const m = await totalsOf('mutex', name);
        const b = await totalsOf('block', name);
        expect(Math.abs(m.delay - b.delay)).toBeLessThan(1e-6 * Math.max(1, b.delay)); // float sums, exact in ns
        expect(open.size).toBe(0);
        expect(ended).toBe(followed);
        if (all) expect(Math.abs(observed - b.delay)).toBeLessThan(1e-6 * Math.max(1, b.delay));
        lock.settled();
      }),
      { seed: Number(process.env.FC_SEED ?? seed), numRuns: Number(process.env.FC_RUNS ?? runs) },
    );
  });
});

// A wait observer alone (no profile or metric on) follows waits outside the contention accounting: each followed
// wait's times must be its true length, and when the profiles are switched on in the middle of a schedule, with
// waits the observer follows still queued, the waits that start after must give mutex = block totals exactly.
describe.each(Object.keys(KINDS))('a wait observer alone, then the profiles switched on mid-schedule: %s', (kind) => {
  let run = 0;
  test('each followed wait’s times are its true length; the profiles’ totals agree from the switch on', async () => {
    setMutexProfileFraction(0);
    setBlockProfileRate(0);
    let last = 0;
    const told = new Map<number, number>();
    const stop = observeWaits({
      started: () => ++last,
      ended: (_lock, _w, times, token) => {
        expect(told.has(token as number)).toBe(false);
        told.set(token as number, times.end - times.t);
      },
    });
    onTestFinished(stop);
    // in odd runs a second observer follows every other wait (the observers' list, not the usual one observer): each
    // of its waits is told once too, with the same times, keyed here by the first observer's token
    let asked = 0;
    const second = new Map<number, number>();
    const secondObserver = {
      started: () => (asked++ % 2 === 0 ? last : null),
      ended: (_lock: unknown, _w: unknown, times: { t: number; end: number }, token: unknown) => {
        expect(second.has(token as number)).toBe(false);
        second.set(token as number, times.end - times.t);
      },
    };
    let stopSecond = (): void => {};
    onTestFinished(() => stopSecond());
    const { make, seed, runs } = KINDS[kind];
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 20 }), fc.array(op, { maxLength: 20 }), async (before, after) => {
        setMutexProfileFraction(0);
        setBlockProfileRate(0);
        told.clear();
        second.clear();
        asked = 0;
        stopSecond();
        const withSecond = run % 2 === 1;
        stopSecond = withSecond ? observeWaits(secondObserver) : () => {};
        const name = `observed-${kind}-${run++}`;
        const lock = make(name);
        const steps = schedule(lock);
        // ground truth: each wait's start and end on the clock, by the observer's token
        const truth = new Map<number, { start: number; end: number }>();
        const timed = (call: () => Promise<Guard>): Promise<Guard> => {
          const seen = last;
          const start = clock.now();
          const p = call();
          const token = last !== seen ? last : null; // told of its start: it queued
          const settle = (): void => void (token !== null && truth.set(token, { start, end: clock.now() }));
          p.then(settle, settle);
          return p;
        };
        for (const o of before) await steps.apply(o, timed);
        setMutexProfileFraction(1);
        setBlockProfileRate(1);
        for (const o of after) await steps.apply(o, timed);
        await steps.drain();
        expect([...told.keys()].sort((a, b) => a - b)).toEqual([...truth.keys()].sort((a, b) => a - b));
        for (const [token, t] of truth) expect(told.get(token), `wait ${token}`).toBe(t.end - t.start);
        for (const [token, length] of second) expect(length, `wait ${token}, second observer`).toBe(told.get(token));
        expect(second.size).toBe(withSecond ? Math.ceil(truth.size / 2) : 0);
        const m = await totalsOf('mutex', name);
        const b = await totalsOf('block', name);
        expect(Math.abs(m.delay - b.delay)).toBeLessThan(1e-6 * Math.max(1, b.delay));
        expect(lock.view.followed).toBe(0);
        lock.settled();
      }),
      { seed: Number(process.env.FC_SEED ?? seed), numRuns: Number(process.env.FC_RUNS ?? Math.ceil(runs / 2)) },
    );
  });
});

// Each sampling setting over 12 000 contended events of random length: the weighted estimates of the count and
// the total delay are within ±10 % of the exact totals (fixed seeds).
const SAMPLINGS = [
  { what: 'mutex fraction 10, events of 0–2 ms', profile: 'mutex', fraction: 10, blockRate: 0, blockFraction: 1, maxMs: 2, budget: Infinity, seeds: [1234, 99] },
  { what: 'block rate 1 ms, waits of 0–3 ms', profile: 'block', fraction: 0, blockRate: 1 * ms, blockFraction: 1, maxMs: 3, budget: Infinity, seeds: [4321, 77] },
  { what: 'block rate 1 ms with block fraction 10, waits of 0–3 ms', profile: 'block', fraction: 0, blockRate: 1 * ms, blockFraction: 10, maxMs: 3, budget: Infinity, seeds: [2468, 1357] },
  // ~1000 events a second on the clock: the budget raises the fraction to about 1 in 10 (from 1, and from 2)
  { what: 'mutex fraction 1 under a budget of 100 a second, events of 0–2 ms', profile: 'mutex', fraction: 1, blockRate: 0, blockFraction: 1, maxMs: 2, budget: 100, seeds: [555, 31] },
  { what: 'block rate 1 ms, fraction 2, under a budget of 100 a second', profile: 'block', fraction: 0, blockRate: 1 * ms, blockFraction: 2, maxMs: 3, budget: 100, seeds: [8642, 11] },
] as const;

describe('sampling statistics (fixed seed)', () => {
  test.each(SAMPLINGS)('$what: estimates within ±10 % of the exact totals', async ({ what, profile, fraction, blockRate, blockFraction, maxMs, budget, seeds }) => {
    const rand = seeded(seeds[0]);
    configureProfiler({ random: seeded(seeds[1]), maxSampledPerSecond: budget });
    setMutexProfileFraction(fraction);
    setBlockProfileRate(blockRate);
    setBlockProfileFraction(blockFraction);
    const mu = new Mutex({ name: `stats ${what}` });
    let exact = 0;
    const n = 12_000;
    for (let i = 0; i < n; i++) {
      const dt = 1 + Math.round(rand() * maxMs * ms);
      exact += dt;
      await contend(mu, clock, dt);
    }
    setBlockProfileFraction(1);
    configureProfiler({ maxSampledPerSecond: Infinity });
    const est = await totalsOf(profile, `stats ${what}`);
    expect(Math.abs(est.count - n) / n).toBeLessThan(0.1);
    expect(Math.abs(est.delay - exact) / exact).toBeLessThan(0.1);
  });
});

describe('the sampling budget (maxSampledPerSecond)', () => {
  test('bounds the sampled events a second under load, keeps estimates unbiased, says so, and lets go when the load falls', async () => {
    configureProfiler({ random: seeded(42), maxSampledPerSecond: 50 });
    setMutexProfileFraction(2);
    setBlockProfileRate(0);
    const mu = new Mutex({ name: 'budget' });
    const captures = vi.spyOn(Error, 'captureStackTrace');
    try {
      // 10 s at 10 000 events a second: at fraction 2 that would be 50 000 sampled events
      const n = 100_000;
      for (let i = 0; i < n; i++) await contend(mu, clock, 100_000);
      const sampled = captures.mock.calls.length;
      expect(sampled).toBeLessThan(50 * 10 * 1.5 + 50); // the budget, plus at most one window's overshoot
      expect(sampled).toBeGreaterThan(50 * 10 * 0.5);
      const est = await totalsOf('mutex', 'budget');
      expect(Math.abs(est.count - n) / n).toBeLessThan(0.1);
      expect(Math.abs(est.delay - n * 100_000) / (n * 100_000)).toBeLessThan(0.1);
      const raised = (await lookup('mutex').snapshot()).comments.find((c) => c.includes('maxSampledPerSecond'));
      expect(raised).toMatch(/sampling 1 in (\d+) \(fraction set: 2\)/);
      expect(Number(/1 in (\d+)/.exec(raised!)![1])).toBeGreaterThan(100); // ~10 000 / 50 = 200

      // the load falls to 20 events a second: within a few windows the fraction is back to the one set
      for (let i = 0; i < 200; i++) await contend(mu, clock, 50 * ms);
      expect((await lookup('mutex').snapshot()).comments.some((c) => c.includes('maxSampledPerSecond'))).toBe(false);
    } finally {
      captures.mockRestore();
      setMutexProfileFraction(0);
      configureProfiler({ maxSampledPerSecond: Infinity });
    }
  });

  test('bad budgets throw and change nothing', () => {
    for (const bad of [0, -1, Number.NaN, '10', null]) {
      expect(() => configureProfiler({ maxSampledPerSecond: bad as number })).toThrow(/maxSampledPerSecond must be a number ≥ 1/);
    }
    expect(configureProfiler({}).maxSampledPerSecond).toBe(Infinity);
  });
});

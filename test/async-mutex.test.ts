// The async-mutex drop-in against the real async-mutex 0.5: random schedules of calls run on both, step by step,
// must settle the same calls with the same values and errors, and leave isLocked()/getValue() the same after every
// step. Then the drop-in's own additions: names, profiles, the live view.
import { describe, test, expect, afterEach, vi } from 'vitest';
import fc from 'fast-check';
import * as real from 'async-mutex';
import * as mine from '../src/async-mutex/index.js';
import { setMutexProfileFraction, setBlockProfileRate, configureProfiler, queryLocks } from '../src/index.js';
import { manualClock, ms, samplesOf, totalsOf, names } from './helpers.js';

type Lib = typeof real;

type Op =
  | { k: 'acquire'; weight: number; priority: number }
  | { k: 'release-ticket'; pick: number; twice: boolean }
  | { k: 'release'; weight: number }
  | { k: 'cancel' }
  | { k: 'setValue'; value: number }
  | { k: 'waitForUnlock'; weight: number; priority: number }
  | { k: 'runExclusive'; weight: number; priority: number; fail: boolean }
  | { k: 'end-run'; pick: number }
  | { k: 'timeout-acquire'; weight: number; ms: number }
  | { k: 'try-acquire'; weight: number }
  | { k: 'advance'; ms: number };

const opArb = (semaphore: boolean): fc.Arbitrary<Op> =>
  fc.oneof(
    { arbitrary: fc.record({ k: fc.constant('acquire' as const), weight: semaphore ? fc.integer({ min: 1, max: 3 }) : fc.constant(1), priority: fc.integer({ min: -1, max: 2 }) }), weight: 5 },
    { arbitrary: fc.record({ k: fc.constant('release-ticket' as const), pick: fc.nat(), twice: fc.boolean() }), weight: 5 },
    { arbitrary: fc.record({ k: fc.constant('release' as const), weight: semaphore ? fc.integer({ min: 1, max: 2 }) : fc.constant(1) }), weight: 1 },
    { arbitrary: fc.record({ k: fc.constant('cancel' as const) }), weight: 1 },
    { arbitrary: fc.record({ k: fc.constant('setValue' as const), value: fc.integer({ min: -1, max: 4 }) }), weight: semaphore ? 1 : 0 },
    { arbitrary: fc.record({ k: fc.constant('waitForUnlock' as const), weight: semaphore ? fc.integer({ min: 1, max: 3 }) : fc.constant(1), priority: fc.integer({ min: -1, max: 2 }) }), weight: 2 },
    {
      arbitrary: fc.record({
        k: fc.constant('runExclusive' as const),
        weight: semaphore ? fc.integer({ min: 1, max: 2 }) : fc.constant(1),
        priority: fc.integer({ min: 0, max: 1 }),
        fail: fc.boolean(),
      }),
      weight: 2,
    },
    { arbitrary: fc.record({ k: fc.constant('end-run' as const), pick: fc.nat() }), weight: 2 },
    { arbitrary: fc.record({ k: fc.constant('timeout-acquire' as const), weight: semaphore ? fc.integer({ min: 1, max: 2 }) : fc.constant(1), ms: fc.integer({ min: 1, max: 20 }) }), weight: 2 },
    { arbitrary: fc.record({ k: fc.constant('try-acquire' as const), weight: semaphore ? fc.integer({ min: 1, max: 2 }) : fc.constant(1) }), weight: 1 },
    { arbitrary: fc.record({ k: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 25 }) }), weight: 2 },
  );

/** Runs `ops` on a lock of `lib`, returning the log of what settled, step by step. */
async function play(lib: Lib, semaphore: boolean, ops: Op[]): Promise<string[]> {
  const lock = semaphore ? new lib.Semaphore(2) : new lib.Mutex();
  const sem = lock as real.Semaphore;
  const mutex = lock as real.Mutex;
  const log: string[] = [];
  const tickets: Array<() => void> = [];
  const runs: Array<() => void> = [];
  let id = 0;
  const settle = (p: Promise<unknown>, what: string, onValue?: (v: unknown) => void): void => {
    p.then(
      (v) => {
        if (onValue) onValue(v);
        log.push(`${what} ok ${Array.isArray(v) ? v[0] : typeof v === 'function' ? 'releaser' : String(v)}`);
      },
      (e: unknown) => log.push(`${what} err ${e === lib.E_CANCELED ? 'E_CANCELED' : e === lib.E_TIMEOUT ? 'E_TIMEOUT' : e === lib.E_ALREADY_LOCKED ? 'E_ALREADY_LOCKED' : (e as Error).message}`),
    );
  };
  const ticketOf = (v: unknown): (() => void) => (Array.isArray(v) ? v[1] : v) as () => void;
  const flushAll = async (): Promise<void> => {
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
  };
  for (const op of ops) {
    const n = id++;
    const step: string[] = [];
    const before = log.length;
    try {
      switch (op.k) {
        case 'acquire':
          settle(semaphore ? sem.acquire(op.weight, op.priority) : mutex.acquire(op.priority), `acquire#${n}`, (v) => tickets.push(ticketOf(v)));
          break;
        case 'release-ticket':
          if (tickets.length > 0) {
            const t = tickets.splice(op.pick % tickets.length, 1)[0];
            t();
            if (op.twice) t(); // releasers are idempotent
          }
          break;
        case 'release':
          if (semaphore) sem.release(op.weight);
          else mutex.release();
          break;
        case 'cancel':
          lock.cancel();
          break;
        case 'setValue':
          sem.setValue(op.value);
          break;
        case 'waitForUnlock':
          settle(semaphore ? sem.waitForUnlock(op.weight, op.priority) : mutex.waitForUnlock(op.priority), `wait#${n}`);
          break;
        case 'runExclusive': {
          let end: () => void = () => {};
          const gate = new Promise<void>((r) => (end = r));
          runs.push(end);
          const cb = async (value?: number): Promise<string> => {
            log.push(`run#${n} in ${String(value)}`);
            await gate;
            if (op.fail) throw new Error(`run#${n} failed`);
            return `run#${n}`;
          };
          settle(semaphore ? sem.runExclusive(cb, op.weight, op.priority) : mutex.runExclusive(cb, op.priority), `run#${n}`);
          break;
        }
        case 'end-run':
          if (runs.length > 0) runs.splice(op.pick % runs.length, 1)[0]();
          break;
        case 'timeout-acquire': {
          const t = lib.withTimeout(lock as real.Semaphore, op.ms);
          settle(semaphore ? t.acquire(op.weight) : (t as unknown as real.Mutex).acquire(), `timeout#${n}`, (v) => tickets.push(ticketOf(v)));
          break;
        }
        case 'try-acquire': {
          const t = lib.tryAcquire(lock as real.Semaphore);
          settle(semaphore ? t.acquire(op.weight) : (t as unknown as real.Mutex).acquire(), `try#${n}`, (v) => tickets.push(ticketOf(v)));
          break;
        }
        case 'advance':
          await vi.advanceTimersByTimeAsync(op.ms);
          break;
      }
    } catch (e) {
      step.push(`#${n} threw ${(e as Error).message}`);
    }
    await flushAll();
    // the order within one step is not compared (microtask counts differ between implementations); what settled is
    step.push(...log.splice(before).sort());
    step.push(`locked=${lock.isLocked()}${semaphore ? ` value=${sem.getValue()}` : ''}`);
    log.push(step.join('; '));
  }
  return log;
}

describe('differential: mutexprof/async-mutex against async-mutex 0.5', () => {
  afterEach(() => {
    vi.useRealTimers();
  });
  test.each([
    ['Mutex', false],
    ['Semaphore', true],
  ] as const)('%s: random schedules of calls give the same results, step by step', async (_name, semaphore) => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb(semaphore), { minLength: 1, maxLength: 30 }), async (ops) => {
        vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
        const expected = await play(real, semaphore, ops);
        vi.useRealTimers();
        vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
        const actual = await play(mine as unknown as Lib, semaphore, ops);
        vi.useRealTimers();
        expect(actual).toEqual(expected);
      }),
      { seed: Number(process.env.FC_SEED ?? 2026), numRuns: Number(process.env.FC_RUNS ?? 500) },
    );
  });
});

describe('mutexprof/async-mutex: what it adds', () => {
  const clock = manualClock();

  test('named locks in the profiles, with async-mutex method names as leaves', async () => {
    configureProfiler({ now: clock.now, random: () => 0 });
    setMutexProfileFraction(1);
    setBlockProfileRate(1);
    try {
      const mutex = new mine.Mutex({ name: 'dropin-mutex' });
      async function holder(): Promise<void> {
        const release = await mutex.acquire();
        const waiter = mutex.runExclusive(() => 'ran');
        clock.advance(4 * ms);
        release();
        expect(await waiter).toBe('ran');
      }
      await holder();
      const [m] = await samplesOf('mutex', 'dropin-mutex');
      expect(names(m).slice(0, 2)).toEqual(['Mutex.release', 'holder']);
      expect(m).toMatchObject({ count: 1, delay: 4 * ms });
      expect(await totalsOf('block', 'dropin-mutex')).toEqual({ count: 1, delay: 4 * ms });

      const sem = new mine.Semaphore(1, mine.E_CANCELED, { name: 'dropin-sem' });
      const [, rel] = await sem.acquire();
      const waiting = sem.acquire(1, 5).catch((e: unknown) => e);
      clock.advance(2 * ms);
      sem.cancel(); // the waiter leaves without a release: its wait is carried into the next release event
      expect(await waiting).toBe(mine.E_CANCELED);
      rel();
      expect(await totalsOf('mutex', 'dropin-sem')).toEqual({ count: 1, delay: 2 * ms });
      expect(await totalsOf('block', 'dropin-sem')).toEqual({ count: 1, delay: 2 * ms });
    } finally {
      setMutexProfileFraction(0);
      setBlockProfileRate(0);
    }
  });

  test('the live view lists their waiters; bad names are rejected', async () => {
    const mutex = new mine.Mutex(undefined, { name: 'dropin-live' });
    const release = await mutex.acquire();
    const w = mutex.acquire();
    const { held, pending } = queryLocks();
    expect(held.filter((s) => s.name === 'dropin-live')).toEqual([expect.objectContaining({ kind: 'Mutex', mode: 'exclusive' })]);
    expect(pending.filter((s) => s.name === 'dropin-live')).toHaveLength(1);
    release();
    (await w)();
    expect(() => new mine.Mutex(undefined, { name: 3 as unknown as string })).toThrow(TypeError);
  });
});

// Deadlock detection: every finding the README promises, for each way of taking and releasing a lock (lock() and
// unlock(), `using`, withLock; Go-style releases), on every Node CI runs; and no report at all on the idioms of real
// code without a cycle (a seeded chaos run of them), while the same idioms with a real cycle added are reported.
// Findings are confirmed after `confirmMs` without a lock of theirs moving: these tests use 40 ms.
import { describe, test, expect, beforeEach, afterEach } from 'vitest';
import { EventEmitter } from 'node:events';
import { execFileSync } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { fileURLToPath } from 'node:url';
import { Mutex, RWMutex, Semaphore, KeyedMutex, setDeadlockDetection, detachedTask, DeadlockError, type DeadlockReport } from '../src/index.js';
import { captureWarnings, seeded } from './helpers.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const CONFIRM_MS = 40;
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A gate that opens once `n` parties have arrived: flows that must all hold their first lock before going on. */
function barrier(n: number): () => Promise<void> {
  let arrived = 0;
  let open!: () => void;
  const all = new Promise<void>((r) => (open = r));
  return async () => {
    if (++arrived === n) open();
    await all;
  };
}

const reports: DeadlockReport[] = [];
const onReport = (m: unknown): void => void reports.push(m as DeadlockReport);
beforeEach(() => {
  reports.length = 0;
  subscribe('mutexprof:deadlock', onReport);
});
afterEach(() => {
  unsubscribe('mutexprof:deadlock', onReport);
  setDeadlockDetection('off');
});

/** Runs `f` with detection in `mode`, its warnings collected; returns what it returned and what was reported. */
async function detecting<T>(mode: 'warn' | 'throw', f: () => Promise<T>): Promise<{ result: T; kinds: string[]; warnings: string[] }> {
  setDeadlockDetection(mode, { confirmMs: CONFIRM_MS });
  const { result, warnings } = await captureWarnings(f);
  return { result, kinds: reports.map((r) => r.kind), warnings: warnings.filter((w) => w.code === 'MUTEXPROF_DEADLOCK').map((w) => w.message) };
}

const isDeadlock = (e: unknown): boolean => e instanceof DeadlockError;

describe('re-entry, in each style', () => {
  test('lock() and unlock(): asking again after an await is rejected, after confirmMs, and nothing else changes', async () => {
    const mu = new Mutex({ name: 're-go' });
    const { result, kinds } = await detecting('throw', async () => {
      await mu.lock();
      await null;
      const t0 = performance.now();
      const err = await mu.lock().catch((e: unknown) => e);
      const waited = performance.now() - t0;
      const state = { locked: mu.locked, waiting: mu.waiting };
      mu.unlock();
      return { err, waited, state };
    });
    expect(result.err).toBeInstanceOf(DeadlockError);
    expect(result.err).toMatchObject({ code: 'ERR_MUTEXPROF_DEADLOCK', cycle: [{ lock: 're-go', kind: 'Mutex', mode: 'exclusive' }] });
    expect((result.err as Error).message).toBe('mutexprof: deadlock: lock() of Mutex "re-go" in an async context that already holds it (re-entry): it can never be granted');
    expect(result.waited).toBeGreaterThanOrEqual(CONFIRM_MS - 2);
    expect(result.state).toEqual({ locked: true, waiting: 0 }); // it left the queue; the holder still holds
    expect(kinds).toEqual(['reentry']);
  });

  test('`using`: asking again after an await, and in a helper the holder awaits', async () => {
    const mu = new Mutex({ name: 're-using' });
    const helper = async (): Promise<unknown> => {
      using _g = await mu.lock();
      return 'never';
    };
    const { result, kinds } = await detecting('throw', async () => {
      using _g = await mu.lock();
      await turn();
      const again = await mu.lock().catch((e: unknown) => e);
      const viaHelper = await helper().catch((e: unknown) => e);
      return [again, viaHelper];
    });
    expect(result.map(isDeadlock)).toEqual([true, true]);
    expect(kinds).toEqual(['reentry', 'reentry']);
    expect(mu.locked).toBe(false);
  });

  test('withLock, withRLock, withPermit: within their function; RWMutex lock() while holding the read side', async () => {
    const mu = new Mutex({ name: 're-with' });
    const rw = new RWMutex({ name: 're-rw' });
    const sem = new Semaphore(2, { name: 're-sem' });
    const { result, kinds } = await detecting('throw', async () => [
      await mu.withLock(() => mu.withLock(() => 'never')).catch((e: unknown) => e),
      await rw.withRLock(async () => {
        await rw.withRLock(() => 0); // a second reader is granted at once: no deadlock
        return rw.lock().catch((e: unknown) => e);
      }),
      await sem.withPermit(() => sem.acquire({ weight: 2 }).catch((e: unknown) => e)), // holds 1 of 2, asks 2
    ]);
    expect(result.map(isDeadlock)).toEqual([true, true, true]);
    expect(kinds).toEqual(['reentry', 'reentry', 'reentry']);
    expect((reports[2].message as string).includes('acquire() of 2 permits of Semaphore "re-sem" in an async context that holds 1 of its 2')).toBe(true);
    expect([mu.locked, rw.locked, rw.readers, sem.available]).toEqual([false, false, 0, 2]);
  });

  test("'warn': reported once confirmed, and the wait goes on as it would", async () => {
    const mu = new Mutex({ name: 're-warn' });
    const { result, kinds, warnings } = await detecting('warn', async () => {
      const g = await mu.lock();
      await turn();
      let granted = false;
      const again = mu.lock().then((g2) => ((granted = true), g2));
      await sleep(CONFIRM_MS * 3);
      const before = granted;
      g[Symbol.dispose](); // a warned wait is granted as usual
      (await again)[Symbol.dispose]();
      return before;
    });
    expect(result).toBe(false);
    expect(kinds).toEqual(['reentry']);
    expect(warnings).toEqual(['mutexprof: deadlock: lock() of Mutex "re-warn" in an async context that already holds it (re-entry): it can never be granted']);
  });
});

describe('wait cycles of any length, in each style', () => {
  type Style = 'go' | 'using' | 'withLock';
  /** n flows; flow i takes lock i, waits until all hold theirs, then asks for lock i+1 in `style`. */
  async function cycle(n: number, style: Style): Promise<unknown[]> {
    const locks = Array.from({ length: n }, (_, i) => new Mutex({ name: `cyc-${style}-${n}-${i}` }));
    const all = barrier(n);
    const flow = async (i: number): Promise<unknown> => {
      const mine = locks[i];
      const next = locks[(i + 1) % n];
      if (style === 'withLock') {
        return mine.withLock(async () => {
          await all();
          return next.withLock(() => 'done');
        });
      }
      if (style === 'using') {
        using _m = await mine.lock();
        await all();
        using _n = await next.lock();
        return 'done';
      }
      await mine.lock();
      try {
        await all();
        await next.lock();
        next.unlock();
        return 'done';
      } finally {
        mine.unlock();
      }
    };
    return Promise.all(locks.map((_, i) => flow(i).catch((e: unknown) => e)));
  }

  test.each([
    [2, 'go'],
    [2, 'using'],
    [2, 'withLock'],
    [3, 'go'],
    [3, 'using'],
    [3, 'withLock'],
    [5, 'go'],
  ] as const)("%i locks, %s: 'throw' rejects one wait of the cycle, and the others then proceed", async (n, style) => {
    const { result, kinds } = await detecting('throw', () => cycle(n, style));
    const errors = result.filter(isDeadlock) as DeadlockError[];
    expect(errors).toHaveLength(1);
    expect(result.filter((r) => r === 'done')).toHaveLength(n - 1);
    expect(errors[0].cycle).toHaveLength(n);
    expect(errors[0].message).toMatch(new RegExp(`closes a wait cycle: Mutex "cyc-${style}-${n}-\\d"( → Mutex "cyc-${style}-${n}-\\d"){${n}}$`));
    expect(kinds.filter((k) => k === 'cycle')).toEqual(['cycle']);
  });

  test("'warn': reported once, and the flows stay deadlocked as they would", async () => {
    const a = new Mutex({ name: 'warn-a' });
    const b = new Mutex({ name: 'warn-b' });
    const all = barrier(2);
    const { result, kinds } = await detecting('warn', async () => {
      const stuck = [a.withLock(async () => (await all(), b.withLock(() => 0))), b.withLock(async () => (await all(), a.withLock(() => 0)))];
      let settled = false;
      void Promise.race(stuck).then(() => (settled = true));
      await sleep(CONFIRM_MS * 4);
      return settled;
    });
    expect(result).toBe(false);
    expect(kinds).toContain('cycle');
    expect(kinds.filter((k) => k === 'cycle')).toHaveLength(1);
  });
});

describe('lock-order inversions, in each style', () => {
  test.each(['go', 'using', 'withLock'] as const)('%s: reported once, with both stacks, though the two orders never ran together', async (style) => {
    const a = new Mutex({ name: `ord-${style}-a` });
    const b = new Mutex({ name: `ord-${style}-b` });
    async function aThenB(): Promise<void> {
      if (style === 'withLock') return void (await a.withLock(() => b.withLock(() => undefined)));
      if (style === 'using') {
        using _a = await a.lock();
        using _b = await b.lock();
        return;
      }
      await a.lock();
      await b.lock();
      b.unlock();
      a.unlock();
    }
    async function bThenA(): Promise<void> {
      if (style === 'withLock') return void (await b.withLock(() => a.withLock(() => undefined)));
      if (style === 'using') {
        using _b = await b.lock();
        await turn(); // `using` keeps the flow's marks sure across awaits
        using _a = await a.lock();
        return;
      }
      await b.lock();
      await a.lock();
      a.unlock();
      b.unlock();
    }
    const { kinds, warnings } = await detecting('throw', async () => {
      await aThenB();
      await bThenA();
      await bThenA();
      await aThenB();
    });
    expect(kinds).toEqual(['inversion']);
    expect(warnings).toEqual([`mutexprof: potential deadlock: Mutex "ord-${style}-b" and Mutex "ord-${style}-a" are taken in both orders (lock-order inversion)`]);
    expect(reports[0].stacks.map((s) => s.map((f) => f.name).find((n) => n === 'aThenB' || n === 'bThenA'))).toEqual(['bThenA', 'aThenB']);
    for (const s of reports[0].stacks) expect(s.filter((f) => f.file.startsWith('node:'))).toEqual([]); // e.g. AsyncLocalStorage.run
  });
});

describe('work a holder starts', () => {
  test('awaited by the holder while it waits for the holder’s lock: a deadlock, reported', async () => {
    const mu = new Mutex({ name: 'started' });
    const { result, kinds } = await detecting('throw', () => mu.withLock(() => new Promise<unknown>((resolve) => setImmediate(() => mu.lock().then(resolve, resolve)))));
    expect(result).toBeInstanceOf(DeadlockError);
    expect(kinds).toEqual(['reentry']);
  });

  test('not awaited: it waits until the holder releases, with no report, whether or not it runs as detachedTask', async () => {
    const mu = new Mutex({ name: 'not-awaited' });
    const { result, kinds } = await detecting('throw', async () => {
      let started: Promise<string>[] = [];
      await mu.withLock(async () => {
        started = [
          new Promise<string>((resolve) => setImmediate(() => mu.withLock(() => 'inherited').then(resolve, (e: unknown) => resolve(String(e))))),
          new Promise<string>((resolve) => setImmediate(() => detachedTask(() => mu.withLock(() => 'detached')).then(resolve))),
        ];
        await sleep(CONFIRM_MS / 2);
      });
      return Promise.all(started);
    });
    expect(result).toEqual(['inherited', 'detached']);
    expect(kinds).toEqual([]);
  });

  test('detachedTask: a cycle between detached tasks is found', async () => {
    const a = new Mutex({ name: 'det-a' });
    const b = new Mutex({ name: 'det-b' });
    const all = barrier(2);
    const { result } = await detecting('throw', () =>
      Promise.all([
        detachedTask(() => a.withLock(async () => (await all(), b.withLock(() => 'done')))).catch((e: unknown) => e),
        detachedTask(() => b.withLock(async () => (await all(), a.withLock(() => 'done')))).catch((e: unknown) => e),
      ]),
    );
    expect(result.filter(isDeadlock)).toHaveLength(1);
  });
});

describe('Go-style releases end the releasing flow’s own record', () => {
  test('rUnlock() and release(n): the flow that released is not a holder any more (no re-entry on its next lock)', async () => {
    const rw = new RWMutex({ name: 'go-rw' });
    const sem = new Semaphore(2, { name: 'go-sem' });
    const { result, kinds } = await detecting('throw', async () => {
      // another reader holds across the whole run, so that "the oldest record" is never the releasing flow's (a task
      // of its own: started here and not awaited, it would share this flow's first mark, see "Tasks")
      const other = detachedTask(async () => {
        await rw.rLock();
        await sem.acquire();
        await sleep(CONFIRM_MS * 3);
        sem.release();
        rw.rUnlock();
      });
      await turn();
      const mine = async (): Promise<string> => {
        await rw.rLock();
        await turn();
        rw.rUnlock();
        await rw.lock(); // waits for the other reader, then is granted: not re-entry
        rw.unlock();
        await sem.acquire();
        await turn();
        sem.release(1);
        await sem.acquire({ weight: 2 }); // waits for the other permit: not re-entry
        sem.release(2);
        return 'granted';
      };
      const r = await mine().catch((e: unknown) => e);
      await other;
      return r;
    });
    expect(result).toBe('granted');
    expect(kinds).toEqual([]);
  });
});

describe('the idioms of real code', () => {
  // Locks are always taken in one global order (by index) by each flow, so there is no real cycle or inversion;
  // holds are a few ms, far below confirmMs. Each flow picks a style at random.
  const N = 6;
  type Lockish = { take(i: number): Promise<() => void> };

  function pool(): { locks: Array<Mutex | RWMutex>; keyed: KeyedMutex; sem: Semaphore; take: Lockish['take'] } {
    const locks = Array.from({ length: N }, (_, i) => (i % 3 === 1 ? new RWMutex({ name: `idiom-rw-${i}` }) : new Mutex({ name: `idiom-${i}` })));
    const keyed = new KeyedMutex({ name: 'idiom-keyed' });
    const sem = new Semaphore(3, { name: 'idiom-sem' });
    return { locks, keyed, sem, take: async () => () => undefined };
  }

  async function chaos(seed: number, mode: 'warn' | 'throw', withCycle: 'none' | 'promise.all' | 'caller' | 'handlers' | 'timers' | 'go-style'): Promise<{ errors: number; kinds: string[] }> {
    const rand = seeded(seed);
    const { locks, keyed, sem } = pool();
    const errors: unknown[] = [];
    const hold = (): Promise<void> => (rand() < 0.5 ? turn() : sleep(Math.floor(rand() * 4)));
    /** Takes the locks of `which` (ascending), in a random style; holds; releases. */
    const work = async (which: number[]): Promise<void> => {
      const style = rand();
      if (rand() < 0.3) await hold(); // some flows await before their first lock
      if (style < 0.33) {
        // lock() and unlock(), Go style; readers release with rUnlock(), the semaphore with release(n)
        const done: Array<() => void> = [];
        for (const i of which) {
          const l = locks[i];
          if (l instanceof RWMutex && rand() < 0.6) {
            await l.rLock();
            done.push(() => l.rUnlock());
          } else {
            await l.lock();
            done.push(() => l.unlock());
          }
          if (rand() < 0.5) await hold();
        }
        if (rand() < 0.3) {
          const weight = 1 + Math.floor(rand() * 2);
          await sem.acquire({ weight });
          await hold();
          if (weight === 2 && rand() < 0.5) {
            sem.release(1); // released in two steps, without the guard
            sem.release(1);
          } else sem.release(weight);
        }
        for (const d of done.reverse()) d();
      } else if (style < 0.66) {
        const guards: Disposable[] = [];
        try {
          for (const i of which) {
            const l = locks[i];
            guards.push(l instanceof RWMutex && rand() < 0.6 ? await l.rLock() : await l.lock());
            if (rand() < 0.5) await hold();
          }
          using _k = await keyed.lock(`k${Math.floor(rand() * 3)}`);
          await hold();
        } finally {
          for (const g of guards.reverse()) g[Symbol.dispose]();
        }
      } else {
        const nest = async (k: number): Promise<void> => {
          if (k === which.length) return void (await hold());
          const l = locks[which[k]];
          const inner = (): Promise<void> => nest(k + 1);
          await (l instanceof RWMutex && rand() < 0.6 ? l.withRLock(inner) : l.withLock(inner));
        };
        await nest(0);
        if (rand() < 0.3) await sem.withPermit(() => hold(), { weight: 1 + Math.floor(rand() * 2) });
      }
    };
    const someLocks = (): number[] => [...new Set(Array.from({ length: 1 + Math.floor(rand() * 3) }, () => Math.floor(rand() * N)))].sort((x, y) => x - y);
    const guarded = (p: Promise<unknown>): Promise<void> =>
      p.then(
        () => undefined,
        (e: unknown) => void errors.push(e),
      );

    // a real cycle, in the idiom named: two flows take two locks of their own in opposite orders once both hold
    // their first (locks no other flow uses: a flow that waited for one of them while holding another would make
    // the two wait for it at the barrier, a deadlock through the barrier, which no lock detector can see)
    const cyc = barrier(2);
    const cycLocks = [new Mutex({ name: 'cycle-0' }), new RWMutex({ name: 'cycle-1' })];
    const first = async (a: number, b: number, style: 'go' | 'using'): Promise<void> => {
      if (style === 'using') {
        using _a = await cycLocks[a].lock();
        await cyc();
        using _b = await cycLocks[b].lock();
        return;
      }
      await cycLocks[a].lock();
      try {
        await cyc();
        await cycLocks[b].lock();
        cycLocks[b].unlock();
      } finally {
        cycLocks[a].unlock();
      }
    };

    const { kinds } = await detecting(mode, async () => {
      const all: Array<Promise<void>> = [];
      // Promise.all over a map, several rounds
      all.push(
        (async () => {
          for (let round = 0; round < 4; round++) {
            const items = Array.from({ length: 8 }, (_, i) => i);
            await Promise.all(
              items.map(async (i) => {
                if (withCycle === 'promise.all' && round === 1 && i < 2) return guarded(first(i, 1 - i, 'using'));
                return guarded(work(someLocks()));
              }),
            );
          }
        })(),
      );
      // a caller that goes on after starting tasks, and takes locks of its own meanwhile
      all.push(
        (async () => {
          for (let round = 0; round < 6; round++) {
            const started = [guarded(work(someLocks())), guarded(work(someLocks()))];
            if (withCycle === 'caller' && round === 2) {
              started.push(guarded(first(0, 1, 'go')));
              await turn();
              await guarded(first(1, 0, 'go'));
            } else {
              await hold();
              await guarded(work(someLocks()));
            }
            await Promise.all(started);
          }
        })(),
      );
      // event handlers, emitted from a ticker
      const events = new EventEmitter();
      events.on('job', (which: number[]) => void guarded(work(which)));
      events.on('cycle', (a: number, b: number) => void guarded(first(a, b, 'go')));
      all.push(
        (async () => {
          for (let i = 0; i < 12; i++) {
            await sleep(1);
            events.emit('job', someLocks());
            if (withCycle === 'handlers' && i === 4) {
              events.emit('cycle', 0, 1);
              events.emit('cycle', 1, 0);
            }
          }
        })(),
      );
      // timers: setTimeout callbacks and an interval's ticks
      all.push(
        new Promise<void>((done) => {
          let ticks = 0;
          const pending: Array<Promise<void>> = [];
          const interval = setInterval(() => {
            pending.push(guarded(work(someLocks())));
            if (++ticks === 10) {
              clearInterval(interval);
              void Promise.all(pending).then(() => done());
            }
          }, 2);
          for (let i = 0; i < 6; i++) setTimeout(() => pending.push(guarded(work(someLocks()))), i * 3);
          if (withCycle === 'timers') {
            setTimeout(() => pending.push(guarded(first(0, 1, 'using'))), 5);
            setTimeout(() => pending.push(guarded(first(1, 0, 'using'))), 5);
          }
        }),
      );
      if (withCycle === 'go-style') {
        // a real cycle through a read lock released Go style: read, then the mutex; the mutex, then write
        const [mu, rw] = cycLocks as [Mutex, RWMutex];
        all.push(
          guarded(
            (async () => {
              await rw.rLock();
              try {
                await cyc();
                await mu.lock();
                mu.unlock();
              } finally {
                rw.rUnlock();
              }
            })(),
          ),
          guarded(
            (async () => {
              await mu.lock();
              try {
                await cyc();
                await rw.lock();
                rw.unlock();
              } finally {
                mu.unlock();
              }
            })(),
          ),
        );
      }
      await Promise.all(all);
      await sleep(CONFIRM_MS * 2); // anything suspected has had its time to be confirmed
    });
    return { errors: errors.filter(isDeadlock).length + errors.filter((e) => !isDeadlock(e)).length * 1000, kinds };
  }

  test.each([1, 2, 3, 4, 5, 6])('seed %i, no cycle: no report in warn, no DeadlockError in throw', async (seed) => {
    for (const mode of ['warn', 'throw'] as const) {
      reports.length = 0;
      const { errors, kinds } = await chaos(seed, mode, 'none');
      expect({ mode, errors, kinds }).toEqual({ mode, errors: 0, kinds: [] });
    }
  });

  test.each(['promise.all', 'caller', 'handlers', 'timers', 'go-style'] as const)('%s with a real cycle added: reported, and one wait rejected in throw', async (where) => {
    const { errors, kinds } = await chaos(7, 'throw', where);
    // A caller that goes on after a lock() of a Go-style flow it started shares that flow's first mark (see "Tasks"
    // in src/diagnostics/deadlock.ts): the two are one task, and their cycle is found as that task's re-entry.
    expect(kinds.filter((k) => k !== 'inversion')).toEqual([where === 'caller' ? 'reentry' : 'cycle']);
    expect(errors).toBe(1);
  });
});

describe('the task store', () => {
  test("'off' forgets every task: on again, a flow that held a lock before is a new task", async () => {
    const mu = new Mutex({ name: 'store' });
    setDeadlockDetection('throw', { confirmMs: CONFIRM_MS });
    const g = await mu.lock();
    setDeadlockDetection('off');
    g[Symbol.dispose](); // released while off
    setDeadlockDetection('throw', { confirmMs: CONFIRM_MS });
    await turn();
    (await mu.lock())[Symbol.dispose](); // not re-entry: the old task is gone
    expect(reports).toEqual([]);
  });

  test('no promise hook is left on after off; none is ever added on Node ≥ 24 (seen through executionAsyncId in a reaction)', () => {
    const script = `
      import { executionAsyncId } from 'node:async_hooks';
      import { Mutex, setDeadlockDetection } from './src/index.ts';
      const idInReaction = () => Promise.resolve().then(() => executionAsyncId());
      setDeadlockDetection('warn');
      const mu = new Mutex();
      (await mu.lock())[Symbol.dispose]();
      const on = await idInReaction();
      setDeadlockDetection('off');
      const off = await idInReaction();
      console.log(JSON.stringify({ on, off }));`;
    const out = JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' })) as { on: number; off: number };
    const major = Number(process.versions.node.split('.')[0]);
    expect(out.off).toBe(0);
    if (major >= 24) expect(out.on).toBe(0);
    else expect(out.on).toBeGreaterThan(0);
  });

  test('bad options throw and change nothing', () => {
    expect(() => setDeadlockDetection('loud' as 'warn')).toThrow(/^mutexprof: setDeadlockDetection\(mode\)/);
    expect(() => setDeadlockDetection('warn', { confirmMs: 0 })).toThrow(/^mutexprof: setDeadlockDetection: confirmMs/);
    expect(() => setDeadlockDetection('warn', null as never)).toThrow(/options must be an object/);
    expect(setDeadlockDetection('off')).toBe('off');
  });
});

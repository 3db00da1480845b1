// Random schedules against a small reference model: mutual exclusion, the RW rules, FIFO grant order, no lost
// wake-ups, an empty queue at the end and no abort listener left. Seeded; fast-check prints the seed and path
// of a failure, and FC_SEED=<seed> reruns it. With lock tracking on, the live view must list exactly the model's
// holders and waiters, whatever the order of grants, aborts and releases (holder records are intrusive lists).
import { describe, test, expect } from 'vitest';
import fc from 'fast-check';
import { Mutex, RWMutex, queryLocks, setLockTracking, type Guard } from '../src/index.js';
import { flush, abortListeners } from './helpers.js';

type Op =
  | { k: 'lock'; write: boolean; abortable: boolean; labeled: boolean }
  | { k: 'try'; write: boolean }
  | { k: 'abort'; pick: number }
  | { k: 'release'; pick: number; manual: boolean }
  | { k: 'misuse'; write: boolean };

interface Req {
  id: number;
  write: boolean;
  ctrl?: AbortController;
  guard?: Guard;
  anonymous: boolean; // taken by tryLock/tryRLock: released with unlock()/rUnlock()
  real: 'waiting' | 'held' | 'aborted' | 'released';
}

/** The reference model: who holds, who waits, in what order grants happen. */
class Model {
  writer: number | null = null;
  readers = new Set<number>();
  queue: { id: number; write: boolean }[] = [];
  grants: number[] = [];
  free(write: boolean): boolean {
    return this.writer === null && this.queue.length === 0 && (!write || this.readers.size === 0);
  }
  acquire(id: number, write: boolean): void {
    if (write) this.writer = id;
    else this.readers.add(id);
    this.grants.push(id);
  }
  admit(): void {
    if (this.writer !== null || this.queue.length === 0) return;
    if (this.queue[0].write) {
      if (this.readers.size === 0) this.acquire(this.queue.shift()!.id, true);
      return;
    }
    while (this.queue.length > 0 && !this.queue[0].write) this.acquire(this.queue.shift()!.id, false);
  }
  abort(id: number): boolean {
    const i = this.queue.findIndex((q) => q.id === id);
    if (i < 0) return false;
    const [q] = this.queue.splice(i, 1);
    if (q.write) this.admit();
    return true;
  }
  release(id: number): void {
    if (this.writer === id) this.writer = null;
    else this.readers.delete(id);
    this.admit();
  }
}

const opArb = (rw: boolean): fc.Arbitrary<Op> =>
  fc.oneof(
    { arbitrary: fc.record({ k: fc.constant('lock' as const), write: rw ? fc.boolean() : fc.constant(true), abortable: fc.boolean(), labeled: fc.boolean() }), weight: 4 },
    { arbitrary: fc.record({ k: fc.constant('try' as const), write: rw ? fc.boolean() : fc.constant(true) }), weight: 1 },
    { arbitrary: fc.record({ k: fc.constant('abort' as const), pick: fc.nat() }), weight: 2 },
    { arbitrary: fc.record({ k: fc.constant('release' as const), pick: fc.nat(), manual: fc.boolean() }), weight: 4 },
    { arbitrary: fc.record({ k: fc.constant('misuse' as const), write: rw ? fc.boolean() : fc.constant(true) }), weight: 1 },
  );

const LABELS = { route: '/p' }; // one constant object, as services pass it

async function run(rw: boolean, ops: Op[], tracked = false): Promise<void> {
  setLockTracking(tracked ? 'on' : 'off');
  try {
    await runOps(rw, ops, tracked);
  } finally {
    setLockTracking('off');
  }
}

let runs = 0;

async function runOps(rw: boolean, ops: Op[], tracked: boolean): Promise<void> {
  const name = `p${runs++}`; // one name per run: the live view must forget each run's lock when it is done
  const lock = rw ? new RWMutex({ name }) : new Mutex({ name });
  const r = lock instanceof RWMutex ? lock : null;
  const model = new Model();
  const reqs: Req[] = [];
  const grants: number[] = [];

  const check = async (): Promise<void> => {
    await flush();
    const held = reqs.filter((q) => q.real === 'held');
    // mutual exclusion and the RW invariant, on what the callers observe
    const writers = held.filter((q) => q.write);
    expect(writers.length <= 1 && (writers.length === 0 || held.length === 1)).toBe(true);
    expect(held.map((q) => q.id).sort()).toEqual([...model.readers, ...(model.writer === null ? [] : [model.writer])].sort());
    expect(grants).toEqual(model.grants); // FIFO: same grants in the same order as the model
    expect(lock.waiting).toBe(model.queue.length);
    expect(lock.locked).toBe(model.writer !== null);
    if (r) expect(r.readers).toBe(model.readers.size);
    if (tracked) {
      const live = queryLocks();
      const mine = (s: { name: string; mode: string }[]): string[] =>
        s
          .filter((x) => x.name === name)
          .map((x) => x.mode)
          .sort();
      expect(mine(live.held)).toEqual([...[...model.readers].map(() => 'shared'), ...(model.writer === null ? [] : ['exclusive'])].sort());
      expect(mine(live.pending)).toEqual(model.queue.map((q) => (q.write ? 'exclusive' : 'shared')).sort());
    }
  };

  const release = (q: Req, manual: boolean): void => {
    if (q.anonymous || manual) {
      if (q.write) lock.unlock();
      else r!.rUnlock();
    } else q.guard![Symbol.dispose]();
    q.real = 'released';
    model.release(q.id);
  };

  for (const op of ops) {
    if (op.k === 'lock') {
      const id = reqs.length;
      const q: Req = { id, write: op.write, anonymous: false, real: 'waiting' };
      if (op.abortable) q.ctrl = new AbortController();
      reqs.push(q);
      const opts = q.ctrl || op.labeled ? { signal: q.ctrl?.signal, labels: op.labeled ? LABELS : undefined } : undefined;
      const p = op.write ? lock.lock(opts) : r!.rLock(opts);
      p.then(
        (g) => {
          q.guard = g;
          q.real = 'held';
          grants.push(id);
        },
        () => {
          q.real = 'aborted';
        },
      );
      if (model.free(op.write)) model.acquire(id, op.write);
      else model.queue.push({ id, write: op.write });
    } else if (op.k === 'try') {
      const free = model.free(op.write);
      const got = op.write ? lock.tryLock() : r!.tryRLock();
      expect(got).toBe(free);
      if (got) {
        const id = reqs.length;
        reqs.push({ id, write: op.write, anonymous: true, real: 'held' });
        model.acquire(id, op.write);
        grants.push(id);
      }
    } else if (op.k === 'abort') {
      const cands = reqs.filter((q) => q.ctrl && !q.ctrl.signal.aborted);
      if (cands.length === 0) continue;
      const q = cands[op.pick % cands.length];
      q.ctrl!.abort(new Error('abort ' + q.id));
      model.abort(q.id);
    } else if (op.k === 'release') {
      // Manual rUnlock() of a guarded reader is not tied to a guard, so only writers use the manual path here.
      const cands = reqs.filter((q) => q.real === 'held');
      if (cands.length === 0) continue;
      const q = cands[op.pick % cands.length];
      release(q, op.manual && q.write);
    } else {
      // misuse: releasing what is not held must throw and change nothing
      const wouldFail = op.write ? model.writer === null : model.readers.size === 0;
      if (!wouldFail) continue;
      if (op.write) expect(() => lock.unlock()).toThrow(/mutexprof: /);
      else if (r) expect(() => r.rUnlock()).toThrow(/mutexprof: /);
    }
    await check();
  }

  // Drain: release everything held until nobody waits; every waiter must eventually be granted (no lost wake-up).
  for (let guard = 0; guard < 10_000; guard++) {
    const held = reqs.filter((q) => q.real === 'held');
    if (held.length === 0) break;
    for (const q of held) release(q, false);
    await check();
  }
  expect(model.queue.length).toBe(0);
  expect(lock.waiting).toBe(0);
  expect(lock.locked).toBe(false);
  if (tracked) {
    const live = queryLocks();
    expect([...live.held, ...live.pending].filter((x) => x.name === name)).toEqual([]);
  }
  for (const q of reqs) {
    expect(q.real === 'released' || q.real === 'aborted').toBe(true);
    if (q.ctrl) expect(abortListeners(q.ctrl.signal)).toBe(0);
  }
}

const seed = Number(process.env.FC_SEED ?? 20261124);
const numRuns = Number(process.env.FC_RUNS ?? 3000);

describe('random schedules against a reference model', () => {
  test(`Mutex (${numRuns} schedules)`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb(false), { minLength: 1, maxLength: 40 }), (ops) => run(false, ops)),
      { seed, numRuns },
    );
  });
  test(`RWMutex (${numRuns} schedules)`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb(true), { minLength: 1, maxLength: 40 }), (ops) => run(true, ops)),
      { seed, numRuns },
    );
  });
  test(`Mutex, lock tracking 'on': the live view is the model's (${Math.ceil(numRuns / 3)} schedules)`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb(false), { minLength: 1, maxLength: 40 }), (ops) => run(false, ops, true)),
      { seed, numRuns: Math.ceil(numRuns / 3) },
    );
  });
  test(`RWMutex, lock tracking 'on': the live view is the model's (${Math.ceil(numRuns / 3)} schedules)`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb(true), { minLength: 1, maxLength: 40 }), (ops) => run(true, ops, true)),
      { seed, numRuns: Math.ceil(numRuns / 3) },
    );
  });
});

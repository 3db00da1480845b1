// Lock benchmarks (issue: lock core). mutexprof against async-mutex, await-lock and the floor, side by side.
import { Mutex as AsyncMutex, tryAcquire } from 'async-mutex';
import AwaitLock from 'await-lock';
import { Mutex, RWMutex } from '../dist/index.js';
import { FloorLock, FloorRWLock } from './floor.mjs';
import { compare } from './harness.mjs';

const noop = () => {};

function contended(workers, lockUnlock) {
  return async (n) => {
    let left = n;
    const worker = async () => {
      while (left-- > 0) await lockUnlock();
    };
    await Promise.all(Array.from({ length: workers }, worker));
  };
}

function lockImpls() {
  const floor = new FloorLock();
  const mu = new Mutex({ name: 'bench' });
  const am = new AsyncMutex();
  const al = new AwaitLock();
  return {
    floor: async () => {
      await floor.lock();
      floor.unlock();
    },
    'mutexprof lock/unlock': async () => {
      await mu.lock();
      mu.unlock();
    },
    'mutexprof using guard': async () => {
      const g = await mu.lock();
      g[Symbol.dispose]();
    },
    'mutexprof withLock': () => mu.withLock(noop),
    'await-lock': async () => {
      await al.acquireAsync();
      al.release();
    },
    'async-mutex acquire/release': async () => {
      const release = await am.acquire();
      release();
    },
    'async-mutex runExclusive': () => am.runExclusive(noop),
  };
}

export async function lockBenchmarks({ quick = false } = {}) {
  const k = quick ? 0.1 : 1;
  const results = [];

  const un = lockImpls();
  results.push(
    await compare(
      'uncontended lock+unlock',
      Object.fromEntries(Object.entries(un).map(([n, f]) => [n, async (ops) => { for (let i = 0; i < ops; i++) await f(); }])),
      { ops: 200_000 * k, baseline: 'floor' },
    ),
  );

  const floor = new FloorLock();
  const mu = new Mutex();
  const al = new AwaitLock();
  const am = new AsyncMutex();
  results.push(
    await compare(
      'tryLock+unlock',
      {
        floor: (n) => { for (let i = 0; i < n; i++) { floor.tryLock(); floor.unlock(); } },
        mutexprof: (n) => { for (let i = 0; i < n; i++) { mu.tryLock(); mu.unlock(); } },
        'await-lock': (n) => { for (let i = 0; i < n; i++) { al.tryAcquire(); al.release(); } },
        'async-mutex tryAcquire (async)': async (n) => { for (let i = 0; i < n; i++) (await tryAcquire(am).acquire())(); },
      },
      { ops: 2_000_000 * k, baseline: 'floor' },
    ),
  );

  for (const workers of [16, 1000]) {
    const impls = lockImpls();
    results.push(
      await compare(
        `contended hand-off, ${workers} waiters`,
        Object.fromEntries(Object.entries(impls).map(([n, f]) => [n, contended(workers, f)])),
        { ops: 200_000 * k, baseline: 'floor' },
      ),
    );
  }

  for (const readPct of [95, 50]) {
    const period = 100;
    const isRead = (i) => i % period < readPct;
    const cs = () => Promise.resolve(); // one microtask inside the critical section, so readers can overlap
    const rwWorkers = (rl, ru, wl, wu) => async (n) => {
      let i = 0;
      const worker = async () => {
        while (i < n) {
          if (isRead(i++)) {
            await rl();
            await cs();
            ru();
          } else {
            await wl();
            await cs();
            wu();
          }
        }
      };
      await Promise.all(Array.from({ length: 16 }, worker));
    };
    const frw = new FloorRWLock();
    const rw = new RWMutex();
    const mx = new Mutex();
    const al2 = new AwaitLock();
    const am2 = new AsyncMutex();
    let amRelease = noop;
    results.push(
      await compare(
        `RWMutex ${readPct}% reads, 16 workers`,
        {
          'floor RW': rwWorkers(() => frw.rLock(), () => frw.rUnlock(), () => frw.lock(), () => frw.unlock()),
          'mutexprof RWMutex': rwWorkers(() => rw.rLock(), () => rw.rUnlock(), () => rw.lock(), () => rw.unlock()),
          'mutexprof Mutex (exclusive)': rwWorkers(() => mx.lock(), () => mx.unlock(), () => mx.lock(), () => mx.unlock()),
          'await-lock (exclusive)': rwWorkers(() => al2.acquireAsync(), () => al2.release(), () => al2.acquireAsync(), () => al2.release()),
          'async-mutex (exclusive)': rwWorkers(
            async () => { amRelease = await am2.acquire(); },
            () => amRelease(),
            async () => { amRelease = await am2.acquire(); },
            () => amRelease(),
          ),
        },
        { ops: 100_000 * k, baseline: 'floor RW' },
      ),
    );
  }
  return results;
}

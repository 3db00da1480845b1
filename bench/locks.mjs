// Lock benchmarks (issue: lock core). mutexprof against async-mutex, await-lock and the floor, side by side.
// Each implementation runs its own compiled copy of each scenario (compileFor), so none shares a call site.
import { Mutex as AsyncMutex, tryAcquire } from 'async-mutex';
import AwaitLock from 'await-lock';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { FloorGuardLock, FloorLock, FloorRWLock } from './floor.mjs';
import { compare, compileFor } from './harness.mjs';

const noop = () => {};

// One lock+unlock, as each implementation's users write it (`l` is the lock). With a baseline build, its rows
// stand beside this build's, measured in the same rounds.
function lockImplsFor({ Mutex, Semaphore, KeyedMutex }, baseline) {
  const mine = (label, { Mutex: M }) => ({
    [`${label} lock/unlock`]: [() => new M({ name: 'bench' }), 'await l.lock(); l.unlock();'],
    [`${label} using guard`]: [() => new M({ name: 'bench' }), 'const g = await l.lock(); g[Symbol.dispose]();'],
    [`${label} withLock`]: [() => new M({ name: 'bench' }), 'await l.withLock(noop);'],
  });
  return {
    floor: [() => new FloorLock(), 'await l.lock(); l.unlock();'],
    'floor + guard (reference)': [() => new FloorGuardLock(), 'const g = await l.lock(); g[Symbol.dispose]();'],
    ...mine('mutexprof', { Mutex }),
    ...(baseline ? mine(`mutexprof @${baseline.rev}`, baseline.lib) : {}),
    'mutexprof Semaphore(1)': [() => new Semaphore(1, { name: 'bench' }), 'const g = await l.acquire(); g[Symbol.dispose]();'],
    'mutexprof KeyedMutex, one key': [() => new KeyedMutex({ name: 'bench' }), "const g = await l.lock('hot'); g[Symbol.dispose]();"],
    'await-lock': [() => new AwaitLock(), 'await l.acquireAsync(); l.release();'],
    'async-mutex acquire/release': [() => new AsyncMutex(), 'const release = await l.acquire(); release();'],
    'async-mutex runExclusive': [() => new AsyncMutex(), 'await l.runExclusive(noop);'],
  };
}

/** One compiled scenario per implementation: `template(op)` is the scenario's body around one lock+unlock. */
function scenario(impls, template) {
  return Object.fromEntries(Object.entries(impls).map(([name, [make, op]]) => [name, compileFor({ l: make(), noop }, template(op))]));
}

/** The loop body of a scenario: `op` n times in a row, or shared by `workers` async workers. */
export const uncontended = (op) => `for (let i = 0; i < n; i++) { ${op} }`;
export const contended = (workers) => (op) => `
  let left = n;
  const worker = async () => { while (left-- > 0) { ${op} } };
  const running = [];
  for (let i = 0; i < ${workers}; i++) running.push(worker());
  await Promise.all(running);`;

/**
 * The drop-in against async-mutex in every async-mutex scenario of this file, its ratio to async-mutex in each
 * (issue 11's goal: at most 0.2×).
 */
export async function dropInBenchmarks({ quick = false, dropIn } = {}) {
  const k = quick ? 0.1 : 1;
  const pair = (op, tryOp) => ({
    'async-mutex': [() => new AsyncMutex(), op, tryOp],
    'mutexprof/async-mutex': [() => new dropIn.Mutex({ name: 'bench' }), op, tryOp],
  });
  const results = [];
  const group = async (title, body, ops, op) => {
    const impls = Object.fromEntries(
      Object.entries(pair(op)).map(([name, [make]]) => [name, compileFor({ l: make(), noop, tryAcquire: name === 'async-mutex' ? tryAcquire : dropIn.tryAcquire }, body(op))]),
    );
    results.push(await compare(title, impls, { ops: ops * k, baseline: 'async-mutex' }));
  };
  const acquireRelease = 'const release = await l.acquire(); release();';
  const runExclusive = 'await l.runExclusive(noop);';
  await group('async-mutex scenarios: uncontended acquire/release', uncontended, 200_000, acquireRelease);
  await group('async-mutex scenarios: uncontended runExclusive', uncontended, 200_000, runExclusive);
  await group('async-mutex scenarios: tryAcquire (async)', (op) => `const t = tryAcquire(l); for (let i = 0; i < n; i++) { ${op} }`, 200_000, '(await t.acquire())();');
  for (const workers of [16, 1000]) {
    await group(`async-mutex scenarios: contended hand-off, ${workers} waiters, acquire/release`, contended(workers), 200_000, acquireRelease);
    await group(`async-mutex scenarios: contended hand-off, ${workers} waiters, runExclusive`, contended(workers), 200_000, runExclusive);
  }
  return results;
}

/** bench/kinds.mjs in a process of its own. */
export function kindBenchmarks({ quick = false, dist }) {
  const script = fileURLToPath(new URL('./kinds.mjs', import.meta.url));
  return JSON.parse(execFileSync(process.execPath, [script, dist, ...(quick ? ['--quick'] : [])], { encoding: 'utf8' }));
}

export async function lockBenchmarks({ quick = false, lib, baseline = null } = {}) {
  const { Mutex, RWMutex } = lib;
  const lockImpls = lockImplsFor(lib, baseline);
  const k = quick ? 0.1 : 1;
  const results = [];

  results.push(await compare('uncontended lock+unlock', scenario(lockImpls, uncontended), { ops: 200_000 * k, baseline: 'floor' }));

  results.push(
    await compare(
      'tryLock+unlock',
      scenario(
        {
          floor: [() => new FloorLock(), 'l.tryLock(); l.unlock();'],
          mutexprof: [() => new Mutex(), 'l.tryLock(); l.unlock();'],
          ...(baseline ? { [`mutexprof @${baseline.rev}`]: [() => new baseline.lib.Mutex(), 'l.tryLock(); l.unlock();'] } : {}),
          'await-lock': [() => new AwaitLock(), 'l.tryAcquire(); l.release();'],
          // async-mutex has no synchronous tryLock: tryAcquire() returns a promise
          'async-mutex tryAcquire (async)': [() => tryAcquire(new AsyncMutex()), '(await l.acquire())();'],
        },
        uncontended,
      ),
      { ops: 2_000_000 * k, baseline: 'floor' },
    ),
  );

  for (const workers of [16, 1000]) {
    results.push(await compare(`contended hand-off, ${workers} waiters`, scenario(lockImpls, contended(workers)), { ops: 200_000 * k, baseline: 'floor' }));
  }

  // 16 workers; reads and writes in a fixed pattern; one microtask inside each critical section, so readers overlap.
  const rwBody = (readPct, [rl, ru, wl, wu]) => `
    let i = 0;
    const worker = async () => {
      while (i < n) {
        if (i++ % 100 < ${readPct}) { ${rl}; await Promise.resolve(); ${ru}; }
        else { ${wl}; await Promise.resolve(); ${wu}; }
      }
    };
    const running = [];
    for (let w = 0; w < 16; w++) running.push(worker());
    await Promise.all(running);`;
  const exclusive = ['await l.lock()', 'l.unlock()', 'await l.lock()', 'l.unlock()'];
  const rwImpls = {
    'floor RW': [() => new FloorRWLock(), ['await l.rLock()', 'l.rUnlock()', 'await l.lock()', 'l.unlock()']],
    'mutexprof RWMutex': [() => new RWMutex(), ['await l.rLock()', 'l.rUnlock()', 'await l.lock()', 'l.unlock()']],
    ...(baseline ? { [`mutexprof @${baseline.rev} RWMutex`]: [() => new baseline.lib.RWMutex(), ['await l.rLock()', 'l.rUnlock()', 'await l.lock()', 'l.unlock()']] } : {}),
    'mutexprof Mutex (exclusive)': [() => new Mutex(), exclusive],
    'await-lock (exclusive)': [() => new AwaitLock(), ['await l.acquireAsync()', 'l.release()', 'await l.acquireAsync()', 'l.release()']],
    'async-mutex (exclusive)': [() => new AsyncMutex(), ['const release = await l.acquire()', 'release()', 'const release = await l.acquire()', 'release()']],
  };
  for (const readPct of [95, 50]) {
    const impls = Object.fromEntries(Object.entries(rwImpls).map(([name, [make, ops]]) => [name, compileFor({ l: make() }, rwBody(readPct, ops))]));
    results.push(await compare(`RWMutex ${readPct}% reads, 16 workers`, impls, { ops: 100_000 * k, baseline: 'floor RW' }));
  }
  return results;
}

// Profiling benchmarks (issue: contention profiles): what sampling costs the locks, and what encoding costs the loop.
import { performance } from 'node:perf_hooks';
import { compare } from './harness.mjs';

let Mutex, setMutexProfileFraction, setBlockProfileRate, lookup;

const WORKERS = 16;

function handOff(setup) {
  return async (n) => {
    setup();
    const mu = new Mutex({ name: 'bench' });
    let left = n;
    const worker = async () => {
      while (left-- > 0) {
        await mu.lock();
        mu.unlock();
      }
    };
    await Promise.all(Array.from({ length: WORKERS }, worker));
    setMutexProfileFraction(0);
    setBlockProfileRate(0);
  };
}

// The release path of one sampled event against one bare V8 stack capture of the same depth. Synchronous
// loop: lock() queues a waiter, unlock() hands off to it, so every iteration is one contended release event.
// Batches stay below the recorder's pending bound; the deferred resolution runs outside the timed part and is
// reported on its own.
function bare4() { return bare3(); }
function bare3() { return bare2(); }
function bare2() { return bare1(); }
function bare1() {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 72; // what the recorder uses
  const e = new Error();
  Error.stackTraceLimit = limit;
  return e;
}
async function sampledEventCost(rounds) {
  const batch = 2000;
  const sink = [];
  const variants = {
    'contended release, fraction 0': () => setMutexProfileFraction(0),
    'contended release, fraction 1 (sampled)': () => setMutexProfileFraction(1),
    'contended release, fraction 0 + bare capture': () => setMutexProfileFraction(0),
  };
  const times = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  const resolveTimes = [];
  for (let r = 0; r < rounds + 1; r++) {
    for (const [name, setup] of Object.entries(variants)) {
      setup();
      const withBare = name.endsWith('bare capture');
      const mu = new Mutex({ name: 'release' });
      mu.tryLock();
      const t0 = performance.now();
      for (let i = 0; i < batch; i++) {
        mu.lock();
        if (withBare) sink.push(bare4());
        mu.unlock();
      }
      const t1 = performance.now();
      setMutexProfileFraction(0);
      mu.unlock();
      sink.length = 0;
      const t2 = performance.now();
      await lookup('mutex').snapshot(); // resolves the pending stacks
      const t3 = performance.now();
      if (r > 0) {
        times[name].push(((t1 - t0) * 1e6) / batch);
        if (name.includes('sampled')) resolveTimes.push(((t3 - t2) * 1e6) / batch);
      }
      await new Promise((res) => setImmediate(res));
    }
  }
  const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  const base = median(times['contended release, fraction 0']);
  const sampled = median(times['contended release, fraction 1 (sampled)']) - base;
  const bare = median(times['contended release, fraction 0 + bare capture']) - base;
  return {
    title: 'one sampled event vs one bare stack capture of the same depth (release-path cost, hand-off subtracted)',
    baseline: 'bare capture',
    rows: [
      { impl: 'bare V8 stack capture (new Error)', ns: bare, ratio: 1 },
      { impl: 'sampled event, in the release', ns: sampled, ratio: sampled / bare },
      { impl: 'its deferred resolution (off the release)', ns: median(resolveTimes), ratio: median(resolveTimes) / bare },
    ],
  };
}

// 2^14 distinct stacks: recursion through a() and b() chosen by the bits of i.
function a(i, d, f) {
  return d === 0 ? f() : (i >> d) & 1 ? a(i, d - 1, f) : b(i, d - 1, f);
}
function b(i, d, f) {
  return d === 0 ? f() : (i >> d) & 1 ? a(i, d - 1, f) : b(i, d - 1, f);
}

export async function profilingBenchmarks({ quick = false, lib } = {}) {
  ({ Mutex, setMutexProfileFraction, setBlockProfileRate, lookup } = lib);
  const k = quick ? 0.1 : 1;
  const results = [];
  results.push(
    await compare(
      `contended hand-off (${WORKERS} waiters) by profiling setting`,
      {
        'fraction 0 (off)': handOff(() => setMutexProfileFraction(0)),
        'fraction 1000': handOff(() => setMutexProfileFraction(1000)),
        'fraction 100': handOff(() => setMutexProfileFraction(100)),
        'fraction 10': handOff(() => setMutexProfileFraction(10)),
        'fraction 1': handOff(() => setMutexProfileFraction(1)),
        'block rate 1 (every wait)': handOff(() => setBlockProfileRate(1)),
        'block rate 1 ms': handOff(() => setBlockProfileRate(1_000_000)),
      },
      { ops: 100_000 * k, baseline: 'fraction 0 (off)' },
    ),
  );
  results.push(await sampledEventCost(quick ? 5 : 15));
  // Memory: 1 M events over 10 stacks stays flat after warm-up.
  if (typeof globalThis.gc === 'function') {
    setMutexProfileFraction(1);
    const mu = new Mutex({ name: 'mem' });
    const events = quick ? 100_000 : 1_000_000;
    const run = async (n) => {
      let left = n;
      const worker = async (site) => {
        while (left-- > 0) {
          await mu.lock();
          a(site, 3, () => mu.unlock()); // 10 sites → 10 stacks
        }
      };
      await Promise.all(Array.from({ length: 10 }, (_, i) => worker(i)));
      await new Promise((r) => setImmediate(r));
    };
    await run(50_000);
    await lookup('mutex').snapshot();
    globalThis.gc();
    const before = process.memoryUsage().heapUsed;
    await run(events);
    await lookup('mutex').snapshot();
    globalThis.gc();
    const after = process.memoryUsage().heapUsed;
    setMutexProfileFraction(0);
    results.push({
      title: `heap growth over ${events.toLocaleString('en')} sampled events on 10 stacks (after warm-up)`,
      baseline: 'bytes',
      rows: [{ impl: `${((after - before) / 1024).toFixed(0)} KiB, ${lookup('mutex').count()} samples`, ns: after - before, ratio: 1 }],
    });
  }

  return results;
}

// Profiling benchmarks (issue: contention profiles): what sampling costs the locks, and what encoding costs the loop.
import { performance } from 'node:perf_hooks';
import { compare } from './harness.mjs';

let lib, Mutex, setMutexProfileFraction, setBlockProfileRate, lookup, configureProfiler;
const getMaxDepth = () => configureProfiler({}).maxDepth;

const WORKERS = 16;

/** Undoes a row's setting that returns a stop function (lock metrics, the watchdog). */
let stopSetting = null;
let Registry = null;

/** Resets every setting these rows change. */
function allOff() {
  stopSetting?.();
  stopSetting = null;
  setMutexProfileFraction(0);
  setBlockProfileRate(0);
  lib.setBlockProfileFraction(1);
  configureProfiler({ maxSampledPerSecond: Infinity });
  lib.setLockTracking('off');
  lib.setDeadlockDetection('off');
  lib.setHoldProfileFraction(0);
}

function handOff(setup, workers = WORKERS) {
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
    await Promise.all(Array.from({ length: workers }, worker));
    allOff();
  };
}

function uncontended(setup) {
  return async (n) => {
    setup();
    const mu = new Mutex({ name: 'bench' });
    for (let i = 0; i < n; i++) {
      await mu.lock();
      mu.unlock();
    }
    allOff();
  };
}

/**
 * The service benchmark's request in miniature: a withRLock of a config, then a withLock of a contended mutex
 * (16 workers) around an await. With `labels`, both calls pass the `labels` lock option; `setup` sets profiling.
 */
function request(setup, labels) {
  const options = labels ? { labels: { route: '/items/:id' } } : undefined;
  return async (n) => {
    setup();
    const config = new lib.RWMutex({ name: 'config' });
    const mu = new Mutex({ name: 'inventory' });
    let left = n;
    const read = () => 1;
    const critical = async () => {
      await null;
    };
    const worker = async () => {
      while (left-- > 0) {
        await config.withRLock(read, options);
        await mu.withLock(critical, options);
      }
    };
    await Promise.all(Array.from({ length: WORKERS }, worker));
    allOff();
  };
}

function recommended() {
  setMutexProfileFraction(100);
  setBlockProfileRate(10_000_000);
  lib.setBlockProfileFraction(10);
  configureProfiler({ maxSampledPerSecond: 100 });
}

/** What each diagnostics setting costs a lock+unlock (issue 10: tracking off and hold 0 cost nothing). */
const DIAGNOSTICS = {
  'all off': () => {},
  "tracking 'on'": () => lib.setLockTracking('on'),
  "tracking 'stacks'": () => lib.setLockTracking('stacks'),
  "deadlock detection 'warn'": () => lib.setDeadlockDetection('warn'),
  'hold fraction 100': () => lib.setHoldProfileFraction(100),
  'hold fraction 1': () => lib.setHoldProfileFraction(1),
  'lock metrics (prom-client)': () => (stopSetting = lib.collectLockMetrics({ register: new Registry() })),
  'stall watchdog (waitMs and holdMs 1000)': () => (stopSetting = lib.watchLocks({ waitMs: 1000, holdMs: 1000, onStall() {} })),
};

// One sampled mutex event, all in: the release path (stack capture) plus its deferred resolution (CallSites,
// source maps, aggregation), for callers whose synchronous stack is 10, 30 or 60 distinct functions deep, at the
// default maxDepth and at others. Synchronous loop: lock() queues a waiter and unlock() hands off to it, so every
// iteration is one contended release event; the same loop at fraction 0 is subtracted.
function chain(depth, leaf) {
  let f = leaf;
  for (let i = 0; i < depth; i++) f = new Function('g', `return function frame${i}() { return g(); }`)(f);
  return f;
}
export async function sampledEventCost(rounds, depths = [10, 30, 60], maxDepths = [null, 64]) {
  const batch = 2000;
  const rows = [];
  const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  for (const maxDepth of maxDepths) {
    const previous = maxDepth === null ? null : configureProfiler({ maxDepth });
    for (const depth of depths) {
      const release = [];
      const resolution = [];
      for (let r = 0; r < rounds + 1; r++) {
        const times = {};
        for (const fraction of [0, 1]) {
          setMutexProfileFraction(fraction);
          const mu = new Mutex({ name: 'event' });
          const run = chain(depth, () => mu.unlock());
          mu.tryLock();
          const t0 = performance.now();
          for (let i = 0; i < batch; i++) {
            void mu.lock();
            run();
          }
          const t1 = performance.now();
          setMutexProfileFraction(0);
          mu.unlock();
          await lookup('mutex').snapshot(); // resolves the pending stacks
          const t2 = performance.now();
          times[fraction] = [((t1 - t0) * 1e6) / batch, ((t2 - t1) * 1e6) / batch];
          await new Promise((res) => setImmediate(res));
        }
        if (r === 0) continue; // warm-up
        release.push(times[1][0] - times[0][0]);
        resolution.push(times[1][1] - times[0][1]);
      }
      const all = median(release) + median(resolution);
      rows.push({
        impl: `sync caller ${depth} deep, maxDepth ${maxDepth ?? `${getMaxDepth()} (default)`}: all in (release ${(median(release) / 1000).toFixed(1)} + resolution ${(median(resolution) / 1000).toFixed(1)} µs)`,
        ns: all,
        ratio: all / 10_000,
      });
    }
    if (previous !== null) configureProfiler({ maxDepth: previous.maxDepth });
  }
  return { title: 'one sampled mutex event, all in (ratio: to the 10 µs goal)', baseline: '10 µs', rows };
}

// 2^14 distinct stacks: recursion through a() and b() chosen by the bits of i.
function a(i, d, f) {
  return d === 0 ? f() : (i >> d) & 1 ? a(i, d - 1, f) : b(i, d - 1, f);
}
function b(i, d, f) {
  return d === 0 ? f() : (i >> d) & 1 ? a(i, d - 1, f) : b(i, d - 1, f);
}

/** @param lib the build to measure */
export function use(build) {
  lib = build;
  ({ Mutex, setMutexProfileFraction, setBlockProfileRate, lookup, configureProfiler } = lib);
}

/**
 * `row`, run with another build's functions (`baseline`: { rev, lib }), for a side-by-side row: rows and their
 * setups reach the build through this module's bindings (`lib`, `Mutex`, …), which this swaps.
 */
function beside(row, baseline) {
  return async (n) => {
    const mine = lib;
    use(baseline.lib);
    try {
      await row(n);
    } finally {
      use(mine);
    }
  };
}

/** `rows`, plus (with a baseline) the same rows of the baseline build, named `… @rev`. */
function withBaseline(rows, baseline) {
  if (!baseline) return rows;
  return { ...rows, ...Object.fromEntries(Object.entries(rows).map(([name, row]) => [`${name} @${baseline.rev}`, beside(row, baseline)])) };
}

export async function profilingBenchmarks({ quick = false, lib: build, baseline = null } = {}) {
  use(build);
  ({ Registry } = await import('prom-client'));
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
        'block rate 10 ms, fraction 10 (recommended)': handOff(() => {
          setBlockProfileRate(10_000_000);
          lib.setBlockProfileFraction(10);
        }),
      },
      { ops: 100_000 * k, baseline: 'fraction 0 (off)' },
    ),
  );
  results.push(
    await compare(
      'a request (withRLock, then a contended withLock): the labels lock option',
      withBaseline(
        {
          'profiling off': request(() => {}, false),
          'profiling off, labels option': request(() => {}, true),
          'recommended settings': request(recommended, false),
          'recommended settings, labels option': request(recommended, true),
          "lock tracking 'on'": request(DIAGNOSTICS["tracking 'on'"], false),
        },
        baseline,
      ),
      { ops: 100_000 * k, baseline: 'profiling off' },
    ),
  );
  results.push(
    await compare('uncontended lock+unlock by diagnostics setting', withBaseline(Object.fromEntries(Object.entries(DIAGNOSTICS).map(([name, setup]) => [name, uncontended(setup)])), baseline), {
      ops: 200_000 * k,
      baseline: 'all off',
    }),
  );
  results.push(
    await compare(
      `contended hand-off (${WORKERS} waiters) by diagnostics setting`,
      withBaseline(Object.fromEntries(Object.entries(DIAGNOSTICS).map(([name, setup]) => [name, handOff(setup)])), baseline),
      { ops: 100_000 * k, baseline: 'all off' },
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

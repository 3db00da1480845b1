// For the bench processes: a profile of N distinct stacks, and a watch on the event loop's longest block.
import { monitorEventLoopDelay } from 'node:perf_hooks';

function a(i, d, f) {
  return d === 0 ? f() : (i >> d) & 1 ? a(i, d - 1, f) : b(i, d - 1, f);
}
function b(i, d, f) {
  return d === 0 ? f() : (i >> d) & 1 ? a(i, d - 1, f) : b(i, d - 1, f);
}

/**
 * Makes the mutex profile of `lib` (a loaded mutexprof) hold `n` distinct stacks: one contended release of a
 * Mutex named `name` at each (a recursion of a/b calls spelling i in binary). With `trickle`, 20 more events on
 * existing stacks every 10 ms, so that no build of the profile is a cached one. Returns a function that stops it.
 */
export async function profileOf(lib, n, { name = 'serving', trickle = false } = {}) {
  const bits = Math.ceil(Math.log2(n)) + 1;
  // room for every bit's frame, so that the n stacks stay distinct (the default maxDepth, 8, keeps 2^7 of them)
  lib.configureProfiler({ maxDepth: bits + 3, ...(n > 10_000 ? { maxEntries: n } : {}) });
  lib.setMutexProfileFraction(1);
  lib.setBlockProfileRate(0);
  const mu = new lib.Mutex({ name });
  mu.tryLock();
  const event = (i) => {
    void mu.lock();
    a(i * 2, bits, () => mu.unlock());
  };
  for (let i = 0; i < n; i++) {
    event(i);
    if (i % 500 === 499) await new Promise((r) => setImmediate(r));
  }
  await lib.lookup('mutex').snapshot(); // resolves what is pending
  const count = lib.lookup('mutex').count();
  if (count < n) throw new Error(`bench: a profile of ${n} distinct stacks has ${count} samples`);
  if (!trickle) return () => {};
  let k = 0;
  const timer = setInterval(() => {
    for (let j = 0; j < 20; j++) event(k++ % n);
  }, 10).unref();
  return () => clearInterval(timer);
}

/**
 * Watches the longest gap between two turns of the event loop (ms): { max, reset(), stop() }. It spins (a
 * setImmediate loop): precise, and a core's worth of CPU, so only for benches with a core per process; with
 * `{ spin: false }`, Node's event-loop delay histogram (1 ms resolution, no CPU).
 */
export function loopWatch({ spin = true } = {}) {
  if (!spin) {
    const h = monitorEventLoopDelay({ resolution: 1 });
    h.enable();
    return {
      get max() {
        return h.max / 1e6;
      },
      reset: () => h.reset(),
      stop: () => h.disable(),
    };
  }
  let max = 0;
  let last = performance.now();
  let running = true;
  const tick = () => {
    const now = performance.now();
    if (now - last > max) max = now - last;
    last = now;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  return {
    get max() {
      return max;
    },
    reset() {
      max = 0;
      last = performance.now();
    },
    stop() {
      running = false;
    },
  };
}

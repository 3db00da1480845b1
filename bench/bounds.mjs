// Bounds under real traffic (issue 8): waiters sharing one AbortSignal, and the heap a profile holds after many
// distinct stacks or label sets (each in a process of its own: bench/heap.mjs).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const heapScript = fileURLToPath(new URL('./heap.mjs', import.meta.url));
const noop = () => {};

/** Queue n waiters on a held Mutex with one shared signal or one signal each; then abort them all. */
async function abortRun(lib, shared, n) {
  const mu = new lib.Mutex();
  mu.tryLock();
  const one = new AbortController();
  const own = shared ? null : Array.from({ length: n }, () => new AbortController());
  const waits = new Array(n);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) waits[i] = mu.lock({ signal: shared ? one.signal : own[i].signal }).catch(noop);
  const t1 = performance.now();
  if (shared) one.abort();
  else for (const c of own) c.abort();
  const t2 = performance.now();
  await Promise.all(waits);
  mu.unlock();
  return { queue: ((t1 - t0) * 1e6) / n, abort: ((t2 - t1) * 1e6) / n };
}

export async function boundsBenchmarks({ lib, dist, label = 'mutexprof', quick = false, waiters = 100_000, events = 100_000 } = {}) {
  const n = quick ? waiters / 10 : waiters;
  const rounds = quick ? 3 : 5;
  const runs = { own: [], shared: [] };
  await abortRun(lib, false, 1000); // warm-up
  await abortRun(lib, true, 1000);
  for (let r = 0; r < rounds; r++) {
    runs.own.push(await abortRun(lib, false, n));
    runs.shared.push(await abortRun(lib, true, n));
  }
  const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  const per = (k, what) => median(runs[k].map((x) => x[what]));
  const results = [
    {
      title: `${label}: ${n.toLocaleString('en')} waiters on one AbortSignal vs one signal each (ns per waiter, median of ${rounds})`,
      baseline: 'own signals',
      unit: 'ns/waiter',
      rows: [
        { impl: 'queue, one signal each', ns: per('own', 'queue'), ratio: 1 },
        { impl: 'queue, one shared signal', ns: per('shared', 'queue'), ratio: per('shared', 'queue') / per('own', 'queue') },
        { impl: 'abort, one signal each', ns: per('own', 'abort'), ratio: 1 },
        { impl: 'abort, one shared signal', ns: per('shared', 'abort'), ratio: per('shared', 'abort') / per('own', 'abort') },
      ],
    },
  ];
  const heap = (kind) => JSON.parse(execFileSync(process.execPath, ['--expose-gc', heapScript, kind, String(quick ? events / 10 : events), dist], { encoding: 'utf8' }));
  const stacks = heap('stacks');
  const labels = heap('labels');
  const keys = lib.KeyedMutex ? JSON.parse(execFileSync(process.execPath, ['--expose-gc', heapScript, 'keys', String(quick ? 100_000 : 1_000_000), dist], { encoding: 'utf8' })) : null;
  const k = (quick ? events / 10 : events).toLocaleString('en');
  results.push({
    title: `${label}: heap held by the mutex profile after ${k} events (default maxEntries 10 000; ratio: to the 30 MB bound)`,
    baseline: '30 MB',
    unit: 'MB',
    rows: [
      { impl: `${k} distinct stacks (${stacks.samples} samples)`, ns: stacks.heapMB, ratio: stacks.heapMB / 30 },
      { impl: `${k} distinct label sets (${labels.samples} samples)`, ns: labels.heapMB, ratio: labels.heapMB / 30 },
    ],
  });
  if (keys !== null) {
    results.push({
      title: `${label}: heap after ${(quick ? 100_000 : 1_000_000).toLocaleString('en')} distinct KeyedMutex keys, each locked and released once (issue 11: where it started)`,
      baseline: 'MB',
      unit: 'MB',
      rows: [{ impl: `heap growth (keys kept: ${keys.size})`, ns: keys.heapMB, ratio: 1 }],
    });
  }
  return results;
}

// Heap held after many distinct stacks or label sets (by the mutex profile), or keys (by a KeyedMutex), in a
// process of its own (a clean heap):
//   node --expose-gc bench/heap.mjs <stacks|labels|keys> <events> [dist dir]
// Prints one JSON line: { heapMB, samples, comments } (keys: { heapMB, size }).
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

const [kind, eventsArg, distArg] = process.argv.slice(2);
const events = Number(eventsArg ?? 100_000);
const lib = await import(pathToFileURL(resolve(distArg ?? new URL('../dist', import.meta.url).pathname, 'index.js')).href);
const { Mutex, setMutexProfileFraction, lookup, withLabels } = lib;

// 2^17 distinct stacks: recursion through a() and b() chosen by the bits of i.
function a(i, d, f) {
  return d === 0 ? f() : (i >> d) & 1 ? a(i, d - 1, f) : b(i, d - 1, f);
}
function b(i, d, f) {
  return d === 0 ? f() : (i >> d) & 1 ? a(i, d - 1, f) : b(i, d - 1, f);
}

const snapshot = async () => {
  const p = lookup('mutex');
  return p.snapshot ? await p.snapshot() : null;
};
const settle = async () => {
  await new Promise((r) => setImmediate(r));
  const s = await snapshot(); // resolves everything pending
  if (s === null || s === undefined) lookup('mutex').count(); // an older build: count() drained
  return s;
};

if (kind === 'keys') {
  // 1 000 000 distinct keys, each locked and released once: a free key holds no memory
  const keyed = new lib.KeyedMutex({ name: 'heap' });
  const once = async (i) => (await keyed.lock(`user-${i}`))[Symbol.dispose]();
  for (let i = 0; i < 1000; i++) await once(i);
  globalThis.gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < events; i++) await once(i);
  await new Promise((r) => setTimeout(r, 50)); // the list of contended locks is pruned by a 10 ms tick
  globalThis.gc();
  console.log(JSON.stringify({ heapMB: (process.memoryUsage().heapUsed - before) / 2 ** 20, size: keyed.size }));
  process.exit(0);
}

setMutexProfileFraction(1);
// stacks deep enough that every one of them is distinct (the default maxDepth, 8, would keep 2^7 of them)
if (kind === 'stacks') lib.configureProfiler({ maxDepth: 24 });
const mu = new Mutex({ name: 'heap' });
mu.tryLock();
const oneEvent = (i) => {
  const w = mu.lock(); // queued: the next unlock hands off to it, and the lock stays held
  void w;
  if (kind === 'stacks') a(i * 2, 17, () => mu.unlock());
  else withLabels({ req: `request-${i}` }, () => mu.unlock());
};
// warm up (JIT, frame tables) with a few events, then measure
for (let i = 0; i < 200; i++) oneEvent(i);
await settle();
globalThis.gc();
const before = process.memoryUsage().heapUsed;
for (let i = 0; i < events; i++) {
  oneEvent(i);
  if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
}
const s = await settle();
globalThis.gc();
const after = process.memoryUsage().heapUsed;
console.log(JSON.stringify({ heapMB: (after - before) / 2 ** 20, samples: lookup('mutex').count(), comments: s?.comments ?? [] }));

// The lock kinds against Mutex on the contended hand-off, in a process of their own: issue 11's goals
// (Semaphore(1) within 1.2× of Mutex, KeyedMutex on one hot key within 1.5×). Apart from the other benchmarks
// because V8's type feedback is per call site: once a process has run every kind through the locks' shared
// code (the guard's dispose, the queue), those sites are polymorphic and every kind pays for it (the locks group
// shows that too). Prints the harness's result blocks as JSON.
//   node bench/kinds.mjs <dist dir> [--quick]
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { compare, compileFor } from './harness.mjs';

const [dist, flag] = process.argv.slice(2);
const lib = await import(pathToFileURL(resolve(dist, 'index.js')).href);
const k = flag === '--quick' ? 0.1 : 1;
const contended = (workers, op) => `
  let left = n;
  const worker = async () => { while (left-- > 0) { ${op} } };
  const running = [];
  for (let i = 0; i < ${workers}; i++) running.push(worker());
  await Promise.all(running);`;
const results = [];
for (const workers of [16, 1000]) {
  const impls = {
    'mutexprof Mutex': compileFor({ l: new lib.Mutex({ name: 'bench' }) }, contended(workers, 'const g = await l.lock(); g[Symbol.dispose]();')),
    'mutexprof Semaphore(1)': compileFor({ l: new lib.Semaphore(1, { name: 'bench' }) }, contended(workers, 'const g = await l.acquire(); g[Symbol.dispose]();')),
    'mutexprof KeyedMutex, one hot key': compileFor({ l: new lib.KeyedMutex({ name: 'bench' }) }, contended(workers, "const g = await l.lock('hot'); g[Symbol.dispose]();")),
  };
  results.push(await compare(`lock kinds: contended hand-off, ${workers} waiters (own process)`, impls, { ops: 200_000 * k, baseline: 'mutexprof Mutex' }));
}
console.log(JSON.stringify(results));

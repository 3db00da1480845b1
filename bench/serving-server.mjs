// The service side of the serving benchmark (bench/serving.mjs), in a process of its own: a profile of N
// distinct stacks served by pprofHandler, a steady trickle of new events, and a monitor of the longest
// event-loop block. Driven over IPC: { cmd: 'reset' | 'read' | 'heap' }.
//   node --expose-gc bench/serving-server.mjs <dist dir> <samples>
import http from 'node:http';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [distArg, samplesArg] = process.argv.slice(2);
const lib = await import(pathToFileURL(resolve(distArg, 'index.js')).href);
const { Mutex, setMutexProfileFraction, setBlockProfileRate, pprofHandler, configureProfiler } = lib;
const n = Number(samplesArg ?? 10_000);

function a(i, d, f) {
  return d === 0 ? f() : (i >> d) & 1 ? a(i, d - 1, f) : b(i, d - 1, f);
}
function b(i, d, f) {
  return d === 0 ? f() : (i >> d) & 1 ? a(i, d - 1, f) : b(i, d - 1, f);
}

if (n > 10_000) configureProfiler({ maxEntries: n });
setMutexProfileFraction(1);
setBlockProfileRate(0);
const mu = new Mutex({ name: 'serving' });
mu.tryLock();
const bits = Math.ceil(Math.log2(n)) + 1;
for (let i = 0; i < n; i++) {
  void mu.lock();
  a(i * 2, bits, () => mu.unlock()); // a contended release at one of n distinct stacks
  if (i % 500 === 499) await new Promise((r) => setImmediate(r));
}
await new Promise((r) => setTimeout(r, 50));

// A trickle of events on existing stacks, so that every build has something new (no cached answer).
let k = 0;
setInterval(() => {
  for (let j = 0; j < 20; j++) {
    void mu.lock();
    a((k++ % n) * 2, bits, () => mu.unlock());
  }
}, 10).unref();

// The longest gap between two turns of the event loop.
let max = 0;
let last = performance.now();
const tick = () => {
  const now = performance.now();
  if (now - last > max) max = now - last;
  last = now;
  setImmediate(tick);
};
setImmediate(tick);

const server = http.createServer(pprofHandler({ maxSeconds: 600 }));
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
process.on('message', (m) => {
  if (m.cmd === 'reset') {
    max = 0;
    last = performance.now();
    process.send({ ok: true });
  } else if (m.cmd === 'read') process.send({ max });
  else if (m.cmd === 'exit') process.exit(0);
  else if (m.cmd === 'heap') {
    globalThis.gc();
    process.send({ heap: process.memoryUsage().heapUsed });
  }
});

// pprof-format's encodeAsync() against mutexprof's chunked encoder (src/pprof/proto.ts), on one profile of
// N samples: the longest event-loop block while each serializes and gzips it. Run from sources, in a process
// of its own: node --import tsx bench/encode-async.ts [samples]. Prints one JSON line.
import { promisify } from 'node:util';
import { gzip as gzipCb, constants } from 'node:zlib';
import { Mutex, setMutexProfileFraction, setBlockProfileRate, lookup, configureProfiler } from '../src/index.js';
import { buildProfile, encodeProfile } from '../src/pprof/proto.js';

const gzip = promisify(gzipCb);
const n = Number(process.argv[2] ?? 10_000);

function a(i: number, d: number, f: () => void): void {
  return d === 0 ? f() : (i >> d) & 1 ? a(i, d - 1, f) : b(i, d - 1, f);
}
function b(i: number, d: number, f: () => void): void {
  return d === 0 ? f() : (i >> d) & 1 ? a(i, d - 1, f) : b(i, d - 1, f);
}

if (n > 10_000) configureProfiler({ maxEntries: n });
setMutexProfileFraction(1);
setBlockProfileRate(0);
const mu = new Mutex({ name: 'encode' });
mu.tryLock();
const bits = Math.ceil(Math.log2(n)) + 1;
for (let i = 0; i < n; i++) {
  void mu.lock();
  a(i * 2, bits, () => mu.unlock());
  if (i % 500 === 499) await new Promise((r) => setImmediate(r));
}
const snapshot = await lookup('mutex').snapshot();
const types = lookup('mutex').sampleTypes;

async function longestBlock(work: () => Promise<unknown>): Promise<{ max: number; total: number }> {
  let max = 0;
  let last = performance.now();
  let running = true;
  const tick = (): void => {
    const t = performance.now();
    if (t - last > max) max = t - last;
    last = t;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  const t0 = performance.now();
  await work();
  const total = performance.now() - t0;
  running = false;
  return { max, total };
}

const rounds = 5;
const results: Record<string, number[]> = { encodeAsync: [], chunked: [] };
for (let r = 0; r < rounds; r++) {
  for (const [name, encode] of Object.entries({
    encodeAsync: async () => gzip(await (await buildProfile(snapshot, types)).encodeAsync(), { level: constants.Z_BEST_SPEED }),
    chunked: async () => encodeProfile(await buildProfile(snapshot, types)),
  })) {
    results[name].push((await longestBlock(encode)).max);
  }
}
const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
console.log(JSON.stringify({ samples: snapshot.samples.length, encodeAsync: median(results.encodeAsync), chunked: median(results.chunked) }));

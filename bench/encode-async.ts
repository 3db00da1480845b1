// pprof-format's encodeAsync() against mutexprof's chunked encoder (src/pprof/proto.ts), on one profile of
// N samples: the longest event-loop block while each serializes and gzips it. Run from sources, in a process
// of its own: node --import tsx bench/encode-async.ts [samples]. Prints one JSON line.
import { promisify } from 'node:util';
import { gzip as gzipCb, constants } from 'node:zlib';
import * as lib from '../src/index.js';
import { buildProfile, encodeProfile } from '../src/pprof/proto.js';
import { profileOf, loopWatch } from './profile-of.mjs';

const gzip = promisify(gzipCb);
const n = Number(process.argv[2] ?? 10_000);

await profileOf(lib, n, { name: 'encode' });
const snapshot = await lib.lookup('mutex').snapshot();
const types = lib.lookup('mutex').sampleTypes;

async function longestBlock(work: () => Promise<unknown>): Promise<number> {
  const watch = loopWatch();
  await work();
  watch.stop();
  return watch.max;
}

const rounds = 5;
const results: Record<string, number[]> = { encodeAsync: [], chunked: [] };
for (let r = 0; r < rounds; r++) {
  for (const [name, encode] of Object.entries({
    encodeAsync: async () => gzip(await (await buildProfile(snapshot, types)).encodeAsync(), { level: constants.Z_BEST_SPEED }),
    chunked: async () => encodeProfile(await buildProfile(snapshot, types)),
  })) {
    results[name].push(await longestBlock(encode));
  }
}
const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
console.log(JSON.stringify({ samples: snapshot.samples.length, encodeAsync: median(results.encodeAsync), chunked: median(results.chunked) }));

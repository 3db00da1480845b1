// The service side of the serving benchmark (bench/serving.mjs), in a process of its own: a profile of N
// distinct stacks served by pprofHandler, a steady trickle of new events, and a monitor of the longest
// event-loop block. Driven over IPC: { cmd: 'reset' | 'read' | 'heap' | 'push' }.
//   node --expose-gc bench/serving-server.mjs <dist dir> <samples>
import http from 'node:http';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { profileOf, loopWatch } from './profile-of.mjs';

const [distArg, samplesArg] = process.argv.slice(2);
const lib = await import(pathToFileURL(resolve(distArg, 'index.js')).href);
const { pprofHandler } = lib;
const n = Number(samplesArg ?? 10_000);

await profileOf(lib, n, { trickle: true }); // a trickle of new events, so that no answer comes from a cached build
const watch = loopWatch();

const server = http.createServer(pprofHandler({ maxSeconds: 600 }));
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
// A Pyroscope pusher to a local sink that accepts everything (the push's cost is on this side: the window's
// delta, its encoding, the request); { cmd: 'push' } flushes it once.
let push = null;
async function pushOnce() {
  if (lib.startProfilePush === undefined) return false; // an older build
  if (push === null) {
    const sink = http.createServer((req, res) => req.resume().on('end', () => res.end()));
    await new Promise((r) => sink.listen(0, '127.0.0.1', r));
    sink.unref();
    push = lib.startProfilePush({ url: `http://127.0.0.1:${sink.address().port}`, appName: 'bench', intervalMs: 3_600_000 });
  }
  await push.flush();
  return true;
}

process.on('message', (m) => {
  if (m.cmd === 'push') pushOnce().then((ok) => process.send({ ok }));
  else if (m.cmd === 'reset') {
    watch.reset();
    process.send({ ok: true });
  } else if (m.cmd === 'read') process.send({ max: watch.max });
  else if (m.cmd === 'exit') process.exit(0);
  else if (m.cmd === 'heap') {
    globalThis.gc();
    process.send({ heap: process.memoryUsage().heapUsed });
  }
});

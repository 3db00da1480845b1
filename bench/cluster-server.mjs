// The cluster side of the cluster serving bench (bench/serving.mjs): a node:cluster primary serving
// pprofHandler({ cluster: true }), and WORKERS workers each with a profile of N distinct stacks. Every process watches its longest event-loop block; the primary collects the workers' over the app's
// own IPC messages. Driven over IPC: { cmd: 'reset' | 'read' | 'exit' }.
//   node bench/cluster-server.mjs <dist dir> <samples>
import cluster from 'node:cluster';
import http from 'node:http';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { profileOf, loopWatch } from './profile-of.mjs';

const [distArg, samplesArg] = process.argv.slice(2);
const lib = await import(pathToFileURL(resolve(distArg, 'index.js')).href);
const n = Number(samplesArg ?? 10_000);

// no spinning: it would take a core from the processes measured
const watch = loopWatch({ spin: false });

if (cluster.isPrimary) {
  const workers = Array.from({ length: Number(process.env.WORKERS) }, () => cluster.fork());
  const replies = new Map();
  for (const w of workers) w.on('message', (m) => replies.get(w.id)?.(m));
  const ask = (w, m) => new Promise((r) => (replies.set(w.id, r), w.send(m)));
  await Promise.all(workers.map((w) => new Promise((r) => replies.set(w.id, r)))); // each says it is ready
  const server = http.createServer(lib.pprofHandler({ cluster: { timeoutMs: 30_000 } }));
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
  process.on('message', async (m) => {
    if (m.cmd === 'reset') {
      await Promise.all(workers.map((w) => ask(w, 'reset')));
      watch.reset();
      process.send({ ok: true });
    } else if (m.cmd === 'read') {
      const theirs = await Promise.all(workers.map((w) => ask(w, 'read')));
      process.send({ primary: watch.max, workers: Math.max(...theirs) });
    } else if (m.cmd === 'exit') {
      for (const w of workers) w.kill();
      process.exit(0);
    }
  });
} else {
  await profileOf(lib, n); // no trickle needed: a worker builds each answer anew
  process.on('message', (m) => {
    if (m === 'reset') {
      watch.reset();
      process.send(0);
    } else if (m === 'read') process.send(watch.max);
  });
  process.send('ready');
}

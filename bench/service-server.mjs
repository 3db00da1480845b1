// The service of the service benchmark (bench/service.mjs): a node:http service whose requests read a config
// under an RWMutex (a writer every 500 requests, holding it across a setImmediate) and take a named Mutex around
// their critical section. One process per run, configured from the environment (JSON in SERVICE):
//   { dist, scenario: 'immediate' | 'stat' | 'sync', lock: 'mutexprof' | 'async-mutex' | 'await-lock', setup: {...} }
// Prints { port } once listening.
import http from 'node:http';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const cfg = JSON.parse(process.env.SERVICE);
const lib = await import(pathToFileURL(resolve(cfg.dist, 'index.js')).href);
const { Mutex, RWMutex } = lib;
const setup = cfg.setup ?? {};
const self = fileURLToPath(import.meta.url);

// Profiling settings, as a user sets them at startup.
if (setup.fraction) lib.setMutexProfileFraction(setup.fraction);
if (setup.blockRate) lib.setBlockProfileRate(setup.blockRate);
if (setup.blockFraction) lib.setBlockProfileFraction(setup.blockFraction);
if (setup.maxDepth) lib.configureProfiler({ maxDepth: setup.maxDepth });
if (setup.budget) lib.configureProfiler({ maxSampledPerSecond: setup.budget });
if (setup.tracking) lib.setLockTracking(setup.tracking);
if (setup.deadlock) lib.setDeadlockDetection(setup.deadlock);
if (setup.hold) lib.setHoldProfileFraction(setup.hold);
if (setup.metrics) {
  const prom = await import('prom-client');
  lib.collectLockMetrics({ register: new prom.Registry() });
}

// The inventory lock: mutexprof's, or a peer's with the same shape.
async function peerLock(kind) {
  if (kind === 'async-mutex') {
    const { Mutex: AsyncMutex } = await import('async-mutex');
    const m = new AsyncMutex();
    return { withLock: (fn) => m.runExclusive(fn) };
  }
  if (kind === 'await-lock') {
    const { default: AwaitLock } = await import('await-lock');
    const l = new AwaitLock();
    return {
      async withLock(fn) {
        await l.acquireAsync();
        try {
          return await fn();
        } finally {
          l.release();
        }
      },
    };
  }
  return null;
}
const config = new RWMutex({ name: 'config' });
const inventory = (await peerLock(cfg.lock)) ?? new Mutex({ name: 'inventory' });
const routeLabels = { route: '/items/:id' };
const lockOptions = setup.labels === 'option' ? { labels: routeLabels } : undefined;

let settings = { currency: 'EUR' };
let stock = 0;
let n = 0;
const immediate = () => new Promise((r) => setImmediate(r));
function spin(ns) {
  const end = process.hrtime.bigint() + BigInt(ns);
  while (process.hrtime.bigint() < end);
}

async function critical() {
  if (cfg.scenario === 'immediate') await immediate();
  else if (cfg.scenario === 'stat') await stat(self);
  else spin(2000);
  stock++;
}

async function handle() {
  if (n++ % 500 === 0) {
    await config.withLock(async () => {
      await immediate();
      settings = { ...settings };
    }, lockOptions);
  }
  const s = await config.withRLock(() => settings, lockOptions);
  await inventory.withLock(critical, lockOptions);
  return s.currency;
}

// Latency of each request as the service sees it (arrival to response end), and the process's CPU time, between
// 'reset' and 'stats'.
let latencies = [];
let recording = false;
let cpu0 = process.cpuUsage();
const server = http.createServer((req, res) => {
  const t0 = process.hrtime.bigint();
  if (recording) res.once('finish', () => latencies.push(Number(process.hrtime.bigint() - t0) / 1e3));
  const run = setup.labels === 'withLabels' ? () => lib.withLabels(routeLabels, handle) : handle;
  run().then(
    (body) => res.end(body),
    (err) => {
      res.statusCode = 500;
      res.end(String(err));
    },
  );
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
process.on('message', (m) => {
  if (m === 'exit') {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  } else if (m === 'reset') {
    latencies = [];
    recording = true;
    cpu0 = process.cpuUsage();
    process.send({ ok: true });
  } else if (m === 'stats') {
    recording = false;
    const cpu = process.cpuUsage(cpu0);
    const sorted = Float64Array.from(latencies).sort();
    const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
    process.send({ p50: at(0.5), p99: at(0.99), n: sorted.length, cpu: cpu.user + cpu.system });
  }
});

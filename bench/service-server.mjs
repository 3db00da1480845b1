// The service of the service benchmark (bench/service.mjs): a node:http service whose requests read a config
// under an RWMutex (a writer every 500 requests, holding it across a setImmediate) and take a named Mutex around
// their critical section. One process per run, configured from the environment (JSON in SERVICE):
//   { dist, scenario: 'immediate' | 'stat' | 'sync', lock: 'mutexprof' | 'async-mutex' | 'await-lock',
//     style: 'withLock' | 'using' | 'go' (how requests take and release mutexprof's locks), setup: {...} }
// Prints { port, switchable } once listening.
//
// Two modes: 'on' is the setting (mutexprof's settings applied as a user sets them, or a peer's lock), 'off' is
// profiling off with mutexprof's locks. { alternate: ms } makes the process switch between them every `ms` while
// the benchmark loads it without a pause, and count, per mode, the requests answered, the time spent, the CPU time
// used and each request's latency (arrival to response end): both modes share one process, one JIT, one heap and
// the same seconds of the machine (two processes of one build differed by 16 % in req/s in an A/A run here, and
// the machine drifts within seconds). 'stats' stops it and answers the counts. A setting that cannot be undone within the
// process (withLabels: its AsyncLocalStorage stays on) answers switchable: false and stays 'on'; the benchmark then
// compares two processes. { mode } sets one mode; { clockScale } slows the profiler's clock (bench/instructions.mjs).
import { createRequire } from 'node:module';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';

const cfg = JSON.parse(process.env.SERVICE);
const lib = await import(pathToFileURL(resolve(cfg.dist, 'index.js')).href);
const { Mutex, RWMutex } = lib;
const setup = cfg.setup ?? {};
const self = fileURLToPath(import.meta.url);
// withLabels keeps its AsyncLocalStorage on, and a preload cannot be undone: such a process stays 'on' (and `apart`
// asks for two processes with nothing on, to show what a ratio between two processes is worth)
const switchable = setup.labels !== 'withLabels' && setup.register !== true && setup.apart !== true;
const require = createRequire(import.meta.url);
// tracing: OpenTelemetry's Node SDK with the http instrumentation, in both modes (spans batched, then dropped, as an
// exporter that ships them elsewhere would); `otel` (a minWaitMs): mutexprof/opentelemetry in 'on' only (`spanBudget`:
// its maxSpansPerSecond, as a string: JSON has no Infinity); `spinNs`: a busy loop of that many ns per request in 'on'
// only, outside the locks (the calibration row: a cost known beforehand, to see what a ratio resolves)
const instrumentation = setup.tracing ? await startTracing() : null;
// loaded after the instrumentation: http is patched when it is required
const http = require('node:http');
let stopMetrics = null;
let stopWatch = null;

/**
 * Profiling settings, as a user sets them at startup (or back to off). An older build (the benchmark's
 * --baseline) may lack the newer calls: the benchmark runs only the settings it supports (service.mjs, supports),
 * and here the calls it lacks are skipped. The stack depth is the build's default unless the setting names one.
 */
async function startTracing() {
  const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');
  const { BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
  const { registerInstrumentations } = require('@opentelemetry/instrumentation');
  const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
  const dropped = { export: (_spans, done) => done({ code: 0 }), shutdown: async () => {} };
  const provider = new NodeTracerProvider({ spanProcessors: [new BatchSpanProcessor(dropped)] });
  provider.register();
  registerInstrumentations({ instrumentations: [new HttpInstrumentation()] });
  if (setup.otel === undefined) return null;
  const { MutexprofInstrumentation } = await import(pathToFileURL(resolve(cfg.dist, 'opentelemetry.js')).href);
  const mp = new MutexprofInstrumentation({ enabled: false, minWaitMs: setup.otel, ...(setup.spanBudget === undefined ? {} : { maxSpansPerSecond: Number(setup.spanBudget) }) });
  mp.setTracerProvider(provider);
  return mp;
}

async function applySetup(on) {
  const s = on ? setup : {};
  if (instrumentation !== null) {
    if (on) instrumentation.enable();
    else instrumentation.disable();
  }
  lib.setMutexProfileFraction(s.fraction ?? 0);
  lib.setBlockProfileRate(s.blockRate ?? 0);
  lib.setBlockProfileFraction?.(s.blockFraction ?? 1);
  lib.configureProfiler({ ...(s.maxDepth === undefined ? {} : { maxDepth: s.maxDepth }), maxSampledPerSecond: s.budget ?? Infinity });
  lib.setLockTracking?.(s.tracking ?? 'off');
  lib.setDeadlockDetection?.(s.deadlock ?? 'off');
  lib.setHoldProfileFraction?.(s.hold ?? 0);
  stopMetrics?.();
  stopMetrics = null;
  if (s.metrics) {
    const prom = await import('prom-client');
    stopMetrics = lib.collectLockMetrics({ register: new prom.Registry() });
  }
  stopWatch?.();
  stopWatch = s.watch ? lib.watchLocks({ ...s.watch, onStall() {} }) : null;
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
const ours = new Mutex({ name: 'inventory' });
const peer = await peerLock(cfg.lock);
const routeLabels = { route: '/items/:id' };
const withOption = { labels: routeLabels };

// What the current mode uses.
let mode = 'on';
let inventory = peer ?? ours;
let lockOptions = setup.labels === 'option' ? withOption : undefined;
async function setMode(m) {
  mode = m;
  inventory = m === 'on' && peer !== null ? peer : ours;
  lockOptions = m === 'on' && setup.labels === 'option' ? withOption : undefined;
  await applySetup(m === 'on');
}
await setMode('on');

let settings = { currency: 'EUR' };
let _stock = 0; // the critical section's state
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
  _stock++;
}

async function handle() {
  if (n++ % 500 === 0) {
    await config.withLock(async () => {
      await immediate();
      settings = { ...settings };
    }, lockOptions);
  }
  if (cfg.style === 'go' && inventory === ours) return handleGo();
  if (cfg.style === 'using' && inventory === ours) return handleUsing();
  const s = await config.withRLock(() => settings, lockOptions);
  if (mode === 'on' && setup.spinNs !== undefined) spin(setup.spinNs);
  await inventory.withLock(critical, lockOptions);
  return s.currency;
}

/** The same request, Go style: rLock() and rUnlock(), lock() and unlock(). */
async function handleGo() {
  await config.rLock(lockOptions);
  const s = settings;
  config.rUnlock();
  await ours.lock(lockOptions);
  try {
    await critical();
  } finally {
    ours.unlock();
  }
  return s.currency;
}

/** The same request with `using`, as TypeScript compiles it for Node 20: Symbol.dispose read where it is declared. */
async function handleUsing() {
  let s;
  {
    const g = await config.rLock(lockOptions);
    const dispose = g[Symbol.dispose];
    try {
      s = settings;
    } finally {
      dispose.call(g);
    }
  }
  const g = await ours.lock(lockOptions);
  const dispose = g[Symbol.dispose];
  try {
    await critical();
  } finally {
    dispose.call(g);
  }
  return s.currency;
}

// Per mode, while alternating: requests answered, time (ms), CPU time (µs), latencies (µs).
const fresh = () => ({ n: 0, ms: 0, cpu: 0, latencies: [] });
let stats = { on: fresh(), off: fresh() };
let recording = false;
let timer = null;
let since = 0;
let cpuMark = process.cpuUsage();
/** Closes the current mode's interval: its time and CPU time so far. */
function account() {
  const now = performance.now();
  const d = process.cpuUsage(cpuMark);
  if (recording) {
    stats[mode].ms += now - since;
    stats[mode].cpu += d.user + d.system;
  }
  since = now;
  cpuMark = process.cpuUsage();
}

const server = http.createServer((req, res) => {
  const t0 = process.hrtime.bigint();
  if (recording) {
    const into = stats[mode]; // counted in the mode it arrived in
    res.once('finish', () => {
      into.n++;
      into.latencies.push(Number(process.hrtime.bigint() - t0) / 1e3);
    });
  }
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
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port, switchable }));

function summary(s) {
  const sorted = Float64Array.from(s.latencies).sort();
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return { rps: (s.n * 1000) / s.ms, p99: at(0.99), n: s.n, cpu: s.cpu, ms: s.ms };
}

let clockScale = 1;
let scaledClock = false;
process.on('message', async (m) => {
  if (m === 'exit') {
    clearTimeout(timer);
    stopMetrics?.();
    stopWatch?.();
    server.close(() => process.exit(0));
    server.closeAllConnections();
  } else if (m === 'stats') {
    clearTimeout(timer);
    timer = null;
    account();
    recording = false;
    process.send({ on: summary(stats.on), off: summary(stats.off) });
  } else if (typeof m === 'object' && m !== null && typeof m.alternate === 'number') {
    // off, on, on, off, off, on, …: each interval of one has one of the other just before or after it. Intervals
    // last 0.5–1.5 × `alternate` ms at random: at a fixed period, anything periodic in the process or the load
    // generator (autocannon's 1 s ticks) falls into the same mode every time (an A/A run read 1.08 at 250 ms).
    stats = { on: fresh(), off: fresh() };
    const order = ['off', 'on', 'on', 'off'];
    let i = 0;
    if (switchable) await setMode(order[i++]);
    account();
    recording = true;
    const next = () => {
      timer = setTimeout(
        async () => {
          account();
          if (switchable) await setMode(order[i++ % 4]);
          next();
        },
        m.alternate * (0.5 + Math.random()),
      );
    };
    next();
    process.send({ ok: true });
  } else if (typeof m === 'object' && m !== null && typeof m.clockScale === 'number') {
    // the profiler's clock runs clockScale times slower: a process slowed down that much (bench/instructions.mjs, under
    // valgrind) sees the waits, and the seconds of the span budget, of the service at full speed
    // (one clock function, its scale a variable: a new function would deoptimize the code that inlined the last)
    if (!scaledClock) lib.configureProfiler({ now: () => (performance.now() * 1e6) / clockScale });
    scaledClock = true;
    clockScale = m.clockScale;
    process.send({ clockScale });
  } else if (typeof m === 'object' && m !== null && (m.mode === 'on' || m.mode === 'off')) {
    if (switchable) await setMode(m.mode);
    process.send({ mode });
  }
});

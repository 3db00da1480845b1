// The service benchmark (issue 9): what profiling costs a real node:http service, in req/s, p99 latency and CPU
// time per request.
//
// The service (bench/service-server.mjs) runs in a process of its own; autocannon loads it from this process over
// loopback (50 connections). Latency is the service's own (request arrival to response end, in µs): autocannon's
// histogram has millisecond steps, too coarse here. Each setting is measured against profiling off in one process
// loaded without a pause for 12 s, which switches between the two every ~250 ms (off, on, on, off, …) and counts
// each mode's requests, time and CPU time (withLabels, which cannot be switched off within a process, in two
// processes loaded in turn). Repeated `reps` times with fresh processes; the median ratio is reported, with the
// range. The "A/A" row compares off with off: the noise of a ratio.
import { execFileSync, fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath, pathToFileURL } from 'node:url';
import autocannon from 'autocannon';

const server = fileURLToPath(new URL('./service-server.mjs', import.meta.url));

/**
 * The recommended production settings (README): mutex fraction 100; block rate 10 ms, 1 in 10 of those waits; at
 * most 100 sampled events a second per profile (configureProfiler({ maxSampledPerSecond: 100 })).
 */
export const RECOMMENDED = { fraction: 100, blockRate: 10_000_000, blockFraction: 10, budget: 100 };
const BLOCK = { blockRate: RECOMMENDED.blockRate, blockFraction: RECOMMENDED.blockFraction, budget: RECOMMENDED.budget };

export const SETTINGS = {
  'profiling off (A/A: the noise of a ratio)': {},
  'fraction 100': { setup: { fraction: 100 } },
  'fraction 10': { setup: { fraction: 10 } },
  'fraction 10, budget 100/s': { setup: { fraction: 10, budget: 100 } },
  'block rate 100 µs (Go-style: every wait ≥ 100 µs)': { setup: { blockRate: 100_000 } },
  'block 10 ms × 1/10, budget 100/s (recommended)': { setup: BLOCK },
  'recommended: fraction 100 + block, budget 100/s': { setup: RECOMMENDED },
  'labels (lock option) alone, profiling off': { setup: { labels: 'option' } },
  'recommended + labels (lock option)': { setup: { ...RECOMMENDED, labels: 'option' } },
  'recommended + labels (withLabels, AsyncLocalStorage)': { setup: { ...RECOMMENDED, labels: 'withLabels' } },
  'lock tracking on': { setup: { tracking: 'on' } },
  'lock tracking stacks': { setup: { tracking: 'stacks' } },
  'hold profile, fraction 100, budget 100/s': { setup: { hold: 100, budget: 100 } },
  'deadlock detection warn': { setup: { deadlock: 'warn' } },
  'deadlock detection warn, lock()/unlock()': { style: 'go', setup: { deadlock: 'warn' } },
  'deadlock detection warn, using': { style: 'using', setup: { deadlock: 'warn' } },
  'lock metrics (prom-client)': { setup: { metrics: true } },
  'stall watchdog (waitMs and holdMs 1000)': { setup: { watch: { waitMs: 1000, holdMs: 1000 } } },
  'async-mutex (profiling off)': { lock: 'async-mutex' },
  'await-lock (profiling off)': { lock: 'await-lock' },
  'profiling off, two processes (A/A: the noise of a ratio between processes)': { setup: { apart: true } },
  'mutexprof/register preloaded, no variable set': { setup: { register: true } },
  'tracing alone (OpenTelemetry SDK and http instrumentation, A/A)': { setup: { tracing: true } },
  'tracing + mutexprof/opentelemetry, minWaitMs 5 (recommended)': { setup: { tracing: true, otel: 5 } },
  'tracing + mutexprof/opentelemetry, minWaitMs 0': { setup: { tracing: true, otel: 0 } },
  'tracing + mutexprof/opentelemetry, minWaitMs 0, no span budget (a span per contended wait)': { setup: { tracing: true, otel: 0, spanBudget: 'Infinity' } },
  // every wait of a traced request followed and none made a span (no budget to spend, no wait that long): what
  // following costs, whatever the span budget's regime (bench/instructions.mjs)
  'tracing + mutexprof/opentelemetry following every wait, no span (minWaitMs 10⁶, no span budget)': { setup: { tracing: true, otel: 1e6, spanBudget: 'Infinity' } },
  // calibration: a cost known beforehand (a busy loop outside the lock in 'on' only), to see what a ratio can resolve
  'tracing + 1 µs of CPU per request (calibration: a known cost)': { setup: { tracing: true, spinNs: 1000 } },
};

/**
 * The rows of issue 9's table (what profiling cost before that work: Go-style settings, withLabels, the peers),
 * for a before/after run beside an older build: `npm run bench -- --only=service --baseline=<rev>`.
 */
export const BEFORE_AFTER = {
  'profiling off (A/A: the noise of a ratio)': SETTINGS['profiling off (A/A: the noise of a ratio)'],
  'fraction 100': SETTINGS['fraction 100'],
  'fraction 10': SETTINGS['fraction 10'],
  'block rate 100 µs (Go-style: every wait ≥ 100 µs)': SETTINGS['block rate 100 µs (Go-style: every wait ≥ 100 µs)'],
  'fraction 10 + block rate 100 µs': { setup: { fraction: 10, blockRate: 100_000 } },
  'fraction 10 + block rate 100 µs + withLabels': { setup: { fraction: 10, blockRate: 100_000, labels: 'withLabels' } },
  'async-mutex (profiling off)': SETTINGS['async-mutex (profiling off)'],
  'await-lock (profiling off)': SETTINGS['await-lock (profiling off)'],
};

// What each setup key needs of a build, by the public call that came with it (the labels lock option came with
// setBlockProfileFraction; the budget is a configureProfiler field, seen in what configureProfiler returns).
const NEEDS = {
  blockFraction: (lib) => typeof lib.setBlockProfileFraction === 'function',
  labels: (lib, v) => v === 'withLabels' || typeof lib.setBlockProfileFraction === 'function',
  budget: (lib) => 'maxSampledPerSecond' in lib.configureProfiler({}),
  tracking: (lib) => typeof lib.setLockTracking === 'function',
  deadlock: (lib) => typeof lib.setDeadlockDetection === 'function',
  hold: (lib) => typeof lib.setHoldProfileFraction === 'function',
  metrics: (lib) => typeof lib.collectLockMetrics === 'function',
  watch: (lib) => typeof lib.watchLocks === 'function',
  // the preload (node --import <dist>/register.js) runs on this build only: a baseline's dist may have none
  register: () => false,
  otel: () => false,
  spinNs: () => true,
  spanBudget: () => false,
};

/** Whether the build `lib` has everything `setting` sets (an older build, for --baseline). */
export function supports(lib, setting) {
  return Object.entries(setting.setup ?? {}).every(([k, v]) => NEEDS[k]?.(lib, v) ?? true);
}

export const SCENARIOS = {
  immediate: 'every request contended (`await setImmediate` inside the lock)',
  stat: 'every request contended (`await fs.promises.stat` inside the lock)',
  sync: '~5 % contended (2 µs of synchronous work inside the lock)',
};

/** A service process with `setting`, listening; `ask` sends a message and resolves to its answer. */
async function startService(dist, scenario, setting, node) {
  const env = { ...process.env, SERVICE: JSON.stringify({ dist, scenario, lock: setting.lock ?? 'mutexprof', style: setting.style ?? 'withLock', setup: setting.setup ?? {} }) };
  const execArgv = [...process.execArgv, ...(setting.setup?.register ? ['--import', pathToFileURL(`${dist}/register.js`).href] : [])];
  const child = fork(server, [], { env, execPath: node, execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [{ port, switchable }] = await once(child, 'message');
  return {
    url: `http://127.0.0.1:${port}/items/1`,
    switchable,
    ask: async (m) => (child.send(m), (await once(child, 'message'))[0]),
    stop: async () => {
      child.send('exit');
      await once(child, 'exit');
    },
  };
}

/** Loads the service at `url` for `seconds`, as fast as it answers; returns what was done. */
async function load(url, seconds) {
  const r = await autocannon({ url, connections: 50, duration: seconds });
  if (r.non2xx > 0 || r.errors > 0) throw new Error(`service errors: ${r.non2xx} non-2xx, ${r.errors} errors`);
  return { requests: r.requests.total, seconds: r.duration };
}

/**
 * Loads two services (off, then on) in turn in slices: off, on, on, off, off, on, … so that every slice of one has
 * a slice of the other just before or after it. Returns the requests and seconds of each.
 */
async function alternate(sides, { slices, slice }) {
  const done = sides.map(() => ({ requests: 0, seconds: 0 }));
  for (let i = 0; i < slices; i++) {
    for (const k of i % 2 === 0 ? [0, 1] : [1, 0]) {
      const r = await load(sides[k].url, slice);
      done[k].requests += r.requests;
      done[k].seconds += r.seconds;
    }
  }
  return done;
}

/**
 * One paired run of `setting` against profiling off, ratios of the setting's req/s, p99 and CPU time per request
 * to off's. When the setting can be switched on and off while the process runs (everything but withLabels): one
 * process, loaded without a pause for `seconds`, switches between the two every 0.5–1.5 × `every` ms (off, on, …)
 * and counts each mode's requests, time and CPU time: both modes share the machine's same seconds, one JIT and one
 * heap. Otherwise two processes, alive together, loaded in turn in 1 s slices (off, on, on, off, …).
 */
async function pairRun(dist, scenario, setting, timing, node) {
  const on = await startService(dist, scenario, setting, node);
  const off = on.switchable ? null : await startService(dist, scenario, {}, node);
  const services = off === null ? [on] : [off, on];
  try {
    if (off === null) {
      for (const mode of ['off', 'on']) {
        await on.ask({ mode });
        await load(on.url, timing.warmup);
      }
      await on.ask({ alternate: timing.every });
      await load(on.url, timing.seconds);
      const { off: a, on: b } = await on.ask('stats');
      return ratiosOf(a, b, a.rps, b.rps);
    }
    for (const s of services) await load(s.url, timing.warmup);
    for (const s of services) await s.ask({ alternate: timing.every }); // records, in its one mode
    const done = await alternate([{ url: off.url }, { url: on.url }], { slices: Math.round(timing.seconds / 2), slice: 1 });
    const [a, b] = (await Promise.all(services.map((s) => s.ask('stats')))).map((st) => st.on);
    const [offRps, onRps] = done.map((d) => d.requests / d.seconds);
    return ratiosOf(a, b, offRps, onRps);
  } finally {
    await Promise.all(services.map((s) => s.stop()));
  }
}

/** The setting's figures as ratios to off's, from each side's stats and req/s. */
function ratiosOf(off, on, offRps, onRps) {
  return { rps: onRps / offRps, offRps, p99: on.p99 / off.p99, cpu: on.cpu / on.n / (off.cpu / off.n), p99s: [off.p99, on.p99] };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/**
 * Runs every setting of `settings` (names of SETTINGS, or objects) in each scenario, each in `reps` paired runs
 * against profiling off (fresh processes each time: a process's own JIT and heap layout move req/s by a few %).
 * @returns harness result blocks: per scenario, req/s, p99 and CPU time per request as ratios to profiling off.
 */
export async function serviceBenchmarks({
  dist,
  quick = false,
  scenarios = Object.keys(SCENARIOS),
  settings = SETTINGS,
  reps = quick ? 1 : 3,
  node = process.execPath,
  baseline = null,
  log = () => {},
} = {}) {
  const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
  const timing = quick ? { warmup: 1, seconds: 4, every: 250 } : { warmup: 1, seconds: 12, every: 250 };
  // With a baseline build, each setting it supports runs on it right after this build's run (its row: "… @rev").
  const runs = Object.entries(settings).flatMap(([name, setting]) => [
    { name, dist, setting },
    ...(baseline !== null && supports(baseline.lib, setting) ? [{ name: `${name} @${baseline.rev}`, dist: baseline.dist, setting }] : []),
  ]);
  const names = runs.map((r) => r.name);
  const results = [];
  const range = (xs) => (xs.length > 1 ? ` [${Math.min(...xs).toFixed(3)}–${Math.max(...xs).toFixed(3)}]` : '');
  for (const scenario of scenarios) {
    const ratios = Object.fromEntries(names.map((n) => [n, { rps: [], p99: [], cpu: [] }]));
    const offs = [];
    for (let rep = 0; rep < reps; rep++) {
      for (const { name, dist: build, setting } of runs) {
        const r = await pairRun(build, scenario, setting, timing, node);
        if (build === dist) offs.push(r.offRps);
        for (const k of ['rps', 'p99', 'cpu']) ratios[name][k].push(r[k]);
        log(
          `${scenario} rep ${rep + 1}: ${name}: ${r.rps.toFixed(3)} req/s, cpu/req ${r.cpu.toFixed(3)}, p99 ${r.p99s[1].toFixed(0)} µs vs ${r.p99s[0].toFixed(0)} µs (off ${Math.round(r.offRps)} req/s)`,
        );
      }
    }
    const block = (what, key) => ({
      title: `service${node === process.execPath ? '' : ` on Node ${version}`}, ${SCENARIOS[scenario]}: ${what} as a ratio to profiling off (median of ${reps}, range)`,
      baseline: key === 'rps' ? `profiling off, ~${Math.round(median(offs)).toLocaleString('en')} req/s` : 'profiling off',
      unit: 'ratio',
      rows: names.map((n) => ({ impl: `${n}${range(ratios[n][key])}`, ns: median(ratios[n][key]), ratio: median(ratios[n][key]), setting: n, scenario, metric: key, runs: ratios[n][key] })),
    });
    results.push(block('req/s', 'rps'), block('p99 latency', 'p99'), block('CPU time per request', 'cpu'));
  }
  return results;
}

/**
 * The blocks of serviceBenchmarks() laid out as the README's table: one line per setting, per scenario the median
 * ratio (range over the runs) of req/s, p99 and CPU time per request.
 */
export function serviceTable(blocks) {
  const cells = new Map(); // setting → scenario.metric → text
  const scenarios = [];
  for (const b of blocks) {
    for (const r of b.rows) {
      if (!scenarios.includes(r.scenario)) scenarios.push(r.scenario);
      const lo = Math.min(...r.runs).toFixed(2);
      const hi = Math.max(...r.runs).toFixed(2);
      if (!cells.has(r.setting)) cells.set(r.setting, new Map());
      cells.get(r.setting).set(`${r.scenario}.${r.metric}`, `${r.ratio.toFixed(2)} (${lo}–${hi})`);
    }
  }
  const short = { immediate: '`setImmediate`', stat: '`fs.stat`', sync: '5 % contended' };
  const cols = scenarios.flatMap((sc) => ['rps', 'p99', 'cpu'].map((m) => `${sc}.${m}`));
  const head = scenarios.flatMap((sc) => [`${short[sc]}: req/s`, 'p99', 'CPU/req']);
  const lines = [`| setting | ${head.join(' | ')} |`, `|---|${cols.map(() => '---:').join('|')}|`];
  for (const [name, row] of cells) lines.push(`| ${name} | ${cols.map((c) => row.get(c) ?? '').join(' | ')} |`);
  return lines.join('\n') + '\n';
}

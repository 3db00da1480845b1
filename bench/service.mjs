// The service benchmark (issue 9): what profiling costs a real node:http service, in req/s, p99 latency and CPU
// time per request.
//
// The service (bench/service-server.mjs) runs in processes of its own; autocannon loads it from this process over
// loopback (50 connections). Latency is the service's own (request arrival to response end, in µs): autocannon's
// histogram has millisecond steps, too coarse here. Each setting is measured in a paired run: a service with
// profiling off and one with the setting, both alive, loaded in turn in 1 s slices, off-on-on-off-off-on…, so that
// each slice of one is bracketed by slices of the other (this machine drifts 2× within minutes: runs of a few
// seconds one after the other measured a drift as large as the costs). Repeated `reps` times with fresh processes;
// the median ratio is reported, with the range. The "A/A" row pairs off with off: the noise of a ratio.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
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
  'recommended + labels (lock option)': { setup: { ...RECOMMENDED, labels: 'option' } },
  'recommended + labels (withLabels, AsyncLocalStorage)': { setup: { ...RECOMMENDED, labels: 'withLabels' } },
  'recommended + labels, no budget': { setup: { ...RECOMMENDED, budget: undefined, labels: 'option' } },
  'lock tracking on': { setup: { tracking: 'on' } },
  'lock tracking stacks': { setup: { tracking: 'stacks' } },
  'hold profile, fraction 100, budget 100/s': { setup: { hold: 100, budget: 100 } },
  'deadlock detection warn': { setup: { deadlock: 'warn' } },
  'lock metrics (prom-client)': { setup: { metrics: true } },
  'recommended + lock metrics': { setup: { ...RECOMMENDED, metrics: true } },
  'async-mutex (profiling off)': { lock: 'async-mutex' },
  'await-lock (profiling off)': { lock: 'await-lock' },
};

export const SCENARIOS = {
  immediate: 'every request contended (`await setImmediate` inside the lock)',
  stat: 'every request contended (`await fs.promises.stat` inside the lock)',
  sync: '~5 % contended (2 µs of synchronous work inside the lock)',
};

/** A service process with `setting`, listening; `ask` sends a message and resolves to its answer. */
async function startService(dist, scenario, setting) {
  const env = { ...process.env, SERVICE: JSON.stringify({ dist, scenario, lock: setting.lock ?? 'mutexprof', setup: setting.setup ?? {} }) };
  const child = fork(server, [], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [{ port }] = await once(child, 'message');
  return {
    url: `http://127.0.0.1:${port}/items/1`,
    ask: async (m) => (child.send(m), (await once(child, 'message'))[0]),
    stop: async () => {
      child.send('exit');
      await once(child, 'exit');
    },
  };
}

/** Loads the service at `url` for `seconds`; returns the responses and the time they took. */
async function load(url, seconds) {
  const r = await autocannon({ url, connections: 50, duration: seconds });
  if (r.non2xx > 0 || r.errors > 0) throw new Error(`service errors: ${r.non2xx} non-2xx, ${r.errors} errors`);
  return { requests: r.requests.total, seconds: r.duration };
}

/**
 * One paired run: a service with profiling off and one with `setting`, both alive, loaded in turn in short slices
 * (off, on, on, off, off, on, …: every slice of one has a slice of the other just before or after it, so a drift
 * of the machine moves both sides alike). Returns the setting's req/s, p99 and CPU time per request as ratios to off.
 */
async function pairRun(dist, scenario, setting, { slices, slice, warmup }) {
  const services = await Promise.all([startService(dist, scenario, {}), startService(dist, scenario, setting)]);
  try {
    for (const s of services) await load(s.url, warmup);
    for (const s of services) await s.ask('reset');
    const done = services.map(() => ({ requests: 0, seconds: 0 }));
    for (let i = 0; i < slices; i++) {
      for (const k of i % 2 === 0 ? [0, 1] : [1, 0]) {
        const r = await load(services[k].url, slice);
        done[k].requests += r.requests;
        done[k].seconds += r.seconds;
      }
    }
    const [off, on] = await Promise.all(services.map((s) => s.ask('stats')));
    const rps = done.map((d) => d.requests / d.seconds);
    return { rps: rps[1] / rps[0], offRps: rps[0], p99: on.p99 / off.p99, cpu: on.cpu / on.n / (off.cpu / off.n), p99s: [off.p99, on.p99] };
  } finally {
    await Promise.all(services.map((s) => s.stop()));
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Runs every setting of `settings` (names of SETTINGS, or objects) in each scenario, each in `reps` paired runs
 * against profiling off (fresh processes each time: a process's own JIT and heap layout move req/s by a few %).
 * @returns harness result blocks: per scenario, req/s, p99 and CPU time per request as ratios to profiling off.
 */
export async function serviceBenchmarks({ dist, quick = false, scenarios = Object.keys(SCENARIOS), settings = SETTINGS, reps = quick ? 1 : 3, log = () => {} } = {}) {
  const timing = quick ? { slices: 2, slice: 1, warmup: 1 } : { slices: 6, slice: 1, warmup: 1 };
  const names = Object.keys(settings);
  const results = [];
  const range = (xs) => (xs.length > 1 ? ` [${Math.min(...xs).toFixed(3)}–${Math.max(...xs).toFixed(3)}]` : '');
  for (const scenario of scenarios) {
    const ratios = Object.fromEntries(names.map((n) => [n, { rps: [], p99: [], cpu: [] }]));
    const offs = [];
    for (let rep = 0; rep < reps; rep++) {
      for (const name of names) {
        const r = await pairRun(dist, scenario, settings[name], timing);
        offs.push(r.offRps);
        for (const k of ['rps', 'p99', 'cpu']) ratios[name][k].push(r[k]);
        log(`${scenario} rep ${rep + 1}: ${name}: ${r.rps.toFixed(3)} req/s, cpu/req ${r.cpu.toFixed(3)}, p99 ${r.p99s[1].toFixed(0)} µs vs ${r.p99s[0].toFixed(0)} µs (off ${Math.round(r.offRps)} req/s)`);
      }
    }
    const block = (what, key) => ({
      title: `service, ${SCENARIOS[scenario]}: ${what} as a ratio to profiling off (median of ${reps}, range)`,
      baseline: key === 'rps' ? `profiling off, ~${Math.round(median(offs)).toLocaleString('en')} req/s` : 'profiling off',
      unit: 'ratio',
      rows: names.map((n) => ({ impl: `${n}${range(ratios[n][key])}`, ns: median(ratios[n][key]), ratio: median(ratios[n][key]) })),
    });
    results.push(block('req/s', 'rps'), block('p99 latency', 'p99'), block('CPU time per request', 'cpu'));
  }
  return results;
}

// The service benchmark (issue 9): what profiling costs a real node:http service, in req/s and p99 latency.
//
// The service (bench/service-server.mjs) runs in a process of its own for every run; autocannon loads it from
// this process over loopback (50 connections, a warm-up, then a measured window). Latency is the service's own
// (request arrival to response end, in µs): autocannon's histogram has millisecond steps, too coarse here. Every setting runs between two
// runs with profiling off, and is reported as the ratio to the mean of those two: this machine drifts 2× within
// minutes, and a bracket measures each setting against what the machine did just before and just after.
// Repeated `reps` times; the median ratio is reported, with the range.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

const server = fileURLToPath(new URL('./service-server.mjs', import.meta.url));

/** The recommended production settings (README): mutex fraction 100; block rate 10 ms, 1 in 10 of those waits. */
export const RECOMMENDED = { fraction: 100, blockRate: 10_000_000, blockFraction: 10 };

export const SETTINGS = {
  'fraction 100': { setup: { fraction: 100 } },
  'fraction 10': { setup: { fraction: 10 } },
  'block rate 100 µs (Go-style: every wait ≥ 100 µs)': { setup: { blockRate: 100_000 } },
  'block rate 10 ms': { setup: { blockRate: 10_000_000 } },
  'block rate 10 ms, fraction 10 (recommended)': { setup: { blockRate: RECOMMENDED.blockRate, blockFraction: RECOMMENDED.blockFraction } },
  'recommended: fraction 100 + block': { setup: RECOMMENDED },
  'recommended + labels (lock option)': { setup: { ...RECOMMENDED, labels: 'option' } },
  'recommended + labels (withLabels, AsyncLocalStorage)': { setup: { ...RECOMMENDED, labels: 'withLabels' } },
  'fraction 10 + block + labels (lock option)': { setup: { fraction: 10, blockRate: RECOMMENDED.blockRate, blockFraction: RECOMMENDED.blockFraction, labels: 'option' } },
  'lock tracking on': { setup: { tracking: 'on' } },
  'lock tracking stacks': { setup: { tracking: 'stacks' } },
  'hold profile, fraction 100': { setup: { hold: 100 } },
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

async function runOnce(dist, scenario, setting, { duration, warmup }) {
  const env = { ...process.env, SERVICE: JSON.stringify({ dist, scenario, lock: setting.lock ?? 'mutexprof', setup: setting.setup ?? {} }) };
  const child = fork(server, [], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const [{ port }] = await once(child, 'message');
    const url = `http://127.0.0.1:${port}/items/1`;
    await autocannon({ url, connections: 50, duration: warmup });
    child.send('reset');
    await once(child, 'message');
    const r = await autocannon({ url, connections: 50, duration });
    child.send('stats');
    const [{ p99 }] = await once(child, 'message');
    if (r.non2xx > 0 || r.errors > 0) throw new Error(`service errors: ${r.non2xx} non-2xx, ${r.errors} errors`);
    return { rps: r.requests.total / duration, p99 };
  } finally {
    child.send('exit');
    await once(child, 'exit');
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Runs every setting of `settings` (names of SETTINGS, or objects) in each scenario, bracketed by "off" runs.
 * @returns harness result blocks: per scenario, req/s and p99 ratios to "profiling off".
 */
export async function serviceBenchmarks({ dist, quick = false, scenarios = Object.keys(SCENARIOS), settings = SETTINGS, reps = quick ? 1 : 3, log = () => {} } = {}) {
  const timing = quick ? { duration: 2, warmup: 1 } : { duration: 5, warmup: 1 };
  const names = Object.keys(settings);
  const results = [];
  for (const scenario of scenarios) {
    const ratios = Object.fromEntries(names.map((n) => [n, { rps: [], p99: [] }]));
    const offs = [];
    for (let rep = 0; rep < reps; rep++) {
      let before = await runOnce(dist, scenario, {}, timing);
      offs.push(before.rps);
      for (const name of names) {
        const s = await runOnce(dist, scenario, settings[name], timing);
        const after = await runOnce(dist, scenario, {}, timing);
        offs.push(after.rps);
        const off = { rps: (before.rps + after.rps) / 2, p99: (before.p99 + after.p99) / 2 };
        ratios[name].rps.push(s.rps / off.rps);
        ratios[name].p99.push(s.p99 / off.p99);
        log(`${scenario} rep ${rep + 1}: ${name}: ${(s.rps / off.rps).toFixed(3)} req/s, p99 ${s.p99.toFixed(0)} µs vs ${off.p99.toFixed(0)} µs`);
        before = after;
      }
    }
    const range = (xs) => (xs.length > 1 ? ` [${Math.min(...xs).toFixed(3)}–${Math.max(...xs).toFixed(3)}]` : '');
    results.push({
      title: `service, ${SCENARIOS[scenario]}: req/s as a ratio to profiling off (median of ${reps}, range)`,
      baseline: `profiling off, ~${Math.round(median(offs)).toLocaleString('en')} req/s`,
      unit: 'ratio',
      rows: names.map((n) => ({ impl: `${n}${range(ratios[n].rps)}`, ns: median(ratios[n].rps), ratio: median(ratios[n].rps) })),
    });
    results.push({
      title: `service, ${SCENARIOS[scenario]}: p99 latency as a ratio to profiling off (median of ${reps}, range)`,
      baseline: 'profiling off',
      unit: 'ratio',
      rows: names.map((n) => ({ impl: `${n}${range(ratios[n].p99)}`, ns: median(ratios[n].p99), ratio: median(ratios[n].p99) })),
    });
  }
  return results;
}

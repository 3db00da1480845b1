// What one stack capture costs inside a service, against the same capture in a tight loop.
//
// The service benchmark's service (bench/service-server.mjs, every request contended) runs with the recommended
// settings, loaded by autocannon; bench/capture-preload.mjs times each Error.captureStackTrace the profiler makes.
// Beside it, the same capture of a short async stack repeated in a loop, as the micro-benchmarks measure. The
// service samples ~100 events a second per profile (the budget) amid everything else it runs, so V8's
// stack-walking code is cold in the CPU's caches each time; the loop keeps it warm.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { RECOMMENDED } from './service.mjs';

const server = fileURLToPath(new URL('./service-server.mjs', import.meta.url));
const preload = new URL('./capture-preload.mjs', import.meta.url).href;
const quantile = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? NaN;

async function inService(dist, seconds) {
  const env = { ...process.env, SERVICE: JSON.stringify({ dist, scenario: 'immediate', lock: 'mutexprof', setup: { ...RECOMMENDED, labels: 'option' } }) };
  const child = fork(server, [], { env, execArgv: ['--import', preload], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const [{ port }] = await once(child, 'message');
    const ask = async (m) => (child.send(m), (await once(child, 'message'))[0]);
    const url = `http://127.0.0.1:${port}/items/1`;
    await autocannon({ url, connections: 50, duration: 2 }); // warm-up, and the budget settles
    await ask('captures');
    await autocannon({ url, connections: 50, duration: seconds });
    return (await ask('captures')).captures;
  } finally {
    child.send('exit');
    await once(child, 'exit');
  }
}

function inLoop(n) {
  const times = [];
  const site = async () => {
    await null;
    const t0 = process.hrtime.bigint();
    Error.captureStackTrace({}, site); // a short async stack, as the service's releases have
    times.push(Number(process.hrtime.bigint() - t0));
  };
  return (async () => {
    for (let i = 0; i < n; i++) await site();
    return times;
  })();
}

export async function captureBenchmarks({ dist, quick = false }) {
  const service = await inService(dist, quick ? 2 : 5);
  const loop = await inLoop(quick ? 2000 : 20000);
  const row = (name, xs) => ({ impl: `${name}: median of ${xs.length} (p90 ${(quantile(xs, 0.9) / 1e3).toFixed(1)} µs)`, ns: quantile(xs, 0.5), ratio: quantile(xs, 0.5) / quantile(loop, 0.5) });
  return [
    {
      title: 'one V8 stack capture (Error.captureStackTrace), ns: in a loaded service with the recommended settings vs in a loop',
      baseline: 'in a loop',
      rows: [row('in a loop', loop), row('in the service', service)],
    },
  ];
}

// Serving profiles without stalling the service (issue 8 §3): the longest event-loop block while each kind of
// response is served from a profile of N samples (one client, then 20 in parallel; worst of 3 rounds, after a
// warm-up, plus the very first request of each kind), and the heap that 300 pending `?seconds=60` deltas hold
// above idle while events keep coming. The service runs in a child process (bench/serving-server.mjs) with a
// trickle of new events, so that no answer comes from a cached build; the clients run here.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';

const server = fileURLToPath(new URL('./serving-server.mjs', import.meta.url));

function request(port, method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function fetchable(port) {
  return (await request(port, 'GET', '/debug/pprof/ui/data.json?profile=mutex')).status === 200;
}

async function ask(child, msg) {
  child.send(msg);
  const [reply] = await once(child, 'message');
  return reply;
}

/** The longest event-loop block (ms) in the child while `work` runs. */
async function longestBlock(child, work) {
  await ask(child, { cmd: 'reset' });
  await work();
  return (await ask(child, { cmd: 'read' })).max;
}

export async function servingBenchmarks({ dist, label = 'mutexprof', samples = 10_000, pendingDeltas = 300, rounds = 3 } = {}) {
  const child = fork(server, [dist, String(samples)], { execArgv: ['--expose-gc', ...(process.env.GCOBS ? ['--import', process.env.GCOBS] : [])], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [{ port }] = await once(child, 'message');
  const ok = async (p) => {
    const r = await p;
    if (r.status !== 200) throw new Error(`status ${r.status}: ${r.body.toString().slice(0, 200)}`);
    return r;
  };
  const rows = [];
  const row = (what, ms) => rows.push({ impl: `${label}: ${what}, longest block (ms)`, ns: ms, ratio: ms / 20 });
  // the very first request of each kind (cold code)
  row('protobuf, first request', await longestBlock(child, () => ok(request(port, 'GET', '/debug/pprof/mutex'))));
  let text = '';
  row('debug=1 text, first request', await longestBlock(child, async () => (text = (await ok(request(port, 'GET', '/debug/pprof/mutex?debug=1'))).body.toString())));
  const addrs = [...new Set([...text.matchAll(/^#\t(0x[0-9a-f]+)/gm)].map((m) => m[1]))].join('+');
  const kinds = {
    protobuf: () => ok(request(port, 'GET', '/debug/pprof/mutex')),
    'debug=1 text': () => ok(request(port, 'GET', '/debug/pprof/mutex?debug=1')),
    'delta (?seconds=1)': () => ok(request(port, 'GET', '/debug/pprof/mutex?seconds=1')),
    'index page': () => ok(request(port, 'GET', '/debug/pprof/')),
    'flame graph data (ui/data.json)': () => ok(request(port, 'GET', '/debug/pprof/ui/data.json?profile=mutex')),
    '/symbol, every address': () => ok(request(port, 'POST', '/debug/pprof/symbol', addrs)),
  };
  if (!(await fetchable(port))) delete kinds['flame graph data (ui/data.json)']; // a baseline build without the page
  for (const get of Object.values(kinds)) await get(); // warm-up
  for (const [name, get] of Object.entries(kinds)) {
    for (const clients of [1, 20]) {
      let worst = 0;
      for (let r = 0; r < rounds; r++) worst = Math.max(worst, await longestBlock(child, () => Promise.all(Array.from({ length: clients }, get))));
      row(`${name}, ${clients === 1 ? '1 client' : `${clients} clients in parallel`}`, worst);
    }
  }
  // A push to Pyroscope of the delta since the last push (the trickle's events over about a second).
  if ((await ask(child, { cmd: 'push' })).ok) {
    let worst = 0;
    for (let r = 0; r < rounds; r++) {
      await new Promise((res) => setTimeout(res, 1000));
      worst = Math.max(worst, await longestBlock(child, () => ask(child, { cmd: 'push' })));
    }
    row('Pyroscope push (startProfilePush) of 1 s of events', worst);
  }
  // Pending deltas: the heap they hold above idle while events keep coming.
  if (pendingDeltas > 0) {
    const { heap: idle } = await ask(child, { cmd: 'heap' });
    const reqs = [];
    for (let i = 0; i < pendingDeltas; i++) {
      const req = http.get({ host: '127.0.0.1', port, path: '/debug/pprof/mutex?seconds=60', agent: false });
      req.on('error', () => {});
      reqs.push(req);
    }
    await new Promise((r) => setTimeout(r, 5000));
    const { heap } = await ask(child, { cmd: 'heap' });
    for (const r of reqs) r.destroy();
    const mb = (heap - idle) / 2 ** 20;
    rows.push({ impl: `${label}: heap of ${pendingDeltas} pending deltas above idle (MB)`, ns: mb, ratio: mb / 20 });
  }
  child.send({ cmd: 'exit' });
  await once(child, 'exit');
  return { title: `serving a profile of ${samples.toLocaleString('en')} samples (ratio: to the bound, 20 ms or 20 MB)`, baseline: 'bound', unit: 'ms or MB', rows };
}

/**
 * One profile for a cluster: a primary serving with { cluster: true } and `workers` workers with `samples`
 * distinct stacks each (bench/cluster-server.mjs). The longest event-loop block in the primary and in any worker
 * while the merged profile is served (1 client, then 20 in parallel; worst of `rounds`), and the time a request
 * takes. By default one worker per core but one (the primary's): with more processes than cores, the blocks
 * measured would be the scheduler's.
 */
export async function clusterServingBenchmarks({ dist, samples = 10_000, rounds = 3, workers = Math.max(1, availableParallelism() - 1) } = {}) {
  const child = fork(fileURLToPath(new URL('./cluster-server.mjs', import.meta.url)), [dist, String(samples)], {
    env: { ...process.env, WORKERS: String(workers) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [{ port }] = await once(child, 'message');
  const rows = [];
  const blocks = async (work) => {
    await ask(child, { cmd: 'reset' });
    const t0 = performance.now();
    await work();
    const ms = performance.now() - t0;
    return { ms, ...(await ask(child, { cmd: 'read' })) };
  };
  const get = async (path) => {
    const r = await request(port, 'GET', path);
    if (r.status !== 200) throw new Error(`status ${r.status}`);
  };
  for (const [name, path] of [
    ['protobuf', '/debug/pprof/mutex'],
    ['debug=1 text', '/debug/pprof/mutex?debug=1'],
    ['flame graph data', '/debug/pprof/ui/data.json?profile=mutex'],
  ]) {
    await get(path); // warm-up
    for (const clients of [1, 20]) {
      let primary = 0;
      let workers = 0;
      let ms = 0;
      for (let r = 0; r < rounds; r++) {
        const b = await blocks(() => Promise.all(Array.from({ length: clients }, () => get(path))));
        primary = Math.max(primary, b.primary);
        workers = Math.max(workers, b.workers);
        ms = Math.max(ms, b.ms);
      }
      const who = `${name}, ${clients === 1 ? '1 client' : `${clients} clients`}`;
      rows.push({ impl: `${who}: longest block in the primary (ms)`, ns: primary, ratio: primary / 20 });
      rows.push({ impl: `${who}: longest block in a worker (ms)`, ns: workers, ratio: workers / 20 });
      rows.push({ impl: `${who}: slowest answer (ms)`, ns: ms, ratio: ms / 20 });
    }
  }
  child.send({ cmd: 'exit' });
  await once(child, 'exit');
  return { title: `cluster: true, ${workers} worker${workers === 1 ? '' : 's'} × ${samples.toLocaleString('en')} samples merged (ratio: to 20 ms)`, baseline: '20 ms', unit: 'ms', rows };
}

// What a setting costs a loaded service, by attribution rather than by a ratio: the service benchmark's service
// (bench/service-server.mjs) with the setting on, loaded by autocannon, under V8's CPU profiler; the share of the
// service's busy CPU time (idle excluded) spent in the frames the setting adds, everything they call included. A ratio
// of two runs cannot resolve 1 % on these machines (the A/A rows read ±3–7 %); a CPU profile of one run can.
//   node bench/attribution.mjs [--node=24] [--scenario=immediate|stat|sync] [--seconds=10]
// Default: tracing + mutexprof/opentelemetry (minWaitMs 5), whose added frames are the instrumentation's
// (dist/opentelemetry.js) and the timing of waits it turns on (waitStarted, waitEnded and what they call).
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

const args = process.argv.slice(2);
const arg = (name, d) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? d;
const nodeMajor = arg('node', null);
const scenario = arg('scenario', 'immediate');
const seconds = Number(arg('seconds', '10'));
const node = nodeMajor === null ? process.execPath : (await import('./node.mjs')).nodeBinary(nodeMajor);
const dist = fileURLToPath(new URL('../dist', import.meta.url));
const setup = { tracing: true, otel: 5 };
const ADDED = /opentelemetry\.js|^(waitStarted|waitEnded|tellStarted|tellEnded|releaseEvent|leftWithoutEvent) .*dist[/\\]index\.js/;

const dir = mkdtempSync(join(tmpdir(), 'mutexprof-attribution-'));
try {
  const env = { ...process.env, SERVICE: JSON.stringify({ dist, scenario, lock: 'mutexprof', style: 'withLock', setup }) };
  const child = fork(fileURLToPath(new URL('./service-server.mjs', import.meta.url)), [], {
    env,
    execPath: node,
    execArgv: ['--cpu-prof', `--cpu-prof-dir=${dir}`],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [{ port }] = await once(child, 'message');
  child.send({ mode: 'on' });
  await once(child, 'message');
  const r = await autocannon({ url: `http://127.0.0.1:${port}/items/1`, connections: 50, duration: seconds });
  child.send('exit');
  await once(child, 'exit');
  const profile = JSON.parse(readFileSync(join(dir, readdirSync(dir)[0]), 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  let busy = 0;
  let added = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i];
    if (byId.get(id).callFrame.functionName === '(idle)') return;
    busy += dt;
    for (let x = id; x !== undefined; x = parent.get(x)) {
      const f = byId.get(x).callFrame;
      if (ADDED.test(`${f.functionName} ${f.url}`)) {
        added += dt;
        break;
      }
    }
  });
  const version = (await import('node:child_process')).execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
  console.log(
    `Node ${version}, ${scenario}, tracing + mutexprof/opentelemetry (minWaitMs 5), ${Math.round(r.requests.total / r.duration)} req/s: ` +
      `${(added / 1000).toFixed(0)} ms of ${(busy / 1000).toFixed(0)} ms busy CPU in what the instrumentation adds = ${((100 * added) / busy).toFixed(2)} %`,
  );
} finally {
  if (process.env.KEEP_PROFILE) console.log(dir);
  else rmSync(dir, { recursive: true, force: true });
}

// What a setting costs a loaded service, by attribution rather than by a ratio: the service benchmark's service
// (bench/service-server.mjs) with the setting on, loaded by autocannon, under V8's CPU profiler (a sample every
// 100 µs); the share of the service's busy CPU time (idle excluded) spent in the frames the setting adds, everything
// they call included. It resolves well under 1 %, which a ratio of two runs cannot here (the A/A rows read ±3–7 %),
// but it is a floor: it counts those frames, not what they cost the code around them (caches, the collector, the
// clock's calls into Node), which the ratio rows cannot resolve either (their calibration row, a known 1 µs of CPU per
// request, reads 1.01–1.03: docs/opentelemetry.md#cost).
// Each scenario runs `--runs` times (fresh processes); the median and the range are reported.
//   node bench/attribution.mjs [--node=24] [--scenario=immediate|stat|sync|all] [--seconds=10] [--runs=3] [--markdown]
//     [--dist=<a build's dist/, e.g. bench/.baseline/<rev>/dist (node bench/baseline.mjs <rev>): before and after>]
// The setting: tracing + mutexprof/opentelemetry (minWaitMs 5), whose added frames are the instrumentation's
// (dist/opentelemetry.js) and the timing of waits it turns on (waitStarted, waitEnded, releaseEvent and what they
// call). Not in them: the lock's own tests of whether waits are observed (a branch each), and the collection of the
// few objects a followed wait allocates (its times: ~70 bytes; a request of this service allocates kilobytes).
// --markdown writes bench/results/<date>-attribution[-node<major>].md. KEEP_PROFILE=1 keeps the .cpuprofile files.
import { execFileSync, fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

const args = process.argv.slice(2);
const arg = (name, d) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? d;
const nodeMajor = arg('node', null);
const scenarioArg = arg('scenario', 'immediate');
const scenarios = scenarioArg === 'all' ? ['immediate', 'stat', 'sync'] : [scenarioArg];
const seconds = Number(arg('seconds', '10'));
const runs = Number(arg('runs', '3'));
const markdown = args.includes('--markdown');
const node = nodeMajor === null ? process.execPath : (await import('./node.mjs')).nodeBinary(nodeMajor);
const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
const dist = resolve(arg('dist', fileURLToPath(new URL('../dist', import.meta.url))));
const setup = { tracing: true, otel: 5 };
const ADDED = /opentelemetry\.js|^(waitStarted|waitEnded|tellStarted|tellEnded|releaseEvent|leftWithoutEvent) .*dist[/\\]index\.js/;
const SERVICE = { immediate: 'all contended, `setImmediate`', stat: 'all contended, `fs.stat`', sync: '5 % contended' };

/** One run: the share of busy CPU in the added frames, and the µs they take per request. */
async function measure(scenario) {
  const dir = mkdtempSync(join(tmpdir(), 'mutexprof-attribution-'));
  try {
    const env = { ...process.env, SERVICE: JSON.stringify({ dist, scenario, lock: 'mutexprof', style: 'withLock', setup }) };
    const child = fork(fileURLToPath(new URL('./service-server.mjs', import.meta.url)), [], {
      env,
      execPath: node,
      execArgv: ['--cpu-prof', '--cpu-prof-interval=100', `--cpu-prof-dir=${dir}`],
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
    return { share: (100 * added) / busy, perRequest: added / r.requests.total, rps: r.requests.total / r.duration };
  } finally {
    if (process.env.KEEP_PROFILE) console.error(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const lines = [];
for (const scenario of scenarios) {
  const all = [];
  for (let k = 0; k < runs; k++) {
    const one = await measure(scenario);
    all.push(one);
    console.error(`  ${scenario} run ${k + 1}: ${one.share.toFixed(2)} % of busy CPU, ${one.perRequest.toFixed(2)} µs per request, ${Math.round(one.rps)} req/s`);
  }
  const shares = all.map((x) => x.share);
  lines.push(
    `| ${SERVICE[scenario]} | ${median(shares).toFixed(2)} % (${Math.min(...shares).toFixed(2)}…${Math.max(...shares).toFixed(2)} %) | ` +
      `${median(all.map((x) => x.perRequest)).toFixed(2)} µs | ${Math.round(median(all.map((x) => x.rps)))} |`,
  );
}
const table =
  `Node ${version}, tracing + mutexprof/opentelemetry (minWaitMs 5): the share of the service's busy CPU time in what the ` +
  `integration adds, median of ${runs} runs of ${seconds} s (range)\n\n| service | share of busy CPU | per request | req/s |\n|---|---:|---:|---:|\n${lines.join('\n')}\n`;
console.log(table);
if (markdown) {
  const day = new Date().toISOString().slice(0, 10);
  const file = fileURLToPath(new URL(`./results/${day}-attribution${nodeMajor ? `-node${nodeMajor}` : ''}.md`, import.meta.url));
  const command = `node bench/attribution.mjs ${args.join(' ')}`;
  writeFileSync(file, `# ${day}: attribution\n\n\`${command}\` — ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'})\n\n${table}`);
  console.error(`written: ${file}`);
}

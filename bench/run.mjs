// npm run bench [-- --quick] [-- --only=locks,profiling,bounds,serving,opentelemetry,capture,service] [-- --markdown] [-- --baseline=<rev>]
//   (--markdown also writes the tables into bench/results/<date>-<groups>.md)
//   [-- --reps=N] [-- --scenarios=immediate,stat,sync] [-- --settings='<names of bench/service.mjs's SETTINGS, separated by ;>']
//   [-- --node=<major>]
// Every group but `service` runs by default; `--only=service` runs the service benchmark (about 40 minutes).
// Prints a table of ns/op and ratios; every row of the README's benchmark tables comes from this command.
// --baseline=<rev> also runs that revision's build (made by `node bench/baseline.mjs <rev>`) beside this one; with
// --only=service, each of the settings it supports (by default the rows of issue 9's table, BEFORE_AFTER), right
// after this build's run of it: before/after in one run.
// --node=<major> runs the service benchmark's services on that Node release (fetched by bench/node.mjs).
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { table, markdown } from './harness.mjs';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = args.find((a) => a.startsWith('--only='))?.slice(7);
const md = args.includes('--markdown');
const rev = args.find((a) => a.startsWith('--baseline='))?.slice(11);
const run = (group) => (only ? only.split(',').includes(group) : group !== 'service');
const reps = args.find((a) => a.startsWith('--reps='))?.slice(7);
const scenarios = args.find((a) => a.startsWith('--scenarios='))?.slice(12);
const settingsArg = args.find((a) => a.startsWith('--settings='))?.slice(11);
const nodeArg = args.find((a) => a.startsWith('--node='))?.slice(7);

const dist = fileURLToPath(new URL('../dist', import.meta.url));
const lib = await import(pathToFileURL(dist + '/index.js').href);
let baseline = null;
if (rev) {
  const dir = fileURLToPath(new URL(`./.baseline/${rev}/dist`, import.meta.url));
  if (!existsSync(dir)) {
    console.error(`no build of ${rev}: run node bench/baseline.mjs ${rev} first`);
    process.exit(2);
  }
  baseline = { rev, dist: dir, lib: await import(pathToFileURL(dir + '/index.js').href) };
}

console.log(`mutexprof benchmarks — Node ${process.version}, ${new Date().toISOString().slice(0, 10)}${quick ? ' (quick)' : ''}${rev ? `, beside ${rev}` : ''}`);
const results = [];
if (run('locks')) {
  const { lockBenchmarks, dropInBenchmarks, kindBenchmarks } = await import('./locks.mjs');
  results.push(...kindBenchmarks({ quick, dist }));
  results.push(...(await lockBenchmarks({ quick, lib, baseline })));
  const dropIn = await import(pathToFileURL(dist + '/async-mutex.js').href);
  results.push(...(await dropInBenchmarks({ quick, dropIn })));
}
if (run('profiling')) {
  const { profilingBenchmarks, sampledEventCost, use } = await import('./profiling.mjs');
  results.push(...(await profilingBenchmarks({ quick, lib, baseline })));
  if (baseline) {
    use(baseline.lib); // the same rows with the older build's capture and resolution
    const before = await sampledEventCost(quick ? 5 : 15, [10, 30, 60], [null]);
    results.push({ ...before, title: `${before.title} @${rev}` });
    use(lib);
  }
}
if (run('bounds')) {
  const { boundsBenchmarks } = await import('./bounds.mjs');
  results.push(...(await boundsBenchmarks({ quick, lib, dist })));
  if (baseline) results.push(...(await boundsBenchmarks({ quick: true, lib: baseline.lib, dist: baseline.dist, label: `@${rev}`, waiters: 200_000 })));
}
if (run('serving')) {
  const { servingBenchmarks, clusterServingBenchmarks } = await import('./serving.mjs');
  const { encodeBenchmarks } = await import('./encode.mjs');
  results.push(await servingBenchmarks({ dist, rounds: quick ? 1 : 3, pendingDeltas: quick ? 30 : 300 }));
  if (!quick) results.push(await servingBenchmarks({ dist, samples: 100_000, pendingDeltas: 0, label: 'mutexprof, maxEntries raised to 100 000' }));
  if (baseline) results.push(await servingBenchmarks({ dist: baseline.dist, rounds: 1, label: `@${rev}` }));
  results.push(await clusterServingBenchmarks({ dist, rounds: quick ? 1 : 3 }));
  results.push(...encodeBenchmarks({ quick }));
}
if (run('opentelemetry')) {
  const { opentelemetryBenchmarks } = await import('./opentelemetry.mjs');
  results.push(...(await opentelemetryBenchmarks({ quick, dist })));
}
if (run('capture')) {
  const { captureBenchmarks } = await import('./capture.mjs');
  results.push(...(await captureBenchmarks({ dist, quick })));
}
let laidOut = '';
if (run('service')) {
  const { serviceBenchmarks, serviceTable, SETTINGS, BEFORE_AFTER } = await import('./service.mjs');
  const known = { ...SETTINGS, ...BEFORE_AFTER };
  const settings =
    settingsArg !== undefined
      ? Object.fromEntries(settingsArg.split(';').map((n) => [n, known[n] ?? fail(`no service setting "${n}": ${Object.keys(known).join(', ')}`)]))
      : baseline !== null
        ? BEFORE_AFTER
        : SETTINGS;
  results.push(
    ...(await serviceBenchmarks({
      dist,
      quick,
      reps: reps ? Number(reps) : undefined,
      scenarios: scenarios?.split(','),
      settings,
      baseline,
      node: nodeArg === undefined ? undefined : (await import('./node.mjs')).nodeBinary(nodeArg),
      log: (line) => console.error(line),
    })),
  );
  laidOut = serviceTable(results.filter((b) => b.title.startsWith('service')));
}
console.log(md ? markdown(results) : table(results));
if (laidOut) console.log(`\nThe service rows, one line per setting (median ratio to off, range over the runs):\n\n${laidOut}`);
if (md) {
  // --markdown also writes the run into bench/results/, dated, with the command that made it (bench/README.md)
  const { mkdirSync, writeFileSync } = await import('node:fs');
  const { cpus } = await import('node:os');
  const day = new Date().toISOString().slice(0, 10);
  const groups = (only ?? 'default').replace(/,/g, '+');
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const file = `${dir}${day}-${groups}${nodeArg ? `-node${nodeArg}` : ''}${process.env.BENCH_TAG ? `-${process.env.BENCH_TAG}` : ''}.md`;
  const command = `npm run bench -- ${args.join(' ')}`;
  const head = `# ${day}: ${groups}\n\n\`${command}\` — Node ${process.version}${nodeArg ? ` (services on Node ${nodeArg})` : ''}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'})${rev ? `, beside ${rev}` : ''}\n\n`;
  writeFileSync(file, head + markdown(results) + (laidOut ? `\nThe service rows, one line per setting (median ratio to off, range over the runs):\n\n${laidOut}` : ''));
  console.error(`written: ${file}`);
}

function fail(message) {
  console.error(message);
  process.exit(2);
}

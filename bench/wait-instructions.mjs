// What mutexprof/opentelemetry adds to one contended wait, counted in instructions by valgrind's callgrind rather than
// timed: 16 requests, each a span of OpenTelemetry's Node SDK (spans batched, then dropped), hand a Mutex to one another
// (every hand-off is one contended wait, as in bench/opentelemetry.mjs). Each row runs twice in a process of its own,
// with `--handoffs` and 3 × `--handoffs` hand-offs; the difference of the two counts over 2 × `--handoffs` is what one
// hand-off costs once warm (start-up, loading and the first compilations cancel out). A pair of processes still differs
// from the next by up to ~200 (each JIT decides for itself, and the span processor's timer runs on the wall clock), so
// each row is `--repeat` pairs (default 3): its median, with the range. Rows: tracing alone; the
// integration following every wait and making no span (minWaitMs 10⁶, no span budget: what following costs, whatever
// the waits' lengths); the recommended setting (minWaitMs 5: these waits are shorter, so it follows every wait too);
// and the requests' traces not sampled (head sampling dropped them: each wait is asked about, not followed), beside
// tracing alone with its traces not sampled.
// Valgrind runs the process 30–110× slower, which would make every hand-off that much longer: the recommended row's
// waits would pass minWaitMs (a collection under valgrind lasts hundreds of ms) and make spans the process at full speed
// does not. As bench/instructions.mjs does, the profiler's clock is slowed by as much (configureProfiler({ now })), the
// factor measured first for each Node and row as the time per hand-off under valgrind over that at full speed.
// Set against the service's instructions per request (bench/instructions.mjs), it is the integration's own share of a
// request that waits once, without what it may cost the code around it (which the service's count includes).
//   node bench/wait-instructions.mjs [--node=20,24] [--handoffs=100000] [--repeat=3]
//     [--rows=alone,follow,recommended,alone-unsampled,unsampled] [--dist=<a build's dist/>] [--markdown] [--tag=<tag>]
// --markdown writes bench/results/<date>-wait-instructions[-<tag>].md.
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const args = process.argv.slice(2);
const arg = (name, d) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? d;

// the child: one run of `n` hand-offs with the row's setting, then exit
if (process.env.WAIT_INSTRUCTIONS) {
  const { dist, row, n, clockScale } = JSON.parse(process.env.WAIT_INSTRUCTIONS);
  const { performance } = await import('node:perf_hooks');
  const { createRequire } = await import('node:module');
  const require = createRequire(import.meta.url);
  const { trace } = require('@opentelemetry/api');
  const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');
  const { AlwaysOffSampler, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
  let spans = 0; // lock-wait spans made
  const dropped = {
    export: (batch, done) => {
      for (const span of batch) if (span.name.startsWith('lock wait')) spans++;
      done({ code: 0 });
    },
    shutdown: async () => {},
  };
  const provider = new NodeTracerProvider(row.endsWith('unsampled') ? { sampler: new AlwaysOffSampler() } : { spanProcessors: [new BatchSpanProcessor(dropped)] });
  provider.register();
  const { Mutex, configureProfiler } = await import(pathToFileURL(`${dist}/index.js`).href);
  if (clockScale !== 1) configureProfiler({ now: () => (performance.now() * 1e6) / clockScale });
  if (!row.startsWith('alone')) {
    const { MutexprofInstrumentation } = await import(pathToFileURL(`${dist}/opentelemetry.js`).href);
    const config = row === 'recommended' ? {} : { minWaitMs: 1e6, maxSpansPerSecond: Infinity };
    new MutexprofInstrumentation(config).setTracerProvider(provider);
  }
  const tracer = trace.getTracer('bench');
  const mu = new Mutex({ name: 'bench' });
  let left = n;
  const critical = async () => {};
  const request = () =>
    tracer.startActiveSpan('request', async (span) => {
      while (left-- > 0) await mu.withLock(critical);
      span.end();
    });
  const began = performance.now();
  await Promise.all(Array.from({ length: 16 }, request));
  const ms = performance.now() - began;
  await provider.shutdown();
  process.stdout.write(JSON.stringify({ nsPerHandoff: (ms * 1e6) / n, spans }));
} else {
  const majors = arg('node', '20,24').split(',');
  const handoffs = Number(arg('handoffs', '100000'));
  const repeat = Number(arg('repeat', '3'));
  const markdown = args.includes('--markdown');
  const dist = resolve(arg('dist', fileURLToPath(new URL('../dist', import.meta.url))));
  const self = fileURLToPath(import.meta.url);
  const { COUNTED_NODE_FLAGS: FLAGS, nodeBinary } = await import('./node.mjs');
  const ROWS = {
    alone: 'tracing alone',
    follow: 'tracing + mutexprof/opentelemetry following every wait, no span (minWaitMs 10⁶, no span budget)',
    recommended: 'tracing + mutexprof/opentelemetry, minWaitMs 5 (recommended)',
    'alone-unsampled': 'tracing alone, the traces not sampled',
    unsampled: 'tracing + mutexprof/opentelemetry (minWaitMs 10⁶), the traces not sampled',
  };
  // what each row is set against: tracing alone with the same sampling
  const BASE = { follow: 'alone', recommended: 'alone', unsampled: 'alone-unsampled' };
  const fail = (message) => {
    throw new Error(message);
  };
  if (!Number.isSafeInteger(handoffs) || handoffs < 1) fail(`--handoffs: a whole number ≥ 1, got ${arg('handoffs')}`);
  if (!Number.isSafeInteger(repeat) || repeat < 1) fail(`--repeat: a whole number ≥ 1, got ${arg('repeat')}`);
  const tag = arg('tag', '');
  if (tag !== '' && !/^[\w.-]+$/.test(tag)) fail(`--tag: letters, digits, '.', '-' and '_', got ${tag}`);
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };

  /** One run of `n` hand-offs, under valgrind or not: its instructions (the whole process), and its time per hand-off. */
  const run = (node, row, n, clockScale, counted) => {
    const env = { ...process.env, WAIT_INSTRUCTIONS: JSON.stringify({ dist, row, n, clockScale }) };
    const r = counted
      ? spawnSync('valgrind', ['--tool=callgrind', '--callgrind-out-file=/dev/null', node, ...FLAGS, self], { env, encoding: 'utf8' })
      : spawnSync(node, [...FLAGS, self], { env, encoding: 'utf8' });
    const m = /Collected : (\d+)/.exec(r.stderr);
    if (r.status !== 0 || (counted && m === null)) throw new Error(`${row}, ${n} hand-offs: exit ${r.status}\n${r.stderr.slice(-2000)}`);
    return { instructions: counted ? Number(m[1]) : NaN, ...JSON.parse(r.stdout) };
  };
  /** How many times slower valgrind runs a row's hand-offs than the machine does. */
  const slowdown = (node, row) => run(node, row, handoffs, 1, true).nsPerHandoff / run(node, row, handoffs, 1, false).nsPerHandoff;

  const sections = [];
  for (const major of majors) {
    const node = major === process.versions.node.split('.')[0] ? process.execPath : nodeBinary(major);
    const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
    const lines = [];
    const per = {};
    for (const key of arg('rows', Object.keys(ROWS).join(',')).split(',')) {
      const name = ROWS[key] ?? fail(`--rows: no row ${key} (${Object.keys(ROWS).join(', ')})`);
      const scale = key.startsWith('alone') ? 1 : slowdown(node, key); // tracing alone reads no profiler clock
      const count = (n) => run(node, key, n, scale, true).instructions;
      const pairs = [];
      for (let i = 0; i < repeat; i++) pairs.push((count(3 * handoffs) - count(handoffs)) / (2 * handoffs));
      per[key] = median(pairs);
      const range = repeat === 1 ? '' : ` (${Math.min(...pairs).toFixed(0)}–${Math.max(...pairs).toFixed(0)})`;
      console.error(`  Node ${version}: ${name}: ${per[key].toFixed(0)}${range} instructions per hand-off${scale === 1 ? '' : ` (clock slowed ${scale.toFixed(0)}×)`}`);
      const base = per[BASE[key]];
      const beside = base === undefined ? '' : `${per[key] - base >= 0 ? '+' : ''}${(per[key] - base).toFixed(0)}`;
      lines.push(`| ${name}${scale === 1 ? '' : ` (clock slowed ${scale.toFixed(0)}×)`} | ${per[key].toFixed(0)}${range} | ${beside} |`);
    }
    const head = repeat === 1 ? 'instructions per hand-off' : `instructions per hand-off, median of ${repeat} (range)`;
    sections.push(`Node ${version}\n\n| setting | ${head} | beside tracing alone (the same sampling) |\n|---|---:|---:|\n${lines.join('\n')}`);
  }
  const text = `${handoffs} and ${3 * handoffs} hand-offs, under valgrind --tool=callgrind (node ${FLAGS.join(' ')})\n\n${sections.join('\n\n')}\n`;
  console.log(text);
  if (markdown) {
    const day = new Date().toISOString().slice(0, 10);
    const file = fileURLToPath(new URL(`./results/${day}-wait-instructions${tag === '' ? '' : `-${tag}`}.md`, import.meta.url));
    writeFileSync(file, `# ${day}: instructions per contended wait\n\n\`node bench/wait-instructions.mjs ${args.join(' ')}\` — ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'})\n\n${text}`);
    console.error(`written: ${file}`);
  }
}

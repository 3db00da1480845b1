// What a setting costs the service benchmark's service in instructions per request, counted by valgrind's callgrind
// rather than timed: a count does not move when the machine does (the time ratios of bench/service.mjs cannot resolve
// 1 % here: a pair of their 250 ms intervals differs by ±20 % in CPU time per request, docs/opentelemetry.md#cost).
//
// Each setting runs in a service process of its own (bench/service-server.mjs, in its 'on' mode) under
//   valgrind --tool=callgrind node --single-threaded --no-memory-reducer --no-flush-bytecode
// (the collector and the optimizing compiler run on the main thread, in an order that does not depend on other
// threads' timing, and none of V8's heuristics that go by the clock run; every thread is counted either way). One
// process at a time: two at once on this machine's two CPUs made the counts of each move by 20 %. autocannon loads it from this process (50
// connections, as the service benchmark) with `--warmup` requests, then `--blocks` blocks of `--block` requests, the
// count zeroed before and dumped after each (callgrind_control). Reported per request, median over the blocks: all
// instructions; those of the garbage collector (Heap::CollectGarbage, everything it calls); those of the optimizing
// compiler (GetOrCompileOptimized); and the rest (the service's code, Node's and the libraries').
//
// With --cache, callgrind also simulates the caches, and each column is given in estimated cycles too (callgrind's
// estimate: instructions + 10 × first-level misses + 100 × last-level misses), which counts what the code costs the
// caches as well as what it executes; about twice as slow.
//
// Valgrind runs the process 30–110× slower, which would make every wait of the contended service that much longer and
// every second of the span budget that many times fewer requests: the profiler's clock is slowed by as much
// (configureProfiler({ now }), the service's { clockScale } message), the factor measured first as the service's req/s
// at full speed (a plain process of the same setting, 5 s) over its req/s under valgrind (each warm-up block sets it
// anew).
//
// The A/A rows (one setting in two processes) show what the count moves between processes.
//   node bench/instructions.mjs [--node=24] [--scenario=immediate|stat|all] [--warmup=40000] [--block=2000]
//     [--blocks=6] [--processes=1] [--cache] [--rows=alone,again,recommended,zero,follow] [--markdown] [--tag=<tag>]
// --markdown writes bench/results/<date>-instructions[-node<major>][-<tag>].md (--tag=<tag>). KEEP_DUMPS=1 keeps callgrind's files.
import { execFileSync, fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { COUNTED_NODE_FLAGS, nodeBinary } from './node.mjs';
import { SETTINGS } from './service.mjs';

const args = process.argv.slice(2);
const arg = (name, d) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? d;
const nodeMajor = arg('node', null);
const scenarioArg = arg('scenario', 'all');
const scenarios = scenarioArg === 'all' ? ['immediate', 'stat'] : [scenarioArg];
// 40 000: Node 20's processes with the integration were still compiling after 10 000 requests (steady by 16 000), and
// Node 24's compile in bursts until ~26 000 (V8's --trace-opt under callgrind, blocks of 2 000: ≤ 2 compilations a
// block after that); docs/opentelemetry.md#cost
const warmup = Number(arg('warmup', '40000'));
const block = Number(arg('block', '2000'));
const blocks = Number(arg('blocks', '6'));
// the count of one setting differs between processes by up to ~1 % on Node 24 once warm (each process's JIT decides for
// itself): --processes=3 runs each row in 3 processes and reports the median of theirs, with their range
const processes = Number(arg('processes', '1'));
const markdown = args.includes('--markdown');
const tag = arg('tag', '');
const cache = args.includes('--cache');
const UNITS = cache ? ['instructions', 'estimated cycles'] : ['instructions'];
const fail = (message) => {
  throw new Error(message);
};
if (!Number.isSafeInteger(processes) || processes < 1) fail(`--processes: a whole number ≥ 1, got ${arg('processes')}`);
const node = nodeMajor === null ? process.execPath : nodeBinary(nodeMajor);
const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
const dist = fileURLToPath(new URL('../dist', import.meta.url));
const server = fileURLToPath(new URL('./service-server.mjs', import.meta.url));

const ALONE = 'tracing alone (OpenTelemetry SDK and http instrumentation, A/A)';
// --rows: which of these to run (default all), by key
const row = (name) => ({ name, setting: SETTINGS[name] });
const ROWS = {
  alone: row(ALONE),
  again: { ...row(ALONE), name: `${ALONE}, a second process` },
  recommended: row('tracing + mutexprof/opentelemetry, minWaitMs 5 (recommended)'),
  zero: row('tracing + mutexprof/opentelemetry, minWaitMs 0'),
  follow: row('tracing + mutexprof/opentelemetry following every wait, no span (minWaitMs 10⁶, no span budget)'),
};
const RUNS = arg('rows', Object.keys(ROWS).join(','))
  .split(',')
  .map((key) => ROWS[key] ?? fail(`--rows: no row ${key} (${Object.keys(ROWS).join(', ')})`));
const SERVICE = { immediate: 'all contended, `setImmediate`', stat: 'all contended, `fs.stat`' };

/** A service process of `setting` in `scenario` ('on' mode), under valgrind if `valgrindDir` is given. */
async function startService(scenario, setting, valgrindDir) {
  const env = { ...process.env, SERVICE: JSON.stringify({ dist, scenario, lock: 'mutexprof', style: 'withLock', setup: setting.setup }) };
  const execArgv =
    valgrindDir === null
      ? []
      : ['--tool=callgrind', `--callgrind-out-file=${join(valgrindDir, 'cg.out')}`, '--dump-instr=no', '--collect-jumps=no', `--cache-sim=${cache ? 'yes' : 'no'}`, node, ...COUNTED_NODE_FLAGS];
  const child = fork(server, [], { env, execPath: valgrindDir === null ? node : 'valgrind', execArgv, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const [{ port }] = await once(child, 'message');
  const ask = async (m) => (child.send(m), (await once(child, 'message'))[0]);
  await ask({ mode: 'on' });
  return { child, url: `http://127.0.0.1:${port}/items/1`, ask, stop: async () => (child.send('exit'), await once(child, 'exit')) };
}

/** Loads `url` with `amount` requests (or for `duration` s); returns req/s. */
async function load(url, { amount, duration }) {
  const r = await autocannon({ url, connections: 50, timeout: 600, ...(amount ? { amount } : { duration }) });
  if (r.non2xx > 0 || r.errors > 0 || r.timeouts > 0) throw new Error(`service errors: ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts`);
  return r.requests.total / r.duration;
}

/** The service's req/s at full speed. */
async function nativeRate(scenario, setting) {
  const s = await startService(scenario, setting, null);
  try {
    await load(s.url, { duration: 2 });
    return await load(s.url, { duration: 5 });
  } finally {
    await s.stop();
  }
}

/**
 * The inclusive cost of the functions whose names match `re` (the outermost of each call chain), per unit: instructions,
 * and with --cache estimated cycles (Ir + 10 × (I1mr + D1mr + D1mw) + 100 × (ILmr + DLmr + DLmw), callgrind_annotate's
 * columns in the order of its events line).
 */
function inclusive(annotated, re) {
  let best = [0, 0];
  for (const line of annotated.split('\n')) {
    const m = /^\s*((?:(?:[\d,]+|\.) (?:\([^)]*\))?\s+)+)(.*)$/.exec(line);
    if (m === null || !re.test(m[2])) continue;
    const v = m[1]
      .replace(/\([^)]*\)/g, ' ')
      .trim()
      .split(/\s+/)
      .map((x) => (x === '.' ? 0 : Number(x.replaceAll(',', ''))));
    if (v[0] < best[0]) continue;
    best = [v[0], cache ? v[0] + 10 * (v[3] + v[4] + v[5]) + 100 * (v[6] + v[7] + v[8]) : 0];
  }
  return best;
}

/** One process of `setting` under valgrind: per measured block and unit, its cost per request (all, gc, jit, rest). */
async function measure(scenario, setting) {
  const full = await nativeRate(scenario, setting);
  const dir = mkdtempSync(join(tmpdir(), 'mutexprof-instructions-'));
  const s = await startService(scenario, setting, dir);
  const pid = String(s.child.pid);
  const control = (what) => execFileSync('callgrind_control', [what, pid], { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    let scale = 1;
    for (let done = 0; done < warmup; done += block) {
      const rate = await load(s.url, { amount: Math.min(block, warmup - done) });
      scale = full / rate;
      await s.ask({ clockScale: scale });
    }
    const out = [];
    for (let k = 0; k < blocks; k++) {
      const before = new Set(readdirSync(dir));
      control('-z');
      const rate = await load(s.url, { amount: block });
      control('-d');
      const [file] = readdirSync(dir).filter((f) => !before.has(f));
      const annotated = execFileSync('callgrind_annotate', ['--inclusive=yes', '--threshold=100', join(dir, file)], { encoding: 'utf8', maxBuffer: 1 << 28 });
      const total = inclusive(annotated, /^PROGRAM TOTALS$/);
      const gc = inclusive(annotated, /v8::internal::Heap::CollectGarbage\(/);
      const jit = inclusive(annotated, /GetOrCompileOptimized\(/);
      out.push({
        units: UNITS.map((_, u) => ({ total: total[u] / block, gc: gc[u] / block, jit: jit[u] / block, rest: (total[u] - gc[u] - jit[u]) / block })),
        scale: full / rate,
      });
    }
    return { blocks: out, full, scale };
  } finally {
    await s.stop();
    if (process.env.KEEP_DUMPS) console.error(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const k = (x) => `${(x / 1000).toFixed(1)} k`;

const sections = [];
for (const scenario of scenarios) {
  // each row's processes, in turns (row 1, row 2, …, then again), so that nothing about the order favours a row
  const results = RUNS.map(() => []);
  for (let p = 0; p < processes; p++) {
    for (const [i, { name, setting }] of RUNS.entries()) {
      const r = await measure(scenario, setting);
      for (const b of r.blocks) {
        const [c] = b.units;
        console.error(`  ${scenario}: ${name}: ${k(c.total)} instructions/request (gc ${k(c.gc)}, jit ${k(c.jit)}, rest ${k(c.rest)}); clock ×1/${b.scale.toFixed(0)}`);
      }
      results[i].push(r);
    }
  }
  UNITS.forEach((unit, u) => {
    const base = {};
    const rows = RUNS.map(({ name }, i) => {
      // per process, the median of its blocks; the row, the median of its processes
      const perProcess = results[i].map((r) => Object.fromEntries(['total', 'gc', 'jit', 'rest'].map((f) => [f, median(r.blocks.map((b) => b.units[u][f]))])));
      const m = Object.fromEntries(['total', 'gc', 'jit', 'rest'].map((f) => [f, median(perProcess.map((x) => x[f]))]));
      const range = (values) => `(${k(Math.min(...values))}–${k(Math.max(...values))})`;
      const totals = processes === 1 ? results[i][0].blocks.map((b) => b.units[u].total) : perProcess.map((x) => x.total);
      const rest = processes === 1 ? '' : ` ${range(perProcess.map((x) => x.rest))}`;
      if (i === 0) Object.assign(base, m);
      return (
        `| ${name} | ${k(m.total)} ${range(totals)} | ${(m.total / base.total).toFixed(4)} | ${k(m.rest)}${rest} | ${(m.rest / base.rest).toFixed(4)} | ` +
        `${k(m.gc)} | ${k(m.jit)} | ${median(results[i].map((r) => Math.round(r.full)))} |`
      );
    });
    const of =
      processes === 1
        ? `median of ${blocks} blocks of ${block} requests after ${warmup} (range)`
        : `median over ${processes} processes each of the median of its ${blocks} blocks of ${block} requests after ${warmup} (range of the processes)`;
    sections.push(
      `${SERVICE[scenario]}: ${unit} per request, ${of}, and ratios to the first row\n\n` +
        `| setting | ${unit} | ratio | without gc and jit | ratio | gc | jit | req/s at full speed |\n|---|---:|---:|---:|---:|---:|---:|---:|\n` +
        rows.join('\n'),
    );
  });
}
const text = `Node ${version}, under valgrind --tool=callgrind${cache ? ' --cache-sim=yes' : ''} (node ${COUNTED_NODE_FLAGS.join(' ')})\n\n${sections.join('\n\n')}\n`;
console.log(text);
if (markdown) {
  const day = new Date().toISOString().slice(0, 10);
  const file = fileURLToPath(new URL(`./results/${day}-instructions${nodeMajor ? `-node${nodeMajor}` : ''}${tag ? `-${tag}` : ''}.md`, import.meta.url));
  writeFileSync(file, `# ${day}: instructions\n\n\`node bench/instructions.mjs ${args.join(' ')}\` — ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'})\n\n${text}`);
  console.error(`written: ${file}`);
}

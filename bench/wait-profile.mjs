// Where a contended wait's instructions go, by function: bench/wait-instructions.mjs's hand-offs (16 traced requests
// handing a Mutex to one another) counted by valgrind's callgrind instruction by instruction, each address attributed to
// its function (V8's code through `--perf-basic-prof`'s map, the rest by callgrind's symbols). As in
// bench/wait-instructions.mjs, each row runs twice, with `--handoffs` and 3 × `--handoffs` hand-offs, and the difference
// over 2 × `--handoffs` is a warm hand-off's cost, now per function. The table is the functions whose cost differs most
// between the two rows (the second against the first), with each row's per hand-off. What V8 inlines is counted in the
// function it is inlined into: a difference in `_wait` may be code of mutexprof, of OpenTelemetry or of Node inlined
// there (`--no-inlining` attributes each function its own, at the price of the calls). One process a row and length, so
// a row moves by ~100 between runs (bench/wait-instructions.mjs's --repeat): read the large differences.
//   node bench/wait-profile.mjs [--node=24] [--rows=alone,follow] [--handoffs=20000] [--top=30] [--clock-scale=1]
//     [--no-inlining] [--dist=<a build's dist/>] [--markdown]
// --markdown writes bench/results/<date>-wait-profile-node<major>-<row>-<row>.md.
// --clock-scale slows the profiler's clock (the factor bench/wait-instructions.mjs prints for the recommended row).
import { spawnSync } from 'node:child_process';
import { createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { COUNTED_NODE_FLAGS, nodeBinary } from './node.mjs';

const args = process.argv.slice(2);
const arg = (name, d) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? d;
const fail = (message) => {
  throw new Error(message);
};
const major = arg('node', '24');
const rows = arg('rows', 'alone,follow').split(',');
const handoffs = Number(arg('handoffs', '20000'));
const top = Number(arg('top', '30'));
const clockScale = Number(arg('clock-scale', '1'));
const dist = resolve(arg('dist', fileURLToPath(new URL('../dist', import.meta.url))));
const KNOWN = ['alone', 'follow', 'recommended', 'alone-unsampled', 'unsampled'];
for (const r of rows) if (!KNOWN.includes(r)) fail(`--rows: no row ${r} (${KNOWN.join(', ')})`);
if (rows.length !== 2) fail(`--rows: two rows, the second set against the first, got ${rows.length}`);
if (!Number.isSafeInteger(handoffs) || handoffs < 1) fail(`--handoffs: a whole number ≥ 1, got ${arg('handoffs')}`);
if (!Number.isSafeInteger(top) || top < 1) fail(`--top: a whole number ≥ 1, got ${arg('top')}`);
if (!(clockScale >= 1)) fail(`--clock-scale: a number ≥ 1, got ${arg('clock-scale')}`);

const node = major === process.versions.node.split('.')[0] ? process.execPath : nodeBinary(major);
const flags = [...COUNTED_NODE_FLAGS, '--perf-basic-prof', '--no-compact-code-space', ...(args.includes('--no-inlining') ? ['--no-turbo-inlining', '--no-maglev-inlining'] : [])];
const child = fileURLToPath(new URL('./wait-instructions.mjs', import.meta.url));

/** V8's code map of process `pid`: sorted [start, end, name]. */
function codeMap(pid) {
  const file = `/tmp/perf-${pid}.map`;
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [a, s, ...name] = line.split(' ');
        const start = parseInt(a, 16);
        return [start, start + parseInt(s, 16), name.join(' ').replace(/^JS:[*+~^]?/, 'JS:')]; // one name for every tier
      })
      .sort((x, y) => x[0] - y[0]);
  } finally {
    rmSync(file, { force: true });
  }
}

function nameAt(map, addr) {
  let lo = 0;
  let hi = map.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (map[mid][0] <= addr) lo = mid + 1;
    else hi = mid - 1;
  }
  return hi >= 0 && addr < map[hi][1] ? map[hi][2] : null;
}

/**
 * Self instructions by function of a callgrind file written with --dump-instr=yes (its format: "fn=(id) name" and
 * "ob=(id) name" set the function and object, compressed to "(id)" when repeated; a cost line is an address, absolute
 * or relative to the last, then a line and the cost; the line after "calls=" is a call's inclusive cost, not self).
 */
async function selfCosts(file, map) {
  const cost = new Map();
  const fns = new Map();
  const obs = new Map();
  let fn = '';
  let ob = '';
  let pos = 0;
  let callCost = false;
  for await (const line of createInterface({ input: createReadStream(file) })) {
    const c = line[0];
    if (c === undefined || c === '#') continue;
    if ((c >= '0' && c <= '9') || c === '+' || c === '-' || c === '*') {
      const [p, , v] = line.split(' ');
      if (p.startsWith('0x')) pos = parseInt(p, 16);
      else if (c === '+') pos += Number(p.slice(1));
      else if (c === '-') pos -= Number(p.slice(1));
      if (callCost) {
        callCost = false;
        continue;
      }
      let name = fns.get(fn) ?? fn;
      if (obs.get(ob) === '???' || name.startsWith('0x')) name = nameAt(map, pos) ?? name;
      cost.set(name, (cost.get(name) ?? 0) + Number(v ?? 0));
      continue;
    }
    const m = /^(ob|fn|cob|cfn)=\((\d+)\)(?: (.*))?$/.exec(line);
    if (m !== null) {
      const [, key, id, name] = m;
      if (key === 'fn' || key === 'cfn') {
        if (name !== undefined) fns.set(id, name.replace(/'\d+$/, ''));
        if (key === 'fn') fn = id;
      } else {
        if (name !== undefined) obs.set(id, name);
        if (key === 'ob') ob = id;
      }
    } else if (line.startsWith('calls=')) callCost = true;
  }
  return cost;
}

const dir = mkdtempSync(join(tmpdir(), 'wait-profile-'));
try {
  /** Instructions per hand-off by function, for one row. */
  const perHandoff = async (row) => {
    const runs = [];
    for (const n of [handoffs, 3 * handoffs]) {
      const out = join(dir, `${row}-${n}.cg`);
      const env = { ...process.env, WAIT_INSTRUCTIONS: JSON.stringify({ dist, row, n, clockScale: row.startsWith('alone') ? 1 : clockScale }) };
      const r = spawnSync('valgrind', ['--tool=callgrind', '--dump-instr=yes', `--callgrind-out-file=${out}`, node, ...flags, child], {
        env,
        encoding: 'utf8',
        cwd: dir, // where V8 writes its log (with --perf-basic-prof): removed with the rest
      });
      const map = codeMap(r.pid);
      if (r.status !== 0) fail(`${row}, ${n} hand-offs: exit ${r.status}\n${r.stderr.slice(-2000)}`);
      runs.push(await selfCosts(out, map));
      rmSync(out);
    }
    const [a, b] = runs;
    const per = new Map();
    for (const k of new Set([...a.keys(), ...b.keys()])) per.set(k, ((b.get(k) ?? 0) - (a.get(k) ?? 0)) / (2 * handoffs));
    return per;
  };
  const [first, second] = [await perHandoff(rows[0]), await perHandoff(rows[1])];
  const sum = (m) => [...m.values()].reduce((x, y) => x + y, 0);
  const diff = [...new Set([...first.keys(), ...second.keys()])].map((k) => [k, first.get(k) ?? 0, second.get(k) ?? 0]);
  diff.sort((x, y) => Math.abs(y[2] - y[1]) - Math.abs(x[2] - x[1]));
  const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
  const f = (x) => x.toFixed(0);
  const sign = (x) => (x >= 0 ? '+' : '') + f(x);
  const lines = [
    `Node ${version}, ${handoffs} and ${3 * handoffs} hand-offs, instructions per hand-off by function (node ${flags.join(' ')})`,
    '',
    `| function | ${rows[0]} | ${rows[1]} | difference |`,
    '|---|---:|---:|---:|',
    `| (the whole process) | ${f(sum(first))} | ${f(sum(second))} | ${sign(sum(second) - sum(first))} |`,
    ...diff.slice(0, top).map(([k, a, b]) => `| ${k.replaceAll('|', '\\|').slice(0, 120)} | ${f(a)} | ${f(b)} | ${sign(b - a)} |`),
  ];
  console.log(lines.join('\n'));
  if (args.includes('--markdown')) {
    const day = new Date().toISOString().slice(0, 10);
    const file = fileURLToPath(new URL(`./results/${day}-wait-profile-node${version.slice(1).split('.')[0]}-${rows.join('-')}.md`, import.meta.url));
    const head = `# ${day}: a contended wait's instructions by function\n\n\`node bench/wait-profile.mjs ${args.join(' ')}\` — ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'})`;
    writeFileSync(file, `${head}\n\n${lines.join('\n')}\n`);
    console.error(`written: ${file}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

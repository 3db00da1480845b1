// The hot path beside an earlier build, with its own spread: node bench/ab.mjs <rev> [rounds] [--markdown]
// Runs the rows a change to the locks or their seam must not slow down (uncontended lock+unlock, using, withLock,
// contended hand-off with 16 and 1000 waiters, a request with tracking 'on' or the labels option, every release
// sampled) for this build (dist/, `npm run build` first), the build of <rev> (`node bench/baseline.mjs <rev>`), and
// that build again from a second copy: the A/A row is the run's own spread, what "within the spread" means.
import { cpSync, existsSync, rmSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { compare, compileFor, markdown, table } from './harness.mjs';
import { contended, uncontended } from './locks.mjs';

const base = process.argv[2];
const rounds = Number(process.argv.find((a) => /^\d+$/.test(a) && a !== base) ?? 15);
if (!base) {
  console.error('usage: node bench/ab.mjs <rev> [rounds] [--markdown]');
  process.exit(2);
}
const dir = (p) => fileURLToPath(new URL(p, import.meta.url));
const baseDist = dir(`./.baseline/${base}/dist`);
if (!existsSync(baseDist)) {
  console.error(`no build of ${base}: run node bench/baseline.mjs ${base} first`);
  process.exit(2);
}
const again = dir(`./.baseline/${base}-again/dist`);
cpSync(baseDist, again, { recursive: true });
const A = await import(pathToFileURL(dir('../dist/index.js')).href);
const B = await import(pathToFileURL(`${baseDist}/index.js`).href);
const B2 = await import(pathToFileURL(`${again}/index.js`).href);
const libs = { 'this build': A, [base]: B, [`${base} again (A/A)`]: B2 };
const noop = () => {};
function group(title, template, op, make, setup = () => {}, teardown = () => {}) {
  return [
    title,
    Object.fromEntries(
      Object.entries(libs).map(([name, lib]) => {
        const f = compileFor({ l: make(lib), noop, lib }, template(op));
        return [
          name,
          async (n) => {
            setup(lib);
            try {
              await f(n);
            } finally {
              teardown(lib);
            }
          },
        ];
      }),
    ),
  ];
}
const off = (lib) => {
  lib.setLockTracking('off');
  lib.setMutexProfileFraction(0);
  lib.setBlockProfileRate(0);
};
const request = (labels) => `
  const options = ${labels ? "{ labels: { route: '/items/:id' } }" : 'undefined'};
  const config = new lib.RWMutex({ name: 'config' });
  let left = n;
  const read = () => 1;
  const critical = async () => { await null; };
  const worker = async () => { while (left-- > 0) { await config.withRLock(read, options); await l.withLock(critical, options); } };
  await Promise.all(Array.from({ length: 16 }, worker));`;
const groups = [
  group('uncontended lock/unlock', uncontended, 'await l.lock(); l.unlock();', (L) => new L.Mutex({ name: 'b' })),
  group('uncontended using guard', uncontended, 'const g = await l.lock(); g[Symbol.dispose]();', (L) => new L.Mutex({ name: 'b' })),
  group('uncontended withLock', uncontended, 'await l.withLock(noop);', (L) => new L.Mutex({ name: 'b' })),
  group('contended hand-off, 16 waiters', contended(16), 'await l.lock(); l.unlock();', (L) => new L.Mutex({ name: 'b' })),
  group('contended hand-off, 1000 waiters', contended(1000), 'await l.lock(); l.unlock();', (L) => new L.Mutex({ name: 'b' })),
  group(
    "a request, tracking 'on'",
    () => request(false),
    '',
    (L) => new L.Mutex({ name: 'inventory' }),
    (L) => L.setLockTracking('on'),
    off,
  ),
  group(
    'a request, labels option',
    () => request(true),
    '',
    (L) => new L.Mutex({ name: 'inventory' }),
    () => {},
    off,
  ),
  group(
    'hand-off 16, every release sampled (fraction 1)',
    contended(16),
    'await l.lock(); l.unlock();',
    (L) => new L.Mutex({ name: 'b' }),
    (L) => L.setMutexProfileFraction(1),
    off,
  ),
];
const results = [];
for (const [title, impls] of groups) {
  const ops = title.includes('sampled') ? 20_000 : title.includes('request') ? 50_000 : 200_000;
  results.push(await compare(title, impls, { ops, rounds, baseline: base }));
  if (!process.argv.includes('--markdown')) console.log(table([results.at(-1)]));
}
if (process.argv.includes('--markdown')) console.log(`Node ${process.version}, ${rounds} rounds\n\n${markdown(results)}`);
rmSync(dir(`./.baseline/${base}-again`), { recursive: true, force: true });

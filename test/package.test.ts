// The package as a stranger gets it: packed, installed into a project of their own, and used from ESM, CommonJS and
// strict TypeScript (node16, nodenext and bundler resolution; `using` compiled for Node 20), checked by the tools the
// ecosystem uses for it (publint, @arethetypeswrong/cli). And a clone that was never built packs into the same.
import { describe, test, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = (name: string): string => join(root, 'node_modules', '.bin', name);
const run = (cmd: string, args: string[], cwd: string): string => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 180_000 });
const npm = (args: string[], cwd: string): string => run('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], cwd);

const ESM = `import { Mutex, setMutexProfileFraction, lookup } from 'mutexprof';
import { Mutex as AsyncMutex } from 'mutexprof/async-mutex';
setMutexProfileFraction(1);
const mu = new Mutex({ name: 'esm' });
const g = await mu.lock();
const w = mu.lock();
g[Symbol.dispose]();
(await w)[Symbol.dispose]();
await new AsyncMutex().runExclusive(() => 0);
const s = await lookup('mutex').snapshot();
console.log(JSON.stringify({ format: 'esm', samples: s.samples.length }));
`;
const CJS = `const { Mutex, setMutexProfileFraction, lookup } = require('mutexprof');
const { Mutex: AsyncMutex } = require('mutexprof/async-mutex');
(async () => {
  setMutexProfileFraction(1);
  const mu = new Mutex({ name: 'cjs' });
  const g = await mu.lock();
  const w = mu.lock();
  g[Symbol.dispose]();
  (await w)[Symbol.dispose]();
  await new AsyncMutex().runExclusive(() => 0);
  const s = await lookup('mutex').snapshot();
  console.log(JSON.stringify({ format: typeof module === 'object' ? 'cjs' : '?', samples: s.samples.length }));
})();
`;
// strict TypeScript with `using`: what tsc emits for target ES2022 runs on Node 20, which does not parse `using`
const TS = `import { Mutex, RWMutex, Semaphore, KeyedMutex, lookup, type Guard, type ProfileSnapshot } from 'mutexprof';
import { Mutex as AsyncMutex, type MutexInterface } from 'mutexprof/async-mutex';

const mu = new Mutex({ name: 'ts' });
async function critical(): Promise<number> {
  using _g: Guard = await mu.lock({ signal: AbortSignal.timeout(1000) });
  return mu.locked ? 1 : 0;
}
const rw = new RWMutex();
const readers: number = await rw.withRLock(() => rw.readers);
const sem = new Semaphore(2);
await sem.withPermit(() => 0, { weight: 2 });
await new KeyedMutex().withLock(['a', 'b'], () => 0);
const release: MutexInterface.Releaser = await new AsyncMutex().acquire();
release();
const s: ProfileSnapshot = await lookup('mutex').snapshot();
console.log(JSON.stringify({ format: 'ts', held: await critical(), readers, released: !mu.locked, samples: s.samples.length >= 0 }));
`;

function tsconfig(resolution: 'node16' | 'nodenext' | 'bundler'): object {
  return {
    compilerOptions: {
      strict: true,
      target: 'ES2022',
      lib: ['ES2022', 'ESNext.Disposable'],
      module: resolution === 'bundler' ? 'ESNext' : resolution,
      moduleResolution: resolution,
      types: ['node'],
      typeRoots: [join(root, 'node_modules', '@types')],
      outDir: `out-${resolution}`,
      skipLibCheck: false,
    },
    files: ['main.mts'],
  };
}

describe('the packed package, installed into a project of its own', () => {
  let dir = '';
  let tarball = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'mutexprof-package-'));
    // dist/ is built by npm test already: packing here without scripts leaves it alone while other tests read it
    const name = npm(['pack', '--ignore-scripts', '--pack-destination', dir], root).trim().split('\n').at(-1)!;
    tarball = join(dir, name);
    const app = join(dir, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module' }));
    npm(['install', tarball, '--ignore-scripts'], app);
    writeFileSync(join(app, 'main.mjs'), ESM);
    writeFileSync(join(app, 'main.cjs'), CJS);
    writeFileSync(join(app, 'main.mts'), TS);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('holds dist, the README, LICENSE and CHANGELOG, and nothing else', () => {
    const listed = run('tar', ['tzf', tarball], dir)
      .trim()
      .split('\n')
      .map((f) => f.replace(/^package\//, ''));
    expect(listed.filter((f) => !f.startsWith('dist/')).sort()).toEqual(['CHANGELOG.md', 'LICENSE', 'README.md', 'package.json']);
    expect(listed).toEqual(expect.arrayContaining(['dist/index.js', 'dist/index.cjs', 'dist/index.d.ts', 'dist/index.d.cts', 'dist/async-mutex.js', 'dist/async-mutex.cjs', 'dist/ui/flamegraph.js']));
  });

  test('import, require, and strict TypeScript under node16, nodenext and bundler resolution', () => {
    const app = join(dir, 'app');
    expect(JSON.parse(run(process.execPath, ['main.mjs'], app))).toEqual({ format: 'esm', samples: 1 });
    expect(JSON.parse(run(process.execPath, ['main.cjs'], app))).toEqual({ format: 'cjs', samples: 1 });
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    for (const resolution of ['node16', 'nodenext', 'bundler'] as const) {
      writeFileSync(join(app, `tsconfig.${resolution}.json`), JSON.stringify(tsconfig(resolution)));
      run(process.execPath, [tsc, '-p', `tsconfig.${resolution}.json`], app);
    }
    // what tsc emitted for ES2022 runs here (on Node 20 too: `using` is lowered, Symbol.dispose is Node's)
    expect(JSON.parse(run(process.execPath, [join('out-node16', 'main.mjs')], app))).toEqual({ format: 'ts', held: 1, readers: 1, released: true, samples: true });
  });

  test('publint and arethetypeswrong find nothing wrong', () => {
    expect(run(bin('publint'), ['run', tarball, '--strict', '--level', 'warning'], dir)).toMatch(/All good!/);
    const attw = run(bin('attw'), [tarball, '--profile', 'node16', '--format', 'json'], dir);
    // node10 is TypeScript's resolution without package.json exports; the package needs Node ≥ 20, which has them
    const problems = (JSON.parse(attw) as { analysis: { problems: Array<{ resolutionKind?: string }> } }).analysis.problems.filter((p) => p.resolutionKind !== 'node10');
    expect(problems).toEqual([]);
  });
});

// A stranger's clone has no node_modules and no dist/: `npm pack` (and `npm install <path>`, which runs the same
// `prepare`) must still give a package that works. Slow (installs the build tools): run on the main Node only.
test.skipIf(process.env.MUTEXPROF_OTHER_NODE === '1')('a clone that was never built packs into a working package', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mutexprof-clone-'));
  try {
    const clone = join(dir, 'clone');
    // the working tree's files as a clone would have them: tracked or new, never ignored ones (node_modules, dist)
    for (const f of run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], root)
      .split('\0')
      .filter((f) => f && existsSync(join(root, f)))) {
      mkdirSync(dirname(join(clone, f)), { recursive: true });
      cpSync(join(root, f), join(clone, f));
    }
    expect(readdirSync(clone)).not.toContain('dist');
    const name = npm(['pack', '--pack-destination', dir], clone).trim().split('\n').at(-1)!;
    const app = join(dir, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    npm(['install', join(dir, name), '--ignore-scripts'], app);
    writeFileSync(join(app, 'main.cjs'), CJS);
    expect(JSON.parse(run(process.execPath, ['main.cjs'], app))).toEqual({ format: 'cjs', samples: 1 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

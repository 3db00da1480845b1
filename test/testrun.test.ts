// A test run's profile files (MUTEXPROF_MUTEXPROFILE, as `go test -mutexprofile`) under the real runners: vitest
// (forks and threads pools), node --test (a process per file), jest (in band, in worker processes, in worker
// threads). The suites (test/fixtures/testrun) contend a known number of times: 4 on 'suite-cache', 3 on
// 'suite-settings', each file in its own process or thread. The written file is read back with pprof-format and
// with `go tool pprof -top`; a process that exits early, a failing run and a thread that never answers lose nothing
// and hang nothing.
import { describe, test, expect, afterAll } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import { goBinary } from './helpers.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const fixture = join(root, 'test/fixtures/testrun');
const go = goBinary();
const scratch: string[] = [];
afterAll(() => scratch.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A project directory with the suites, mutexprof and the runners linked; `type`: its package.json's module type. */
function project(type: 'module' | 'commonjs'): string {
  const dir = mkdtempSync(join(tmpdir(), 'mutexprof-testrun-'));
  scratch.push(dir);
  cpSync(fixture, dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'suite', private: true, type }));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(root, join(dir, 'node_modules/mutexprof'));
  mkdirSync(join(dir, 'tmp'));
  return dir;
}

interface Ran {
  code: number | null;
  output: string;
  ms: number;
}

/** Runs `args` in `dir` with the run's variables (and register preloaded with `preload`), as a user's shell would. */
function run(dir: string, args: string[], preload: string, extra: Record<string, string> = {}): Promise<Ran> {
  // the outer vitest's variables would make an inner vitest think it runs inside a worker
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST') && k !== 'NODE_ENV' && !k.startsWith('MUTEXPROF_')));
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(args[0], args.slice(1), {
      cwd: dir,
      env: { ...env, TMPDIR: join(dir, 'tmp'), NODE_OPTIONS: preload, MUTEXPROF_MUTEXPROFILE: join(dir, 'out/mutex.pb.gz'), MUTEXPROF_BLOCKPROFILE: join(dir, 'out/block.pb.gz'), ...extra },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('exit', (code) => resolve({ code, output, ms: performance.now() - started }));
  });
}

interface Written {
  /** contentions per lock label */
  counts: Map<string, number>;
  /** distinct values of the pid and thread labels */
  pids: Set<string>;
  threads: Set<string>;
}

function read(file: string): Written {
  const p = Profile.decode(gunzipSync(readFileSync(file)));
  const str = (i: unknown): string => p.stringTable.strings[Number(i)];
  const counts = new Map<string, number>();
  const pids = new Set<string>();
  const threads = new Set<string>();
  for (const s of p.sample) {
    const labels = new Map(s.label.map((l) => [str(l.key), str(l.str)]));
    const lock = labels.get('lock') ?? '';
    counts.set(lock, (counts.get(lock) ?? 0) + Number(s.value[0]));
    if (labels.has('pid')) pids.add(labels.get('pid')!);
    if (labels.has('thread')) threads.add(labels.get('thread')!);
  }
  return { counts, pids, threads };
}

/** The run's files hold every file's contention, once; go tool pprof reads them; the spool is gone. */
async function expectProfiles(dir: string, ran: Ran, perProcess: { pids: number; threads?: number }): Promise<void> {
  expect(existsSync(join(dir, 'out/mutex.pb.gz')), ran.output).toBe(true);
  const mutex = read(join(dir, 'out/mutex.pb.gz'));
  expect(Object.fromEntries(mutex.counts)).toEqual({ 'suite-cache': 4, 'suite-settings': 3 });
  expect(mutex.pids.size).toBe(perProcess.pids);
  if (perProcess.threads !== undefined) expect(mutex.threads.size).toBe(perProcess.threads);
  const block = read(join(dir, 'out/block.pb.gz'));
  expect(Object.fromEntries(block.counts)).toEqual({ 'suite-cache': 4, 'suite-settings': 3 }); // every wait
  if (go !== null) {
    const { stdout } = await promisify(execFile)(go, ['tool', 'pprof', '-top', '-sample_index=contentions', join(dir, 'out/mutex.pb.gz')], { env: { ...process.env, PPROF_TMPDIR: join(dir, 'tmp') } });
    expect(stdout).toMatch(/Mutex\.unlock/);
    expect(stdout).toMatch(/RWMutex\.unlock/);
  }
}

const vitest = join(root, 'node_modules/.bin/vitest');
const jest = join(root, 'node_modules/.bin/jest');

describe('MUTEXPROF_MUTEXPROFILE and MUTEXPROF_BLOCKPROFILE: one file per profile for the whole run', () => {
  test.each(['forks', 'threads'])('vitest, %s pool', async (pool) => {
    const dir = project('module');
    symlinkSync(join(root, 'node_modules/vitest'), join(dir, 'node_modules/vitest'));
    const ran = await run(dir, [vitest, 'run', `--pool=${pool}`, '--root', '.', 'vitest.test'], '--import mutexprof/register');
    expect(ran.code, ran.output).toBe(0);
    await expectProfiles(dir, ran, pool === 'forks' ? { pids: 2 } : { pids: 1, threads: 2 });
    // the spool is removed at the end when processes inherited it (here the run's parent is a Node.js process that
    // does not take part: a run of threads leaves its spool to the next run's clean-up, see src/register/testrun.ts)
    if (pool === 'forks') expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
  });

  test('node --test: a process per file', async () => {
    const dir = project('module');
    const ran = await run(dir, [process.execPath, '--test', 'a.node.test.mjs', 'b.node.test.mjs'], '--import mutexprof/register');
    expect(ran.code, ran.output).toBe(0);
    await expectProfiles(dir, ran, { pids: 2 });
  });

  test.each([
    ['in band', ['--runInBand'], { pids: 1 }],
    ['worker processes', ['--maxWorkers=2'], { pids: 2 }],
    ['worker threads', ['--maxWorkers=2', '--workerThreads'], { pids: 1, threads: 2 }],
  ] as const)('jest, %s', async (_, args, expected) => {
    const dir = project('commonjs');
    const ran = await run(dir, [jest, '--no-cache', '--rootDir', '.', '--testMatch', '**/*.jest.test.js', ...args], '--require mutexprof/register');
    expect(ran.code, ran.output).toBe(0);
    await expectProfiles(dir, ran, expected);
  });

  test('a spool a run left behind is removed by a later run once its parent is gone', async () => {
    const dir = project('module');
    const stale = join(dir, 'tmp/mutexprof-run-0123456789abcdef');
    mkdirSync(stale);
    writeFileSync(join(stale, 'parent'), '2147483646 1'); // no such process
    writeFileSync(join(stale, 'merged.json'), '[]');
    const ran = await run(dir, [process.execPath, '--test', 'a.node.test.mjs'], '--import mutexprof/register');
    expect(ran.code, ran.output).toBe(0);
    expect(existsSync(stale)).toBe(false);
  });

  test('a failing run, and a process that exits early, lose nothing', async () => {
    const dir = project('module');
    writeFileSync(join(dir, 'c.node.test.mjs'), "import { test } from 'node:test';\ntest('fails', () => { throw new Error('red'); });\n");
    writeFileSync(join(dir, 'd.node.test.mjs'), "import { refills } from './work.mjs';\nawait refills();\nprocess.exit(0);\n");
    const ran = await run(dir, [process.execPath, '--test', 'b.node.test.mjs', 'c.node.test.mjs', 'd.node.test.mjs'], '--import mutexprof/register');
    expect(ran.code).not.toBe(0);
    await expectProfiles(dir, ran, { pids: 2 });
  });

  test('a worker thread that never answers is terminated after a bounded wait; what it wrote is kept', async () => {
    const dir = project('module');
    writeFileSync(
      join(dir, 'spin.mjs'),
      [
        "import { Worker, isMainThread } from 'node:worker_threads';",
        "import { refills, writes } from './work.mjs';",
        'if (isMainThread) {',
        '  await writes();',
        '  const w = new Worker(new URL(import.meta.url));',
        "  await new Promise((r) => w.once('message', r));",
        '  await w.terminate();',
        '} else {',
        '  await refills();',
        '  await new Promise((r) => setTimeout(r, 400)); // its part is written shortly after its events',
        "  (await import('node:worker_threads')).parentPort.postMessage('spinning');",
        '  for (;;);',
        '}',
      ].join('\n'),
    );
    const ran = await run(dir, [process.execPath, 'spin.mjs'], '--import mutexprof/register');
    expect(ran.code, ran.output).toBe(0);
    expect(ran.ms).toBeLessThan(20_000);
    await expectProfiles(dir, ran, { pids: 1 });
  });
});

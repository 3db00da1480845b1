// One profiler per process: the ESM and CommonJS builds, and other installed copies, share rates, recorders,
// labels and the endpoint's view. An incompatible copy says so, once.
import { test, expect, afterAll } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'mutexprof-copies-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = (args: string[]): Record<string, unknown> => JSON.parse(execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8' }).trim()) as Record<string, unknown>;

test('the ESM and CommonJS builds in one process share one profiler', () => {
  const out = run(['test/fixtures/two-builds.mjs']);
  expect(out.cjsFraction).toBe(1); // set through the ESM build
  expect(out.locks).toEqual(['cjs-lock', 'esm-lock']); // one recorder
  expect(out.served).toEqual(['cjs-lock', 'esm-lock']); // one endpoint view
  expect(out.labelled).toBe(true); // labels set through one build label the other's locks
  expect(out.callers).toEqual(['contend']);
});

test('another installed copy of the package joins the same profiler', () => {
  // a second copy, as npm would install it under another package's node_modules
  const copy = join(dir, 'node_modules', 'mutexprof');
  cpSync(join(root, 'dist'), join(copy, 'dist'), { recursive: true });
  cpSync(join(root, 'package.json'), join(copy, 'package.json'));
  symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'));
  const out = run(['test/fixtures/two-builds.mjs', pathToFileURL(join(copy, 'dist', 'index.js')).href]);
  expect(out.copyFraction).toBe(1);
  expect(out.locks).toEqual(['cjs-lock', 'copy-lock', 'esm-lock']);
  expect(out.served).toEqual(['cjs-lock', 'copy-lock', 'esm-lock']);
  expect(out.callers).toEqual(['contend']); // the copy's own frames are dropped too
});

test('a copy of another profile protocol keeps its own profiler and says so once', () => {
  const script = `globalThis[Symbol.for('mutexprof')] = { protocol: 999, version: '9.9.9', slots: new Map() };
     const { createRequire } = await import('node:module');
     const esm = await import('mutexprof');
     const cjs = createRequire(import.meta.url)('mutexprof');
     esm.setMutexProfileFraction(3);
     console.log(cjs.setMutexProfileFraction(-1));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
  expect(r.status).toBe(0);
  expect(r.stdout.trim()).toBe('3'); // the two builds of this version still share theirs
  const warnings = r.stderr.split('\n').filter((l) => l.includes('MUTEXPROF_INCOMPATIBLE_COPY'));
  expect(warnings).toHaveLength(1);
  expect(r.stderr).toMatch(/mutexprof 0\.\d+\.\d+ \(profile protocol \d+\) is loaded beside mutexprof 9\.9\.9 \(protocol 999\)/);
});

// The built package (dist/), loaded the way users load it: require() and import, by package name.
import { test, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const run = (file: string): Record<string, unknown> =>
  JSON.parse(execFileSync(process.execPath, [file], { cwd: root, encoding: 'utf8' }).trim()) as Record<string, unknown>;

test('dist has both formats and their declarations', () => {
  for (const f of ['dist/index.js', 'dist/index.cjs', 'dist/index.d.ts', 'dist/index.d.cts']) expect(existsSync(root + f), f).toBe(true);
});

test('require() of the built package', () => {
  expect(run('test/fixtures/consumer.cjs')).toEqual({ locked: false, rate: 0, profile: 'mutex', format: 'object' });
});

test('import of the built package', () => {
  expect(run('test/fixtures/consumer.mjs')).toEqual({ locked: false, rate: 0, profile: 'mutex', format: 'esm' });
});

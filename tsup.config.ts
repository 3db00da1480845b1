import { readFileSync } from 'node:fs';
import { defineConfig } from 'tsup';

const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };

// One bundle per entry and format: dist/index.js (ESM), dist/index.cjs (CommonJS), dist/async-mutex.{js,cjs}
// (the drop-in), each with its declarations. The bundles share no module, only state (src/shared.ts).
export default defineConfig({
  entry: { index: 'src/index.ts', 'async-mutex': 'src/async-mutex/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  platform: 'node',
  splitting: false,
  external: ['express', 'prom-client'],
  shims: true,
  define: { __MUTEXPROF_VERSION__: JSON.stringify(version) },
});

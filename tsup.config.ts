import { readFileSync } from 'node:fs';
import { defineConfig } from 'tsup';

const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };

// One bundle per format: dist/index.js (ESM) and dist/index.cjs (CommonJS), each with its declarations.
export default defineConfig({
  entry: { index: 'src/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  platform: 'node',
  splitting: false,
  external: ['express'],
  shims: true,
  define: { __MUTEXPROF_VERSION__: JSON.stringify(version) },
});

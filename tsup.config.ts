import { defineConfig } from 'tsup';

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
});

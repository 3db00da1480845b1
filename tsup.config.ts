import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { build } from 'esbuild';
import { defineConfig } from 'tsup';

const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };

// One bundle per entry and format: dist/index.js (ESM), dist/index.cjs (CommonJS), dist/async-mutex.{js,cjs}
// (the drop-in), dist/register.{js,cjs} (the preload), dist/opentelemetry.{js,cjs} (the instrumentation), each with
// its declarations. The bundles share no module, only state (src/shared/state.ts): the same in both formats, and a
// process that loads several entries, or several copies, has one profiler (at the price of each entry's own code,
// ~170 KB).
// Then the flame-graph page's assets (src/http/ui.ts serves them): dist/ui/flamegraph.js, the page's script with
// d3-flame-graph and its d3 modules in one browser bundle, and dist/ui/flamegraph.css, d3-flame-graph's styles
// and the page's.

const PAGE_CSS = `
body { font: 14px system-ui, sans-serif; margin: 0 1rem; }
header { display: flex; gap: 1rem; align-items: center; flex-wrap: wrap; padding: .6rem 0; border-bottom: 1px solid #ddd; }
header label { display: flex; gap: .4rem; align-items: center; }
#summary, #details { color: #333; min-height: 1.2em; }
#chart { width: 100%; }
#comments { color: #8a4b00; }
`;

async function buildUi(): Promise<void> {
  mkdirSync('dist/ui', { recursive: true });
  await build({
    entryPoints: ['src/http/ui/app.ts'],
    bundle: true,
    minify: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2020',
    outfile: 'dist/ui/flamegraph.js',
    logLevel: 'warning',
    legalComments: 'eof',
  });
  // d3-flame-graph's exports map hides its dist/ folder from resolution: find the package, then read the file
  const pkg = dirname(createRequire(import.meta.url).resolve('d3-flame-graph'));
  writeFileSync('dist/ui/flamegraph.css', readFileSync(join(pkg, 'd3-flamegraph.css'), 'utf8') + PAGE_CSS);
}
export default defineConfig({
  entry: { index: 'src/index.ts', 'async-mutex': 'src/async-mutex/index.ts', register: 'src/register/index.ts', opentelemetry: 'src/opentelemetry/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  platform: 'node',
  splitting: false,
  external: ['express', 'prom-client', 'require-in-the-middle', 'import-in-the-middle', '@opentelemetry/api'],
  shims: true,
  define: { __MUTEXPROF_VERSION__: JSON.stringify(version) },
  onSuccess: buildUi,
});

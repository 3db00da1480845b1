// npm run bench [-- --quick] [-- --only=locks|profiling]
// Prints a table of ns/op and ratios; every row of the README's benchmark tables comes from this command.
import { lockBenchmarks } from './locks.mjs';
import { table, markdown } from './harness.mjs';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = args.find((a) => a.startsWith('--only='))?.slice(7);
const md = args.includes('--markdown');

console.log(`mutexprof benchmarks — Node ${process.version}, ${new Date().toISOString().slice(0, 10)}${quick ? ' (quick)' : ''}`);
const results = [];
if (!only || only === 'locks') results.push(...(await lockBenchmarks({ quick })));
if (!only || only === 'profiling') {
  const { profilingBenchmarks } = await import('./profiling.mjs');
  results.push(...(await profilingBenchmarks({ quick })));
}
console.log(md ? markdown(results) : table(results));

// Side-by-side benchmark harness: every implementation runs in the same process, rounds alternate the order,
// and results are medians over rounds, with ratios to a baseline taken round by round (the machines are shared and noisy).
import { performance } from 'node:perf_hooks';

/**
 * @param {string} title
 * @param {Record<string, (n: number) => Promise<void> | void>} impls  each runs n operations
 * @param {{ ops: number, rounds?: number, baseline?: string }} opt
 */
export async function compare(title, impls, { ops, rounds = 9, baseline }) {
  const names = Object.keys(impls);
  const samples = Object.fromEntries(names.map((n) => [n, []]));
  for (const n of names) await impls[n](Math.min(ops, 2000)); // warm-up
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? names : [...names].reverse();
    for (const n of order) {
      const t0 = performance.now();
      await impls[n](ops);
      samples[n].push(((performance.now() - t0) * 1e6) / ops);
    }
  }
  const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  const base = baseline ?? names[0];
  // The ratio is the median of per-round ratios: each round measures every implementation within a few hundred
  // milliseconds, so a slow spell of this shared machine moves both sides of a ratio together.
  const rows = names.map((n) => ({ impl: n, ns: median(samples[n]), ratio: median(samples[n].map((v, i) => v / samples[base][i])) }));
  return { title, baseline: base, rows };
}

const AsyncFunction = (async () => {}).constructor;

/**
 * Compiles `body` (the scenario's code, with `n` = operations) as its own function over the bindings in `env`.
 * Every implementation gets its own copy: V8 keeps type feedback per function literal, so one driver shared by
 * all implementations would see all their locks at the same call sites, go polymorphic, stop inlining, and add
 * the same overhead to every row, which blurs exactly the differences being measured.
 * @param {Record<string, unknown>} env
 * @param {string} body
 * @returns {(n: number) => Promise<void>}
 */
export function compileFor(env, body) {
  const names = Object.keys(env);
  return new AsyncFunction(...names, 'n', body).bind(null, ...names.map((k) => env[k]));
}

export function table(results) {
  let out = '';
  for (const res of results) {
    out += `\n${res.title}   (ratio to ${res.baseline})\n`;
    for (const r of res.rows) out += `  ${r.impl.padEnd(34)} ${r.ns.toFixed(1).padStart(10)} ${res.unit ?? 'ns/op'}   ${r.ratio.toFixed(2)}×\n`;
  }
  return out;
}

export function markdown(results) {
  let out = '| scenario | implementation | value | ratio |\n|---|---|---:|---:|\n';
  for (const res of results) {
    const unit = res.unit ?? 'ns/op';
    for (const r of res.rows) out += `| ${res.title} | ${r.impl} | ${r.ns.toFixed(unit === 'ns/op' ? 0 : 1)} ${unit} | ${r.ratio.toFixed(2)}× (to ${res.baseline}) |\n`;
  }
  return out;
}

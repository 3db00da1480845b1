// The service benchmark's rows of one or more result files (bench/results/*.md, as `--markdown` wrote them), laid
// out as docs/performance.md shows them: per setting and service, the change of req/s (median, and the range over
// the runs where it is wider than ±2 %) against what that file's setting was compared with.
//   node bench/summary.mjs bench/results/2026-12-06-service-summary.md bench/results/2026-12-06-service-settings.md
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

const SERVICES = ['`setImmediate`', '`fs.stat`', '5 % contended'];
const pct = (r) => {
  const p = Math.round((r - 1) * 100);
  return p === 0 ? '±0 %' : `${p > 0 ? '+' : '−'}${Math.abs(p)} %`;
};
/** "0.98 (0.97–1.00)" → "−2 % (−3…±0 %)" when the range is wider than ±2 % around the median. */
const cell = (text) => {
  const m = /^([\d.]+) \(([\d.]+)–([\d.]+)\)$/.exec(text.trim());
  if (m === null) return text.trim();
  const [med, lo, hi] = m.slice(1).map(Number);
  return hi - lo > 0.04 ? `${pct(med)} (${pct(lo)}…${pct(hi)})` : pct(med);
};

const rows = [];
for (const file of process.argv.slice(2)) {
  const text = readFileSync(file, 'utf8');
  const at = text.indexOf('The service rows, one line per setting');
  if (at < 0) throw new Error(`${file}: no service rows (was it written by npm run bench -- --only=service --markdown?)`);
  const lines = text
    .slice(at)
    .split('\n')
    .filter((l) => l.startsWith('| '));
  const head = lines[0].split('|').map((c) => c.trim());
  const col = (service) => head.indexOf(`${service}: req/s`);
  for (const line of lines.slice(1)) {
    const cells = line.split('|').map((c) => c.trim());
    rows.push([cells[1], ...SERVICES.map((s) => (col(s) < 0 ? '' : cell(cells[col(s)]))), basename(file)]);
  }
}
console.log(`| setting | ${SERVICES.map((s) => `${s}: req/s`).join(' | ')} | run |`);
console.log(`|---|${SERVICES.map(() => '---:').join('|')}|---|`);
for (const r of rows) console.log(`| ${r.join(' | ')} |`);

// Encoder: profile samples → Go's legacy `debug=1` text, the format google/pprof's legacy parser reads.
//
// Values are in nanoseconds (cycles/second=1000000000) and already scaled by the rate in force when each event
// was sampled, so the header says `sampling period=1`: the legacy parser multiplies by that period, and any
// other number would misstate the totals (Go ≥ 1.20 prints the current rate over pre-scaled values and so
// overstates them N-fold; with rate 0 its text reads back as zero).

import type { Entry } from './recorder.js';

/** Go's `--- mutex:` (mutex) or `--- contention:` (block) text. */
export function formatText(kind: 'mutex' | 'block', entries: readonly Entry[]): string {
  let out = kind === 'mutex' ? '--- mutex:\ncycles/second=1000000000\nsampling period=1\n' : '--- contention:\ncycles/second=1000000000\n';
  for (const e of entries) {
    const count = Math.round(e.count);
    const ns = Math.round(e.delay);
    if (count === 0 && ns === 0) continue;
    out += `${ns} ${count} @`;
    for (const f of e.frames) out += ' 0x' + (f.addr + 1).toString(16); // return PCs, as Go prints them
    out += '\n';
    // `#\tpc\tfunc+off\tfile:line`, aligned as Go's tabwriter (minwidth 1, tabwidth 8, padding 1, '\t') does
    const rows = e.frames.map((f) => ['#', '0x' + f.addr.toString(16), f.name + '+0x0', `${f.file}:${f.line}`]);
    out += tabulate(rows);
    out += '\n';
  }
  return out;
}

function tabulate(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) for (let c = 0; c < r.length - 1; c++) widths[c] = Math.max(widths[c] ?? 0, r[c].length);
  let out = '';
  for (const r of rows) {
    for (let c = 0; c < r.length - 1; c++) {
      const col = Math.ceil((widths[c] + 1) / 8) * 8;
      out += r[c] + '\t'.repeat(Math.ceil((col - r[c].length) / 8));
    }
    out += r[r.length - 1] + '\n';
  }
  return out;
}

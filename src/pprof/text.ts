// Encoder: a profile snapshot → Go's legacy `debug=1` text for contention profiles, the format google/pprof's
// legacy parser reads: `<delay> <count> @ <addresses>`, then one `#\t<pc>\t<function>+0x0\t<file>:<line>` line
// per frame. Values are in nanoseconds (cycles/second=1000000000).
//
// Names and paths are escaped (control characters as \xNN): a function named with a newline must not start a
// record of its own in a format whose records are lines.

import type { ProfileSnapshot } from './registry.js';

/** Characters written in this many milliseconds before the generator yields to the event loop. */
const SLICE_MS = 4;
const CHUNK_CHARS = 64 * 1024;

/** @internal A name or path with its control characters escaped, safe for a line-oriented format. */
export function escapeLine(s: string): string {
  // eslint-disable-next-line no-control-regex
  return /[\x00-\x1f\x7f]/.test(s) ? s.replace(/[\x00-\x1f\x7f]/g, (c) => '\\x' + c.charCodeAt(0).toString(16).padStart(2, '0')) : s;
}

/**
 * @internal The legacy text of a contention-shaped snapshot (values [count, delay]) after `header`, in chunks of
 * about 64 KiB, yielding to the event loop every few milliseconds.
 */
export async function* textChunks(header: string, s: ProfileSnapshot): AsyncGenerator<string> {
  let out = header;
  let deadline = performance.now() + SLICE_MS;
  for (let i = 0; i < s.samples.length; i++) {
    const e = s.samples[i];
    const count = Math.round(e.values[0]);
    const ns = Math.round(e.values[1]);
    if (count === 0 && ns === 0) continue;
    out += `${ns} ${count} @`;
    for (const f of e.frames) out += ' 0x' + (f.addr + 1).toString(16); // return PCs, as Go prints them
    out += '\n';
    // `#\tpc\tfunc+off\tfile:line`, aligned as Go's tabwriter (minwidth 1, tabwidth 8, padding 1, '\t') does
    out += tabulate(e.frames.map((f) => ['#', '0x' + f.addr.toString(16), escapeLine(f.name) + '+0x0', `${escapeLine(f.file)}:${f.line}`]));
    out += '\n';
    if (out.length >= CHUNK_CHARS) {
      yield out;
      out = '';
      if (performance.now() >= deadline) {
        await new Promise<void>((r) => setImmediate(r));
        deadline = performance.now() + SLICE_MS;
      }
    }
  }
  yield out;
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

// Encoder: a profile snapshot → Go's legacy `debug=1` text for contention profiles, the format google/pprof's
// legacy parser reads: `<delay> <count> @ <addresses>`, then one `#\t<pc>\t<function>+0x0\t<file>:<line>` line
// per frame. Values are in nanoseconds (cycles/second=1000000000).
//
// Names and paths are escaped (control characters as \xNN): a function named with a newline must not start a
// record of its own in a format whose records are lines.

import { Slicer } from '../profile/slice.js';
import type { Frame } from '../profile/stack.js';
import type { ProfileSnapshot } from './registry.js';

const CHUNK_CHARS = 64 * 1024;

/** A name or path with its control characters escaped, safe for a line-oriented format. */
export function escapeLine(s: string): string {
  // eslint-disable-next-line no-control-regex
  return /[\x00-\x1f\x7f]/.test(s) ? s.replace(/[\x00-\x1f\x7f]/g, (c) => '\\x' + c.charCodeAt(0).toString(16).padStart(2, '0')) : s;
}

/**
 * The legacy text of a contention-shaped snapshot (values [count, delay]) after `header`, in chunks of
 * about 64 KiB, yielding to the event loop every few milliseconds.
 */
export async function* textChunks(header: string, s: ProfileSnapshot): AsyncGenerator<string> {
  // the columns of each frame's line, made once per frame (frames recur across samples)
  const cells = new Map<Frame, { pc: string; ret: string; fn: string; at: string }>();
  const cellsOf = (f: Frame): { pc: string; ret: string; fn: string; at: string } => {
    let c = cells.get(f);
    if (c === undefined) {
      c = { pc: '0x' + f.addr.toString(16), ret: ' 0x' + (f.addr + 1).toString(16), fn: escapeLine(f.name) + '+0x0', at: `${escapeLine(f.file)}:${f.line}\n` };
      cells.set(f, c);
    }
    return c;
  };
  let out = header;
  const slice = new Slicer();
  for (let i = 0; i < s.samples.length; i++) {
    const e = s.samples[i];
    const count = Math.round(e.values[0]);
    const ns = Math.round(e.values[1]);
    if (count === 0 && ns === 0) continue;
    out += `${ns} ${count} @`;
    let pcWidth = 0;
    let fnWidth = 0;
    for (const f of e.frames) {
      const c = cellsOf(f);
      out += c.ret; // return PCs, as Go prints them
      if (c.pc.length > pcWidth) pcWidth = c.pc.length;
      if (c.fn.length > fnWidth) fnWidth = c.fn.length;
    }
    out += '\n';
    // `#\tpc\tfunc+off\tfile:line`, aligned as Go's tabwriter (minwidth 1, tabwidth 8, padding 1, '\t') does
    const pcCol = Math.ceil((pcWidth + 1) / 8) * 8;
    const fnCol = Math.ceil((fnWidth + 1) / 8) * 8;
    for (const f of e.frames) {
      const c = cellsOf(f);
      out += '#\t' + c.pc + tabs(pcCol - c.pc.length) + c.fn + tabs(fnCol - c.fn.length) + c.at;
    }
    out += '\n';
    if (out.length >= CHUNK_CHARS) {
      yield out;
      out = '';
      await slice.check();
    }
  }
  yield out;
}

const TABS = '\t'.repeat(64);
/** The tabs that take a cell `pad` characters short of its column's width to the next column. */
function tabs(pad: number): string {
  return TABS.slice(0, Math.ceil(pad / 8));
}

// Delta windows: the values of every sample at a point in a profile's history, kept for as long as a window is open.
//
// ─── Windows ────────────────────────────────────────────────────────────────────────────────────────────────
// A delta profile (`?seconds=N`) needs the values at its start. Instead of copying every sample per window, the
// recorder keeps an undo log while any window is open: the first change to a sample after a window's start logs
// the sample's values before it. valuesAt(mark) reads the values at the mark back from the log: windows opened
// together share what they can, and memory follows what changed, not the profile's size.
// A mark is a sequence number: the value of a sample at mark m is the sum of its events numbered ≤ m. Events are
// applied in sequence order, whenever a drain or a reader gets to them, so:
//   - a sample born after m (its first event is numbered > m) is 0 at m, whatever the log says of it: its log
//     records hold values at later marks (an event still pending when a later window ended is applied, and
//     logged, after that window's mark);
//   - for a sample born at or before m, the first log record numbered > m holds its value at m, and with no such
//     record its current value is the value at m: apply() logs the first change after every open mark.
// ─────────────────────────────────────────────────────────────────────────────────────────────────────────────

import type { Entry } from './admission.js';
import { Slicer } from './slice.js';

/** A point in a recorder's history: every event before it, none after. */
export interface Mark {
  readonly seq: number;
}

/** Values of every sample at a mark (indexed by Entry.index; samples born later are 0). */
export interface Values {
  readonly count: Float64Array;
  readonly delay: Float64Array;
}

/** The open marks of one recorder, and the undo log they need. */
export class Windows {
  private readonly marks: Mark[] = [];
  /** the latest open mark (-1: none) */
  private latest = -1;
  /** [index, count, delay, seq] per record, in seq order */
  private log: number[] = [];

  /** Event `seq` is about to change `e`: log its values before it if an open mark needs them. */
  changing(e: Entry, seq: number): void {
    if (e.mod <= this.latest) this.log.push(e.index, e.count, e.delay, seq);
  }

  /** Opens a window at the current point: every event added so far is before it. */
  mark(seq: number): Mark {
    const m: Mark = { seq };
    this.marks.push(m);
    if (m.seq > this.latest) this.latest = m.seq;
    return m;
  }

  /** Marks open now (windows, and snapshots being taken). */
  openMarks(): number {
    return this.marks.length;
  }

  /** Closes a window; the log keeps only what the remaining ones need. */
  unmark(m: Mark): void {
    const i = this.marks.indexOf(m);
    if (i < 0) return;
    this.marks.splice(i, 1);
    if (this.marks.length === 0) {
      this.latest = -1;
      this.log = [];
      return;
    }
    let oldest = Infinity;
    let latest = -1;
    for (const k of this.marks) {
      if (k.seq < oldest) oldest = k.seq;
      if (k.seq > latest) latest = k.seq;
    }
    this.latest = latest;
    const from = this.firstLogAfter(oldest);
    if (from > 4096 && from * 2 > this.log.length / 4) this.log = this.log.slice(from * 4);
  }

  /** Index (in records) of the first log record after `seq`. */
  private firstLogAfter(seq: number): number {
    let lo = 0;
    let hi = this.log.length / 4;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.log[mid * 4 + 3] <= seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Values of every sample at `m` (requires settled(m)), read in slices. Samples that change while it
   * reads are logged (m is open), and the log is read last: its first record after m holds the value at m.
   */
  async valuesAt(entries: readonly Entry[], m: Mark): Promise<Values> {
    const n = entries.length;
    const count = new Float64Array(n);
    const delay = new Float64Array(n);
    const slice = new Slicer();
    for (let i = 0; i < n; i++) {
      const e = entries[i];
      if (e.born <= m.seq) {
        count[i] = e.count;
        delay[i] = e.delay;
      }
      const p = slice.tick();
      if (p !== null) await p;
    }
    const seen = new Uint8Array(n);
    const log = this.log;
    for (let r = this.firstLogAfter(m.seq) * 4; r < log.length; r += 4) {
      const i = log[r];
      if (i >= n || seen[i] === 1) continue;
      seen[i] = 1;
      if (entries[i].born > m.seq) continue; // born after m: 0 at m (see "Windows" above)
      count[i] = log[r + 1];
      delay[i] = log[r + 2];
    }
    return { count, delay };
  }

  /** Forgets the log. Throws, changing nothing, while a mark is open. */
  reset(): void {
    if (this.marks.length > 0) throw new Error('mutexprof: a profile cannot be reset while a window or a snapshot is open on it');
    this.log = [];
    this.latest = -1;
  }
}

// The recorder: how sampled events become samples, off the lock's path.
//
// ─── What is recorded ───────────────────────────────────────────────────────────────────────────────────────
// Mutex profile (the holders' view, Go's /debug/pprof/mutex):
//   event   = a release (unlock, rUnlock, guard dispose, end of withLock) while at least one followed waiter is
//             queued on that lock, or while waiting carried from waiters that left without a release is pending.
//   delay   = the waiting this release ends the blame for: Σ over every waiter queued at any time since the
//             previous release event on the same lock of (now − max(its enqueue time, that previous event)).
//             Go 1.22's rule ("100 goroutines blocked 10 ms → 1 s"), computed exactly (src/profile/contention.ts).
//   stack   = the releaser's, leaf `Mutex.unlock` / `RWMutex.unlock` / `RWMutex.rUnlock`.
// Block profile (the waiters' view, Go's /debug/pprof/block):
//   event   = a waiter that waited (granted or aborted); delay = its own wait; stack = its lock()/rLock() call.
// Sampling (src/profile/sampling.ts) is decided per event and scaled when recorded (Go ≥ 1.20): a recorded event
// adds (count, delay) already weighted, so a later rate change never rescales old samples.
// Labels: `lock` = the lock's name when it has one, plus the labels of withLabels() around the event.
//
//
// An event waits, captured but unresolved, in a ring of at most PENDING per profile; the drain (src/profile/drain.ts)
// resolves them in batches, a few milliseconds at a time, and readers resolve what is still pending first. Resolved,
// an event lands in its sample (src/profile/admission.ts, within the bounds), and open windows keep the values it
// changes (src/profile/windows.ts).
// ─────────────────────────────────────────────────────────────────────────────────────────────────────────────

import { Admission, type AdmissionStats, type Entry } from './admission.js';
import type { LabelSet } from './labels.js';
import { sliceClock } from './slice.js';
import { resolve, type Captured } from './stack.js';
import { Windows, type Mark, type Values } from './windows.js';

export type { Entry, Mark, Values };

const PENDING = 4096;

interface Pending {
  stack: Captured;
  leaf: string;
  lock: string;
  side: string | null;
  labels: LabelSet | null;
  count: number;
  delay: number;
  seq: number;
}

/** What the bounds cost attribution so far, in events. */
export interface RecorderStats extends AdmissionStats {
  readonly samples: number;
  readonly maxEntries: number;
}

/** One cumulative profile: aggregated samples plus captured-but-unresolved events. */
export class Recorder {
  private readonly admission: Admission;
  private readonly windows = new Windows();
  // pending events, a ring in arrival (sequence) order
  private readonly ring: Array<Pending | undefined> = new Array(PENDING);
  private head = 0;
  private size = 0;
  /** sequence number of the last event added, and of the last one applied */
  private seq = 0;
  private applied = 0;
  /** called after each event added, when set (a test run writes its profiles shortly after its events) */
  onEvent: (() => void) | null = null;

  /** `cap()`: the samples it keeps before attribution degrades; `onPending(n)`: n events wait now (the drain's cue). */
  constructor(
    private readonly cap: () => number,
    private readonly onPending: (n: number) => void,
  ) {
    this.admission = new Admission(cap);
  }

  /** The samples, in the order they were made. */
  get entries(): readonly Entry[] {
    return this.admission.entries;
  }

  /** A captured event: resolved and aggregated later, off the caller's path. */
  add(stack: Captured, leaf: string, lock: string, side: string | null, count: number, delay: number, labels: LabelSet | null): void {
    const p: Pending = { stack, leaf, lock, side, labels, count, delay, seq: ++this.seq };
    // Full (a burst with no turn of the event loop in between): the caller resolves the oldest one, so memory
    // stays bounded, the order stays the arrival order, and no caller pays for more than one.
    if (this.size === PENDING) this.applyOldest();
    this.ring[(this.head + this.size++) % PENDING] = p;
    this.onPending(this.size);
    if (this.onEvent !== null) this.onEvent();
  }

  private applyOldest(): void {
    const p = this.ring[this.head]!;
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) % PENDING;
    this.size--;
    const e = this.admission.entryFor(resolve(p.stack, p.leaf), p);
    this.windows.changing(e, p.seq);
    e.count += p.count;
    e.delay += p.delay;
    e.mod = p.seq;
    this.applied = p.seq;
  }

  /**
   * Resolves pending events, oldest first, until none is left, `max` are resolved, or `deadline` (sliceClock ms) has
   * passed. Returns whether none is left.
   */
  drain(deadline = Infinity, max = Infinity): boolean {
    for (let n = 1; this.size > 0 && n <= max; n++) {
      this.applyOldest();
      if ((n & 7) === 0 && sliceClock.now() >= deadline) break;
    }
    return this.size === 0;
  }

  /** Sequence number of the last event added: unchanged, nothing new was recorded. */
  seqNow(): number {
    return this.seq;
  }

  /** Events added but not resolved yet. */
  pending(): number {
    return this.size;
  }

  /**
   * Forgets every sample and pending event: a clean slate (tests). Sequence numbers go on (a reader never mistakes
   * the new profile for the old one). Throws, changing nothing, while a window or snapshot is open.
   */
  reset(): void {
    this.windows.reset();
    this.admission.reset();
    this.ring.fill(undefined);
    this.head = this.size = 0;
    this.applied = this.seq;
  }

  /** Distinct samples, once what is pending is resolved (synchronously: readers that may meet a burst await settleAll() first). */
  count(): number {
    this.drain();
    return this.entries.length;
  }

  stats(): RecorderStats {
    return { samples: this.entries.length, maxEntries: this.cap(), ...this.admission.stats() };
  }

  /** Opens a window at the current point: every event added so far is before it. */
  mark(): Mark {
    return this.windows.mark(this.seq);
  }

  /** Marks open now (windows, and snapshots being taken). */
  openMarks(): number {
    return this.windows.openMarks();
  }

  /** Closes a window; the log keeps only what the remaining ones need. */
  unmark(m: Mark): void {
    this.windows.unmark(m);
  }

  /** Whether every event before `m` has been resolved. */
  settled(m: Mark): boolean {
    return this.applied >= m.seq || this.size === 0;
  }

  /** Values of every sample at `m` (requires settled(m)), read in slices (see src/profile/windows.ts). */
  valuesAt(m: Mark): Promise<Values> {
    return this.windows.valuesAt(this.entries, m);
  }
}

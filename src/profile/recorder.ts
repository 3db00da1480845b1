// The recorder: how sampled events become samples, within bounds that hold under any traffic.
//
// ─── What is recorded ───────────────────────────────────────────────────────────────────────────────────────
// Mutex profile (the holders' view, Go's /debug/pprof/mutex):
//   event   = a release (unlock, rUnlock, guard dispose, end of withLock) while at least one timed waiter is
//             queued on that lock, or while waiting carried from waiters that left without a release is pending.
//   delay   = the waiting this release ends the blame for: Σ over every waiter queued at any time since the
//             previous release event on the same lock of (now − max(its enqueue time, that previous event)).
//             Go 1.22's rule ("100 goroutines blocked 10 ms → 1 s"), computed exactly (src/locks/contention.ts).
//   stack   = the releaser's, leaf `Mutex.unlock` / `RWMutex.unlock` / `RWMutex.rUnlock`.
// Block profile (the waiters' view, Go's /debug/pprof/block):
//   event   = a waiter that waited (granted or aborted); delay = its own wait; stack = its lock()/rLock() call.
// Sampling (src/profile/sampling.ts) is decided per event and scaled when recorded (Go ≥ 1.20): a recorded event
// adds (count, delay) already weighted, so a later rate change never rescales old samples.
// Labels: `lock` = the lock's name when it has one, plus the labels of withLabels() around the event.
//
// ─── Bounds ─────────────────────────────────────────────────────────────────────────────────────────────────
// Captured stacks wait, unresolved, in a ring of at most PENDING events per profile; a drain resolves them in
// batches, up to DRAIN_DELAY_MS later, a few milliseconds at a time. Samples aggregate by (stack, lock, labels), at most
// `maxEntries` of them (plus one overflow sample per lock), and attribution degrades in steps as they fill up,
// never to nothing, with exact totals throughout:
//   below ½ maxEntries  a new sample keeps every label;
//   below ¾             it drops the label keys seen with more than min(64, maxEntries/16) distinct values (a
//                       request id goes, a route stays);
//   below the cap       it drops every withLabels label and keeps its stack and `lock`;
//   past the cap        it lands in its lock's `mutexprof.overflow` sample (leaf, then mutexprof.overflow).
// An event whose sample already exists always lands in it. Nothing grows before a sample is admitted, so memory
// follows the number of samples, not of distinct stacks or label sets. What was dropped is counted (stats()),
// and shown in the profile's comments and on the index page.
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

import { shared } from '../shared.js';
import { capture, resolve, leafFrame, syntheticFrame, setMaxDepth, getMaxDepth, type Captured, type Frame } from './stack.js';
import { eventLabels, labelSet, type LabelSet } from './labels.js';
import { sampling, redraw } from './sampling.js';
import { Slicer, nextTurn, sliceClock } from './slice.js';

const PENDING = 4096;
/** Label keys seen with more distinct values than this (or than maxEntries/16) are dropped first under pressure. */
const HIGH_CARDINALITY = 64;
const TRACKED_KEYS = 256;
const OVERFLOW_LOCKS = 1000;
const OVERFLOW = 'mutexprof.overflow';
/** How long one turn of the drain may resolve stacks before it yields (ms). */
const DRAIN_SLICE_MS = 4;

/** One aggregated sample. */
export interface Entry {
  /** position in the recorder (stable for the process's life) */
  readonly index: number;
  readonly frames: readonly Frame[];
  /** the lock's name ('' when it has none) */
  readonly lock: string;
  /** the RWMutex side ('read' or 'write'), null for other locks */
  readonly mode: string | null;
  readonly labels: LabelSet | null;
  count: number;
  delay: number;
  /** @internal sequence number of the event that created it */
  readonly born: number;
  /** @internal sequence number of the last event applied to it */
  mod: number;
}

interface Pending {
  stack: Captured;
  leaf: string;
  lock: string;
  mode: string | null;
  labels: LabelSet | null;
  count: number;
  delay: number;
  seq: number;
}

interface Stack {
  readonly frames: readonly Frame[];
  readonly samples: Map<string, Entry>;
}

/** What the bounds cost attribution so far, in events. */
export interface RecorderStats {
  readonly samples: number;
  readonly maxEntries: number;
  /** events recorded without some of their labels (the high-cardinality keys in `droppedKeys`) */
  readonly labelsReduced: number;
  /** events recorded with their stack and lock but none of their withLabels labels */
  readonly labelsDropped: number;
  /** events recorded in their lock's overflow sample, without their stack */
  readonly stacksDropped: number;
  readonly droppedKeys: readonly string[];
}

/** @internal A point in a recorder's history: every event before it, none after. */
export interface Mark {
  readonly seq: number;
}

/** @internal Values of every sample at a mark (indexed by Entry.index; samples born later are 0). */
export interface Values {
  readonly count: Float64Array;
  readonly delay: Float64Array;
}

interface Settings {
  maxEntries: number;
  /** a drain is due after DRAIN_DELAY_MS */
  drainScheduled: boolean;
  /** a drain is due on the next turn */
  drainSoon: boolean;
}

const settings = shared<Settings>('recorder', () => ({ maxEntries: 10_000, drainScheduled: false, drainSoon: false }));

/** A sample's lock and side, as one key. */
function sampleKey(p: Pending): string {
  return p.mode === null ? p.lock : p.lock + '\u0001' + p.mode;
}

function hashFrames(frames: readonly Frame[]): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < frames.length; i++) h = Math.imul(h ^ frames[i].id, 0x01000193);
  return h;
}

function sameFrames(a: readonly Frame[], b: readonly Frame[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** One cumulative profile: aggregated samples plus captured-but-unresolved events. */
export class Recorder {
  readonly entries: Entry[] = [];
  private readonly stacks = new Map<number, Stack[]>();
  private readonly overflows = new Map<string, Entry>();
  /** label key → the distinct values seen (up to HIGH_CARDINALITY), or null once past it */
  private readonly cardinality = new Map<string, Set<string> | null>();
  private readonly dropped = new Set<string>();
  private reduced = 0;
  private unlabeled = 0;
  private overflowed = 0;

  // pending events, a ring in arrival (sequence) order
  private readonly ring: Array<Pending | undefined> = new Array(PENDING);
  private head = 0;
  private size = 0;
  /** sequence number of the last event added, and of the last one applied */
  private seq = 0;
  private applied = 0;

  // the undo log of open windows: [index, count, delay, seq] per record, in seq order, from logStart
  private readonly marks: Mark[] = [];
  private latest = -1;
  private log: number[] = [];

  /** @internal A captured event: resolved and aggregated later, off the caller's path. */
  add(stack: Captured, leaf: string, lock: string, mode: string | null, count: number, delay: number, labels: LabelSet | null): void {
    const p: Pending = { stack, leaf, lock, mode, labels, count, delay, seq: ++this.seq };
    // Full (a burst with no turn of the event loop in between): the caller resolves the oldest one, so memory
    // stays bounded, the order stays the arrival order, and no caller pays for more than one.
    if (this.size === PENDING) this.applyOldest();
    this.ring[(this.head + this.size++) % PENDING] = p;
    scheduleDrain(this.size);
  }

  private applyOldest(): void {
    const p = this.ring[this.head]!;
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) % PENDING;
    this.size--;
    this.apply(p);
  }

  /**
   * @internal Resolves pending events, oldest first, until none is left, `max` are resolved, or `deadline`
   * (sliceClock ms) has passed. Returns whether none is left.
   */
  drain(deadline = Infinity, max = Infinity): boolean {
    for (let n = 1; this.size > 0 && n <= max; n++) {
      this.applyOldest();
      if ((n & 7) === 0 && sliceClock.now() >= deadline) break;
    }
    return this.size === 0;
  }

  /** @internal Sequence number of the last event added: unchanged, nothing new was recorded. */
  seqNow(): number {
    return this.seq;
  }

  /** @internal Events added but not resolved yet. */
  pending(): number {
    return this.size;
  }

  private apply(p: Pending): void {
    const frames = resolve(p.stack, p.leaf);
    const e = this.entryFor(frames, p);
    if (e.mod <= this.latest) this.log.push(e.index, e.count, e.delay, p.seq); // a window needs the old values
    e.count += p.count;
    e.delay += p.delay;
    e.mod = p.seq;
    this.applied = p.seq;
  }

  private entryFor(frames: readonly Frame[], p: Pending): Entry {
    const hash = hashFrames(frames);
    const stack = this.stacks.get(hash)?.find((s) => sameFrames(s.frames, frames)) ?? null;
    const cap = settings.maxEntries;
    const n = this.entries.length;
    const labels = p.labels;
    const site = sampleKey(p);
    if (labels !== null) {
      const full = stack?.samples.get(site + '\0' + labels.key);
      if (full !== undefined) return full;
      this.noteValues(labels);
      if (n < cap >>> 1) return this.create(stack, frames, hash, p, labels);
      const kept = this.withoutHighCardinality(labels);
      if (kept === labels) {
        if (n < cap - (cap >>> 2)) return this.create(stack, frames, hash, p, labels);
      } else if (kept !== null) {
        const e = stack?.samples.get(site + '\0' + kept.key);
        if (e !== undefined || n < cap - (cap >>> 2)) {
          this.reduced++;
          return e ?? this.create(stack, frames, hash, p, kept);
        }
      }
    }
    const e = stack?.samples.get(site);
    if (e !== undefined || n < cap) {
      if (labels !== null) this.unlabeled++;
      return e ?? this.create(stack, frames, hash, p, null);
    }
    this.overflowed++;
    return this.overflowOf(p);
  }

  private create(stack: Stack | null, frames: readonly Frame[], hash: number, p: Pending, labels: LabelSet | null): Entry {
    if (stack === null) {
      stack = { frames, samples: new Map() };
      const bucket = this.stacks.get(hash);
      if (bucket === undefined) this.stacks.set(hash, [stack]);
      else bucket.push(stack);
    }
    const e: Entry = { index: this.entries.length, frames: stack.frames, lock: p.lock, mode: p.mode, labels, count: 0, delay: 0, born: p.seq, mod: p.seq };
    const site = sampleKey(p);
    stack.samples.set(labels === null ? site : site + '\0' + labels.key, e);
    this.entries.push(e);
    return e;
  }

  private overflowOf(p: Pending): Entry {
    const lock = this.overflows.has(p.lock) || this.overflows.size < OVERFLOW_LOCKS ? p.lock : 'mutexprof.other';
    const key = p.leaf + '\0' + lock + '\0' + (p.mode ?? '');
    let e = this.overflows.get(key);
    if (e === undefined) {
      e = { index: this.entries.length, frames: [leafFrame(p.leaf), syntheticFrame(OVERFLOW)], lock, mode: p.mode, labels: null, count: 0, delay: 0, born: p.seq, mod: p.seq };
      this.overflows.set(key, e);
      this.entries.push(e);
    }
    return e;
  }

  /** Counts the distinct values of each label key, up to the high-cardinality threshold. */
  private noteValues(labels: LabelSet): void {
    const high = Math.max(1, Math.min(HIGH_CARDINALITY, Math.floor(settings.maxEntries / 16)));
    for (const [k, v] of labels.pairs) {
      let values = this.cardinality.get(k);
      if (values === null) continue;
      if (values === undefined) {
        if (this.cardinality.size >= TRACKED_KEYS) continue;
        this.cardinality.set(k, (values = new Set()));
      }
      values.add(v);
      if (values.size > high) this.cardinality.set(k, null);
    }
  }

  private isHighCardinality(key: string): boolean {
    const values = this.cardinality.get(key);
    return values === null || (values === undefined && this.cardinality.size >= TRACKED_KEYS);
  }

  /** The labels without their high-cardinality keys (the same set if none), or null if none is left. */
  private withoutHighCardinality(labels: LabelSet): LabelSet | null {
    let kept: Array<readonly [string, string]> | null = null;
    const pairs = labels.pairs;
    for (let i = 0; i < pairs.length; i++) {
      if (this.isHighCardinality(pairs[i][0])) {
        kept ??= pairs.slice(0, i);
        if (this.dropped.size < TRACKED_KEYS) this.dropped.add(pairs[i][0]);
      } else if (kept !== null) kept.push(pairs[i]);
    }
    if (kept === null) return labels;
    return kept.length === 0 ? null : labelSet(kept);
  }

  /**
   * @internal Forgets every sample and pending event: a clean slate for tests. Sequence numbers go on (a reader
   * never mistakes the new profile for the old one). Throws, changing nothing, while a window or snapshot is open.
   */
  reset(): void {
    if (this.marks.length > 0) throw new Error('mutexprof: a profile cannot be reset while a window or a snapshot is open on it');
    this.entries.length = 0;
    this.stacks.clear();
    this.overflows.clear();
    this.cardinality.clear();
    this.dropped.clear();
    this.reduced = this.unlabeled = this.overflowed = 0;
    this.ring.fill(undefined);
    this.head = this.size = 0;
    this.applied = this.seq;
    this.log = [];
    this.latest = -1;
  }

  /** Distinct samples, once what is pending is resolved (synchronously: readers that may meet a burst await settleAll() first). */
  count(): number {
    this.drain();
    return this.entries.length;
  }

  stats(): RecorderStats {
    return {
      samples: this.entries.length,
      maxEntries: settings.maxEntries,
      labelsReduced: this.reduced,
      labelsDropped: this.unlabeled,
      stacksDropped: this.overflowed,
      droppedKeys: [...this.dropped],
    };
  }

  /** @internal Opens a window at the current point: every event added so far is before it. */
  mark(): Mark {
    const m: Mark = { seq: this.seq };
    this.marks.push(m);
    if (m.seq > this.latest) this.latest = m.seq;
    return m;
  }

  /** @internal Marks open now (windows, and snapshots being taken). */
  openMarks(): number {
    return this.marks.length;
  }

  /** @internal Closes a window; the log keeps only what the remaining ones need. */
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

  /** @internal Whether every event before `m` has been resolved. */
  settled(m: Mark): boolean {
    return this.applied >= m.seq || this.size === 0;
  }

  /**
   * @internal Values of every sample at `m` (requires settled(m)), read in slices. Samples that change while it
   * reads are logged (m is open), and the log is read last: its first record after m holds the value at m.
   */
  async valuesAt(m: Mark): Promise<Values> {
    const n = this.entries.length;
    const count = new Float64Array(n);
    const delay = new Float64Array(n);
    const slice = new Slicer();
    for (let i = 0; i < n; i++) {
      const e = this.entries[i];
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
      if (this.entries[i].born > m.seq) continue; // born after m: 0 at m (see "Windows" above)
      count[i] = log[r + 1];
      delay[i] = log[r + 2];
    }
    return { count, delay };
  }
}

/** @internal The recorded profiles' recorders (mutex, block, hold), one set per process. */
export const recorders = shared('recorders', () => ({ mutex: new Recorder(), block: new Recorder(), hold: new Recorder() }));

// Events wait up to DRAIN_DELAY_MS for their resolution, so that a service sampling a few hundred events a
// second resolves them in batches, with V8's CallSite code and the frame tables warm in the CPU's caches, rather
// than one at a time, cold (cold, one capture alone costs ~10× its cost in a loop: bench "one V8 stack capture").
// A reader never waits for it: snapshots resolve what is pending first. DRAIN_NOW pending events (a burst) start
// the drain on the next turn instead, so the ring rarely fills.
const DRAIN_DELAY_MS = 100;
const DRAIN_NOW = 512;

function scheduleDrain(pending: number): void {
  if (pending >= DRAIN_NOW) drainSoon();
  else if (!settings.drainScheduled) {
    settings.drainScheduled = true;
    setTimeout(drainSlice, DRAIN_DELAY_MS).unref();
  }
}

function drainSoon(): void {
  if (settings.drainSoon) return;
  settings.drainSoon = true;
  setImmediate(drainSlice).unref();
}

/** A turn of the drain: resolves for at most DRAIN_SLICE_MS, then yields (to the next turn) if anything is left. */
function drainSlice(): void {
  settings.drainScheduled = settings.drainSoon = false;
  const deadline = sliceClock.now() + DRAIN_SLICE_MS;
  for (const r of Object.values(recorders)) {
    if (!r.drain(deadline)) {
      drainSoon();
      return;
    }
  }
}

/** @internal Waits (yielding to the event loop) until every event before `m` is resolved. */
export async function settle(r: Recorder, m: Mark): Promise<void> {
  while (!r.settled(m)) {
    r.drain(sliceClock.now() + DRAIN_SLICE_MS);
    if (!r.settled(m)) await nextTurn();
  }
}

/**
 * @internal Resolves everything pending, a slice at a time, yielding between slices: what a reader of counts awaits
 * first, so that count() (which resolves what is still pending, synchronously) finds nothing left to do.
 */
export async function settleAll(): Promise<void> {
  for (const r of Object.values(recorders)) while (!r.drain(sliceClock.now() + DRAIN_SLICE_MS)) await nextTurn();
}

/** @internal Resolves everything pending now, synchronously. */
export function drainAll(): void {
  for (const r of Object.values(recorders)) r.drain();
}

/** Profiler settings; every field is optional. */
export interface ProfilerConfig {
  /** Clock in nanoseconds (monotonic, always > 0). Default: performance.now() × 1e6. Inject one for deterministic tests. */
  now?: () => number;
  /** Uniform random numbers in [0, 1), for sampling decisions. Default Math.random. */
  random?: () => number;
  /** Distinct samples kept per profile before attribution degrades (see "Bounds" in the README). Default 10 000. */
  maxEntries?: number;
  /** User frames kept per stack. */
  maxDepth?: number;
  /**
   * Sampled events a second each profile (mutex, block, hold) may take before its fraction rises: a bound on what
   * profiling costs however contended the service gets. Estimates stay unbiased (each sampled event weighs the
   * fraction it was drawn at). Default Infinity: Go's fixed fractions.
   */
  maxSampledPerSecond?: number;
}

/**
 * Changes profiler settings (any subset) and returns the previous ones. When `maxDepth` or `maxEntries` changes,
 * events captured before the call are resolved first, under the settings they were captured with. Bad values
 * throw and change nothing.
 */
export function configureProfiler(config: ProfilerConfig): Required<ProfilerConfig> {
  if (config === null || typeof config !== 'object') throw new TypeError('mutexprof: configureProfiler(config): config must be an object');
  const { now: n, random: r, maxEntries: m, maxDepth: d, maxSampledPerSecond: b } = config;
  if (n !== undefined && typeof n !== 'function') throw new TypeError('mutexprof: configureProfiler: now must be a function');
  if (r !== undefined && typeof r !== 'function') throw new TypeError('mutexprof: configureProfiler: random must be a function');
  if (m !== undefined && (!Number.isSafeInteger(m) || m < 1)) throw new RangeError(`mutexprof: configureProfiler: maxEntries must be a positive integer, got ${String(m)}`);
  if (d !== undefined && (!Number.isSafeInteger(d) || d < 1 || d > 1024)) throw new RangeError(`mutexprof: configureProfiler: maxDepth must be an integer in 1..1024, got ${String(d)}`);
  if (b !== undefined && (typeof b !== 'number' || !(b >= 1))) throw new RangeError(`mutexprof: configureProfiler: maxSampledPerSecond must be a number ≥ 1 (or Infinity), got ${String(b)}`);
  const previous: Required<ProfilerConfig> = { now: sampling.now, random: sampling.random, maxEntries: settings.maxEntries, maxDepth: getMaxDepth(), maxSampledPerSecond: sampling.budget };
  // Only the depth and the cap decide how a pending event is resolved and admitted, so only their change resolves
  // what is pending first: synchronously, up to PENDING events a profile, a stall the other settings (a budget tuned
  // while the service runs) need not cost.
  if ((d !== undefined && d !== previous.maxDepth) || (m !== undefined && m !== previous.maxEntries)) drainAll();
  if (n !== undefined) sampling.now = n;
  if (b !== undefined) sampling.budget = b;
  if (r !== undefined) sampling.random = r;
  if (r !== undefined || (b !== undefined && b !== previous.maxSampledPerSecond)) redraw(); // fractions back to what was set, windows anew
  if (m !== undefined) settings.maxEntries = m;
  if (d !== undefined) setMaxDepth(d);
  return previous;
}

/** @internal A sampled release event of `delay` ns on lock `lock`: capture the releaser's stack below `skip`, weight it. */
export function mutexEvent(lock: string, mode: string | null, weight: number, delay: number, leaf: string, skip: (...args: never[]) => unknown, labels: LabelSet | null, spare: number): void {
  if (sampling.mutex.fraction <= 0) return; // turned off since the draw
  recorders.mutex.add(capture(skip, spare), leaf, lock, mode, weight, weight * delay, eventLabels(labels));
}

/**
 * @internal Blocks on the promise of a wait the block profile follows (drawn with `weight`, the block fraction),
 * then records it by the block rate's rule.
 */
export async function blockWait<T>(p: Promise<T>, w: { t: number; end: number }, lock: string, mode: string | null, leaf: string, weight: number, labels: LabelSet | null): Promise<T> {
  try {
    return await p;
  } finally {
    // Captured here, after resuming: V8's async frames name the caller that awaited lock()/rLock() (or withLock's
    // helper, a library frame: room for it, at the price of an async frame, ~0.03 µs).
    const rate = sampling.blockRate;
    if (rate > 0) {
      const dt = w.end - w.t;
      if (dt >= rate || rate === 1) recorders.block.add(capture(blockWait, 1), leaf, lock, mode, weight, weight * dt, eventLabels(labels));
      else if (sampling.random() * rate < dt) recorders.block.add(capture(blockWait, 1), leaf, lock, mode, (weight * rate) / dt, weight * rate, eventLabels(labels));
    }
  }
}

/** @internal An acquisition the hold profile follows was released after `held` ns: record it at its lock() stack. */
export function holdEvent(
  lock: string,
  mode: string | null,
  a: { stack: Captured | null; holdWeight: number; labels: LabelSet | null; mode: 'exclusive' | 'shared'; lock: { _leafFor(m: 'exclusive' | 'shared'): string } },
  held: number,
): void {
  if (a.stack === null) return;
  recorders.hold.add(a.stack, a.lock._leafFor(a.mode), lock, mode, a.holdWeight, a.holdWeight * held, a.labels);
}

// What the live view, the watchdog, the deadlock detector and the hold profile know about locks now.
//
// Always, at no cost on the uncontended path: every lock that is waited for now is in one intrusive list, the live
// list (it joins when its queue stops being empty; a tick every 10 ms, which runs only while the list is not empty,
// drops the locks that have neither waiters nor tracked holders, so that the hand-off path does no list work), and
// every waiter carries the time it started waiting on a coarse clock (read when a lock joins, then at each tick).
// So queryLocks() lists every lock that is waited for now, with its waiters, even with tracking off.
//
// With tracking on (setLockTracking('on' | 'stacks'), deadlock detection, or a hold profile), every acquisition
// gets a record, from lock() to release: when it started waiting and when it was granted, its labels, its lock()
// stack ('stacks'), its task (deadlock detection), whether the hold profile follows it. The lock points to its
// holders' records (one exclusive, a list of shared ones), and a lock with a tracked holder is in the live list
// too: it joins with its first one and the tick drops it once it has none. So a release does no global list work,
// only its lock's (a global list of held records costs every release two unlinks and stores into a long-lived
// object; bench: profiling, "a request … lock tracking 'on'", beside a build that had one). One record type serves
// every consumer, as Go's one bucket type serves both its contention profiles.

import { shared } from '../shared.js';
import { sampling, draw } from '../profile/sampling.js';
import type { Captured } from '../profile/stack.js';
import type { LabelSet } from '../profile/labels.js';

/** The lock's side of an acquisition, in Web Locks' words. */
export type LockMode = 'exclusive' | 'shared';

/** @internal What an acquisition is known by, from the lock's side. */
export interface TrackedLock {
  readonly name: string;
  /** 'Mutex', 'RWMutex', 'Semaphore', … */
  _kind(): string;
  /** the leaf frame's name for an acquisition of this side ('Mutex.lock', 'RWMutex.rLock', …) */
  _leafFor(mode: LockMode): string;
  _id: number;
  /** the live list's links */
  _lnext: TrackedLock | null;
  _lprev: TrackedLock | null;
  _live: boolean;
  /** the exclusive holder's acquisition, when it has one */
  _acq: Acquisition | null;
  /** the shared holders' tracked acquisitions */
  _sharedAcqs: SharedHolders | null;
  /** the waiters, oldest first */
  _head: { next: unknown; _acq: Acquisition | null; _since: number; _read: boolean } | null;
  /** grants and releases of tracked acquisitions so far: a deadlock is a state in which it stops moving */
  _moves: number;
}

/** @internal A task, for deadlock detection (src/diagnostics/deadlock.ts): one flow of async code and its acquisitions. */
export interface Task {
  readonly id: number;
  /** what it holds: a lock or two (an array: a Set's hashing cost more than the scan of so few) */
  readonly held: Acquisition[];
  /** the acquisition it is waiting for, if any */
  waiting: Acquisition | null;
  /** the token its flow carries now (see "Tasks" in deadlock.ts): a context with an older one is another flow */
  token: number;
  /** the synchronous run in which its flow last acquired: a second acquisition in that run is another flow */
  turn: number;
  /** whether its current token can only be its own flow's (or what that flow started): see "Tasks" in deadlock.ts */
  sure: boolean;
  /**
   * the run of acquisitions surely made by one flow that its latest one belongs to: lock order is learnt between
   * acquisitions of one lineage only (see "Tasks" in deadlock.ts)
   */
  lineage: number;
  /** granted, and its flow not resumed yet: it cannot be the code that calls now */
  suspended: boolean;
}

/**
 * @internal One acquisition of a lock, from the lock() call to its release. Guards and waiters point to theirs,
 * and locks to their holders'. An acquisition that passed a `labels` option has one even while diagnostics are
 * off (`tracked` false: in no list, no clock read), so that its release is recorded with them.
 */
export interface Acquisition {
  readonly lock: TrackedLock;
  readonly mode: LockMode;
  /** whether diagnostics follow it (its times, lists, task); false: it only carries `own` */
  readonly tracked: boolean;
  /** the `labels` option of the lock() call, or null */
  readonly own: LabelSet | null;
  /** 'waiting' until granted */
  state: 'waiting' | 'held';
  /** ns (sampling clock): when it started waiting, then when it was granted */
  since: number;
  /** the acquiring context's labels (withLabels) with the `labels` option on top */
  readonly labels: LabelSet | null;
  /** the lock() call's stack, when tracking 'stacks' or the hold profile follows it */
  readonly stack: Captured | null;
  readonly task: Task | null;
  /** its task's lineage when it was made (deadlock detection), 0 without a task */
  readonly lineage: number;
  /**
   * whether its flow's resumption after the grant, and the use of its guard, are watched: its task's mark was not
   * sure when it was made (deadlock detection: see "Tasks" in deadlock.ts)
   */
  readonly watch: boolean;
  /** the hold profile's weight for it (its fraction when drawn), 0 when not followed */
  readonly holdWeight: number;
  /** a Semaphore's permits, else undefined */
  readonly weight?: number;
  /** its lock's shared-holder list's links (SharedHolders) */
  snext: Acquisition | null;
  sprev: Acquisition | null;
}

/**
 * @internal The tracked shared holders of one lock (RWMutex readers, Semaphore permits), oldest first: an intrusive
 * list through their `snext`/`sprev`: a few pointer writes per reader, where a Set's add and delete are hashing
 * (bench: profiling, "a request … lock tracking 'on'", beside a build that used a Set).
 */
export class SharedHolders implements Iterable<Acquisition> {
  head: Acquisition | null = null;
  tail: Acquisition | null = null;
  size = 0;

  add(a: Acquisition): void {
    a.snext = null;
    a.sprev = this.tail;
    if (this.tail === null) this.head = a;
    else this.tail.snext = a;
    this.tail = a;
    this.size++;
  }

  /** Whether `a` is in the list (a record not in it has no links, or links that do not lead back to it). */
  has(a: Acquisition): boolean {
    return a.sprev === null ? this.head === a : a.sprev.snext === a;
  }

  /** Removes `a` if it is in the list. */
  delete(a: Acquisition): void {
    if (!this.has(a)) return;
    if (a.sprev === null) this.head = a.snext;
    else a.sprev.snext = a.snext;
    if (a.snext === null) this.tail = a.sprev;
    else a.snext.sprev = a.sprev;
    a.snext = a.sprev = null;
    this.size--;
  }

  *[Symbol.iterator](): Iterator<Acquisition> {
    for (let a = this.head; a !== null; a = a.snext) yield a;
  }
}

export const OFF = 0;
export const ON = 1;
export const STACKS = 2;

/** @internal The process-wide diagnostics state (src/shared.ts). */
interface Diagnostics {
  /** lock tracking the user asked for: OFF, ON or STACKS */
  tracking: number;
  /** deadlock detection: 0 off, 1 warn, 2 throw */
  deadlock: number;
  /** running watchdogs that need holds tracked (watchLocks with holdMs) */
  watchers: number;
  /** Whether acquisitions take the slow path (records, or the hold profile's draw): read on every lock's fast path. */
  active: boolean;
  /** Whether every acquisition gets a record (tracking, deadlock detection, a hold watchdog), not only those the hold profile follows. */
  recordAll: boolean;
  /** Whether records capture the lock() stack. */
  stacks: boolean;
  /** the live list: locks waited for or held (tracked) now, or until the next tick */
  live: TrackedLock | null;
  nextLockId: number;
  /** the coarse clock: sampling-clock milliseconds, refreshed every TICK_MS while some lock has waiters */
  coarseMs: number;
  ticker: ReturnType<typeof setInterval> | null;
}

/** @internal */
export const diag = shared<Diagnostics>('diagnostics', () => ({
  tracking: OFF,
  deadlock: 0,
  watchers: 0,
  active: false,
  recordAll: false,
  stacks: false,
  live: null,
  nextLockId: 1,
  coarseMs: 0,
  ticker: null,
}));

/** @internal Recomputes what acquisitions need after a setting changed. */
export function reactivate(): void {
  diag.recordAll = diag.tracking !== OFF || diag.deadlock !== 0 || diag.watchers > 0;
  diag.active = diag.recordAll || sampling.hold.fraction > 0;
  diag.stacks = diag.tracking === STACKS;
  // holders' ages come from the coarse clock while every acquisition is recorded: keep it ticking
  if (diag.recordAll) {
    refreshCoarse();
    startTicker();
  }
}

/** @internal A lock's id (assigned when first needed). */
export function lockId(l: TrackedLock): number {
  return l._id !== 0 ? l._id : (l._id = diag.nextLockId++);
}

// ─── The live list and the coarse clock ────────────────────────────────────────────────────────────────────

const TICK_MS = 10;

function tick(): void {
  diag.coarseMs = Math.floor(sampling.now() / 1e6);
  pruneLive();
  if (diag.live === null && !diag.recordAll && diag.ticker !== null) {
    clearInterval(diag.ticker);
    diag.ticker = null;
  }
}

/** Runs the coarse clock's tick every TICK_MS (unreferenced: it keeps nothing alive) until tick() stops it. */
function startTicker(): void {
  if (diag.ticker !== null) return;
  diag.ticker = setInterval(tick, TICK_MS);
  diag.ticker.unref();
}

/** @internal How many holders of `l` have a record (an untracked exclusive one carries only its labels option). */
export function trackedHolders(l: TrackedLock): number {
  return (l._acq !== null && l._acq.tracked ? 1 : 0) + (l._sharedAcqs === null ? 0 : l._sharedAcqs.size);
}

/** @internal Drops the locks that have neither waiters nor tracked holders from the live list. */
export function pruneLive(): void {
  for (let l = diag.live; l !== null;) {
    const next = l._lnext;
    if (l._head === null && trackedHolders(l) === 0) leaveLive(l);
    l = next;
  }
}

/** @internal The coarse clock now (ms): what a waiter records when it starts waiting. */
export function coarseNow(): number {
  return diag.coarseMs;
}

/** @internal `l` got its first waiter: the coarse clock is read now (once per episode of contention). */
export function joinContended(l: TrackedLock): void {
  diag.coarseMs = Math.floor(sampling.now() / 1e6);
  joinLive(l);
}

function joinLive(l: TrackedLock): void {
  startTicker();
  l._lprev = null;
  l._lnext = diag.live;
  if (diag.live !== null) diag.live._lprev = l;
  diag.live = l;
  l._live = true;
}

function leaveLive(l: TrackedLock): void {
  if (l._lprev === null) diag.live = l._lnext;
  else l._lprev._lnext = l._lnext;
  if (l._lnext !== null) l._lnext._lprev = l._lprev;
  l._lnext = l._lprev = null;
  l._live = false;
}

/** @internal Refreshes the coarse clock now (queries and watchdog checks read exact ages). */
export function refreshCoarse(): void {
  diag.coarseMs = Math.floor(sampling.now() / 1e6);
}

/**
 * @internal `a` (tracked) was granted now; the lock already points to it. Its start is read from the precise
 * clock only when its hold time is measured (the hold profile follows it, or metrics are on); for the live view
 * and the watchdog the coarse clock (±10 ms, ticking while tracking is on) is enough, and a clock read is a fifth
 * of a tracked acquisition's cost.
 */
export function holdStarted(a: Acquisition): void {
  a.state = 'held';
  a.since = a.holdWeight !== 0 || sampling.metrics ? sampling.now() : diag.coarseMs * 1e6;
  if (!a.lock._live) joinLive(a.lock);
}

// ─── The hold profile's sampling ───────────────────────────────────────────────────────────────────────────

/** @internal Draws whether the hold profile follows an acquisition starting now: its weight, or 0. */
export function drawHoldSample(): number {
  return draw(sampling.hold);
}

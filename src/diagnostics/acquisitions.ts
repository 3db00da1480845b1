// What the live view, the watchdog, the deadlock detector and the hold profile know about locks now.
//
// Always, at no cost on the uncontended path: every lock that has waiters is in one intrusive list (it joins when
// its queue stops being empty; a tick every 10 ms, which runs only while the list is not empty, drops the locks
// whose queue emptied, so that the hand-off path does no list work), and every waiter carries the time it started
// waiting on a coarse clock (read when a lock joins, then at each tick). So queryLocks() lists every lock that is
// waited for now, with its waiters, even with tracking off.
//
// With tracking on (setLockTracking('on' | 'stacks'), deadlock detection, or a hold profile), every acquisition
// gets a record, from lock() to release: when it started waiting and when it was granted (the precise clock), its
// labels, its lock() stack ('stacks'), its task (deadlock detection), whether the hold profile follows it.
// Held records are in a second intrusive list. One record type serves every consumer, as Go's one bucket type
// serves both its contention profiles.

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
  /** the contended list's links */
  _cnext: TrackedLock | null;
  _cprev: TrackedLock | null;
  _inContended: boolean;
  /** the waiters, oldest first */
  _head: { next: unknown; _acq: Acquisition | null; _since: number; _read: boolean } | null;
}

/** @internal A task, for deadlock detection (src/diagnostics/deadlock.ts): an async context's acquisitions. */
export interface Task {
  readonly id: number;
  readonly held: Set<Acquisition>;
  /** the acquisition it is waiting for, if any */
  waiting: Acquisition | null;
  /** the execution (async_hooks id) that entered it into its context, or -1 for a task scoped by run() */
  readonly origin: number;
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
  /** the hold profile's weight for it (its fraction when drawn), 0 when not followed */
  readonly holdWeight: number;
  /** a Semaphore's permits, else undefined */
  readonly weight?: number;
  /** the held list's links */
  next: Acquisition | null;
  prev: Acquisition | null;
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
  contended: TrackedLock | null;
  held: Acquisition | null;
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
  contended: null,
  held: null,
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

// ─── The contended list and the coarse clock ───────────────────────────────────────────────────────────────

const TICK_MS = 10;

function tick(): void {
  diag.coarseMs = Math.floor(sampling.now() / 1e6);
  pruneContended();
  if (diag.contended === null && !diag.recordAll && diag.ticker !== null) {
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

/** @internal Drops the locks whose queue has emptied from the list of locks with waiters. */
export function pruneContended(): void {
  for (let l = diag.contended; l !== null; ) {
    const next = l._cnext;
    if (l._head === null) leaveContended(l);
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
  startTicker();
  l._cprev = null;
  l._cnext = diag.contended;
  if (diag.contended !== null) diag.contended._cprev = l;
  diag.contended = l;
  l._inContended = true;
}

function leaveContended(l: TrackedLock): void {
  if (l._cprev === null) diag.contended = l._cnext;
  else l._cprev._cnext = l._cnext;
  if (l._cnext !== null) l._cnext._cprev = l._cprev;
  l._cnext = l._cprev = null;
  l._inContended = false;
}

/** @internal Refreshes the coarse clock now (queries and watchdog checks read exact ages). */
export function refreshCoarse(): void {
  diag.coarseMs = Math.floor(sampling.now() / 1e6);
}

// ─── The held list ─────────────────────────────────────────────────────────────────────────────────────────

/**
 * @internal `a` (tracked) was granted now. Its start is read from the precise clock only when its hold time is
 * measured (the hold profile follows it, or metrics are on); for the live view and the watchdog the coarse clock
 * (±10 ms, ticking while tracking is on) is enough, and a clock read is a fifth of a tracked acquisition's cost.
 */
export function holdStarted(a: Acquisition): void {
  a.state = 'held';
  a.since = a.holdWeight !== 0 || sampling.metrics ? sampling.now() : diag.coarseMs * 1e6;
  a.prev = null;
  a.next = diag.held;
  if (diag.held !== null) diag.held.prev = a;
  diag.held = a;
}

/** @internal `a` was released (or, waiting, gave up: then it is in no list). */
export function holdEnded(a: Acquisition): void {
  if (a.state !== 'held') return;
  if (a.prev === null) {
    if (diag.held === a) diag.held = a.next;
  } else a.prev.next = a.next;
  if (a.next !== null) a.next.prev = a.prev;
  a.next = a.prev = null;
}

// ─── The hold profile's sampling ───────────────────────────────────────────────────────────────────────────

/** @internal Draws whether the hold profile follows an acquisition starting now: its weight, or 0. */
export function drawHoldSample(): number {
  return draw(sampling.hold);
}

// What the live view, the watchdog, the deadlock detector and the hold profile know about locks now.
//
// Always, at no cost on the uncontended path: every lock that is waited for now is in one intrusive list, the live
// list (it joins when its queue stops being empty; a tick every 10 ms, which runs only while the list is not empty,
// drops the locks that have neither waiters nor recorded holders, so that the hand-off path does no list work), and
// every waiter carries the time it started waiting on the coarse clock (read when a lock joins, then at each tick).
// So queryLocks() lists every lock that is waited for now, with its waiters, even with tracking off.
//
// With tracking on (setLockTracking('on' | 'stacks'), deadlock detection, a hold watchdog) every acquisition gets a
// record, and with the hold profile alone those it follows: from lock() to release, when it started waiting and when
// it was granted, its labels, its lock() stack ('stacks', or followed by the hold profile), its task (deadlock
// detection). A lock points to its holders' records (the exclusive one is its `holder`, the shared ones a list in its
// `records` slot), and a lock with a recorded holder is in the live list too: it joins with its first one and the tick
// drops it once it has none. So a release does no global list work, only its lock's. One record type serves every
// consumer, as Go's one bucket type serves both its contention profiles.
//
// A `labels` option alone (nothing tracked) gets a record too, so that its release is recorded with them: one that is
// never written after it is made (`tracked` false: in no list, no clock read), shared by the acquisitions of one lock
// and side that pass the same labels, so that the option costs no allocation per call.

import type { Acquisition as SeamAcquisition, LockMode, LockView, OptionLabels } from '../locks/seam.js';
import { observing } from '../locks/seam.js';
import { shared } from '../shared/state.js';
import { eventLabels, type LabelSet } from '../profile/labels.js';
import { draw, sampling } from '../profile/sampling.js';
import { capture, type Captured } from '../profile/stack.js';
import type { Method } from '../locks/seam.js';

/** A task, for deadlock detection (src/diagnostics/deadlock.ts): one flow of async code and its acquisitions. */
export interface Task {
  readonly id: number;
  /** what it holds: a lock or two (an array: a Set's hashing costs more than the scan of so few) */
  readonly held: Acquisition[];
  /** the acquisition it is waiting for, if any */
  waiting: Acquisition | null;
  /** the token its flow carries now (see "Tasks" in deadlock.ts): a context with an older one is another flow */
  token: number;
  /** the synchronous run in which its flow last acquired: a second acquisition in that run is another flow */
  turn: number;
  /** whether its current token can only be its own flow's (or what that flow started): see "Tasks" in deadlock.ts */
  sure: boolean;
  /** the run of acquisitions surely made by one flow that its latest one belongs to (lock order is learnt within one) */
  lineage: number;
  /** granted, and its flow not resumed yet: it cannot be the code that calls now */
  suspended: boolean;
}

/** The record of one acquisition, from its lock() call to its release. */
export interface Acquisition extends SeamAcquisition {
  /** whether diagnostics follow it (its times, lists, task); false: it only carries `labelsOption` */
  readonly tracked: boolean;
  /** the `labels` option of the call, or null */
  readonly labelsOption: LabelSet | null;
  /** 'waiting' until granted */
  state: 'waiting' | 'held';
  /** ns (sampling clock): when it started waiting, then when it was granted */
  since: number;
  /** the acquiring context's labels (withLabels) with the `labels` option on top */
  readonly labels: LabelSet | null;
  /** the call's stack, when tracking 'stacks' or the hold profile follows it */
  readonly stack: Captured | null;
  readonly task: Task | null;
  /** its task's lineage when it was made (deadlock detection), 0 without a task */
  readonly lineage: number;
  /** the fraction the hold profile drew it at, 0 when not followed */
  readonly holdFraction: number;
  /** a Semaphore's permits, else 1 */
  readonly weight: number;
  /** its lock's shared-holder list's links (SharedHolders) */
  snext: Acquisition | null;
  sprev: Acquisition | null;
}

/**
 * The recorded shared holders of one lock (RWMutex readers, Semaphore permits), oldest first: an intrusive list
 * through their `snext`/`sprev`, a few pointer writes per reader where a Set's add and delete are hashing.
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

/** What diagnostics keep on a lock (its `records` slot). */
class LockRecords {
  /** the live list's links */
  lnext: LockView | null = null;
  lprev: LockView | null = null;
  live = false;
  /** grants and releases of tracked acquisitions so far: a deadlock is a state in which it stops moving */
  moves = 0;
  /** the recorded shared holders */
  shared: SharedHolders | null = null;
  /** the last labels-only records of each side */
  exclusiveLabels: Acquisition | null = null;
  sharedLabels: Acquisition | null = null;
}

/** `lock`'s diagnostics state, made when first needed. */
export function recordsOf(lock: LockView): LockRecords {
  return (lock.records as LockRecords | null) ?? ((lock as { records: object | null }).records = new LockRecords());
}

/** The recorded shared holders of `lock`, or null. */
export function sharedHolders(lock: LockView): SharedHolders | null {
  return lock.records === null ? null : (lock.records as LockRecords).shared;
}

/** Grants and releases of tracked acquisitions of `lock` so far. */
export function movesOf(lock: LockView): number {
  return lock.records === null ? 0 : (lock.records as LockRecords).moves;
}

export const OFF = 0;
export const ON = 1;
export const STACKS = 2;

/** The process-wide diagnostics state (src/shared/state.ts). */
interface Diagnostics {
  /** lock tracking the user asked for: OFF, ON or STACKS */
  tracking: number;
  /** deadlock detection: 0 off, 1 warn, 2 throw */
  deadlock: number;
  /** running watchdogs that need holds tracked (watchLocks with holdMs) */
  watchers: number;
  /** Whether every acquisition gets a record (tracking, deadlock detection, a hold watchdog), not only those the hold profile follows. */
  recordAll: boolean;
  /** Whether records capture the lock() stack. */
  stacks: boolean;
  /** the live list: locks waited for or held (recorded) now, or until the next tick */
  live: LockView | null;
  nextLockId: number;
  ticker: ReturnType<typeof setInterval> | null;
}

export const diag = shared<Diagnostics>('diagnostics', () => ({
  tracking: OFF,
  deadlock: 0,
  watchers: 0,
  recordAll: false,
  stacks: false,
  live: null,
  nextLockId: 1,
  ticker: null,
}));

/** Recomputes what acquisitions need after a setting changed. */
export function reactivate(): void {
  diag.recordAll = diag.tracking !== OFF || diag.deadlock !== 0 || diag.watchers > 0;
  diag.stacks = diag.tracking === STACKS;
  observing.acquisitions = diag.recordAll || sampling.hold.fraction > 0;
  observing.scopes = diag.deadlock !== 0;
  // holders' ages come from the coarse clock while every acquisition is recorded: keep it ticking
  if (diag.recordAll) {
    refreshCoarse();
    startTicker();
  }
}

/** A lock's number in views (given when first needed). */
export function lockId(l: LockView): number {
  return l.id !== 0 ? l.id : ((l as { id: number }).id = diag.nextLockId++);
}

// ─── Records ────────────────────────────────────────────────────────────────────────────────────────────────

/** Draws whether the hold profile follows an acquisition starting now: the fraction it was drawn at, or 0. */
export function drawHoldSample(): number {
  return draw(sampling.hold);
}

/** A new tracked acquisition's record. `scoped`: its function runs as a scope (its flow's marks are sure). */
export function newRecord(lock: LockView, mode: LockMode, labelsOption: OptionLabels | null, skip: Method, task: Task | null, holdFraction: number, weight: number, scoped: boolean): Acquisition {
  return {
    lock,
    mode,
    tracked: true,
    labelsOption: labelsOption as LabelSet | null,
    state: 'waiting',
    since: 0, // read when it queues (waiting) or is granted (granted): one clock read per acquisition
    labels: eventLabels(labelsOption as LabelSet | null),
    stack: diag.stacks || holdFraction !== 0 ? capture(skip, 1) : null, // 1: withLock's frame, when it called lock()
    task,
    lineage: task === null ? 0 : task.lineage,
    // a scope's function runs under a sure mark of its own: only lock() and the like are watched
    watch: task !== null && !task.sure && !scoped,
    holdFraction,
    weight,
    snext: null,
    sprev: null,
  };
}

/** The record of an acquisition that only carries its labels option (see the top of this file). */
export function labelsOnly(lock: LockView, mode: LockMode, labelsOption: OptionLabels): Acquisition {
  const r = recordsOf(lock);
  const last = mode === 'exclusive' ? r.exclusiveLabels : r.sharedLabels;
  if (last !== null && last.labelsOption === labelsOption) return last;
  const a: Acquisition = {
    lock,
    mode,
    tracked: false,
    labelsOption: labelsOption as LabelSet,
    state: 'waiting',
    since: 0,
    labels: null,
    stack: null,
    task: null,
    lineage: 0,
    watch: false,
    holdFraction: 0,
    weight: 1,
    snext: null,
    sprev: null,
  };
  if (mode === 'exclusive') r.exclusiveLabels = a;
  else r.sharedLabels = a;
  return a;
}

/** Tracked `a` is about to wait: its wait starts now. */
export function waitStarts(a: Acquisition): void {
  a.since = sampling.now();
}

/**
 * Tracked `a` was granted now; for the exclusive side, its lock's `holder` already points to it. Its start is read
 * from the precise clock only when its hold time is measured (the hold profile follows it, or metrics are on); for the
 * live view and the watchdog the coarse clock (±10 ms, ticking while tracking is on) is enough, and a clock read is a
 * fifth of a tracked acquisition's cost.
 */
export function granted(a: Acquisition): void {
  const r = recordsOf(a.lock);
  r.moves++;
  a.state = 'held';
  a.since = a.holdFraction !== 0 || sampling.metrics ? sampling.now() : observing.coarseMs * 1e6;
  if (a.mode === 'shared') (r.shared ??= new SharedHolders()).add(a);
  if (!r.live) joinLive(a.lock, r);
}

/** Tracked `a` is released (for the exclusive side, its lock's `holder` no longer points to it). */
export function released(a: Acquisition): void {
  const r = recordsOf(a.lock);
  r.moves++;
  if (a.mode === 'shared') r.shared?.delete(a);
}

/**
 * The record a shared release of `weight` ends: its guard's (`record`: a record of its own, or an untracked one), or,
 * released without a guard (`record` undefined: rUnlock(), Semaphore.release()) or through a guard whose record such a
 * release already ended, a listed record of that weight: the one of `mine` (the releasing flow's task, when deadlock
 * detection knows it; else that flow would still count as a holder, and its next lock() as re-entry), else the
 * oldest. Shared holders share one count, so which record ends is a convention; this one ends one record per release
 * while any is listed, so that none outlives the holders.
 */
export function sharedEnded(lock: LockView, record: Acquisition | undefined, weight: number, mine: Task | null): Acquisition | null {
  const list = sharedHolders(lock);
  if (record !== undefined && (!record.tracked || list === null || list.has(record))) return record;
  if (list === null) return null;
  let ended: Acquisition | null = null;
  for (let a = list.head; a !== null; a = a.snext) {
    if (a.weight !== weight) continue;
    if (ended === null) ended = a;
    if (mine === null || a.task === mine) return a;
  }
  return ended;
}

/** How many holders of `l` have a record (an untracked exclusive one carries only its labels option). */
export function trackedHolders(l: LockView): number {
  const shared = sharedHolders(l);
  return (l.holder !== null && (l.holder as Acquisition).tracked ? 1 : 0) + (shared === null ? 0 : shared.size);
}

// ─── The live list and the coarse clock ────────────────────────────────────────────────────────────────────

const TICK_MS = 10;

function tick(): void {
  refreshCoarse();
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

/** Drops the locks that have neither waiters nor recorded holders from the live list. */
export function pruneLive(): void {
  for (let l = diag.live; l !== null;) {
    const r = l.records as LockRecords;
    const next = r.lnext;
    if (l.firstWaiter === null && trackedHolders(l) === 0) leaveLive(l, r);
    l = next;
  }
}

/** Every lock in the live list (after a prune: held, recorded, or waited for now). */
export function* liveList(): Generator<LockView> {
  for (let l = diag.live; l !== null; l = (l.records as LockRecords).lnext) yield l;
}

/** The seam's firstWaiter: `l` has a waiter again. The coarse clock is read if it joins the list (once per episode of contention). */
export function firstWaiter(l: LockView): void {
  const r = recordsOf(l);
  if (r.live) return; // the tick keeps the coarse clock fresh while the list is not empty
  refreshCoarse();
  joinLive(l, r);
}

function joinLive(l: LockView, r: LockRecords): void {
  startTicker();
  r.lprev = null;
  r.lnext = diag.live;
  if (diag.live !== null) (diag.live.records as LockRecords).lprev = l;
  diag.live = l;
  r.live = true;
}

function leaveLive(l: LockView, r: LockRecords): void {
  if (r.lprev === null) diag.live = r.lnext;
  else (r.lprev.records as LockRecords).lnext = r.lnext;
  if (r.lnext !== null) (r.lnext.records as LockRecords).lprev = r.lprev;
  r.lnext = r.lprev = null;
  r.live = false;
}

/** Refreshes the coarse clock now (queries and watchdog checks read exact ages). */
export function refreshCoarse(): void {
  observing.coarseMs = Math.floor(sampling.now() / 1e6);
}

// The contention accounting: which waits are followed, and the delay of each release event, for the mutex and
// block profiles, lock metrics and the observers of waits (traces). It implements the wait hooks of the locks'
// seam (src/locks/seam.ts): waitStarted, releaseEvent, waitEnded.
//
// ─── The invariant ──────────────────────────────────────────────────────────────────────────────────────────
// While a profile or lock metrics need it (`sampling.accounting`), queued waiters are followed and counted in their
// lock's `followed`; while only wait observers are on, the waits they follow are stamped and left out of it (see
// observedOnly), and the accounting below is as if they were not queued. At any moment the waiting that the lock's
// next release event ends the blame for (see "What is recorded" in src/profile/recorder.ts) is
//     delay = Σ over followed waiters of (now − max(enqueued, last))  +  carry
//           = followed·(now − last) − rel + carry,   where rel = Σ (max(enqueued, last) − last),
// with `last` the time of the previous release event. Everything is a duration relative to `last`, so no large
// absolute timestamps are multiplied. The hooks keep it:
//   waitStarted    a waiter is followed: followed += 1, rel += (its start − last)
//   releaseEvent   the event reads the delay, then starts a new interval: rel = carry = 0, last = now
//   waitEnded      by the event: followed −= 1 (its rel is already 0 after the event);
//                  without one (abort; readers admitted after an aborted writer): its waiting since `last` moves
//                  into carry, its rel out of rel, followed −= 1
// At fraction 1 every event is recorded, so the mutex profile's total delay equals the block profile's (over the
// waits that start while both are on: an interval in progress when the fraction changes keeps its draw).
//
// Sampling: an event's delay only involves the waiting since the previous event, so whether an event is sampled
// is drawn when its interval starts (the previous event, or the first followed wait): in an interval that will
// not be sampled (fraction 0) nobody reads the clock for the mutex profile. At fraction 100 that is 99 % of the
// contended path. Whether the block profile follows a wait is drawn when it starts (the block fraction): only
// the waits it follows, that metrics count, or that a wait observer follows take a timestamp ("stamped").
// ─────────────────────────────────────────────────────────────────────────────────────────────────────────────

import type { Acquisition, LockView, Method, WaiterView } from '../locks/seam.js';
import { shared } from '../shared/state.js';
import { blockWait, mutexEvent, sideOf } from './events.js';
import type { LabelSet } from './labels.js';
import { recordWait } from './lockstats.js';
import { drawBlockSample, drawMutexSample, retime, sampling } from './sampling.js';

/** A lock's accounting (its `account` slot); its count of followed waits is the lock's `followed`. */
class Account {
  /** Σ (max(start, last) − last) over followed waiters */
  rel = 0;
  /** time of the last release event (or of the first followed wait after the queue had none) */
  last = 0;
  /** waiting of followed waits gone without a release event, charged to the next one (the lock's `carried`: carry ≠ 0) */
  carry = 0;
  /** the fraction the current interval was drawn at (what its event counts for), 0 = not sampled */
  fraction = 0;
}

/** When a followed wait started (ns), and when it ended (granted or not): a waiter's `times`. */
export interface WaitTimes {
  readonly t: number;
  readonly end: number;
  /** whether its end is read: the block profile follows it, metrics count it, or a wait observer follows it */
  readonly stamped: boolean;
}

/**
 * A waiter's times as the accounting keeps them, with the wait observers to tell of its end and what each returned
 * when told of its start: the first in `observer` and `token` (the usual single observer allocates no list), any
 * others flat in `more` ([observer, token, …]). One class, so that every waiter's times share one shape.
 */
class Times implements WaitTimes {
  t: number;
  end: number;
  readonly stamped: boolean;
  observer: WaitObserver | null;
  token: unknown;
  more: unknown[] | null = null;
  /** whether the wait is in the accounting (its lock's `followed`): false when only wait observers follow it */
  counted = true;
  constructor(t: number, stamped: boolean, observer: WaitObserver | null, token: unknown) {
    this.t = t;
    this.end = t;
    this.stamped = stamped;
    this.observer = observer;
    this.token = token;
  }
}

// Waits in an interval that is not sampled (and unstamped) share this one, so they allocate nothing. Kept apart
// from the waiter: double-valued fields on the waiter itself would make V8 box numbers and migrate its shape.
const UNSTAMPED = new Times(-1, false, null, null);

/**
 * An observer of followed waits (traces): asked when each starts whether it follows it, and told when a wait it
 * follows ends, with its times. A wait no observer follows (and no profile or metric times) reads no clock.
 */
export interface WaitObserver {
  /** `w` starts waiting for `lock` (not yet timed): what it returns is given back to `ended`; null: it does not follow it. */
  started(lock: LockView, w: WaiterView): unknown;
  /** `w`'s wait ended at `times.end`: granted, or given up (`aborted`, with the signal's `reason`). */
  ended(lock: LockView, w: WaiterView, times: WaitTimes, token: unknown, aborted: boolean, reason: unknown): void;
}

/** The wait observers, one set per process (src/shared/state.ts). */
const observers = shared('waitObservers', () => ({ list: [] as WaitObserver[] }));

/** Adds a wait observer (waits are timed while one is added); returns a function that removes it. */
export function observeWaits(o: WaitObserver): () => void {
  observers.list.push(o);
  sampling.observers = observers.list.length;
  retime();
  return () => {
    const i = observers.list.indexOf(o);
    if (i < 0) return;
    observers.list.splice(i, 1);
    sampling.observers = observers.list.length;
    retime();
  };
}

function accountOf(lock: LockView): Account {
  return (lock.account as Account | null) ?? ((lock as { account: object | null }).account = new Account());
}

/** The seam's waitStarted: `w` queued on `lock` while waits are timed; it is followed from now on. */
export function waitStarted<T>(lock: LockView, w: WaiterView, p: Promise<T>, leaf: string): Promise<T> {
  if (!sampling.accounting) return observedOnly(lock, w, p);
  const acc = accountOf(lock);
  let t = -1; // followed, but no timestamp needed (the clock is positive)
  if (lock.followed === 0 && !lock.carried) {
    acc.fraction = drawMutexSample(); // a fresh interval
    if (acc.fraction !== 0) acc.last = t = sampling.now();
  }
  if (acc.fraction !== 0) {
    if (t === -1) t = sampling.now();
    acc.rel += t - acc.last;
  }
  const blockFraction = sampling.blockRate > 0 ? drawBlockSample() : 0;
  const stamped = blockFraction !== 0 || sampling.metrics;
  if (stamped && t === -1) t = sampling.now();
  // the wait observers are asked before the clock is read for them: a wait none follows (an untraced flow) reads none
  let times = sampling.observers !== 0 ? tellStarted(lock, w) : null;
  if (times !== null) times.t = times.end = t === -1 ? sampling.now() : t;
  else times = t === -1 ? UNSTAMPED : new Times(t, stamped, null, null);
  w.times = times;
  lock.followed++;
  if (blockFraction === 0) return p;
  return blockWait(p, times, lock.name, sideOf(lock, w.mode), leaf, blockFraction, optionLabels(w.acq));
}

/** The seam's releaseEvent: reads the delay since the previous event, records it if sampled, starts the next interval. */
export function releaseEvent(lock: LockView, leaf: string, skip: Method, releaser: Acquisition | null, side: 'read' | 'write' | null, spare: number): number {
  const acc = accountOf(lock);
  let t = 0;
  const fraction = acc.fraction;
  if (fraction !== 0) {
    t = sampling.now();
    mutexEvent(lock.name, side, fraction, lock.followed * (t - acc.last) - acc.rel + acc.carry, leaf, skip, optionLabels(releaser), spare);
  }
  acc.rel = 0;
  acc.carry = 0;
  (lock as { carried: boolean }).carried = false;
  acc.fraction = drawMutexSample(); // the next interval
  if (acc.fraction !== 0) acc.last = t === 0 ? (t = sampling.now()) : t;
  return t;
}

/**
 * No profile or metric needs the accounting (only wait observers are on): a wait an observer follows is stamped and
 * kept out of its lock's `followed` (its end reads the clock itself); one none follows is not followed at all.
 * A profile turned on meanwhile follows the waits that start after it, as it would any.
 */
function observedOnly<T>(lock: LockView, w: WaiterView, p: Promise<T>): Promise<T> {
  const list = observers.list;
  let times: Times | null;
  if (list.length === 1) {
    // the usual case, one observer (traces), asked without the loop: this path is the whole cost of following a
    // traced wait beside the clock and OpenTelemetry's reads (bench/wait-instructions.mjs). Here, not in tellStarted
    // and tellEnded: with the same branches there, V8 inlined less and a traced wait cost ~60–130 more on Node 24.
    const o = list[0] as WaitObserver;
    const token = o.started(lock, w);
    if (token === null) return p;
    times = new Times(-1, true, o, token);
  } else {
    times = tellStarted(lock, w);
    if (times === null) return p;
  }
  times.t = times.end = sampling.now();
  times.counted = false;
  w.times = times;
  return p;
}

/** The seam's waitEnded: followed `w` left, by the release event at `at` (0: time not read yet), or without one. */
export function waitEnded(lock: LockView, w: WaiterView, byEvent: boolean, at: number, aborted: boolean, reason: unknown): number {
  const times = w.times as Times;
  if (!times.counted) {
    if (!byEvent) times.end = sampling.now();
    else times.end = at !== 0 ? at : (at = sampling.now());
    const o = times.observer;
    if (o !== null && times.more === null) {
      // one observer told, without tellEnded's list (see observedOnly)
      const token = times.token;
      times.observer = times.token = null;
      o.ended(lock, w, times, token, aborted, reason);
    } else tellEnded(lock, w, times, aborted, reason);
    return at;
  }
  const l = lock as { followed: number; carried: boolean };
  if (byEvent) {
    // its waiting up to the event is in that event's delay; after an event every remaining rel is 0
    l.followed--;
    if (times.stamped) times.end = at !== 0 ? at : (at = sampling.now());
  } else leftWithoutEvent(lock, times);
  if (times.stamped) {
    if (sampling.metrics) recordWait(lock, w.mode, times.end - times.t);
    if (times.observer !== null) tellEnded(lock, w, times, aborted, reason);
  }
  return at;
}

/** A followed wait leaves without a release event: in a sampled interval its waiting is carried. */
function leftWithoutEvent(lock: LockView, times: Times): void {
  const acc = accountOf(lock);
  const l = lock as { followed: number; carried: boolean };
  let t = 0;
  if (acc.fraction !== 0) {
    t = sampling.now();
    const rel = times.t > acc.last ? times.t - acc.last : 0;
    acc.carry += t - acc.last - rel;
    acc.rel -= rel;
  } else if (times.stamped) t = sampling.now();
  l.followed--;
  if (l.followed === 0) acc.rel = 0; // drop float residue
  l.carried = acc.carry !== 0;
  if (times !== UNSTAMPED) times.end = t;
}

function optionLabels(a: unknown): LabelSet | null {
  return a === null ? null : ((a as { labelsOption?: LabelSet | null }).labelsOption ?? null);
}

/** Asks the wait observers whether they follow `w`: the times of a wait one follows (to be stamped), or null. */
function tellStarted(lock: LockView, w: WaiterView): Times | null {
  let times: Times | null = null;
  // kept with the times: an observer removed while the wait goes on is still told of its end
  const list = observers.list;
  for (let i = 0; i < list.length; i++) {
    const o = list[i] as WaitObserver;
    const token = o.started(lock, w);
    if (token === null) continue;
    if (times === null) times = new Times(-1, true, o, token);
    else (times.more ??= []).push(o, token);
  }
  return times;
}

function tellEnded(lock: LockView, w: WaiterView, times: Times, aborted: boolean, reason: unknown): void {
  const o = times.observer;
  if (o === null) return;
  const { token, more } = times;
  times.observer = times.token = times.more = null;
  o.ended(lock, w, times, token, aborted, reason);
  if (more !== null) for (let i = 0; i < more.length; i += 2) (more[i] as WaitObserver).ended(lock, w, times, more[i + 1], aborted, reason);
}

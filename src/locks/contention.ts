// The contended path of every lock: queueing, and the accounting the mutex and block profiles read.
//
// ─── The invariant ──────────────────────────────────────────────────────────────────────────────────────────
// When profiling is on, queued waiters are "timed". At any moment the waiting that the lock's next release event
// ends the blame for (see "What is recorded" in src/profile/recorder.ts) is
//     delay = Σ over timed waiters of (now − max(enqueued, _last))  +  _carry
//           = _timed·(now − _last) − _rel + _carry,   where _rel = Σ (max(enqueued, _last) − _last),
// with _last the time of the previous release event. Everything is a duration relative to _last, so no large
// absolute timestamps are multiplied. The methods below keep it:
//   _timeWait        a timed waiter joins: _timed += 1, _rel += (its start − _last)
//   _releaseEvent    the event reads the delay, then starts a new interval: _rel = _carry = 0, _last = now
//   _dequeue         a waiter leaves granted by that event: _timed −= 1 (its rel is already 0 after the event)
//   _leaveUncharged  a waiter leaves without an event (abort; readers admitted after an aborted writer): its
//                    waiting since _last moves into _carry, its rel out of _rel, _timed −= 1
// At rate 1 every event is recorded, so the mutex profile's total delay equals the block profile's.
//
// Sampling: an event's delay only involves the waiting since the previous event, so whether an event is sampled
// is drawn when its interval starts (the previous event, or the first timed enqueue): in an interval that will
// not be sampled (_weight 0) nobody reads the clock for the mutex profile. At fraction 100 that is 99 % of the
// contended path. Whether the block profile follows a wait is drawn when it starts (the block fraction): only
// the waits it follows take a timestamp ("stamped") and the async step that records them.
// ─────────────────────────────────────────────────────────────────────────────────────────────────────────────

import { sampling, drawMutexSample, drawBlockSample } from '../profile/sampling.js';
import { mutexEvent, blockWait } from '../profile/recorder.js';
import type { LabelSet } from '../profile/labels.js';
import { checkOptions, optionLabels, type Guard, type LockOptions } from './options.js';
import { WaitQueue, type AbortLink, type Waiter, type WaitTimes } from './waitqueue.js';

// Waiters in an interval that is not sampled (and with the block profile off) share this one, so they allocate
// nothing. Kept apart from the waiter: double-valued fields on the waiter itself would make V8 box numbers and
// migrate the waiter's shape on the hot path.
const UNSTAMPED: WaitTimes = { t: -1, end: 0, block: false };

/** A lock whose waits are queued and accounted for (the base of every mutexprof lock). */
export abstract class ProfiledLock extends WaitQueue {
  /** @internal timed waiters in the queue */ _timed = 0;
  /** @internal Σ (max(t, _last) − _last) over timed waiters */ _rel = 0;
  /** @internal time of the last release event (or of the first timed enqueue after the queue had none) */ _last = 0;
  /** @internal waiting of waiters gone without a release event, charged to the next one */ _carry = 0;
  /** @internal the current interval's sampling weight (the fraction it was drawn at), 0 = not sampled */ _weight = 0;
  /** @internal queued waiters the block profile follows (they need the time their wait ends) */ _stamped = 0;
  /** @internal the `labels` option of the current exclusive holder's acquisition, named by _heldBy */ _heldLabels: LabelSet | null = null;
  /** @internal which acquisition _heldLabels belong to (the lock's generation then), -1 for none */ _heldBy = -1;

  /** @internal take the lock now if the rules allow it (nobody queued, compatible holders), else null */
  abstract _tryTake(write: boolean, labels: LabelSet | null): Guard | null;
  /** @internal a waiter left by abort; RWMutex may now admit readers */ _afterAbort(_w: Waiter): void {}

  /** @internal lock()/rLock() past their fast path: check the options, then take the lock now or queue. */
  _lockSlow(options: LockOptions | undefined, method: string, write: boolean, leaf: string): Promise<Guard> {
    let signal: AbortSignal | undefined;
    let labels: LabelSet | null = null;
    if (options !== undefined) {
      try {
        signal = checkOptions(options, method);
        labels = optionLabels(options, method);
      } catch (e) {
        return Promise.reject(e);
      }
      if (signal?.aborted) return Promise.reject(signal.reason);
    }
    const g = this._tryTake(write, labels);
    return g !== null ? Promise.resolve(g) : this._wait(write, signal, leaf, labels);
  }

  /** @internal Queue a waiter; the promise settles when it is granted or aborted. */
  _wait(write: boolean, signal: AbortSignal | undefined, leaf: string, labels: LabelSet | null = null): Promise<Guard> {
    // The executors capture no more than they must, so that V8 can inline them into lock() without a context
    // to allocate. (Tried and slower in the contended hand-off bench: one shared executor passing
    // the resolving function through a variable, and an executor closing over `signal` too.)
    const p = signal === undefined ? new Promise<Guard>((resolve) => this._enqueue(resolve)) : this._enqueueAbortable(signal);
    const w = this._tail!; // the executor ran synchronously and queued it last
    if (!write) w._read = true;
    if (labels !== null) w._labels = labels;
    return sampling.timing ? this._timeWait(p, w, leaf) : p;
  }

  /** @internal Profiling is on: w's waiting counts. */
  _timeWait(p: Promise<Guard>, w: Waiter, leaf: string): Promise<Guard> {
    let t = -1; // timed, but no timestamp needed (the clock is positive)
    if (this._timed === 0 && this._carry === 0) {
      this._weight = drawMutexSample(); // a fresh interval
      if (this._weight !== 0) this._last = t = sampling.now();
    }
    if (this._weight !== 0) {
      if (t === -1) t = sampling.now();
      this._rel += t - this._last;
    }
    const blockWeight = sampling.blockRate > 0 ? drawBlockSample() : 0;
    if (blockWeight !== 0) {
      if (t === -1) t = sampling.now();
      this._stamped++;
    }
    const times = t === -1 ? UNSTAMPED : { t, end: t, block: blockWeight !== 0 };
    w.times = times;
    this._timed++;
    return blockWeight !== 0 ? blockWait(p, times, this.name, leaf, blockWeight, w._labels) : p;
  }

  /**
   * @internal A release while timed waiters wait (or waiting is carried): the event, recorded with the stack
   * below `skip` (the releasing method) and the releasing acquisition's `labels`. Returns its time if read.
   */
  _releaseEvent(leaf: string, skip: (...args: never[]) => unknown, labels: LabelSet | null): number {
    let t = 0;
    const weight = this._weight;
    if (weight !== 0) {
      t = sampling.now();
      mutexEvent(this.name, weight, this._timed * (t - this._last) - this._rel + this._carry, leaf, skip, labels);
    }
    this._rel = 0;
    this._carry = 0;
    this._weight = drawMutexSample(); // the next interval
    if (this._weight !== 0) this._last = t === 0 ? (t = sampling.now()) : t;
    else if (t === 0 && this._stamped > 0) t = sampling.now(); // granted waiters' end, for the block profile
    return t;
  }

  /** @internal Remove w from the queue, granted by a release event at `at` (or, when `event` is false, leaving without one). */
  _dequeue(w: Waiter, event: boolean, at: number): void {
    this._unlink(w);
    const times = w.times;
    if (times !== null) {
      if (event) {
        // its waiting up to the event is in that event's delay; after an event every remaining rel is 0
        this._timed--;
        if (times !== UNSTAMPED) times.end = at;
      } else this._leaveUncharged(times);
      if (times.block) this._stamped--;
    }
    if (w.abort !== null) this._dropAbort(w);
  }

  /** @internal A timed waiter leaves without a release event: in a sampled interval its waiting is carried. */
  _leaveUncharged(times: WaitTimes): void {
    let t = 0;
    if (this._weight !== 0) {
      t = sampling.now();
      const rel = times.t > this._last ? times.t - this._last : 0;
      this._carry += t - this._last - rel;
      this._rel -= rel;
    } else if (times.block) t = sampling.now();
    this._timed--;
    if (this._timed === 0) this._rel = 0; // drop float residue
    if (times !== UNSTAMPED) times.end = t;
  }

  /** @internal */
  _abort(w: Waiter, l: AbortLink): void {
    this._dequeue(w, false, 0);
    l.reject(l.list.signal.reason);
    this._afterAbort(w);
  }
}

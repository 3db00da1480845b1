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
import { mutexEvent, blockWait, holdEvent } from '../profile/recorder.js';
import { recordWait, recordHold } from '../profile/lockstats.js';
import { eventLabels, type LabelSet } from '../profile/labels.js';
import { capture } from '../profile/stack.js';
import { diag, joinContended, holdStarted, drawHoldSample, SharedHolders, type Acquisition, type LockMode, type Task } from '../diagnostics/acquisitions.js';
import { checkWait, noteOrder, resolvedAs, resumeAs, taskOfCaller, taskOfReleaser, watchSuspect } from '../diagnostics/deadlock.js';
import { checkOptions, optionLabels, type Guard, type LockOptions } from './options.js';
import { WaitQueue, grant, grantWatched, type AbortLink, type Method, type Waiter, type WaitTimes } from './waitqueue.js';

// Waiters in an interval that is not sampled (and with the block profile off) share this one, so they allocate
// nothing. Kept apart from the waiter: double-valued fields on the waiter itself would make V8 box numbers and
// migrate the waiter's shape on the hot path.
const UNSTAMPED: WaitTimes = { t: -1, end: 0, stamped: false };

/** A lock whose waits are queued and accounted for (the base of every mutexprof lock). */
export abstract class ProfiledLock extends WaitQueue {
  /** @internal timed waiters in the queue */ _timed = 0;
  /** @internal Σ (max(t, _last) − _last) over timed waiters */ _rel = 0;
  /** @internal time of the last release event (or of the first timed enqueue after the queue had none) */ _last = 0;
  /** @internal waiting of waiters gone without a release event, charged to the next one */ _carry = 0;
  /** @internal the current interval's sampling weight (the fraction it was drawn at), 0 = not sampled */ _weight = 0;
  /** @internal queued waiters the block profile follows (they need the time their wait ends) */ _stamped = 0;
  /** @internal the exclusive holder's acquisition when it has one (diagnostics, or a labels option) */ _acq: Acquisition | null = null;
  /** @internal the shared holders' tracked acquisitions (RWMutex readers), oldest first */ _sharedAcqs: SharedHolders | null = null;
  /** @internal the last labels-only records of each side, shared by acquisitions with the same labels (_labelsOnly) */
  _exLabels: Acquisition | null = null;
  /** @internal */ _shLabels: Acquisition | null = null;
  /** @internal whether samples carry a `mode` label (read/write): RWMutex */ readonly _sides: boolean = false;

  /** @internal take the lock now if the rules allow it (nobody queued, compatible holders), else null */
  abstract _tryTake(write: boolean, acq: Acquisition | null): Guard | null;
  /** @internal a waiter left by abort; RWMutex may now admit readers */ _afterAbort(_w: Waiter): void {}

  /**
   * @internal lock()/rLock() past their fast path (options given, or diagnostics active): check the options, then
   * take the lock now or queue. `skip` is the public method (stacks start at its caller); `task`, withLock's.
   */
  _lockSlow(options: LockOptions | undefined, method: string, write: boolean, leaf: string, skip: Method, task: Task | null = null): Promise<Guard> {
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
    if (diag.active) return this._lockTracked(write, signal, leaf, labels, skip, task);
    const a = labels === null ? null : this._labelsOnly(write, labels);
    const g = this._tryTake(write, a);
    return g !== null ? Promise.resolve(g) : this._wait(write, signal, leaf, a);
  }

  /**
   * @internal An acquisition while diagnostics are active: deadlock checks, then take or queue, with a record
   * (every acquisition's, or with the hold profile alone, those it follows).
   */
  _lockTracked(write: boolean, signal: AbortSignal | undefined, leaf: string, labels: LabelSet | null, skip: Method, task: Task | null): Promise<Guard> {
    const holdWeight = drawHoldSample();
    if (holdWeight === 0 && !diag.recordAll) {
      const a = labels === null ? null : this._labelsOnly(write, labels);
      const g = this._tryTake(write, a);
      return g !== null ? Promise.resolve(g) : this._wait(write, signal, leaf, a);
    }
    const t = diag.deadlock !== 0 ? (task ?? taskOfCaller()) : null;
    if (t !== null) noteOrder(t, this, skip);
    const a = this._record(write, labels, skip, t, holdWeight, undefined, task !== null);
    const g = this._tryTake(write, a);
    if (g !== null) {
      this._granted(a);
      return a.watch ? resolvedAs(t!, g) : Promise.resolve(g);
    }
    if (t === null) return this._wait(write, signal, leaf, a);
    // a wait that closes a cycle is watched (and in 'throw' mode waits with a signal that can reject it)
    const check = checkWait(t, this, a.mode, skip, signal);
    t.waiting = a;
    const p = this._wait(write, check.signal, leaf, a);
    if (check.suspect !== null) watchSuspect(check.suspect, a);
    return p;
  }

  /** @internal A new tracked acquisition's record. */
  _record(write: boolean, labels: LabelSet | null, skip: Method, task: Task | null, holdWeight: number, weight?: number, scoped = false): Acquisition {
    return {
      weight,
      lock: this,
      mode: this._modeOf(write),
      tracked: true,
      own: labels,
      state: 'waiting',
      since: 0, // read when it queues (_wait) or is granted (holdStarted): one clock read per acquisition
      labels: eventLabels(labels),
      stack: diag.stacks || holdWeight !== 0 ? capture(skip, 1) : null, // 1: withLock's frame, when it called lock()
      task,
      lineage: task === null ? 0 : task.lineage,
      // a scope's function runs under a sure mark of its own (runAs): only lock() and the like are watched
      watch: task !== null && !task.sure && !scoped,
      holdWeight,
      snext: null,
      sprev: null,
    };
  }

  /**
   * @internal The record of an acquisition that only carries its labels option. Such a record is never written
   * after it is made (untracked: no times, no lists, no task), so acquisitions of one side with the same labels
   * share one: a labels option costs no allocation per call (bench: profiling, "a request … the labels lock option").
   */
  _labelsOnly(write: boolean, labels: LabelSet): Acquisition {
    const last = write ? this._exLabels : this._shLabels;
    if (last !== null && last.own === labels) return last;
    const a: Acquisition = {
      lock: this,
      mode: this._modeOf(write),
      tracked: false,
      own: labels,
      state: 'waiting',
      since: 0,
      labels: null,
      stack: null,
      task: null,
      lineage: 0,
      watch: false,
      holdWeight: 0,
      snext: null,
      sprev: null,
    };
    if (write) this._exLabels = a;
    else this._shLabels = a;
    return a;
  }

  /** @internal The lock's side for a lock() (write) or rLock() call. */
  _modeOf(write: boolean): LockMode {
    return write ? 'exclusive' : 'shared';
  }

  /** @internal Hands the lock to waiter `w` (whose acquisition has a record) as the guard of generation `gen`. */
  _handOver(w: Waiter, gen: number): void {
    const a = w._acq!;
    this._granted(a);
    if (!a.watch) grant(w, gen);
    else resumeAs(a.task!, () => grantWatched(w, gen)); // deadlock detection sees its flow resume (deadlock.ts, "Tasks")
  }

  /** @internal `a` was granted (taken now, or handed to its waiter). */
  _granted(a: Acquisition): void {
    if (a.mode === 'exclusive') this._acq = a;
    if (!a.tracked) return;
    this._moves++;
    holdStarted(a);
    if (a.mode === 'shared') (this._sharedAcqs ??= new SharedHolders()).add(a);
    const t = a.task;
    if (t !== null) {
      if (t.waiting === a) t.waiting = null;
      t.held.push(a);
    }
  }

  /** @internal tryLock()/tryRLock() succeeded while diagnostics are active. */
  _tookTracked(write: boolean, skip: Method, weight?: number): void {
    const holdWeight = drawHoldSample();
    if (holdWeight === 0 && !diag.recordAll) return;
    const t = diag.deadlock !== 0 ? taskOfCaller() : null;
    if (t !== null) noteOrder(t, this, skip);
    this._granted(this._record(write, null, skip, t, holdWeight, weight));
  }

  /** @internal `a` is released: out of its lock's holders and its task; the hold profile records it if it follows it. */
  _releasedAcq(a: Acquisition): void {
    if (a.mode === 'exclusive') {
      if (this._acq === a) this._acq = null;
    } else this._sharedAcqs?.delete(a);
    if (!a.tracked) return;
    this._moves++;
    const t = a.task;
    if (t !== null) {
      const held = t.held;
      const i = held.lastIndexOf(a);
      if (i >= 0) {
        held[i] = held[held.length - 1]; // order does not matter (noteOrder reads them all)
        held.pop();
      }
    }
    if (a.holdWeight !== 0 || sampling.metrics) {
      const held = sampling.now() - a.since;
      if (a.holdWeight !== 0) holdEvent(this.name, this._sides ? (a.mode === 'shared' ? 'read' : 'write') : null, a, held);
      if (sampling.metrics) recordHold(this, a.mode, held);
    }
  }

  /**
   * @internal A shared release of `weight` permits (an RWMutex reader, Semaphore permits) ends a record: its guard's
   * `own` (a record of its own, or an untracked one), or, released without a guard (`own` undefined: rUnlock(),
   * Semaphore.release()) or through a guard whose record such a release already ended, a listed record of that
   * weight: the releasing flow's own when deadlock detection knows it (else that flow would still count as a holder,
   * and its next lock() as re-entry), else the oldest. Shared holders share one count, so which record ends is a
   * convention; this one ends one record per release while any is listed, so that none outlives the holders.
   * `own` null: a guard without a record.
   */
  _sharedReleased(own: Acquisition | null | undefined, weight: number): void {
    if (own === null) return;
    const list = this._sharedAcqs;
    let ended: Acquisition | null = null;
    if (own !== undefined && (!own.tracked || list === null || list.has(own))) ended = own;
    else if (list !== null) {
      const mine = diag.deadlock !== 0 ? taskOfReleaser() : null;
      for (let a = list.head; a !== null; a = a.snext) {
        if ((a.weight ?? 1) !== weight) continue;
        if (ended === null) ended = a;
        if (mine === null || a.task === mine) {
          ended = a;
          break;
        }
      }
    }
    if (ended !== null) this._releasedAcq(ended);
  }

  /** @internal Queue a waiter; the promise settles when it is granted or aborted. */
  _wait(write: boolean, signal: AbortSignal | undefined, leaf: string, acq: Acquisition | null = null): Promise<Guard> {
    // The executors capture no more than they must, so that V8 can inline them into lock() without a context
    // to allocate. (Tried and slower in the contended hand-off bench: one shared executor passing
    // the resolving function through a variable, and an executor closing over `signal` too.)
    const p = signal === undefined ? new Promise<Guard>((resolve) => this._enqueue(resolve)) : this._enqueueAbortable(signal);
    const w = this._tail!; // the executor ran synchronously and queued it last
    // the lock's first waiter: into the live list. Here, not in _enqueue: there the call kept V8
    // from inlining _enqueue into the executor, and the contended hand-off ran 10 % slower (bench: locks).
    if (w.prev === null && !this._live) {
      joinContended(this);
      w._since = diag.coarseMs;
    }
    if (!write) w._read = true;
    if (acq !== null) {
      w._acq = acq;
      if (acq.tracked) acq.since = sampling.now();
    }
    return sampling.timing ? this._timeWait(p, w, leaf) : p;
  }

  /**
   * @internal A waiter whose promise is settled elsewhere (the async-mutex drop-in's queue): listed and accounted
   * as this lock's own.
   */
  _counted<T>(p: Promise<T>, w: Waiter, leaf: string): Promise<T> {
    if (w.prev === null && !this._live) {
      joinContended(this);
      w._since = diag.coarseMs;
    }
    return sampling.timing ? this._timeWait(p, w, leaf) : p;
  }

  /** @internal Profiling is on: w's waiting counts. */
  _timeWait<T>(p: Promise<T>, w: Waiter, leaf: string): Promise<T> {
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
    const stamped = blockWeight !== 0 || sampling.metrics;
    if (stamped) {
      if (t === -1) t = sampling.now();
      this._stamped++;
    }
    const times = t === -1 ? UNSTAMPED : { t, end: t, stamped };
    w.times = times;
    this._timed++;
    return blockWeight !== 0 ? blockWait(p, times, this.name, this._sides ? (w._read ? 'read' : 'write') : null, leaf, blockWeight, w._acq === null ? null : w._acq.own) : p;
  }

  /**
   * @internal A release while timed waiters wait (or waiting is carried): the event, recorded with the stack
   * below `skip` (the outermost mutexprof function on the stack; `spare`: room for library frames that may follow
   * it) and the releasing acquisition's `labels`. Returns its time if read.
   */
  _releaseEvent(leaf: string, skip: Method, labels: LabelSet | null, mode: 'read' | 'write' | null = null, spare = 0): number {
    let t = 0;
    const weight = this._weight;
    if (weight !== 0) {
      t = sampling.now();
      mutexEvent(this.name, mode, weight, this._timed * (t - this._last) - this._rel + this._carry, leaf, skip, labels, spare);
    }
    this._rel = 0;
    this._carry = 0;
    this._weight = drawMutexSample(); // the next interval
    if (this._weight !== 0) this._last = t === 0 ? (t = sampling.now()) : t;
    return t;
  }

  /**
   * @internal Remove w from the queue, granted by a release event at `at` (0: not read yet; or, when `event` is
   * false, leaving without one). Returns the event's time, read here if w is the first stamped waiter it grants.
   */
  _dequeue(w: Waiter, event: boolean, at: number): number {
    this._unlink(w);
    const times = w.times;
    if (times !== null) {
      if (event) {
        // its waiting up to the event is in that event's delay; after an event every remaining rel is 0
        this._timed--;
        // the clock only for a wait that needs its end (a followed or counted one): most need none
        if (times.stamped) times.end = at !== 0 ? at : (at = sampling.now());
      } else this._leaveUncharged(times);
      if (times.stamped) {
        this._stamped--;
        if (sampling.metrics) recordWait(this, this._modeOf(!w._read), times.end - times.t);
      }
    }
    if (w.abort !== null) this._dropAbort(w);
    return at;
  }

  /** @internal A timed waiter leaves without a release event: in a sampled interval its waiting is carried. */
  _leaveUncharged(times: WaitTimes): void {
    let t = 0;
    if (this._weight !== 0) {
      t = sampling.now();
      const rel = times.t > this._last ? times.t - this._last : 0;
      this._carry += t - this._last - rel;
      this._rel -= rel;
    } else if (times.stamped) t = sampling.now();
    this._timed--;
    if (this._timed === 0) this._rel = 0; // drop float residue
    if (times !== UNSTAMPED) times.end = t;
  }

  /** @internal */
  _abort(w: Waiter, l: AbortLink): void {
    this._dequeue(w, false, 0);
    const t = w._acq === null ? null : w._acq.task;
    if (t !== null && t.waiting === w._acq) t.waiting = null;
    l.reject(l.list.signal.reason);
    this._afterAbort(w);
  }
}

// The wait queue shared by Mutex and RWMutex, and the contention accounting the profiles read.
//
// Waiters form an intrusive doubly linked list (FIFO, O(1) removal on abort, no allocation beyond the waiter
// itself). When profiling is on, waiters are "timed"; the queue keeps, in O(1), the waiting that the next
// release event ends the blame for (see "What is recorded" in src/profile/recorder.ts):
//   delay = Σ over timed waiters of (now − max(enqueued, lastEvent))  +  carry
// computed as timed·(now − lastEvent) − rel + carry, where rel = Σ (max(enqueued, lastEvent) − lastEvent).
// Everything is a duration relative to lastEvent, so no large absolute timestamps are multiplied.
//
// An event's delay only involves the waiting since the previous event, so whether an event is sampled is drawn
// when its interval starts (the previous event, or the first timed enqueue): in an interval that will not be
// sampled nobody reads the clock for the mutex profile. At fraction 100 that is 99 % of the contended path.

import { timing, now, blockRate, drawMutexSample, mutexEvent, blockWait } from './profile/recorder.js';

/** Options accepted by `lock()`, `rLock()`, `withLock()` and `withRLock()`. */
export interface LockOptions {
  /** Abort the wait: the waiter leaves the queue at once and the promise rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/** Options accepted by the `Mutex` and `RWMutex` constructors. */
export interface MutexOptions {
  /** The `lock` label on this lock's profile samples, and the name in its error messages. */
  name?: string;
}

function noop(): void {}

/**
 * What `lock()` and `rLock()` resolve to. Disposing it releases exactly that acquisition:
 * `using _ = await mu.lock()`. Disposing it twice, or after the acquisition was released by
 * `unlock()`/`rUnlock()`, throws and changes nothing.
 */
export interface Guard extends Disposable {
  [Symbol.dispose](): void;
}

// Guards are plain objects. V8 looks up `then` on any object a promise resolves with (the price of returning a
// guard at all: bench/'s "floor + guard" row); on a plain object the lookup has one prototype to search, on a class
// instance two, and class-based guards measured slower. A guard names its acquisition by a number, so the lock
// keeps no pointer to it: a Mutex's by its state word, an RWMutex writer's by the release count, a reader's by the
// read session (readers share one count; a session ends when it drops to zero).
/** @internal */
export interface GuardState extends Guard {
  readonly _lock: WaitQueue;
  _gen: number;
  _read: boolean;
  /** readers only (writers are named by _gen alone); on every guard so that all guards share one shape */
  _released: boolean;
}

/**
 * @internal A queued caller. It is also the guard it is granted (one allocation per contended acquisition,
 * and a plain object, for the same reason as guards).
 */
export interface Waiter extends GuardState {
  next: Waiter | null;
  prev: Waiter | null;
  resolve: (g: Guard) => void;
  /** Set when profiling was on at enqueue (else null: not counted); UNSTAMPED when no clock read was needed. */
  times: WaitTimes | null;
  /** Set when the caller passed a signal: the abort listener, which also holds what abort needs. */
  abort: AbortWait | null;
}

/** @internal An abortable wait's listener (an EventListener object: one allocation, no closure). */
export interface AbortWait {
  readonly waiter: Waiter;
  readonly signal: AbortSignal;
  readonly reject: (e: unknown) => void;
  handleEvent(this: AbortWait): void;
}

function onAbort(this: AbortWait): void {
  this.waiter._lock._abort(this.waiter, this);
}

function disposeGuard(this: GuardState): void {
  this._lock._disposeGuard(this);
}

/** @internal When a timed waiter started waiting (ns) and when it stopped (granted or aborted). */
export interface WaitTimes {
  readonly t: number;
  end: number;
}
// Kept apart from the waiter: double-valued fields on the waiter itself would make V8 box numbers and migrate
// the waiter's shape on the hot path. Waiters in an interval that is not sampled (and with the block profile off)
// share this one, so they allocate nothing.
const UNSTAMPED: WaitTimes = { t: -1, end: 0 };

/** @internal */
export function newGuard(lock: WaitQueue, gen: number, read: boolean): GuardState {
  return { _lock: lock, _gen: gen, _read: read, _released: false, [Symbol.dispose]: disposeGuard };
}

function newWaiter(lock: WaitQueue, resolve: (g: Guard) => void): Waiter {
  return {
    _lock: lock,
    _gen: 0,
    _read: false,
    _released: false,
    next: null,
    prev: null,
    resolve,
    times: null,
    abort: null,
    [Symbol.dispose]: disposeGuard,
  };
}

/** @internal Grants w as the guard of generation `gen`. */
export function grant(w: Waiter, gen: number): void {
  w._gen = gen;
  const resolve = w.resolve;
  w.resolve = noop; // the guard outlives the wait: keep no resolving function
  resolve(w);
}

/** The queue, the abort handling and the accounting shared by Mutex and RWMutex (which add the lock state). */
export abstract class WaitQueue {
  readonly name: string;
  /** @internal */ _head: Waiter | null = null;
  /** @internal */ _tail: Waiter | null = null;
  /** @internal */ _size = 0;
  /** @internal timed waiters in the queue */ _timed = 0;
  /** @internal Σ (max(t, _last) − _last) over timed waiters */ _rel = 0;
  /** @internal time of the last release event (or of the first timed enqueue after the queue had none) */ _last = 0;
  /** @internal waiting of waiters gone without a release event, charged to the next one */ _carry = 0;
  /** @internal the current interval's sampling weight (the fraction it was drawn at), 0 = not sampled */ _weight = 0;

  constructor(options: MutexOptions | undefined, kind: string) {
    if (options !== undefined && (options === null || typeof options !== 'object')) {
      throw new TypeError(`mutexprof: new ${kind}(options): options must be an object, got ${describeValue(options)}`);
    }
    const name = options?.name;
    if (name !== undefined && typeof name !== 'string') {
      throw new TypeError(`mutexprof: new ${kind}({ name }): name must be a string, got ${describeValue(name)}`);
    }
    this.name = name ?? '';
  }

  /** Number of callers queued waiting for this lock. */
  get waiting(): number {
    return this._size;
  }

  /** @internal */ abstract _describe(): string;
  /** @internal releases g's acquisition, or throws if it is already released */
  abstract _disposeGuard(g: GuardState): void;
  /** @internal take the lock now if the rules allow it (nobody queued, compatible holders), else null */
  abstract _tryTake(write: boolean): Guard | null;

  /** @internal lock()/rLock() past their fast path: check the options, then take the lock now or queue. */
  _lockSlow(options: LockOptions | undefined, method: string, write: boolean, leaf: string): Promise<Guard> {
    let signal: AbortSignal | undefined;
    if (options !== undefined) {
      try {
        signal = checkOptions(options, method);
      } catch (e) {
        return Promise.reject(e);
      }
      if (signal?.aborted) return Promise.reject(signal.reason);
    }
    const g = this._tryTake(write);
    return g !== null ? Promise.resolve(g) : this._wait(write, signal, leaf);
  }
  /** @internal a waiter left by abort; RWMutex may now admit readers */ _afterAbort(_w: Waiter): void {}

  /** @internal Queue a waiter; the promise settles when it is granted or aborted. */
  _wait(write: boolean, signal: AbortSignal | undefined, leaf: string): Promise<Guard> {
    // The executors capture no more than they must, so that V8 can inline them into lock() without a context
    // to allocate. (Tried and slower in the contended hand-off bench: one shared executor passing
    // the resolving function through a variable, and an executor closing over `signal` too.)
    const p = signal === undefined ? new Promise<Guard>((resolve) => this._enqueue(resolve)) : this._waitAbortable(signal);
    const w = this._tail!; // the executor ran synchronously and queued it last
    if (!write) w._read = true;
    return timing ? this._timeWait(p, w, leaf) : p;
  }

  /** @internal */
  _enqueue(resolve: (g: Guard) => void): Waiter {
    const w = newWaiter(this, resolve);
    w.prev = this._tail;
    if (this._tail === null) this._head = w;
    else this._tail.next = w;
    this._tail = w;
    this._size++;
    return w;
  }

  /** @internal (apart from _wait, whose executor would otherwise capture `signal` on every call) */
  _waitAbortable(signal: AbortSignal): Promise<Guard> {
    return new Promise<Guard>((resolve, reject) => {
      const w = this._enqueue(resolve);
      w.abort = { waiter: w, signal, reject, handleEvent: onAbort };
      signal.addEventListener('abort', w.abort, { once: true });
    });
  }

  /** @internal Profiling is on: w's waiting counts (see the top of this file). */
  _timeWait(p: Promise<Guard>, w: Waiter, leaf: string): Promise<Guard> {
    let t = -1; // timed, but no timestamp needed (the clock is positive)
    if (this._timed === 0 && this._carry === 0) {
      this._weight = drawMutexSample(); // a fresh interval
      if (this._weight !== 0) this._last = t = now();
    }
    if (this._weight !== 0) {
      if (t === -1) t = now();
      this._rel += t - this._last;
    } else if (blockRate > 0) t = now();
    const times = t === -1 ? UNSTAMPED : { t, end: t };
    w.times = times;
    this._timed++;
    return blockRate > 0 ? blockWait(p, times, this.name, leaf) : p;
  }

  /** @internal A release while timed waiters wait (or waiting is carried): the event; returns its time if read. */
  _releaseEvent(leaf: string): number {
    let t = 0;
    const weight = this._weight;
    if (weight !== 0) {
      t = now();
      mutexEvent(this.name, weight, this._timed * (t - this._last) - this._rel + this._carry, leaf);
    }
    this._rel = 0;
    this._carry = 0;
    this._weight = drawMutexSample(); // the next interval
    if (this._weight !== 0) this._last = t === 0 ? (t = now()) : t;
    else if (t === 0 && blockRate > 0) t = now(); // granted waiters' end, for the block profile
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
    }
    if (w.abort !== null) this._dropAbort(w);
  }

  /** @internal */
  _dropAbort(w: Waiter): void {
    const a = w.abort!;
    a.signal.removeEventListener('abort', a);
    w.abort = null;
  }

  /** @internal A timed waiter leaves without a release event: in a sampled interval its waiting is carried. */
  _leaveUncharged(times: WaitTimes): void {
    let t = 0;
    if (this._weight !== 0) {
      t = now();
      const rel = times.t > this._last ? times.t - this._last : 0;
      this._carry += t - this._last - rel;
      this._rel -= rel;
    } else if (blockRate > 0) t = now();
    this._timed--;
    if (this._timed === 0) this._rel = 0; // drop float residue
    if (times !== UNSTAMPED) times.end = t;
  }

  /** @internal */
  _unlink(w: Waiter): void {
    if (w.prev === null) this._head = w.next;
    else w.prev.next = w.next;
    if (w.next === null) this._tail = w.prev;
    else w.next.prev = w.prev;
    w.next = w.prev = null;
    this._size--;
  }

  /** @internal */
  _alreadyReleased(read: boolean): Error {
    return new Error(
      `mutexprof: guard of ${this._describe()} is already released (disposed twice, or released by ${read ? 'rUnlock' : 'unlock'}())`,
    );
  }

  /** @internal */
  _abort(w: Waiter, a: AbortWait): void {
    this._dequeue(w, false, 0);
    a.reject(a.signal.reason);
    this._afterAbort(w);
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return ((typeof v === 'object' && v !== null) || typeof v === 'function') && typeof (v as PromiseLike<unknown>).then === 'function';
}

/** @internal withLock/withRLock: fn is checked before anything is acquired. */
export function checkFn(method: string, fn: unknown): TypeError | null {
  return typeof fn === 'function' ? null : new TypeError(`mutexprof: ${method}(fn): fn must be a function, got ${typeof fn}`);
}

/** @internal withLock/withRLock: runs fn holding what `acquired` resolves to, releasing on every exit path. */
export async function holding<T>(acquired: Promise<Guard>, fn: () => T | PromiseLike<T>): Promise<Awaited<T>> {
  const g = await acquired;
  try {
    const r = fn();
    return isThenable(r) ? await r : (r as Awaited<T>); // a synchronous fn costs no extra microtask
  } finally {
    g[Symbol.dispose]();
  }
}

/** @internal Validates the options argument of lock-like calls; returns the signal if any. */
export function checkOptions(options: unknown, method: string): AbortSignal | undefined {
  if (options === undefined) return undefined;
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`mutexprof: ${method}(options): options must be an object, got ${describeValue(options)}`);
  }
  const signal = (options as LockOptions).signal;
  if (signal === undefined) return undefined;
  if (!(signal instanceof AbortSignal)) {
    throw new TypeError(`mutexprof: ${method}({ signal }): signal must be an AbortSignal, got ${describeValue(signal)}`);
  }
  return signal;
}

/** @internal */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return `${typeof v} ${String(v)}`;
  return typeof v;
}

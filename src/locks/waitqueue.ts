// The FIFO wait queue every lock keeps, and how a waiter leaves it when its AbortSignal aborts.
//
// Waiters form an intrusive doubly linked list: FIFO, O(1) removal on abort, no allocation beyond the waiter
// itself. A queued waiter is also the guard it is granted.
//
// Abort: the waiters that wait with one signal, on any lock, are an intrusive list of their own that shares one
// listener on the signal. A request's signal, or one AbortSignal.timeout shared by a batch, may be handed to
// thousands of waiters; a listener each would cost O(n) per add (EventTarget scans for duplicates) and per
// removal (it scans for the listener), O(n²) in all, and print MaxListenersExceededWarning past 10. With one
// listener per signal, queueing, leaving on grant and abort are O(1) per waiter, and the listener is removed
// when the signal's last waiter leaves, so nothing keeps the signal (or an AbortSignal.timeout's timer) alive.

import { diag, type Acquisition, type TrackedLock } from '../diagnostics/acquisitions.js';
import { guardUsed } from '../diagnostics/deadlock.js';
import type { Guard } from './options.js';

/**
 * @internal A guard: names its acquisition by a number, so the lock keeps no pointer to it (a Mutex's by its
 * state word, an RWMutex writer's by the release count, a reader's by the read session).
 *
 * Guards are plain objects. V8 looks up `then` on any object a promise resolves with (the price of returning a
 * guard at all: bench/'s "floor + guard" row); on a plain object the lookup has one prototype to search, on a
 * class instance two, and class-based guards measured slower.
 */
export interface GuardState extends Guard {
  readonly _lock: WaitQueue;
  _gen: number;
  _read: boolean;
  /** readers only (writers are named by _gen alone); on every guard so that all guards share one shape */
  _released: boolean;
  /** the acquisition's record, when it has one: diagnostics active, or a `labels` option (src/diagnostics/acquisitions.ts) */
  _acq: Acquisition | null;
}

/** @internal When a timed waiter started waiting (ns) and when it stopped (granted or aborted). */
export interface WaitTimes {
  readonly t: number;
  end: number;
  /** whether it needs the time its wait ends (the block profile follows it, or lock metrics count it) */
  readonly stamped: boolean;
}

/** @internal A queued caller, and the guard it is granted (one allocation per contended acquisition). */
export interface Waiter extends GuardState {
  next: Waiter | null;
  prev: Waiter | null;
  resolve: (g: Guard) => void;
  /** The contention accounting's (src/locks/contention.ts): null when the wait is not counted. */
  times: WaitTimes | null;
  /** Its place in its signal's list, when the caller passed a signal. */
  abort: AbortLink | null;
  /** when it started waiting, on the coarse clock (ms) */
  _since: number;
}

/** @internal An abortable waiter in its signal's list. */
export interface AbortLink {
  readonly waiter: Waiter;
  readonly reject: (e: unknown) => void;
  readonly list: SignalWaiters;
  next: AbortLink | null;
  prev: AbortLink | null;
}

function noop(): void {}

/** @internal A mutexprof function on the stack, below which stacks are captured. */
export type Method = (...args: never[]) => unknown;

function disposeGuard(this: GuardState): void {
  this._lock._disposeGuard(this, disposeGuard);
}

/** @internal */
export function newGuard(lock: WaitQueue, gen: number, read: boolean, acq: Acquisition | null = null): GuardState {
  if (acq !== null && acq.watch) return newWatchedGuard(lock, gen, read, acq);
  return { _lock: lock, _gen: gen, _read: read, _released: false, _acq: acq, [Symbol.dispose]: disposeGuard };
}

/**
 * A guard whose use deadlock detection watches: `using` reads Symbol.dispose where it is declared, and only the flow
 * that holds the guard can (src/diagnostics/deadlock.ts, "Tasks"). For acquisitions whose task's mark is not sure yet.
 * A class, so that all share one accessor on its prototype.
 */
class WatchedGuard implements GuardState {
  _released = false;
  constructor(
    readonly _lock: WaitQueue,
    public _gen: number,
    public _read: boolean,
    public _acq: Acquisition | null,
  ) {}
  get [Symbol.dispose](): () => void {
    if (this._acq !== null) guardUsed(this._acq);
    return disposeGuard;
  }
}

function newWatchedGuard(lock: WaitQueue, gen: number, read: boolean, acq: Acquisition): GuardState {
  return new WatchedGuard(lock, gen, read, acq);
}

function newWaiter(lock: WaitQueue, resolve: (g: Guard) => void): Waiter {
  return {
    _lock: lock,
    _gen: 0,
    _read: false,
    _released: false,
    _acq: null,
    next: null,
    prev: null,
    resolve,
    times: null,
    abort: null,
    _since: 0,
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

/** @internal Grants w with a guard of its own (a watched one: see newWatchedGuard) instead of the waiter itself. */
export function grantWatched(w: Waiter, gen: number): void {
  const resolve = w.resolve;
  w.resolve = noop;
  resolve(newWatchedGuard(w._lock, gen, w._read, w._acq!));
}

/** The waiters of every lock that wait with one signal, and the one listener they share on it. */
class SignalWaiters {
  head: AbortLink | null = null;
  tail: AbortLink | null = null;
  constructor(readonly signal: AbortSignal) {}

  add(l: AbortLink): void {
    l.prev = this.tail;
    if (this.tail === null) {
      this.head = l;
      this.signal.addEventListener('abort', this);
    } else this.tail.next = l;
    this.tail = l;
  }

  remove(l: AbortLink): void {
    if (l.prev === null) this.head = l.next;
    else l.prev.next = l.next;
    if (l.next === null) this.tail = l.prev;
    else l.next.prev = l.prev;
    l.next = l.prev = null;
    if (this.head === null) this.signal.removeEventListener('abort', this);
  }

  /** The signal aborted: every waiter still in the list leaves its queue, oldest first. */
  handleEvent(): void {
    // One at a time from the head: a waiter's leaving may grant others of this list (readers behind an aborted
    // writer), which then leave it as granted waiters do.
    for (let l = this.head; l !== null; l = this.head) {
      this.remove(l);
      l.waiter.abort = null;
      l.waiter._lock._abort(l.waiter, l);
    }
  }
}

const bySignal = new WeakMap<AbortSignal, SignalWaiters>();

/** The FIFO queue and abort handling shared by every lock (which add the lock state and the accounting). */
export abstract class WaitQueue {
  readonly name: string;
  /** @internal */ _head: Waiter | null = null;
  /** @internal */ _tail: Waiter | null = null;
  /** @internal */ _size = 0;
  /** @internal the lock's id in diagnostics, 0 until needed */ _id = 0;
  /** @internal links in the live list: locks waited for or held now (src/diagnostics/acquisitions.ts) */ _lnext: TrackedLock | null = null;
  /** @internal */ _lprev: TrackedLock | null = null;
  /** @internal */ _live = false;
  /** @internal grants and releases of tracked acquisitions (deadlock detection's sign of progress) */ _moves = 0;

  constructor(name: string) {
    this.name = name;
  }

  /** Number of callers queued waiting for this lock. */
  get waiting(): number {
    return this._size;
  }

  /** @internal */ abstract _describe(): string;
  /** @internal 'Mutex', 'RWMutex', … */ abstract _kind(): string;
  /** @internal the leaf frame's name for an acquisition of this side */
  _leafFor(mode: 'exclusive' | 'shared'): string {
    return `${this._kind()}.${mode === 'shared' ? 'rLock' : 'lock'}`;
  }
  /** @internal releases g's acquisition, or throws if it is already released; called through `skip` (see capture()) */
  abstract _disposeGuard(g: GuardState, skip: Method): void;
  /** @internal a waiter's signal aborted: it leaves the queue and its promise rejects */
  abstract _abort(w: Waiter, l: AbortLink): void;

  /** @internal Appends a waiter resolved by `resolve`. */
  _enqueue(resolve: (g: Guard) => void): Waiter {
    const w = newWaiter(this, resolve);
    w.prev = this._tail;
    if (this._tail === null) this._head = w;
    else this._tail.next = w;
    this._tail = w;
    this._size++;
    w._since = diag.coarseMs;
    return w;
  }

  /** @internal (apart from the plain wait, whose executor would otherwise capture `signal` on every call) */
  _enqueueAbortable(signal: AbortSignal): Promise<Guard> {
    return new Promise<Guard>((resolve, reject) => {
      const w = this._enqueue(resolve);
      let list = bySignal.get(signal);
      if (list === undefined) bySignal.set(signal, (list = new SignalWaiters(signal)));
      list.add((w.abort = { waiter: w, reject, list, next: null, prev: null }));
    });
  }

  /** @internal */
  _unlink(w: Waiter): void {
    if (w.prev === null) this._head = w.next;
    else w.prev.next = w.next;
    if (w.next === null) this._tail = w.prev;
    else w.next.prev = w.prev;
    w.next = w.prev = null;
    this._size--; // the live list drops this lock later, if it stays empty (acquisitions.ts)
  }

  /** @internal w leaves its signal's list (it was granted) */
  _dropAbort(w: Waiter): void {
    const l = w.abort!;
    l.list.remove(l);
    w.abort = null;
  }

  /** @internal */
  _alreadyReleased(read: boolean): Error {
    return new Error(`mutexprof: guard of ${this._describe()} is already released (disposed twice, or released by ${read ? 'rUnlock' : 'unlock'}())`);
  }
}

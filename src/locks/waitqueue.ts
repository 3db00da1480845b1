// The FIFO wait queue every lock keeps, the guards it grants, and how a waiter leaves when its AbortSignal aborts.
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

import { hooks, observing, type Acquisition, type LockMode, type LockView, type Method } from './seam.js';

/**
 * What lock(), rLock() and acquire() resolve to. Disposing it releases exactly that acquisition:
 * `using _ = await mu.lock()`. Disposing it twice, or after the acquisition was released by `unlock()`/`rUnlock()`,
 * throws and changes nothing.
 */
export interface Guard extends Disposable {
  [Symbol.dispose](): void;
}

/**
 * A guard, as the locks know it. It names its acquisition by a number, so that the lock keeps no pointer to it
 * (a Mutex's by its state word, an RWMutex writer's by its release count, a reader's by its read session).
 * Guards are plain objects: V8 looks up `then` on any object a promise resolves with, and on a plain object the
 * lookup has one prototype to search (bench: locks, "floor + guard").
 */
export interface GuardState extends Guard {
  readonly lock: WaitQueue;
  /** the acquisition's generation (see above) */
  gen: number;
  mode: LockMode;
  /** a Semaphore's permits, else 1 */
  weight: number;
  /** whether it was disposed (shared holders, whose generation does not tell one from another) */
  released: boolean;
  /** the acquisition's record, when observers gave it one */
  acq: Acquisition | null;
}

/** A queued acquisition, and the guard it is granted (one allocation per contended acquisition). */
export interface Waiter extends GuardState {
  next: Waiter | null;
  prev: Waiter | null;
  resolve: (g: Guard) => void;
  /** its place in its signal's list, when the caller passed a signal */
  abort: AbortLink | null;
  since: number;
  times: object | null;
}

/** An abortable waiter in its signal's list. */
export interface AbortLink {
  readonly waiter: Waiter;
  readonly reject: (e: unknown) => void;
  readonly list: SignalWaiters;
  next: AbortLink | null;
  prev: AbortLink | null;
}

function noop(): void {}

function disposeGuard(this: GuardState): void {
  this.lock._disposeGuard(this, disposeGuard);
}

/** A guard of generation `gen`, for an acquisition taken at once. */
export function newGuard(lock: WaitQueue, gen: number, mode: LockMode, weight: number, acq: Acquisition | null): GuardState {
  if (acq !== null && acq.watch) return new WatchedGuard(lock, gen, mode, weight, acq);
  return { lock, gen, mode, weight, released: false, acq, [Symbol.dispose]: disposeGuard };
}

/**
 * A guard whose use is told (hooks.guardUsed): `using` reads Symbol.dispose where it is declared, and only the flow
 * that holds the guard can. A class, so that all share one accessor on its prototype.
 */
class WatchedGuard implements GuardState {
  released = false;
  constructor(
    readonly lock: WaitQueue,
    public gen: number,
    public mode: LockMode,
    public weight: number,
    public acq: Acquisition,
  ) {}
  get [Symbol.dispose](): () => void {
    hooks.guardUsed(this.acq);
    return disposeGuard;
  }
}

function newWaiter(lock: WaitQueue, resolve: (g: Guard) => void): Waiter {
  return {
    lock,
    gen: 0,
    mode: 'exclusive',
    weight: 1,
    released: false,
    acq: null,
    next: null,
    prev: null,
    resolve,
    abort: null,
    since: observing.coarseMs,
    times: null,
    [Symbol.dispose]: disposeGuard,
  };
}

/** Resolves w's wait: w becomes the guard of generation `gen` (a watched acquisition gets a guard of its own). */
export function grant(w: Waiter, gen: number): void {
  const resolve = w.resolve;
  w.resolve = noop; // the guard outlives the wait: keep no resolving function
  const a = w.acq;
  if (a === null || !a.watch) {
    w.gen = gen;
    resolve(w);
  } else hooks.resumeWatched(a, () => resolve(new WatchedGuard(w.lock, gen, w.mode, w.weight, a)));
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
      l.waiter.lock._abort(l.waiter, l);
    }
  }
}

const bySignal = new WeakMap<AbortSignal, SignalWaiters>();

/** The FIFO queue and abort handling shared by every lock. */
export abstract class WaitQueue {
  readonly name: string;
  /** @internal */ _head: Waiter | null = null;
  /** @internal */ _tail: Waiter | null = null;
  /** @internal */ _size = 0;

  constructor(name: string) {
    this.name = name;
  }

  /** Number of callers queued waiting for this lock. */
  get waiting(): number {
    return this._size;
  }

  /** @internal releases g's acquisition, or throws if it is already released; called through `skip` (stacks start below it) */
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
    return w;
  }

  /** @internal Appends a waiter that leaves when `signal` aborts (apart from the plain wait, whose executor would otherwise capture `signal`). */
  _enqueueAbortable(signal: AbortSignal): Promise<Guard> {
    return new Promise<Guard>((resolve, reject) => {
      const w = this._enqueue(resolve);
      let list = bySignal.get(signal);
      if (list === undefined) bySignal.set(signal, (list = new SignalWaiters(signal)));
      list.add((w.abort = { waiter: w, reject, list, next: null, prev: null }));
    });
  }

  /** @internal Removes w from the queue. */
  _unlink(w: Waiter): void {
    if (w.prev === null) this._head = w.next;
    else w.prev.next = w.next;
    if (w.next === null) this._tail = w.prev;
    else w.next.prev = w.prev;
    w.next = w.prev = null;
    this._size--;
    if (w.abort !== null) {
      w.abort.list.remove(w.abort);
      w.abort = null;
    }
  }

  /** @internal the view's waiters */
  get firstWaiter(): LockView['firstWaiter'] {
    return this._head;
  }
}

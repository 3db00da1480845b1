// What every lock shares past its fast path: the one acquisition path (options, the record, take or queue), the
// grant, and the steps of a release that observers are told of. The locks add their state and their rules: when
// an acquisition may be taken (_take) and whom a release grants.

import { checkOptions, type LockOptions } from './options.js';
import { hooks, observing, type Acquisition, type LockMode, type Method, type OptionLabels, type Scope } from './seam.js';
import { WaitQueue, grant, newGuard, type AbortLink, type Guard, type GuardState, type Waiter } from './waitqueue.js';

/** A lock: a wait queue, its rules, and the view observers read (LockView in src/locks/seam.ts: every call of a hook with `this` checks that it is one). */
export abstract class Lock extends WaitQueue {
  /** @internal */ holder: Acquisition | null = null;
  /** @internal */ id = 0;
  /** @internal */ followed = 0;
  /** @internal */ carried = false;
  /** @internal */ account: object | null = null;
  /** @internal */ records: object | null = null;

  /** @internal */ abstract readonly kind: string;
  /** @internal */ get sides(): boolean {
    return false;
  }
  /** @internal */ abstract holding(): { exclusive: number; shared: number };

  /** @internal */
  leafFor(mode: LockMode): string {
    return `${this.kind}.${mode === 'shared' ? 'rLock' : 'lock'}`;
  }

  /** @internal */
  describe(): string {
    return this.name ? `${this.kind} ${JSON.stringify(this.name)}` : this.kind;
  }

  /**
   * @internal Takes the lock for an acquisition of `mode` and `weight` if its rules allow it now (nobody queued,
   * compatible holders): the guard, with `acq` as the holder's record; else null, changing nothing.
   */
  abstract _take(mode: LockMode, weight: number, acq: Acquisition | null): GuardState | null;

  /** @internal A waiter left by abort: the lock may now grant the waiters behind it. */
  _afterAbort(_w: Waiter): void {}

  /**
   * @internal The acquisition path past the fast path (options given, or acquisitions observed): 1. check the
   * options, 2. the record, 3. take now, or 4. queue. `method` names the call in errors, `skip` is the method the user
   * called (stacks start at its caller), `leaf` its leaf frame, `scope` withLock's, `weight` a Semaphore's permits.
   */
  _acquire(mode: LockMode, weight: number, options: LockOptions | undefined, method: string, skip: Method, leaf: string, scope: Scope | null): Promise<Guard> {
    let signal: AbortSignal | undefined;
    let labels: OptionLabels | null = null;
    if (options !== undefined) {
      try {
        signal = checkOptions(options, method);
        if (options.labels !== undefined) labels = hooks.labels(options.labels, method);
      } catch (e) {
        return Promise.reject(e);
      }
      if (signal?.aborted) return Promise.reject(signal.reason);
    }
    const observed = observing.acquisitions;
    const a = observed || labels !== null ? hooks.acquiring(this, mode, labels, skip, scope, weight) : null;
    const g = this._take(mode, weight, a);
    // unobserved, a record carries its labels only: nobody is told of its grant
    if (g !== null) return a === null || !observed ? Promise.resolve(g) : this._takenObserved(a, g);
    return this._wait(mode, weight, signal, a, skip, leaf);
  }

  /** @internal Step 3, observed: `a` was taken at once. */
  _takenObserved(a: Acquisition, g: GuardState): Promise<Guard> {
    hooks.granted(a);
    return a.watch ? hooks.resolvedWatched(a, g) : Promise.resolve(g);
  }

  /** @internal Step 4: queue a waiter; the promise settles when it is granted or its signal aborts. */
  _wait(mode: LockMode, weight: number, signal: AbortSignal | undefined, a: Acquisition | null, skip: Method, leaf: string): Promise<Guard> {
    if (a !== null) signal = hooks.waiting(a, signal, skip);
    // The executor captures nothing but `this`, so that V8 can inline it without a context to allocate.
    const p = signal === undefined ? new Promise<Guard>((resolve) => this._enqueue(resolve)) : this._enqueueAbortable(signal);
    const w = this._tail!; // the executor ran synchronously and queued it last
    w.mode = mode;
    w.weight = weight;
    w.acq = a;
    return this._queued(p, w, leaf);
  }

  /** @internal `w` was queued with promise `p`: observers are told (the async-mutex drop-in's waiters come here too). */
  _queued<T>(p: Promise<T>, w: Waiter, leaf: string): Promise<T> {
    if (w.prev === null) {
      hooks.firstWaiter(this);
      w.since = observing.coarseMs;
    }
    return observing.waits ? hooks.waitStarted(this, w, p, leaf) : p;
  }

  /** @internal tryLock(), tryRLock(), tryAcquire() took the lock while acquisitions are observed. */
  _tookObserved(mode: LockMode, weight: number, skip: Method): void {
    const a = hooks.acquiring(this, mode, null, skip, null, weight);
    if (a === null) return;
    if (mode === 'exclusive') this.holder = a;
    hooks.granted(a);
  }

  /** @internal Grants waiter `w`, dequeued, as the guard of generation `gen`. */
  _grant(w: Waiter, gen: number): void {
    const a = w.acq;
    if (a !== null) {
      if (w.mode === 'exclusive') this.holder = a;
      hooks.granted(a);
    }
    grant(w, gen);
  }

  /** @internal The exclusive holder releases: its record ends. Returns it (null: none). */
  _releaseHolder(): Acquisition | null {
    const h = this.holder;
    if (h !== null) {
      this.holder = null;
      hooks.released(h);
    }
    return h;
  }

  /**
   * @internal A release, which `ends` the waiting of the queued by the lock's rule (Mutex and RWMutex: every release;
   * Semaphore: one that grants): a release event if it ends followed waiting, or finds waiting carried with no followed
   * wait left (see src/locks/seam.ts). Returns the event's time (0: not read), or -1 when the release is not an event.
   */
  _releaseEvent(ends: boolean, leaf: string, skip: Method, releaser: Acquisition | null, side: 'read' | 'write' | null, spare = 0): number {
    const event = ends ? this.followed !== 0 || this.carried : this.followed === 0 && this.carried;
    return event ? hooks.releaseEvent(this, leaf, skip, releaser, side, spare) : -1;
  }

  /**
   * @internal Removes w from the queue: granted by the release event at `at` (≥ 0), or by a release that is not an event
   * (-1). Returns the event's time, read here if this is the first followed wait it ends.
   */
  _dequeue(w: Waiter, at: number): number {
    this._unlink(w);
    if (w.times === null) return at;
    if (at < 0) {
      hooks.waitEnded(this, w, false, 0, false, undefined);
      return -1;
    }
    return hooks.waitEnded(this, w, true, at, false, undefined);
  }

  /** @internal Removes w from the queue: it gave up waiting (`reason`), granted nothing. */
  _leave(w: Waiter, reason: unknown): void {
    this._unlink(w);
    if (w.times !== null) hooks.waitEnded(this, w, false, 0, true, reason);
  }

  /** @internal */
  _abort(w: Waiter, l: AbortLink): void {
    const reason: unknown = l.list.signal.reason;
    this._leave(w, reason);
    if (w.acq !== null) hooks.gaveUp(w.acq);
    l.reject(reason);
    this._afterAbort(w);
  }

  /** @internal */
  _alreadyReleased(how: string): Error {
    return new Error(`mutexprof: guard of ${this.describe()} is already released (${how})`);
  }
}

export { newGuard };

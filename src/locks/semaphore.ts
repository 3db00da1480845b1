// Semaphore: weighted, FIFO, as Go's golang.org/x/sync/semaphore. A waiter at the head that needs more permits
// than are free blocks the smaller requests behind it (no starvation of large requests); releases grant waiters
// in order while they fit.
//
// Profiled as the locks are (src/locks/contention.ts): a release that lets waiting end (it grants a waiter) is a
// mutex-profile event charged to the releaser, with the same delay rule, so the mutex = block identity holds;
// waiters are in the block profile; the `lock` label is the semaphore's name.

import { declareLeaf } from '../profile/stack.js';
import { diag, drawHoldSample, type Acquisition } from '../diagnostics/acquisitions.js';
import { taskOfCaller, taskForScope, noteOrder, checkSelf, watchSuspect, resolvedAs } from '../diagnostics/deadlock.js';
import { ProfiledLock } from './contention.js';
import { checkFn, checkLockOptions, checkOptions, describeValue, holding, holdingAs, optionLabels, type Guard, type LockOptions, type MutexOptions } from './options.js';
import type { Task } from '../diagnostics/acquisitions.js';
import { grant, newGuard, type GuardState, type Method, type Waiter } from './waitqueue.js';

const LEAF_ACQUIRE = 'Semaphore.acquire';
const LEAF_RELEASE = 'Semaphore.release';

/** Options of Semaphore.acquire and withPermit. */
export interface AcquireOptions extends LockOptions {
  /** Permits to take (a positive integer, at most the semaphore's permits). Default 1. */
  weight?: number;
}

function checkWeight(method: string, weight: unknown, permits: number): number {
  if (weight === undefined) return 1;
  if (typeof weight !== 'number' || !Number.isSafeInteger(weight) || weight < 1) {
    throw new RangeError(`mutexprof: ${method}: weight must be a positive integer, got ${describeValue(weight)}`);
  }
  if (weight > permits) throw new RangeError(`mutexprof: ${method}: weight ${weight} is more than the semaphore's ${permits} permits: it could never be granted`);
  return weight;
}

export class Semaphore extends ProfiledLock {
  /** The permits the semaphore was made with. */
  readonly permits: number;
  #available: number;

  constructor(permits: number, options?: MutexOptions) {
    if (typeof permits !== 'number' || !Number.isSafeInteger(permits) || permits < 1) {
      throw new RangeError(`mutexprof: new Semaphore(permits): permits must be a positive integer, got ${describeValue(permits)}`);
    }
    super(checkLockOptions(options, 'Semaphore'));
    this.permits = permits;
    this.#available = permits;
  }

  /** Permits free now. */
  get available(): number {
    return this.#available;
  }

  /**
   * Waits for `weight` permits (default 1). Resolves to a guard whose `[Symbol.dispose]()` releases exactly that
   * weight, once: `using _ = await sem.acquire()`. Bad input rejects and changes nothing.
   */
  acquire(options?: AcquireOptions): Promise<Guard> {
    return this.#acquire(options, acquireMethod, null);
  }

  /** acquire(), called through `skip` (stacks start at its caller); `task`: withPermit's. */
  #acquire(options: AcquireOptions | undefined, skip: Method, task: Task | null): Promise<Guard> {
    if (options === undefined && !diag.active) {
      // one permit, no options: take it, or queue for it
      if (this.#available !== 0 && this._head === null) {
        this.#available--;
        return Promise.resolve(newGuard(this, 1, false));
      }
      const p = this._wait(true, undefined, LEAF_ACQUIRE);
      this._tail!._gen = 1;
      return p;
    }
    let weight: number;
    let signal: AbortSignal | undefined;
    let labels;
    try {
      signal = checkOptions(options, 'Semaphore.acquire');
      weight = checkWeight('Semaphore.acquire', options?.weight, this.permits);
      labels = optionLabels(options, 'Semaphore.acquire');
    } catch (e) {
      return Promise.reject(e);
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    let a: Acquisition | null = labels === null ? null : this._labelsOnly(false, labels);
    let suspect: ReturnType<typeof checkSelf>['suspect'] | null = null;
    if (diag.active) {
      const holdWeight = drawHoldSample();
      if (holdWeight !== 0 || diag.recordAll) {
        const t = diag.deadlock !== 0 ? (task ?? taskOfCaller()) : null;
        if (t !== null) {
          noteOrder(t, this, skip);
          // Permits are shared: a wait is stuck for sure only when the task's own permits keep it from ever being
          // granted (a cycle through other holders may break when any of them releases).
          const own = (): number => [...(this._sharedAcqs ?? [])].filter((x) => x.task === t).reduce((n, x) => n + (x.weight ?? 1), 0);
          const mine = own();
          if (mine + weight > this.permits) {
            const what = `acquire() of ${weight} permits of ${this._describe()} in an async context that holds ${mine} of its ${this.permits} (re-entry): it can never be granted`;
            ({ signal, suspect } = checkSelf(t, this, what, skip, signal, () => own() + weight > this.permits));
          }
        }
        a = this._record(false, labels, skip, t, holdWeight, weight, task !== null);
      }
    }
    if (this.#available >= weight && this._head === null) {
      this.#available -= weight;
      const g = newGuard(this, weight, false, a);
      if (a === null) return Promise.resolve(g);
      this._granted(a);
      return a.watch ? resolvedAs(a.task!, g) : Promise.resolve(g);
    }
    if (a !== null && a.task !== null) a.task.waiting = a;
    const p = this._wait(true, signal, LEAF_ACQUIRE, a);
    this._tail!._gen = weight; // the waiter's weight, for the grant
    if (suspect !== null) watchSuspect(suspect, a!);
    return p;
  }

  /** Takes `weight` permits (default 1) if they are free and nobody waits; synchronous. Bad input throws. */
  tryAcquire(weight = 1): boolean {
    const w = checkWeight('Semaphore.tryAcquire', weight, this.permits);
    if (this.#available < w || this._head !== null) return false;
    this.#available -= w;
    if (diag.active) this._tookTracked(false, tryAcquireMethod, w);
    return true;
  }

  /** Releases `weight` permits (default 1), granting waiters in order while they fit. Throws, changing nothing, if fewer are held. */
  release(weight = 1): void {
    // the release first (after its checks): the leaf of its samples points at this line
    this.#release(this.#releasable(weight), undefined, releaseMethod); // without a guard: permits do not say whose they are
  }

  /** `weight`, if that many permits may be released now; else throws, changing nothing. */
  #releasable(weight: unknown): number {
    if (typeof weight !== 'number' || !Number.isSafeInteger(weight) || weight < 1) {
      throw new RangeError(`mutexprof: Semaphore.release: weight must be a positive integer, got ${describeValue(weight)}`);
    }
    const held = this.permits - this.#available;
    if (weight > held) throw new Error(`mutexprof: release of ${weight} permits of ${this._describe()}, which has ${held} held`);
    return weight;
  }

  /** Runs `fn` holding `weight` permits and returns its result; they are released on every exit path. */
  withPermit<T>(fn: () => T | PromiseLike<T>, options?: AcquireOptions): Promise<Awaited<T>> {
    const bad = checkFn('Semaphore.withPermit', fn);
    if (bad !== null) return Promise.reject(bad);
    if (diag.deadlock === 0) return holding(this.acquire(options), fn);
    const task = taskForScope(); // fn runs as the task that holds the permits
    return holdingAs(this.#acquire(options, withPermitMethod, task), fn, task);
  }

  /** `acq`: the guard's record (null: none), or undefined: released without a guard (no labels; see _sharedReleased). */
  #release(weight: number, acq: Acquisition | null | undefined, skip: Method): void {
    this._sharedReleased(acq, weight);
    this.#available += weight;
    const head = this._head;
    // an event when this release lets waiting end (see the top of this file), or carries waiting of aborted waiters
    const grants = head !== null && head._gen <= this.#available;
    const event = grants ? this._timed !== 0 || this._carry !== 0 : this._timed === 0 && this._carry !== 0;
    const at = event ? this._releaseEvent(LEAF_RELEASE, skip, acq == null ? null : acq.own) : 0;
    this.#grantFitting(event, at);
  }

  /** Grants waiters from the head while their weight fits; `event`: by a release event at `at`. */
  #grantFitting(event: boolean, at: number): void {
    for (let w = this._head; w !== null && w._gen <= this.#available; w = this._head) {
      this.#available -= w._gen;
      at = this._dequeue(w, event, at); // every waiter it grants ends its wait at one time
      if (w._acq !== null) this._handOver(w, w._gen);
      else grant(w, w._gen);
    }
  }

  /** @internal */
  _tryTake(): Guard | null {
    return null; // acquire() does its own taking (weights)
  }

  /** @internal */
  _disposeGuard(g: GuardState, skip: Method): void {
    if (g._released) throw this._alreadyReleased(false);
    g._released = true;
    this.#release(g._gen, g._acq, skip);
  }

  /** @internal A waiter at the head gave up: the ones behind it may fit now. */
  override _afterAbort(w: Waiter): void {
    if (w.prev === null) this.#grantFitting(false, 0);
  }

  /** @internal */
  override _alreadyReleased(_read: boolean): Error {
    return new Error(`mutexprof: guard of ${this._describe()} is already released (disposed twice)`);
  }

  /** @internal */
  _describe(): string {
    return this.name ? `Semaphore ${JSON.stringify(this.name)}` : 'Semaphore';
  }

  /** @internal */
  _kind(): string {
    return 'Semaphore';
  }

  /** @internal Permits are shared, whatever the call. */
  override _modeOf(): 'shared' {
    return 'shared';
  }

  /** @internal */
  override _leafFor(): string {
    return LEAF_ACQUIRE;
  }

  /** @internal Permits held without a record (acquired while tracking was off), as one holder. */
  _untracked(): { exclusive: number; shared: number } {
    let tracked = 0;
    if (this._sharedAcqs !== null) for (const a of this._sharedAcqs) tracked += a.weight ?? 1;
    return { exclusive: 0, shared: this.permits - this.#available - tracked > 0 ? 1 : 0 };
  }
}

const acquireMethod = Semaphore.prototype.acquire;
const withPermitMethod = Semaphore.prototype.withPermit;
const tryAcquireMethod = Semaphore.prototype.tryAcquire;
const releaseMethod = Semaphore.prototype.release;
declareLeaf(LEAF_ACQUIRE, acquireMethod);
declareLeaf(LEAF_RELEASE, releaseMethod);

// Semaphore: weighted, FIFO, as Go's golang.org/x/sync/semaphore. A waiter at the head that needs more permits
// than are free blocks the smaller requests behind it (no starvation of large requests); releases grant waiters
// in order while they fit.
//
// Observed as the other locks are (src/locks/seam.ts), with one difference: a release ends waiting only when it
// grants a waiter, so only such a release is a release event (the mutex profile charges it with the same delay rule,
// and the mutex = block identity holds). Every acquisition is shared and weighs its permits.

import { Lock } from './lock.js';
import { checkFn, checkLockOptions, describeValue, holding, holdingIn, type Guard, type LockOptions, type MutexOptions } from './options.js';
import { declareLeaf, hooks, observing, type Acquisition, type Method, type Scope } from './seam.js';
import { newGuard, type GuardState, type Waiter } from './waitqueue.js';

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

export class Semaphore extends Lock {
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
    if (options === undefined && !observing.acquisitions) {
      if (this.#available !== 0 && this._head === null) {
        this.#available--;
        return Promise.resolve(newGuard(this, 0, 'shared', 1, null));
      }
      return this._wait('shared', 1, undefined, null, acquireMethod, LEAF_ACQUIRE);
    }
    return this.#acquire(options, 'Semaphore.acquire', acquireMethod, null);
  }

  /** acquire() past its fast path, called through `skip`; `scope`: withPermit's. */
  #acquire(options: AcquireOptions | undefined, method: string, skip: Method, scope: Scope | null): Promise<Guard> {
    let weight: number;
    try {
      weight = checkWeight(method, options?.weight, this.permits);
    } catch (e) {
      return Promise.reject(e);
    }
    return this._acquire('shared', weight, options, method, skip, LEAF_ACQUIRE, scope);
  }

  /** Takes `weight` permits (default 1) if they are free and nobody waits; synchronous. Bad input throws. */
  tryAcquire(weight = 1): boolean {
    const w = checkWeight('Semaphore.tryAcquire', weight, this.permits);
    if (this._take('shared', w, null) === null) return false;
    if (observing.acquisitions) this._tookObserved('shared', w, tryAcquireMethod);
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
    if (weight > held) throw new Error(`mutexprof: release of ${weight} permits of ${this.describe()}, which has ${held} held`);
    return weight;
  }

  /** Runs `fn` holding `weight` permits and returns its result; they are released on every exit path. */
  withPermit<T>(fn: () => T | PromiseLike<T>, options?: AcquireOptions): Promise<Awaited<T>> {
    const bad = checkFn('Semaphore.withPermit', fn);
    if (bad !== null) return Promise.reject(bad);
    if (!observing.scopes) return holding(this.acquire(options), fn);
    const scope = hooks.openScope(); // fn runs as the flow that holds the permits
    return holdingIn(this.#acquire(options, 'Semaphore.withPermit', withPermitMethod, scope), fn, scope);
  }

  /** A release of `weight` permits through a guard whose record is `record` (null: none), or without one (undefined). */
  #release(weight: number, record: Acquisition | null | undefined, skip: Method): void {
    const releaser = record === null ? null : hooks.sharedReleased(this, record, weight);
    this.#available += weight;
    const head = this._head;
    const at = this.followed === 0 && !this.carried ? -1 : this._releaseEvent(head !== null && head.weight <= this.#available, LEAF_RELEASE, skip, releaser, null);
    this.#grantFitting(at);
  }

  /** Grants waiters from the head while their weight fits, by the release event at `at` (-1: none). */
  #grantFitting(at: number): void {
    for (let w = this._head; w !== null && w.weight <= this.#available; w = this._head) {
      this.#available -= w.weight;
      at = this._dequeue(w, at); // every waiter it grants ends its wait at one time
      this._grant(w, 0);
    }
  }

  /** @internal */
  _take(_mode: 'shared', weight: number, acq: Acquisition | null): GuardState | null {
    if (this.#available < weight || this._head !== null) return null;
    this.#available -= weight;
    return newGuard(this, 0, 'shared', weight, acq);
  }

  /** @internal */
  _disposeGuard(g: GuardState, skip: Method): void {
    if (g.released) throw this._alreadyReleased('disposed twice');
    g.released = true;
    this.#release(g.weight, g.acq, skip);
  }

  /** @internal A waiter at the head gave up: the ones behind it may fit now. */
  override _afterAbort(w: Waiter): void {
    if (w.prev === null) this.#grantFitting(-1);
  }

  /** @internal */
  get kind(): string {
    return 'Semaphore';
  }

  /** @internal */
  override leafFor(): string {
    return LEAF_ACQUIRE;
  }

  /** @internal Permits held: a Semaphore does not know by whom. */
  holding(): { exclusive: number; shared: number } {
    return { exclusive: 0, shared: this.permits - this.#available };
  }
}

const acquireMethod = Semaphore.prototype.acquire;
const withPermitMethod = Semaphore.prototype.withPermit;
const tryAcquireMethod = Semaphore.prototype.tryAcquire;
const releaseMethod = Semaphore.prototype.release;
declareLeaf(LEAF_ACQUIRE, acquireMethod);
declareLeaf(LEAF_RELEASE, releaseMethod);

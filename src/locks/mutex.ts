// Mutex: an async, FIFO, abortable mutual-exclusion lock with direct hand-off.
//
// unlock() hands the lock to the head waiter synchronously (it stays locked across the hand-off), so nobody can
// barge in between: tryLock() fails while anyone waits, and waiters are granted in the order lock() was called.

import { Lock } from './lock.js';
import { checkFn, checkLockOptions, holding, holdingIn, type Guard, type LockOptions, type MutexOptions } from './options.js';
import { declareLeaf, hooks, observing, type Acquisition, type LockMode, type Method } from './seam.js';
import { newGuard, type GuardState } from './waitqueue.js';

export class Mutex extends Lock {
  /**
   * One word for the lock, as Go's sync.Mutex: odd while held. Every acquisition and every release adds one, so
   * each acquisition has its own value; its guard carries it and is stale once the state has moved on. A hand-off
   * adds two at once (release + acquisition: the lock never looks free). Int32 arithmetic keeps parity on wrap.
   */
  #state = 0;

  constructor(options?: MutexOptions) {
    super(checkLockOptions(options, 'Mutex'));
  }

  /** True while somebody holds the lock. */
  get locked(): boolean {
    return (this.#state & 1) === 1;
  }

  /**
   * Waits for the lock. Resolves to a guard whose `[Symbol.dispose]()` unlocks:
   * `using _ = await mu.lock()`; or release Go style with `mu.unlock()`.
   */
  lock(options?: LockOptions): Promise<Guard> {
    if (options !== undefined || observing.acquisitions) return this._acquire('exclusive', 1, options, 'Mutex.lock', lockMethod, this._leafLock, null);
    const s = this.#state;
    if ((s & 1) === 1) return this._wait('exclusive', 1, undefined, null, lockMethod, this._leafLock);
    this.#state = s + 1;
    return Promise.resolve(newGuard(this, s + 1, 'exclusive', 1, null));
  }

  /** Takes the lock if it is free (hence nobody waits); synchronous. */
  tryLock(): boolean {
    const s = this.#state;
    if ((s & 1) === 1) return false;
    this.#state = s + 1;
    if (observing.acquisitions) this._tookObserved('exclusive', 1, tryLockMethod);
    return true;
  }

  /** Releases the lock, handing it to the next waiter if any. Throws if the lock is not held. */
  unlock(): void {
    this._unlock(unlockMethod);
  }

  /** Runs `fn` holding the lock and returns its result; the lock is released on every exit path. */
  withLock<T>(fn: () => T | PromiseLike<T>, options?: LockOptions): Promise<Awaited<T>> {
    const bad = checkFn('Mutex.withLock', fn);
    if (bad !== null) return Promise.reject(bad);
    if (!observing.scopes) return holding(this.lock(options), fn);
    const scope = hooks.openScope(); // fn runs as the flow that holds the lock
    return holdingIn(this._acquire('exclusive', 1, options, 'Mutex.withLock', withLockMethod, this._leafLock, scope), fn, scope);
  }

  /** @internal The release, called through `skip` (unlock, a guard's dispose, withLock's helper). */
  _unlock(skip: Method): void {
    const s = this.#state;
    if ((s & 1) === 0) throw new Error(`mutexprof: unlock of unlocked ${this.describe()}`);
    const w = this._head;
    const releaser = this.holder === null ? null : this._releaseHolder();
    const at = this.followed === 0 && !this.carried ? -1 : this._releaseEvent(true, this._leafUnlock, skip, releaser, null);
    if (w === null) {
      this.#state = (s + 1) | 0;
      return;
    }
    this._dequeue(w, at);
    this.#state = (s + 2) | 0;
    this._grant(w, this.#state);
  }

  /** @internal */
  _take(_mode: LockMode, _weight: number, acq: Acquisition | null): GuardState | null {
    const s = this.#state;
    if ((s & 1) === 1) return null;
    this.#state = s + 1;
    this.holder = acq; // its release is recorded with its labels, even by unlock()
    return newGuard(this, s + 1, 'exclusive', 1, acq);
  }

  /** @internal */
  _disposeGuard(g: GuardState, skip: Method): void {
    if (g.gen !== this.#state) throw this._alreadyReleased('disposed twice, or released by unlock()');
    this._unlock(skip);
  }

  /** @internal */
  get kind(): string {
    return 'Mutex';
  }

  /** @internal the leaves of lock() and unlock() (a KeyedMutex's key mutexes name the KeyedMutex's) */
  get _leafLock(): string {
    return LEAF_LOCK;
  }
  /** @internal */
  get _leafUnlock(): string {
    return LEAF_UNLOCK;
  }

  /** @internal */
  holding(): { exclusive: number; shared: number } {
    return { exclusive: this.#state & 1, shared: 0 };
  }
}

const LEAF_LOCK = 'Mutex.lock';
const LEAF_UNLOCK = 'Mutex.unlock';
const lockMethod = Mutex.prototype.lock;
const tryLockMethod = Mutex.prototype.tryLock;
const withLockMethod = Mutex.prototype.withLock;
const unlockMethod = Mutex.prototype.unlock;
declareLeaf(LEAF_LOCK, lockMethod);
declareLeaf(LEAF_UNLOCK, unlockMethod);

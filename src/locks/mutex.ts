// Mutex: an async, FIFO, abortable mutual-exclusion lock with direct hand-off.
//
// unlock() hands the lock to the head waiter synchronously (it stays locked across the hand-off), so nobody can
// barge in between: tryLock() fails while anyone waits, and waiters are granted in the order lock() was called.

import { declareLeaf } from '../profile/stack.js';
import { diag, type Acquisition } from '../diagnostics/acquisitions.js';
import { taskForScope } from '../diagnostics/deadlock.js';
import { ProfiledLock } from './contention.js';
import { checkFn, checkLockOptions, holding, holdingAs, type Guard, type LockOptions, type MutexOptions } from './options.js';
import { grant, newGuard, type GuardState, type Method } from './waitqueue.js';

const LEAF_UNLOCK = 'Mutex.unlock';
const LEAF_LOCK = 'Mutex.lock';

export class Mutex extends ProfiledLock {
  /** @internal the leaves of this lock's samples (a KeyedMutex's key mutexes name their own) */
  readonly _leafLock: string = LEAF_LOCK;
  /** @internal */ readonly _leafUnlock: string = LEAF_UNLOCK;
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
    if (options !== undefined || diag.active) return this._lockSlow(options, 'Mutex.lock', true, this._leafLock, lockMethod);
    const s = this.#state;
    if ((s & 1) === 1) return this._wait(true, undefined, this._leafLock);
    this.#state = s + 1;
    return Promise.resolve(newGuard(this, s + 1, false));
  }

  /** Takes the lock if it is free and nobody waits; synchronous. */
  tryLock(): boolean {
    const s = this.#state;
    if ((s & 1) === 1) return false; // held, hence also nobody can be waiting for a free lock
    this.#state = s + 1;
    if (diag.active) this._tookTracked(true, tryLockMethod);
    return true;
  }

  /** Releases the lock, handing it to the next waiter if any. Throws if the lock is not held. */
  unlock(): void {
    this._unlock(unlockMethod);
  }

  /** @internal unlock(), called through `skip`: the outermost mutexprof function on the stack (stacks start below it). */
  _unlock(skip: Method): void {
    const s = this.#state;
    if ((s & 1) === 0) throw new Error(`mutexprof: unlock of unlocked ${this._describe()}`);
    const held = this._acq;
    if (held !== null) this._releasedAcq(held);
    // a release event for the profiles only when counted waiting ends here (see src/locks/contention.ts)
    const event = this._timed !== 0 || this._carry !== 0;
    const at = event ? this._releaseEvent(this._leafUnlock, skip, held === null ? null : held.own) : 0;
    const w = this._head;
    if (w === null) {
      this.#state = (s + 1) | 0;
      return;
    }
    this._dequeue(w, event, at);
    this.#state = (s + 2) | 0;
    if (w._acq !== null) this._handOver(w, this.#state);
    else grant(w, this.#state);
  }

  /** Runs `fn` holding the lock and returns its result; the lock is released on every exit path. */
  withLock<T>(fn: () => T | PromiseLike<T>, options?: LockOptions): Promise<Awaited<T>> {
    const bad = checkFn('Mutex.withLock', fn);
    if (bad !== null) return Promise.reject(bad);
    if (diag.deadlock === 0) return holding(this.lock(options), fn);
    const task = taskForScope(); // fn runs as the task that holds the lock
    return holdingAs(this._lockSlow(options, 'Mutex.withLock', true, this._leafLock, withLockMethod, task), fn, task);
  }

  /** @internal */
  _tryTake(_write: boolean, acq: Acquisition | null): Guard | null {
    const s = this.#state;
    if ((s & 1) === 1) return null;
    this.#state = s + 1;
    if (acq !== null) this._acq = acq; // its release is recorded with its labels, even by unlock()
    return newGuard(this, s + 1, false, acq);
  }

  /** @internal */
  _disposeGuard(g: GuardState, skip: Method): void {
    if (g._gen !== this.#state) throw this._alreadyReleased(false);
    this._unlock(skip);
  }

  /** @internal */
  _describe(): string {
    return this.name ? `Mutex ${JSON.stringify(this.name)}` : 'Mutex';
  }

  /** @internal */
  _kind(): string {
    return 'Mutex';
  }

  /** @internal */
  _untracked(): { exclusive: number; shared: number } {
    return { exclusive: (this.#state & 1) === 1 && (this._acq === null || !this._acq.tracked) ? 1 : 0, shared: 0 };
  }
}

const lockMethod = Mutex.prototype.lock;
const tryLockMethod = Mutex.prototype.tryLock;
const withLockMethod = Mutex.prototype.withLock;
const unlockMethod = Mutex.prototype.unlock;
declareLeaf(LEAF_LOCK, lockMethod);
declareLeaf(LEAF_UNLOCK, unlockMethod);

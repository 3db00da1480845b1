// Mutex: an async, FIFO, abortable mutual-exclusion lock with direct hand-off.
//
// unlock() hands the lock to the head waiter synchronously (it stays locked across the hand-off), so nobody can
// barge in between: tryLock() fails while anyone waits, and waiters are granted in the order lock() was called.

import { WaitQueue, grant, newGuard, checkFn, holding, type Guard, type GuardState, type LockOptions, type MutexOptions, type Waiter } from './waitqueue.js';

const LEAF_UNLOCK = 'Mutex.unlock';
const LEAF_LOCK = 'Mutex.lock';

export class Mutex extends WaitQueue {
  #locked = false;
  /** release generation: the current acquisition's guard carries it; every release bumps it */
  #gen = 0;

  constructor(options?: MutexOptions) {
    super(options, 'Mutex');
  }

  /** True while somebody holds the lock. */
  get locked(): boolean {
    return this.#locked;
  }

  /**
   * Waits for the lock. Resolves to a guard whose `[Symbol.dispose]()` unlocks:
   * `using _ = await mu.lock()`; or release Go style with `mu.unlock()`.
   */
  lock(options?: LockOptions): Promise<Guard> {
    if (options !== undefined) return this._lockSlow(options, 'Mutex.lock', true, LEAF_LOCK);
    if (this.#locked) return this._wait(true, undefined, LEAF_LOCK);
    this.#locked = true;
    return Promise.resolve(newGuard(this, this.#gen, false));
  }

  /** Takes the lock if it is free and nobody waits; synchronous. */
  tryLock(): boolean {
    if (this.#locked) return false;
    this.#locked = true;
    return true;
  }

  /** Releases the lock, handing it to the next waiter if any. Throws if the lock is not held. */
  unlock(): void {
    if (!this.#locked) throw new Error(`mutexprof: unlock of unlocked ${this._describe()}`);
    this.#gen = (this.#gen + 1) | 0;
    if (this._timed !== 0 || this._carry !== 0) return this.#unlockEvent();
    // profiling off, or no counted waiter: hand the lock to the head waiter, if any
    const w = this._head;
    if (w === null) {
      this.#locked = false;
      return;
    }
    const next = w.next;
    this._head = next;
    if (next === null) this._tail = null;
    else {
      next.prev = null;
      w.next = null;
    }
    this._size--;
    if (w.abort !== null) this._dropAbort(w);
    grant(w, this.#gen);
  }

  /** A release that ends waiting the profiles count (see src/waitqueue.ts). */
  #unlockEvent(): void {
    const at = this._releaseEvent(LEAF_UNLOCK);
    const w = this._head;
    if (w === null) {
      this.#locked = false;
      return;
    }
    this._dequeue(w, true, at);
    grant(w, this.#gen);
  }

  /** Runs `fn` holding the lock and returns its result; the lock is released on every exit path. */
  withLock<T>(fn: () => T | PromiseLike<T>, options?: LockOptions): Promise<Awaited<T>> {
    const bad = checkFn('Mutex.withLock', fn);
    return bad === null ? holding(this.lock(options), fn) : Promise.reject(bad);
  }

  /** @internal */
  _tryTake(_write: boolean): Guard | null {
    if (this.#locked) return null;
    this.#locked = true;
    return newGuard(this, this.#gen, false);
  }

  /** @internal */
  _disposeGuard(g: GuardState): void {
    if (!this.#locked || g._gen !== this.#gen) throw this._alreadyReleased(false);
    this.unlock();
  }

  /** @internal */
  _describe(): string {
    return this.name ? `Mutex ${JSON.stringify(this.name)}` : 'Mutex';
  }
}

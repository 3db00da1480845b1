// Mutex: an async, FIFO, abortable mutual-exclusion lock with direct hand-off.
//
// unlock() hands the lock to the head waiter synchronously (it stays locked across the hand-off), so nobody can
// barge in between: tryLock() fails while anyone waits, and waiters are granted in the order lock() was called.

import { Guard, WaitQueue, checkOptions, type LockOptions, type MutexOptions, type Waiter } from './waitqueue.js';

const LEAF_UNLOCK = 'Mutex.unlock';
const LEAF_LOCK = 'Mutex.lock';

export class Mutex extends WaitQueue {
  #locked = false;
  /** the guard of the current acquisition; null when unlocked or taken by tryLock() */
  #holder: Guard | null = null;

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
    let signal: AbortSignal | undefined;
    try {
      signal = checkOptions(options, 'Mutex.lock');
    } catch (e) {
      return Promise.reject(e);
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (!this.#locked) {
      this.#locked = true;
      return Promise.resolve((this.#holder = new Guard(this, false)));
    }
    return this._wait(false, signal, LEAF_LOCK);
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
    const g = this.#holder;
    if (g !== null) {
      g._released = true;
      this.#holder = null;
    }
    const at = this._releaseEvent(LEAF_UNLOCK);
    const w = this._head;
    if (w === null) {
      this.#locked = false;
      return;
    }
    this._dequeue(w, at);
    this._grant(w);
  }

  /** Runs `fn` holding the lock and returns its result; the lock is released on every exit path. */
  async withLock<T>(fn: () => T | PromiseLike<T>, options?: LockOptions): Promise<Awaited<T>> {
    if (typeof fn !== 'function') throw new TypeError(`mutexprof: Mutex.withLock(fn): fn must be a function, got ${typeof fn}`);
    const g = await this.lock(options);
    try {
      return await fn();
    } finally {
      g[Symbol.dispose]();
    }
  }

  /** @internal */
  _grant(w: Waiter): void {
    w.resolve((this.#holder = new Guard(this, false)));
  }

  /** @internal */
  _releaseGuard(_g: Guard): void {
    this.unlock(); // an unreleased guard is always the current holder's
  }

  /** @internal */
  _describe(): string {
    return this.name ? `Mutex ${JSON.stringify(this.name)}` : 'Mutex';
  }
}

// RWMutex: readers share, a writer is exclusive, as Go's sync.RWMutex.
//
// One FIFO queue holds both kinds. Once anyone waits (in practice a writer: readers only queue behind one),
// new rLock() calls queue too, so writers never starve. A writer's unlock admits the head writer, or else every
// reader queued ahead of the next writer, together. The last reader's rUnlock admits the head writer.

import { Lock } from './lock.js';
import { checkFn, checkLockOptions, holding, holdingIn, type Guard, type LockOptions, type MutexOptions } from './options.js';
import { declareLeaf, hooks, observing, type Acquisition, type LockMode, type Method } from './seam.js';
import { newGuard, type GuardState, type Waiter } from './waitqueue.js';

export class RWMutex extends Lock {
  #writer = false;
  #readers = 0;
  /** the writers' generation: bumped by every write release (a write guard carries the one it was granted in) */
  #gen = 0;
  /** the read session: bumped whenever the reader count drops to zero (a read guard carries the one it joined) */
  #session = 0;

  constructor(options?: MutexOptions) {
    super(checkLockOptions(options, 'RWMutex'));
  }

  /** True while a writer holds the lock. */
  get locked(): boolean {
    return this.#writer;
  }

  /** Number of readers holding the lock. */
  get readers(): number {
    return this.#readers;
  }

  /** Waits for the write lock. */
  lock(options?: LockOptions): Promise<Guard> {
    if (options === undefined && !observing.acquisitions && !this.#writer && this.#readers === 0 && this._head === null) {
      this.#writer = true;
      return Promise.resolve(newGuard(this, this.#gen, 'exclusive', 1, null));
    }
    return this._acquire('exclusive', 1, options, 'RWMutex.lock', lockMethod, LEAF_LOCK, null);
  }

  /** Waits for a read lock. */
  rLock(options?: LockOptions): Promise<Guard> {
    if (options === undefined && !observing.acquisitions && !this.#writer && this._head === null) {
      this.#readers++;
      return Promise.resolve(newGuard(this, this.#session, 'shared', 1, null));
    }
    return this._acquire('shared', 1, options, 'RWMutex.rLock', rLockMethod, LEAF_RLOCK, null);
  }

  /** Takes the write lock if it is free and nobody waits; synchronous. */
  tryLock(): boolean {
    if (this._take('exclusive', 1, null) === null) return false;
    if (observing.acquisitions) this._tookObserved('exclusive', 1, tryLockMethod);
    return true;
  }

  /** Takes a read lock if no writer holds or waits; synchronous. */
  tryRLock(): boolean {
    if (this._take('shared', 1, null) === null) return false;
    if (observing.acquisitions) this._tookObserved('shared', 1, tryRLockMethod);
    return true;
  }

  /** Releases the write lock. Throws if no writer holds it (including when it is read-locked). */
  unlock(): void {
    this.#unlock(unlockMethod);
  }

  /** Releases one read lock. Throws if no reader holds the lock. */
  rUnlock(): void {
    if (this.#readers === 0) {
      throw new Error(this.#writer ? `mutexprof: rUnlock of ${this.describe()} that is write-locked (the writer releases with unlock)` : `mutexprof: rUnlock of ${this.describe()} with no reader`);
    }
    this.#rUnlock(undefined, rUnlockMethod); // without a guard: readers share one count (see hooks.sharedReleased)
  }

  /** Runs `fn` holding the write lock; released on every exit path. */
  withLock<T>(fn: () => T | PromiseLike<T>, options?: LockOptions): Promise<Awaited<T>> {
    const bad = checkFn('RWMutex.withLock', fn);
    if (bad !== null) return Promise.reject(bad);
    if (!observing.scopes) return holding(this.lock(options), fn);
    const scope = hooks.openScope();
    return holdingIn(this._acquire('exclusive', 1, options, 'RWMutex.withLock', withLockMethod, LEAF_LOCK, scope), fn, scope);
  }

  /** Runs `fn` holding a read lock; released on every exit path. */
  withRLock<T>(fn: () => T | PromiseLike<T>, options?: LockOptions): Promise<Awaited<T>> {
    const bad = checkFn('RWMutex.withRLock', fn);
    if (bad !== null) return Promise.reject(bad);
    if (!observing.scopes) return holding(this.rLock(options), fn);
    const scope = hooks.openScope();
    return holdingIn(this._acquire('shared', 1, options, 'RWMutex.withRLock', withRLockMethod, LEAF_RLOCK, scope), fn, scope);
  }

  /** The write release, called through `skip`. */
  #unlock(skip: Method): void {
    if (!this.#writer) {
      throw new Error(this.#readers !== 0 ? `mutexprof: unlock of ${this.describe()} that is read-locked (readers release with rUnlock)` : `mutexprof: unlock of unlocked ${this.describe()}`);
    }
    const releaser = this.holder === null ? null : this._releaseHolder();
    const at = this.followed === 0 && !this.carried ? -1 : this._releaseEvent(true, LEAF_UNLOCK, skip, releaser, 'write');
    this.#gen = (this.#gen + 1) | 0;
    this.#writer = false;
    this.#admit(at);
  }

  /** A read release, through a guard whose record is `record` (null: none), or without one (undefined); called through `skip`. */
  #rUnlock(record: Acquisition | null | undefined, skip: Method): void {
    if (--this.#readers === 0) this.#session = (this.#session + 1) | 0;
    const releaser = record === null ? null : hooks.sharedReleased(this, record, 1);
    const at = this.followed === 0 && !this.carried ? -1 : this._releaseEvent(true, LEAF_RUNLOCK, skip, releaser, 'read');
    if (this.#readers === 0) this.#admit(at);
  }

  /** Admits the head writer, or every reader ahead of the next writer, by the release event at `at` (-1: none). */
  #admit(at: number): void {
    let w = this._head;
    if (w === null || this.#writer) return;
    if (w.mode === 'exclusive') {
      if (this.#readers !== 0) return;
      this._dequeue(w, at);
      this.#writer = true;
      this._grant(w, this.#gen);
      return;
    }
    while (w !== null && w.mode === 'shared') {
      const next: Waiter | null = w.next;
      at = this._dequeue(w, at); // every reader it admits ends its wait at one time
      this.#readers++;
      this._grant(w, this.#session);
      w = next;
    }
  }

  /** @internal */
  _take(mode: LockMode, _weight: number, acq: Acquisition | null): GuardState | null {
    if (this.#writer || this._head !== null) return null;
    if (mode === 'exclusive') {
      if (this.#readers !== 0) return null;
      this.#writer = true;
      this.holder = acq; // its release is recorded with its labels, even by unlock()
      return newGuard(this, this.#gen, 'exclusive', 1, acq);
    }
    this.#readers++;
    return newGuard(this, this.#session, 'shared', 1, acq);
  }

  /** @internal */
  _disposeGuard(g: GuardState, skip: Method): void {
    if (g.mode === 'exclusive') {
      if (!this.#writer || g.gen !== this.#gen) throw this._alreadyReleased('disposed twice, or released by unlock()');
      return this.#unlock(skip);
    }
    // Readers share one count, so a guard can only prove it is not stale: not disposed before, and its read
    // session still running (else its acquisition was released by rUnlock() and a later reader's is not its).
    if (g.released || this.#readers === 0 || g.gen !== this.#session) throw this._alreadyReleased('disposed twice, or released by rUnlock()');
    g.released = true;
    this.#rUnlock(g.acq, skip);
  }

  /** @internal A queued writer gave up: readers queued behind it may be able to join the current ones. */
  override _afterAbort(w: Waiter): void {
    if (w.mode === 'exclusive' && this._head !== null && this._head.mode === 'shared') this.#admit(-1);
  }

  /** @internal */
  get kind(): string {
    return 'RWMutex';
  }

  /** @internal */
  override get sides(): boolean {
    return true;
  }

  /** @internal */
  holding(): { exclusive: number; shared: number } {
    return { exclusive: this.#writer ? 1 : 0, shared: this.#readers };
  }
}

const LEAF_LOCK = 'RWMutex.lock';
const LEAF_RLOCK = 'RWMutex.rLock';
const LEAF_UNLOCK = 'RWMutex.unlock';
const LEAF_RUNLOCK = 'RWMutex.rUnlock';
const lockMethod = RWMutex.prototype.lock;
const rLockMethod = RWMutex.prototype.rLock;
const tryLockMethod = RWMutex.prototype.tryLock;
const tryRLockMethod = RWMutex.prototype.tryRLock;
const withLockMethod = RWMutex.prototype.withLock;
const withRLockMethod = RWMutex.prototype.withRLock;
const unlockMethod = RWMutex.prototype.unlock;
const rUnlockMethod = RWMutex.prototype.rUnlock;
declareLeaf(LEAF_LOCK, lockMethod);
declareLeaf(LEAF_RLOCK, rLockMethod);
declareLeaf(LEAF_UNLOCK, unlockMethod);
declareLeaf(LEAF_RUNLOCK, rUnlockMethod);

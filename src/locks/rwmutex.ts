// RWMutex: readers share, a writer is exclusive, as Go's sync.RWMutex.
//
// One FIFO queue holds both kinds. Once anyone waits (in practice a writer: readers only queue behind one),
// new rLock() calls queue too, so writers never starve. A writer's unlock admits the head writer, or else every
// reader queued ahead of the next writer, together. The last reader's rUnlock admits the head writer.

import { declareLeaf } from '../profile/stack.js';
import { diag, type Acquisition } from '../diagnostics/acquisitions.js';
import { taskForScope } from '../diagnostics/deadlock.js';
import { ProfiledLock } from './contention.js';
import { checkFn, checkLockOptions, holding, holdingAs, type Guard, type LockOptions, type MutexOptions } from './options.js';
import { grant, newGuard, type GuardState, type Method, type Waiter } from './waitqueue.js';

const LEAF_UNLOCK = 'RWMutex.unlock';
const LEAF_RUNLOCK = 'RWMutex.rUnlock';
const LEAF_LOCK = 'RWMutex.lock';
const LEAF_RLOCK = 'RWMutex.rLock';

export class RWMutex extends ProfiledLock {
  /** @internal samples carry mode=read|write */ override readonly _sides: boolean = true;
  #writer = false;
  #readers = 0;
  /** writer release generation, as Mutex's */
  #gen = 0;
  /** read session: bumped whenever the reader count drops to zero; a read guard carries the one it joined */
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
    if (options === undefined && !diag.active && !this.#writer && this.#readers === 0 && this._head === null) {
      this.#writer = true;
      return Promise.resolve(newGuard(this, this.#gen, false));
    }
    return this._lockSlow(options, 'RWMutex.lock', true, LEAF_LOCK, lockMethod);
  }

  /** Waits for a read lock. */
  rLock(options?: LockOptions): Promise<Guard> {
    if (options === undefined && !diag.active && !this.#writer && this._head === null) {
      this.#readers++;
      return Promise.resolve(newGuard(this, this.#session, true));
    }
    return this._lockSlow(options, 'RWMutex.rLock', false, LEAF_RLOCK, rLockMethod);
  }

  /** Takes the write lock if it is free and nobody waits; synchronous. */
  tryLock(): boolean {
    if (this.#writer || this.#readers !== 0 || this._head !== null) return false;
    this.#writer = true;
    if (diag.active) this._tookTracked(true, tryLockMethod);
    return true;
  }

  /** Takes a read lock if no writer holds or waits; synchronous. */
  tryRLock(): boolean {
    if (this.#writer || this._head !== null) return false;
    this.#readers++;
    if (diag.active) this._tookTracked(false, tryRLockMethod);
    return true;
  }

  /** Releases the write lock. Throws if no writer holds it (including when it is read-locked). */
  unlock(): void {
    this.#unlock(unlockMethod);
  }

  /** unlock(), called through `skip`: the outermost mutexprof function on the stack (stacks start below it). */
  #unlock(skip: Method): void {
    if (!this.#writer) {
      throw new Error(this.#readers !== 0 ? `mutexprof: unlock of ${this._describe()} that is read-locked (readers release with rUnlock)` : `mutexprof: unlock of unlocked ${this._describe()}`);
    }
    const held = this._acq;
    if (held !== null) this._releasedAcq(held);
    const event = this._timed !== 0 || this._carry !== 0;
    const at = event ? this._releaseEvent(LEAF_UNLOCK, skip, held === null ? null : held.own, 'write') : 0;
    this.#gen = (this.#gen + 1) | 0;
    this.#writer = false;
    this.#admit(event, at);
  }

  /** Releases one read lock. Throws if no reader holds the lock. */
  rUnlock(): void {
    if (this.#readers === 0) {
      throw new Error(this.#writer ? `mutexprof: rUnlock of ${this._describe()} that is write-locked (the writer releases with unlock)` : `mutexprof: rUnlock of ${this._describe()} with no reader`);
    }
    // a reader released without its guard: the oldest tracked reader's record ends (readers share one count)
    this._readUnlocked(undefined, rUnlockMethod);
  }

  /** Runs `fn` holding the write lock; released on every exit path. */
  withLock<T>(fn: () => T | PromiseLike<T>, options?: LockOptions): Promise<Awaited<T>> {
    const bad = checkFn('RWMutex.withLock', fn);
    if (bad !== null) return Promise.reject(bad);
    if (diag.deadlock === 0) return holding(this.lock(options), fn);
    const task = taskForScope(); // fn runs as the task that holds the lock
    return holdingAs(this._lockSlow(options, 'RWMutex.withLock', true, LEAF_LOCK, withLockMethod, task), fn, task);
  }

  /** Runs `fn` holding a read lock; released on every exit path. */
  withRLock<T>(fn: () => T | PromiseLike<T>, options?: LockOptions): Promise<Awaited<T>> {
    const bad = checkFn('RWMutex.withRLock', fn);
    if (bad !== null) return Promise.reject(bad);
    if (diag.deadlock === 0) return holding(this.rLock(options), fn);
    const task = taskForScope();
    return holdingAs(this._lockSlow(options, 'RWMutex.withRLock', false, LEAF_RLOCK, withRLockMethod, task), fn, task);
  }

  /** @internal */
  _tryTake(write: boolean, acq: Acquisition | null): Guard | null {
    if (this.#writer || this._head !== null) return null;
    if (write) {
      if (this.#readers !== 0) return null;
      this.#writer = true;
      if (acq !== null) this._acq = acq; // its release is recorded with its labels, even by unlock()
      return newGuard(this, this.#gen, false, acq);
    }
    this.#readers++;
    return newGuard(this, this.#session, true, acq);
  }

  /**
   * @internal One reader releases: through its guard, whose record is `acq` (null: none), or without one (`acq`
   * undefined: rUnlock(), which carries no labels); `skip`: the outermost mutexprof function on the stack.
   */
  _readUnlocked(acq: Acquisition | null | undefined, skip: Method): void {
    if (--this.#readers === 0) this.#session = (this.#session + 1) | 0;
    this._sharedReleased(acq, 1);
    const event = this._timed !== 0 || this._carry !== 0;
    const at = event ? this._releaseEvent(LEAF_RUNLOCK, skip, acq == null ? null : acq.own, 'read') : 0;
    if (this.#readers === 0) this.#admit(event, at);
  }

  /** Admits the head writer, or every reader ahead of the next writer; `event`: by a release event at `at`. */
  #admit(event: boolean, at: number): void {
    let w = this._head;
    if (w === null || this.#writer) return;
    if (!w._read) {
      if (this.#readers !== 0) return;
      this._dequeue(w, event, at);
      this.#grant(w);
      return;
    }
    while (w !== null && w._read) {
      const next: Waiter | null = w.next;
      at = this._dequeue(w, event, at); // every reader it admits ends its wait at one time
      this.#grant(w);
      w = next;
    }
  }

  #grant(w: Waiter): void {
    let gen: number;
    if (!w._read) {
      this.#writer = true;
      gen = this.#gen;
    } else {
      this.#readers++;
      gen = this.#session;
    }
    if (w._acq !== null) this._handOver(w, gen);
    else grant(w, gen);
  }

  /** @internal */
  _disposeGuard(g: GuardState, skip: Method): void {
    if (!g._read) {
      if (!this.#writer || g._gen !== this.#gen) throw this._alreadyReleased(false);
      return this.#unlock(skip);
    }
    // Readers share one count, so a guard can only prove it is not stale: not disposed before, and its read
    // session still running (else its acquisition was released by rUnlock() and a later reader's is not its).
    if (g._released || this.#readers === 0 || g._gen !== this.#session) throw this._alreadyReleased(true);
    g._released = true;
    this._readUnlocked(g._acq, skip);
  }

  /** @internal A queued writer gave up: readers queued behind it may be able to join the current ones. */
  override _afterAbort(w: Waiter): void {
    if (!w._read && this._head !== null && this._head._read) this.#admit(false, 0);
  }

  /** @internal */
  _describe(): string {
    return this.name ? `RWMutex ${JSON.stringify(this.name)}` : 'RWMutex';
  }

  /** @internal */
  _kind(): string {
    return 'RWMutex';
  }

  /** @internal */
  _untracked(): { exclusive: number; shared: number } {
    return { exclusive: this.#writer && (this._acq === null || !this._acq.tracked) ? 1 : 0, shared: this.#readers - (this._sharedAcqs?.size ?? 0) };
  }
}

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

// mutexprof/async-mutex: async-mutex 0.5's API on mutexprof's locks. Replace `from 'async-mutex'` by
// `from 'mutexprof/async-mutex'`: behaviour stays async-mutex's (priorities, weights, setValue, a release() of an
// unlocked Mutex that does nothing, cancel() rejecting every waiter, withTimeout and tryAcquire leaving a timed-out
// waiter queued until its turn), and the locks appear in the profiles, queryLocks() and the watchdog. Name them
// with a last constructor argument: `new Mutex({ name: 'cache' })`, `new Semaphore(4, { name: 'db-pool' })`.
//
// The queue is async-mutex's (ordered by priority, FIFO within one); every task that waits also has a waiter in
// the lock's own queue (src/locks/waitqueue.ts), which carries the accounting of the contention profiles and what
// the live view lists. Not followed: lock tracking's records, the hold profile and deadlock detection (which
// assume FIFO grants).

import { declareLeaf } from '../profile/stack.js';
import { ProfiledLock } from '../locks/contention.js';
import { describeValue, type Guard } from '../locks/options.js';
import type { GuardState, Waiter } from '../locks/waitqueue.js';
import { registerRecordedProfiles } from '../pprof/recorded.js';
import { registerLocksProfile } from '../pprof/locks.js';
import { answerClusterPrimary } from '../cluster/peers.js';

// A cluster worker that imports only the drop-in is in the cluster's merged profile all the same.
registerRecordedProfiles();
registerLocksProfile();
answerClusterPrimary();

export const E_TIMEOUT: Error = new Error('timeout while waiting for mutex to become available');
export const E_ALREADY_LOCKED: Error = new Error('mutex already locked');
export const E_CANCELED: Error = new Error('request for lock canceled');

/** async-mutex's MutexInterface. */
export interface MutexInterface {
  acquire(priority?: number): Promise<MutexInterface.Releaser>;
  runExclusive<T>(callback: MutexInterface.Worker<T>, priority?: number): Promise<T>;
  waitForUnlock(priority?: number): Promise<void>;
  isLocked(): boolean;
  release(): void;
  cancel(): void;
}
export declare namespace MutexInterface {
  interface Releaser {
    (): void;
  }
  interface Worker<T> {
    (): Promise<T> | T;
  }
}

/** async-mutex's SemaphoreInterface. */
export interface SemaphoreInterface {
  acquire(weight?: number, priority?: number): Promise<[number, SemaphoreInterface.Releaser]>;
  runExclusive<T>(callback: SemaphoreInterface.Worker<T>, weight?: number, priority?: number): Promise<T>;
  waitForUnlock(weight?: number, priority?: number): Promise<void>;
  isLocked(): boolean;
  getValue(): number;
  setValue(value: number): void;
  release(weight?: number): void;
  cancel(): void;
}
export declare namespace SemaphoreInterface {
  interface Releaser {
    (): void;
  }
  interface Worker<T> {
    (value: number): Promise<T> | T;
  }
}

/** mutexprof's addition: the lock's name (the `lock` label). */
export interface DropInOptions {
  name?: string;
}

interface Task {
  resolve: (ticket: [number, SemaphoreInterface.Releaser] | SemaphoreInterface.Releaser) => void;
  releaserOnly: boolean;
  reject: (e: unknown) => void;
  weight: number;
  priority: number;
  /** its waiter in the lock's own queue (accounting, live view) */
  waiter: Waiter;
}

interface UnlockWaiter {
  resolve: () => void;
  priority: number;
}

function noop(): void {}

function findIndexFromEnd<T>(a: T[], predicate: (x: T) => boolean): number {
  for (let i = a.length - 1; i >= 0; i--) if (predicate(a[i])) return i;
  return -1;
}

function optionsOf(cancelError: unknown, options: unknown, kind: string): { cancelError: Error; name: string } {
  // new Mutex(), new Mutex(cancelError), new Mutex(cancelError, { name }), new Mutex({ name })
  if (options === undefined && cancelError !== undefined && !(cancelError instanceof Error) && typeof cancelError === 'object' && cancelError !== null) {
    options = cancelError;
    cancelError = undefined;
  }
  if (options !== undefined && (options === null || typeof options !== 'object')) throw new TypeError(`mutexprof: new ${kind}(…, options): options must be an object, got ${describeValue(options)}`);
  const name = (options as DropInOptions | undefined)?.name;
  if (name !== undefined && typeof name !== 'string') throw new TypeError(`mutexprof: new ${kind}({ name }): name must be a string, got ${describeValue(name)}`);
  return { cancelError: (cancelError as Error | undefined) ?? E_CANCELED, name: name ?? '' };
}

/** async-mutex's Semaphore, queue and all, with its waits and releases accounted as mutexprof's. */
class Core extends ProfiledLock {
  _value: number;
  /** async-mutex's queue, from index _qhead on (an array with a moving head: dequeuing 1000 waiters is not O(n²)) */
  _queue: Task[] = [];
  _qhead = 0;
  _weightedWaiters: UnlockWaiter[][] = [];
  /** waitForUnlock() callers waiting (none: nothing to drain) */
  _unlockWaiters = 0;

  constructor(
    value: number,
    private readonly cancelError: Error,
    name: string,
    private readonly kind: 'Mutex' | 'Semaphore',
  ) {
    super(name);
    this._value = value;
  }

  /** Resolves to [value, releaser], or (a Mutex's acquire, `releaserOnly`) to the releaser alone. */
  acquire<R extends [number, SemaphoreInterface.Releaser] | SemaphoreInterface.Releaser>(weight = 1, priority = 0, releaserOnly = false): Promise<R> {
    if (weight <= 0) throw new Error(`invalid weight ${weight}: must be positive`);
    let task: Task | null = null;
    const p = new Promise<R>((resolve, reject) => {
      const q = this._queue;
      let i = q.length - 1;
      while (i >= this._qhead && !(priority <= q[i].priority)) i--; // after the last one of at least this priority
      if (i < this._qhead && weight <= this._value) {
        this._dispatchItem(resolve as Task['resolve'], weight, releaserOnly); // needs immediate dispatch, skip the queue
        return;
      }
      // its waiter in the lock's own queue, for the accounting and the live view (granted or canceled below)
      const waiter = this._enqueue(noop);
      task = { resolve: resolve as Task['resolve'], reject, weight, priority, waiter, releaserOnly };
      if (i === q.length - 1) q.push(task);
      else q.splice(i + 1, 0, task);
    });
    return task === null ? p : this._counted(p, (task as Task).waiter, this.kind === 'Mutex' ? LEAF_MUTEX_ACQUIRE : LEAF_SEMAPHORE_ACQUIRE);
  }

  async runExclusive<T>(callback: SemaphoreInterface.Worker<T>, weight = 1, priority = 0): Promise<T> {
    const [value, release] = await this.acquire<[number, SemaphoreInterface.Releaser]>(weight, priority);
    try {
      return await callback(value);
    } finally {
      release();
    }
  }

  waitForUnlock(weight = 1, priority = 0): Promise<void> {
    if (weight <= 0) throw new Error(`invalid weight ${weight}: must be positive`);
    if (this._couldLockImmediately(weight, priority)) return Promise.resolve();
    return new Promise((resolve) => {
      const waiters = (this._weightedWaiters[weight - 1] ??= []);
      const i = findIndexFromEnd(waiters, (other) => priority <= other.priority);
      waiters.splice(i + 1, 0, { resolve, priority });
      this._unlockWaiters++;
    });
  }

  isLocked(): boolean {
    return this._value <= 0;
  }

  getValue(): number {
    return this._value;
  }

  setValue(value: number): void {
    this._value = value;
    this._dispatchQueue(setValueMethod);
  }

  release(weight = 1): void {
    if (weight <= 0) throw new Error(`invalid weight ${weight}: must be positive`);
    this._value += weight;
    this._dispatchQueue(releaseMethod);
  }

  cancel(): void {
    const queue = this._queue.slice(this._qhead);
    this._queue = [];
    this._qhead = 0;
    for (const task of queue) {
      this._dequeue(task.waiter, false, 0); // it waited, and now leaves without a release
      task.reject(this.cancelError);
    }
  }

  _dispatchQueue(skip: (...args: never[]) => unknown): void {
    if (this._unlockWaiters !== 0) this._drainUnlockWaiters();
    // a release event when this dispatch ends some waiting (see src/locks/contention.ts)
    const q = this._queue;
    const first = q[this._qhead] as Task | undefined;
    const grants = first !== undefined && first.weight <= this._value;
    const event = grants ? this._timed !== 0 || this._carry !== 0 : this._timed === 0 && this._carry !== 0;
    // spare 2: the releaser closure and runExclusive, library frames that may follow `skip`
    let at = event ? this._releaseEvent(this.kind === 'Mutex' ? LEAF_MUTEX_RELEASE : LEAF_SEMAPHORE_RELEASE, skip, null, null, 2) : 0;
    while (this._qhead < q.length && q[this._qhead].weight <= this._value) {
      const task = q[this._qhead];
      q[this._qhead++] = undefined as unknown as Task;
      if (this._qhead === q.length) q.length = this._qhead = 0;
      else if (this._qhead >= 1024 && this._qhead * 2 >= q.length) {
        q.splice(0, this._qhead);
        this._qhead = 0;
      }
      at = this._dequeue(task.waiter, event, at);
      this._dispatchItem(task.resolve, task.weight, task.releaserOnly);
      if (this._unlockWaiters !== 0) this._drainUnlockWaiters();
    }
  }

  _dispatchItem(resolve: Task['resolve'], weight: number, releaserOnly: boolean): void {
    const previousValue = this._value;
    this._value -= weight;
    let called = false;
    const releaser = (): void => {
      if (called) return;
      called = true;
      this.release(weight);
    };
    resolve(releaserOnly ? releaser : [previousValue, releaser]);
  }

  _drainUnlockWaiters(): void {
    let resolved = 0;
    const resolve = (w: UnlockWaiter): void => {
      resolved++;
      w.resolve();
    };
    this._drainUnlockWaitersWith(resolve);
    this._unlockWaiters -= resolved;
  }

  _drainUnlockWaitersWith(resolveOne: (w: UnlockWaiter) => void): void {
    if (this._qhead === this._queue.length) {
      for (let weight = this._value; weight > 0; weight--) {
        const waiters = this._weightedWaiters[weight - 1];
        if (!waiters) continue;
        for (const w of waiters) resolveOne(w);
        this._weightedWaiters[weight - 1] = [];
      }
    } else {
      const queuedPriority = this._queue[this._qhead].priority;
      for (let weight = this._value; weight > 0; weight--) {
        const waiters = this._weightedWaiters[weight - 1];
        if (!waiters) continue;
        const i = waiters.findIndex((waiter) => waiter.priority <= queuedPriority);
        for (const w of i === -1 ? waiters : waiters.splice(0, i)) resolveOne(w);
      }
    }
  }

  _couldLockImmediately(weight: number, priority: number): boolean {
    return (this._qhead === this._queue.length || this._queue[this._qhead].priority < priority) && weight <= this._value;
  }

  /** @internal */
  _tryTake(): Guard | null {
    return null;
  }

  /** @internal */
  _disposeGuard(_g: GuardState): void {}

  /** @internal */
  _describe(): string {
    return this.name ? `${this.kind} ${JSON.stringify(this.name)}` : this.kind;
  }

  /** @internal */
  _kind(): string {
    return this.kind;
  }

  /** @internal */
  override _leafFor(): string {
    return this.kind === 'Mutex' ? LEAF_MUTEX_ACQUIRE : LEAF_SEMAPHORE_ACQUIRE;
  }

  /** @internal A Mutex's holder, when locked (a Semaphore's holders are not known: setValue may change any count). */
  _untracked(): { exclusive: number; shared: number } {
    return { exclusive: this.kind === 'Mutex' && this._value <= 0 ? 1 : 0, shared: 0 };
  }
}

const LEAF_MUTEX_ACQUIRE = 'Mutex.acquire';
const LEAF_MUTEX_RELEASE = 'Mutex.release';
const LEAF_SEMAPHORE_ACQUIRE = 'Semaphore.acquire';
const LEAF_SEMAPHORE_RELEASE = 'Semaphore.release';
const releaseMethod = Core.prototype.release;
const setValueMethod = Core.prototype.setValue;

/** async-mutex's Semaphore: `new Semaphore(value, cancelError?, { name? })`. */
export class Semaphore implements SemaphoreInterface {
  readonly #core: Core;
  constructor(value: number, cancelError?: Error | DropInOptions, options?: DropInOptions) {
    const o = optionsOf(cancelError, options, 'Semaphore');
    this.#core = new Core(value, o.cancelError, o.name, 'Semaphore');
  }
  acquire(weight = 1, priority = 0): Promise<[number, SemaphoreInterface.Releaser]> {
    return this.#core.acquire<[number, SemaphoreInterface.Releaser]>(weight, priority);
  }
  runExclusive<T>(callback: SemaphoreInterface.Worker<T>, weight = 1, priority = 0): Promise<T> {
    return this.#core.runExclusive(callback, weight, priority);
  }
  waitForUnlock(weight = 1, priority = 0): Promise<void> {
    return this.#core.waitForUnlock(weight, priority);
  }
  isLocked(): boolean {
    return this.#core.isLocked();
  }
  getValue(): number {
    return this.#core.getValue();
  }
  setValue(value: number): void {
    this.#core.setValue(value);
  }
  release(weight = 1): void {
    this.#core.release(weight);
  }
  cancel(): void {
    this.#core.cancel();
  }
}

/** async-mutex's Mutex: `new Mutex(cancelError?, { name? })`. */
export class Mutex implements MutexInterface {
  readonly #core: Core;
  constructor(cancelError?: Error | DropInOptions, options?: DropInOptions) {
    const o = optionsOf(cancelError, options, 'Mutex');
    this.#core = new Core(1, o.cancelError, o.name, 'Mutex');
  }
  acquire(priority = 0): Promise<MutexInterface.Releaser> {
    return this.#core.acquire<MutexInterface.Releaser>(1, priority, true);
  }
  async runExclusive<T>(callback: MutexInterface.Worker<T>, priority = 0): Promise<T> {
    const release = await this.#core.acquire<MutexInterface.Releaser>(1, priority, true);
    try {
      return await callback();
    } finally {
      release();
    }
  }
  isLocked(): boolean {
    return this.#core.isLocked();
  }
  waitForUnlock(priority = 0): Promise<void> {
    return this.#core.waitForUnlock(1, priority);
  }
  release(): void {
    if (this.#core.isLocked()) this.#core.release();
  }
  cancel(): void {
    this.#core.cancel();
  }
}

declareLeaf(LEAF_MUTEX_ACQUIRE, Mutex.prototype.acquire);
declareLeaf(LEAF_MUTEX_RELEASE, Mutex.prototype.release);
declareLeaf(LEAF_SEMAPHORE_ACQUIRE, Semaphore.prototype.acquire);
declareLeaf(LEAF_SEMAPHORE_RELEASE, Semaphore.prototype.release);

function isSemaphore(sync: MutexInterface | SemaphoreInterface): sync is SemaphoreInterface {
  return (sync as SemaphoreInterface).getValue !== undefined;
}

/** async-mutex's withTimeout: acquire() rejects with `timeoutError` after `timeout` ms (the wait stays queued until its turn, then releases). */
export function withTimeout(mutex: MutexInterface, timeout: number, timeoutError?: Error): MutexInterface;
export function withTimeout(semaphore: SemaphoreInterface, timeout: number, timeoutError?: Error): SemaphoreInterface;
export function withTimeout(sync: MutexInterface | SemaphoreInterface, timeout: number, timeoutError: Error = E_TIMEOUT): MutexInterface | SemaphoreInterface {
  // a Mutex's methods take (priority), a Semaphore's (weight, priority): as async-mutex's withTimeout reads them
  const args = (weightOrPriority?: number, priority?: number): [number | undefined, number | undefined] => {
    if (!isSemaphore(sync)) return [undefined, weightOrPriority];
    if (weightOrPriority !== undefined && weightOrPriority <= 0) throw new Error(`invalid weight ${weightOrPriority}: must be positive`);
    return [weightOrPriority, priority];
  };
  const acquire = (weightOrPriority?: number, p?: number): Promise<MutexInterface.Releaser | [number, SemaphoreInterface.Releaser]> => {
    const [weight, priority] = args(weightOrPriority, p);
    return new Promise((resolve, reject) => {
      let isTimeout = false;
      const handle = setTimeout(() => {
        isTimeout = true;
        reject(timeoutError);
      }, timeout);
      (isSemaphore(sync) ? sync.acquire(weight, priority) : sync.acquire(priority)).then(
        (ticket) => {
          if (isTimeout) (Array.isArray(ticket) ? ticket[1] : ticket)();
          else {
            clearTimeout(handle);
            resolve(ticket);
          }
        },
        (e: unknown) => {
          if (!isTimeout) {
            clearTimeout(handle);
            reject(e);
          }
        },
      );
    });
  };
  return {
    acquire,
    async runExclusive(callback: (value?: number) => unknown, weight?: number, priority?: number): Promise<never> {
      let release: () => void = () => undefined;
      try {
        const ticket = await acquire(weight, priority);
        if (Array.isArray(ticket)) {
          release = ticket[1];
          return (await callback(ticket[0])) as never;
        }
        release = ticket;
        return (await callback()) as never;
      } finally {
        release();
      }
    },
    release(weight?: number): void {
      (sync as SemaphoreInterface).release(weight);
    },
    cancel(): void {
      sync.cancel();
    },
    waitForUnlock(weightOrPriority?: number, p?: number): Promise<void> {
      const [weight, priority] = args(weightOrPriority, p);
      return new Promise((resolve, reject) => {
        const handle = setTimeout(() => reject(timeoutError), timeout);
        void (isSemaphore(sync) ? sync.waitForUnlock(weight, priority) : sync.waitForUnlock(priority)).then(() => {
          clearTimeout(handle);
          resolve();
        });
      });
    },
    isLocked: () => sync.isLocked(),
    getValue: () => (sync as SemaphoreInterface).getValue(),
    setValue: (value: number) => (sync as SemaphoreInterface).setValue(value),
  } as unknown as MutexInterface | SemaphoreInterface;
}

/** async-mutex's tryAcquire: withTimeout(sync, 0, alreadyAcquiredError). */
export function tryAcquire(mutex: MutexInterface, alreadyAcquiredError?: Error): MutexInterface;
export function tryAcquire(semaphore: SemaphoreInterface, alreadyAcquiredError?: Error): SemaphoreInterface;
export function tryAcquire(sync: MutexInterface | SemaphoreInterface, alreadyAcquiredError: Error = E_ALREADY_LOCKED): MutexInterface | SemaphoreInterface {
  return withTimeout(sync as SemaphoreInterface, 0, alreadyAcquiredError);
}

// The drop-in's lock: async-mutex's Semaphore, queue and all, with its waits and releases observed as mutexprof's
// locks' are. The queue is async-mutex's (ordered by priority, FIFO within one); every task that waits also has a
// waiter in the lock's own queue (src/locks/waitqueue.ts), which observers follow and the live view lists.

import { Lock } from '../locks/lock.js';
import type { GuardState, Waiter } from '../locks/waitqueue.js';
import type { SemaphoreInterface } from './interfaces.js';

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

export class Core extends Lock {
  _value: number;
  /** async-mutex's queue, from index _qhead on (an array with a moving head: dequeuing 1000 waiters is not O(n²)) */
  _queue: Task[] = [];
  _qhead = 0;
  _weightedWaiters: UnlockWaiter[][] = [];
  /** waitForUnlock() callers waiting (none: nothing to drain) */
  _unlockWaiters = 0;

  readonly #kind: 'Mutex' | 'Semaphore';

  constructor(
    value: number,
    private readonly cancelError: Error,
    name: string,
    kind: 'Mutex' | 'Semaphore',
  ) {
    super(name);
    this._value = value;
    this.#kind = kind;
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
      waiter.mode = this.#kind === 'Mutex' ? 'exclusive' : 'shared';
      waiter.weight = weight;
      task = { resolve: resolve as Task['resolve'], reject, weight, priority, waiter, releaserOnly };
      if (i === q.length - 1) q.push(task);
      else q.splice(i + 1, 0, task);
    });
    return task === null ? p : this._queued(p, (task as Task).waiter, this.leafFor());
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
      this._leave(task.waiter, this.cancelError); // it waited, and now leaves without a grant
      task.reject(this.cancelError);
    }
  }

  _dispatchQueue(skip: (...args: never[]) => unknown): void {
    if (this._unlockWaiters !== 0) this._drainUnlockWaiters();
    // a release event when this dispatch grants a waiter (a Semaphore's rule: see src/locks/seam.ts)
    const q = this._queue;
    const first = q[this._qhead] as Task | undefined;
    const grants = first !== undefined && first.weight <= this._value;
    // spare 2: the releaser closure and runExclusive, library frames that may follow `skip`
    let at = this._releaseEvent(grants, this.#kind === 'Mutex' ? LEAF_MUTEX_RELEASE : LEAF_SEMAPHORE_RELEASE, skip, null, null, 2);
    while (this._qhead < q.length && q[this._qhead].weight <= this._value) {
      const task = q[this._qhead];
      q[this._qhead++] = undefined as unknown as Task;
      if (this._qhead === q.length) q.length = this._qhead = 0;
      else if (this._qhead >= 1024 && this._qhead * 2 >= q.length) {
        q.splice(0, this._qhead);
        this._qhead = 0;
      }
      at = this._dequeue(task.waiter, at);
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

  /** @internal the drop-in takes in acquire(), with async-mutex's rules */
  _take(): GuardState | null {
    return null;
  }

  /** @internal its releasers release, not guards */
  _disposeGuard(_g: GuardState): void {}

  /** @internal */
  get kind(): string {
    return this.#kind;
  }

  /** @internal */
  override leafFor(): string {
    return this.#kind === 'Mutex' ? LEAF_MUTEX_ACQUIRE : LEAF_SEMAPHORE_ACQUIRE;
  }

  /** @internal A Mutex's holder, when locked (a Semaphore's holders are not known: setValue may change any count). */
  holding(): { exclusive: number; shared: number } {
    return { exclusive: this.#kind === 'Mutex' && this._value <= 0 ? 1 : 0, shared: 0 };
  }
}

export const LEAF_MUTEX_ACQUIRE = 'Mutex.acquire@async-mutex';
export const LEAF_MUTEX_RELEASE = 'Mutex.release@async-mutex';
export const LEAF_SEMAPHORE_ACQUIRE = 'Semaphore.acquire@async-mutex';
export const LEAF_SEMAPHORE_RELEASE = 'Semaphore.release@async-mutex';
const releaseMethod = Core.prototype.release;
const setValueMethod = Core.prototype.setValue;

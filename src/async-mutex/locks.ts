// The drop-in's classes: async-mutex 0.5's Mutex and Semaphore on the drop-in's lock (src/async-mutex/core.ts).

import { declareLeaf } from '../locks/seam.js';
import { Core, LEAF_MUTEX_ACQUIRE, LEAF_MUTEX_RELEASE, LEAF_SEMAPHORE_ACQUIRE, LEAF_SEMAPHORE_RELEASE } from './core.js';
import { optionsOf, type DropInOptions, type MutexInterface, type SemaphoreInterface } from './interfaces.js';

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

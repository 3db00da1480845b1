// async-mutex 0.5's public types and errors, as the drop-in exports them.

import { describeValue } from '../shared/check.js';

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

/** The constructors' last arguments: async-mutex's cancelError, and mutexprof's options. */
export function optionsOf(cancelError: unknown, options: unknown, kind: string): { cancelError: Error; name: string } {
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

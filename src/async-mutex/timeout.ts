// async-mutex's decorators: withTimeout and tryAcquire, over any MutexInterface or SemaphoreInterface.

import { E_ALREADY_LOCKED, E_TIMEOUT, type MutexInterface, type SemaphoreInterface } from './interfaces.js';

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

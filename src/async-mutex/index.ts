// mutexprof/async-mutex: async-mutex 0.5's API on mutexprof's locks. Replace `from 'async-mutex'` by
// `from 'mutexprof/async-mutex'`: behaviour stays async-mutex's (priorities, weights, setValue, a release() of an
// unlocked Mutex that does nothing, cancel() rejecting every waiter, withTimeout and tryAcquire leaving a timed-out
// waiter queued until its turn), and the locks appear in the profiles, queryLocks() and the watchdog. Name them
// with a last constructor argument: `new Mutex({ name: 'cache' })`, `new Semaphore(4, { name: 'db-pool' })`.
//
// Its locks are src/async-mutex/core.ts's. Not followed: lock tracking's records, the hold profile and deadlock
// detection (which assume FIFO grants).

import { start } from '../start.js';

export { E_ALREADY_LOCKED, E_CANCELED, E_TIMEOUT, type DropInOptions, type MutexInterface, type SemaphoreInterface } from './interfaces.js';
export { tryAcquire, withTimeout } from './timeout.js';
export { Mutex, Semaphore } from './locks.js';

// Its locks observed, and a cluster worker that imports only the drop-in in the cluster's merged profile all the same.
start();

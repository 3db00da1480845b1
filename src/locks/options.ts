// The locks' public types and the checks of their arguments: bad input gets a clear error and changes nothing.

import { describeValue } from '../shared/check.js';
import { hooks, type Scope } from './seam.js';
import type { Guard, GuardState } from './waitqueue.js';

export { describeValue };
export type { Guard };

/** Options accepted by `lock()`, `rLock()`, `withLock()` and `withRLock()`. */
export interface LockOptions {
  /** Abort the wait: the waiter leaves the queue at once and the promise rejects with `signal.reason`. */
  signal?: AbortSignal;
  /**
   * Labels for this acquisition's samples: its wait (block profile) and its release (mutex profile), on top of
   * the labels of withLabels() around them. They cost one lookup per call where withLabels costs a promise hook
   * per promise on Node < 22 (AsyncLocalStorage). Pass a constant object, e.g. `{ labels: ROUTE }`: an object is
   * read once, the first time it is used (pass a new object to change labels). A reader released by rUnlock()
   * rather than its guard releases without them (readers share one count).
   */
  labels?: Readonly<Record<string, string>>;
}

/** Options accepted by the `Mutex` and `RWMutex` constructors. */
export interface MutexOptions {
  /** The `lock` label on this lock's profile samples, and the name in its error messages. */
  name?: string;
}

/** The constructor's options: returns the lock's name. */
export function checkLockOptions(options: unknown, kind: string): string {
  if (options === undefined) return '';
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`mutexprof: new ${kind}(options): options must be an object, got ${describeValue(options)}`);
  }
  const name = (options as MutexOptions).name;
  if (name !== undefined && typeof name !== 'string') {
    throw new TypeError(`mutexprof: new ${kind}({ name }): name must be a string, got ${describeValue(name)}`);
  }
  return name ?? '';
}

/** Validates the options argument of lock-like calls; returns the signal if any. */
export function checkOptions(options: unknown, method: string): AbortSignal | undefined {
  if (options === undefined) return undefined;
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`mutexprof: ${method}(options): options must be an object, got ${describeValue(options)}`);
  }
  const signal = (options as LockOptions).signal;
  if (signal === undefined) return undefined;
  if (!(signal instanceof AbortSignal)) {
    throw new TypeError(`mutexprof: ${method}({ signal }): signal must be an AbortSignal, got ${describeValue(signal)}`);
  }
  return signal;
}

/** withLock/withRLock: fn is checked before anything is acquired. */
export function checkFn(method: string, fn: unknown): TypeError | null {
  return typeof fn === 'function' ? null : new TypeError(`mutexprof: ${method}(fn): fn must be a function, got ${typeof fn}`);
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return ((typeof v === 'object' && v !== null) || typeof v === 'function') && typeof (v as PromiseLike<unknown>).then === 'function';
}

/** withLock, withRLock, withPermit: runs fn holding what `acquired` resolves to, releasing on every exit path. */
export async function holding<T>(acquired: Promise<Guard>, fn: () => T | PromiseLike<T>): Promise<Awaited<T>> {
  const g = (await acquired) as GuardState;
  try {
    const r = fn();
    return isThenable(r) ? await r : (r as Awaited<T>); // a synchronous fn costs no extra microtask
  } finally {
    g.lock._disposeGuard(g, holding); // released through holding: stacks start at withLock's caller
  }
}

/** holding(), with fn run as `scope`'s flow (observing.scopes: deadlock detection follows flows by scope). */
export async function holdingIn<T>(acquired: Promise<Guard>, fn: () => T | PromiseLike<T>, scope: Scope): Promise<Awaited<T>> {
  const g = (await acquired) as GuardState;
  const mark = hooks.scopeMark(scope);
  try {
    const r = hooks.runScoped(scope, fn);
    return isThenable(r) ? await r : (r as Awaited<T>);
  } finally {
    hooks.endScope(scope, mark);
    g.lock._disposeGuard(g, holdingIn);
  }
}

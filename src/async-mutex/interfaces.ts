// async-mutex 0.5's public types and errors, as the drop-in exports them.

import { dirname, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeValue } from '../shared/check.js';
import { shared } from '../shared/state.js';

/** Whether locks made without a name are named by where they are made (substituted for async-mutex: MUTEXPROF_INSTRUMENT). */
const naming = shared('dropInNames', () => ({ bySite: false }));

/** Names the drop-in's unnamed locks by where they are made (file:line of the `new Mutex()`), or stops. */
export function nameLocksBySite(on: boolean): void {
  naming.bySite = on;
}

const structured = (_e: Error, cs: NodeJS.CallSite[]): NodeJS.CallSite[] => cs;
const here = (): string => {
  const prepare = Error.prepareStackTrace;
  Error.prepareStackTrace = structured;
  try {
    return (new Error().stack as unknown as NodeJS.CallSite[])[0]?.getFileName() ?? '';
  } finally {
    Error.prepareStackTrace = prepare;
  }
};
/** The directory of the drop-in's files (src/async-mutex/, or the dist/ of the built package) */
const ownDir = dirname(here());

/** Where the caller's `new Mutex()` is: the first frame outside the drop-in's files, as path:line relative to the working directory. */
function site(): string {
  const prepare = Error.prepareStackTrace;
  const limit = Error.stackTraceLimit;
  Error.prepareStackTrace = structured;
  Error.stackTraceLimit = 12;
  try {
    const cs = (new Error().stack as unknown as NodeJS.CallSite[]).find((c) => dirname(c.getFileName() ?? '') !== ownDir);
    if (cs === undefined) return '';
    let file = cs.getFileName() ?? '';
    if (file.startsWith('file://')) file = fileURLToPath(file);
    return `${file.startsWith('/') ? relative(process.cwd(), file) : file}:${cs.getLineNumber() ?? 0}`;
  } finally {
    Error.prepareStackTrace = prepare;
    Error.stackTraceLimit = limit;
  }
}

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
  return { cancelError: (cancelError as Error | undefined) ?? E_CANCELED, name: name ?? (naming.bySite ? site() : '') };
}

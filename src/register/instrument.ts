// MUTEXPROF_INSTRUMENT=async-mutex: every require() and import of async-mutex in the process, the application's and
// its dependencies', gets mutexprof's drop-in (mutexprof/async-mutex), through the hooks OpenTelemetry's
// instrumentations use: require-in-the-middle for CommonJS, import-in-the-middle for ES modules (its in-thread loader
// where Node has module.registerHooks, its loader thread elsewhere). Only async-mutex 0.5, the API the drop-in is
// proven against (test/async-mutex.test.ts runs both side by side), is replaced; another version is left as it is
// and named once in a warning (MUTEXPROF_INSTRUMENT). Locks made without a name are named by where they are made.

import { createRequire, register } from 'node:module';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Mutex, Semaphore } from '../async-mutex/locks.js';
import { E_ALREADY_LOCKED, E_CANCELED, E_TIMEOUT, nameLocksBySite } from '../async-mutex/interfaces.js';
import { tryAcquire, withTimeout } from '../async-mutex/timeout.js';

const SUPPORTED = /^0\.5\.\d+$/;

/** What the drop-in exports in async-mutex's place. */
const replacement = { Mutex, Semaphore, withTimeout, tryAcquire, E_TIMEOUT, E_ALREADY_LOCKED, E_CANCELED };

const warned = new Set<string>();

/** Whether the async-mutex at `dir` is one the drop-in replaces; warns once for any other. */
function supported(dir: string | void): boolean {
  let version = '?';
  try {
    version = (JSON.parse(readFileSync(join(dir ?? '', 'package.json'), 'utf8')) as { version?: string }).version ?? '?';
  } catch {
    // no package.json to read: not a version the drop-in is proven against
  }
  if (SUPPORTED.test(version)) return true;
  if (!warned.has(version)) {
    warned.add(version);
    process.emitWarning(`mutexprof: async-mutex ${version} (${dir ?? '?'}) is left as it is: the drop-in is proven against async-mutex 0.5 only`, { code: 'MUTEXPROF_INSTRUMENT' });
  }
  return false;
}

/**
 * import-in-the-middle's in-thread loader, where Node can run it (module.registerHooks, and require() of its ES module
 * that says so); false where it cannot (the loader thread of module.register() is used instead).
 */
function registerInThread(require: NodeJS.Require): boolean {
  try {
    const hooks = require('import-in-the-middle/register-hooks.mjs') as { supportsSyncHooks(): boolean; register(o: { include: string[] }): void };
    if (!hooks.supportsSyncHooks()) return false;
    hooks.register({ include: ['async-mutex'] });
    return true;
  } catch {
    return false; // no require() of ES modules in this Node
  }
}

/** Substitutes the drop-in for async-mutex from now on, in this thread. */
export function instrumentAsyncMutex(): void {
  nameLocksBySite(true);
  const require = createRequire(import.meta.url);
  const { Hook: RequireHook } = require('require-in-the-middle') as typeof import('require-in-the-middle');
  new RequireHook(['async-mutex'], (exports, _name, dir) => (supported(dir) ? (replacement as typeof exports) : exports));
  const { Hook: ImportHook } = require('import-in-the-middle') as typeof import('import-in-the-middle');
  if (!registerInThread(require)) register('import-in-the-middle/hook.mjs', import.meta.url, { data: { include: ['async-mutex'] } });
  new ImportHook(['async-mutex'], (exported, _name, dir) => {
    if (!supported(dir)) return;
    const target = exported as Record<string, unknown>;
    for (const [k, v] of Object.entries(replacement)) target[k] = v;
  });
}

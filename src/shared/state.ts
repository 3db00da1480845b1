// One profiler per process, however many copies of mutexprof are loaded.
//
// An ESM application that uses a CommonJS library loads both builds of this package; an application with two
// installed copies (two versions in node_modules) loads two more. Each copy has its own module instances, so
// every piece of mutable state — rates, recorders, interned frames, the label store, the live lock lists —
// lives in a named slot of one registry on globalThis (under Symbol.for('mutexprof')). The first copy creates a
// slot; the others find it. A rate set through one copy is seen by all, and the endpoint served by any copy
// shows the locks of all.
//
// The registry hangs on a core module's exports object rather than on globalThis: that object is the one every realm
// of the process shares. A test runner's sandbox (jest runs each test file in a vm context, with a globalThis of its
// own) requires the same core modules, so the copies loaded in its sandboxes share the profiler of the process (and
// a test run's profile files see their locks). globalThis names it too, for copies of older protocols to find.
//
// Copies agree on what a slot holds by PROTOCOL, bumped whenever a slot's shape changes. A copy whose protocol
// differs from the registry's keeps a private registry (its locks are profiled apart) and says so once.

import asyncHooks from 'node:async_hooks';

declare const __MUTEXPROF_VERSION__: string | undefined;

/** This copy's package version ('dev' when running from sources). */
export const VERSION: string = typeof __MUTEXPROF_VERSION__ === 'string' ? __MUTEXPROF_VERSION__ : 'dev';

const KEY = Symbol.for('mutexprof');
/** The shape of every slot below; bump on any change to what a slot holds. */
export const PROTOCOL = 6;

interface Registry {
  readonly protocol: number;
  readonly version: string;
  readonly slots: Map<string, unknown>;
}

function registry(): Registry {
  const anchor = asyncHooks as unknown as Record<symbol, Registry | undefined>;
  const g = globalThis as Record<symbol, Registry | undefined>;
  const found = anchor[KEY] ?? g[KEY];
  if (found === undefined) return (anchor[KEY] = g[KEY] = { protocol: PROTOCOL, version: VERSION, slots: new Map() });
  // (a Map of another realm is no instance of this realm's Map)
  if (found.protocol === PROTOCOL && typeof found.slots?.get === 'function') return (anchor[KEY] = g[KEY] = found);
  // Copies of this protocol beside an incompatible first copy share a registry of their own.
  const own = Symbol.for(`mutexprof.protocol.${PROTOCOL}`);
  const apart = anchor[own];
  if (apart !== undefined) return apart;
  process.emitWarning(
    `mutexprof ${VERSION} (profile protocol ${PROTOCOL}) is loaded beside mutexprof ${String(found.version)} (protocol ${String(found.protocol)}), ` +
      'which it cannot share a profiler with: the locks of each are profiled apart, and the endpoint of one does not show the other’s. ' +
      'Install one compatible version (npm ls mutexprof).',
    { code: 'MUTEXPROF_INCOMPATIBLE_COPY' },
  );
  return (anchor[own] = { protocol: PROTOCOL, version: VERSION, slots: new Map() });
}

const mine = registry();

/** The process-wide value of `slot`, made by `init` if no copy of mutexprof has made it yet. */
export function shared<T>(slot: string, init: () => T): T {
  let v = mine.slots.get(slot) as T | undefined;
  if (v === undefined) mine.slots.set(slot, (v = init()));
  return v;
}

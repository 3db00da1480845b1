// The seam between the locks and everything that watches them.
//
// As Go's sync package declares the few runtime functions it calls (sync/runtime.go) and its Mutex holds no
// profiling code, the locks declare here what they tell (the hooks) and what they let observers see (the views),
// and import nothing else of mutexprof but src/shared/. The profiles, diagnostics, metrics and traces implement the
// hooks (src/observers.ts installs them, once per loaded copy of mutexprof) and read the views; a new observer
// touches no lock.
//
// What the locks promise:
//   - An acquisition past its lock's fast path calls `acquiring` when `observing.acquisitions` is set or it has a
//     labels option, and carries the record returned on its waiter and its guard. The record of an exclusive
//     holder is its lock's `holder` from its grant to its release.
//   - A record is told `granted` once (taken at once, or handed over), then `released` once; a shared release
//     goes through `sharedReleased`, which picks the record it ends when the release has no guard. (A record made
//     while acquisitions are not observed carries a labels option only: one taken at once is not told its grant.)
//   - A lock whose queue was empty calls `firstWaiter` for its new waiter. A wait that queues while
//     `observing.waits` is set calls `waitStarted`, which may follow it (sets its `times`; counts it in its lock's
//     `followed` when release events are to read its waiting). A followed wait's leaving calls `waitEnded`, once,
//     granted or given up (and why).
//   - A release is a release event when followed waits are queued and the lock's rule says it ends their waiting
//     (Mutex and RWMutex: every release does; a Semaphore's, one that grants), or when waiting is carried
//     (`carried`) and no followed wait is left queued. It calls `releaseEvent` before it grants anyone, and passes
//     the event's time to the `waitEnded` of each wait it grants.
// What observers promise: hooks are synchronous, take no lock, and do not throw (`labels` and `acquiring` may,
// before anything changed, on a bad labels option); they write only the slots marked "observers'" below.
//
// Words (docs/design.md has the glossary): an acquisition is one lock()/rLock()/acquire() call, from the call to
// its release; its record is what observers keep of it; a waiter is a queued acquisition (and the guard it is
// granted); the mode is the side taken, 'exclusive' or 'shared'; a Semaphore acquisition's weight is its permits.

import { shared } from '../shared/state.js';

/** The lock's side of an acquisition, in Web Locks' words: RWMutex writers are exclusive, readers shared. */
export type LockMode = 'exclusive' | 'shared';

/** A mutexprof function on the call stack: stacks are captured below it (the method the user called). */
export type Method = (...args: never[]) => unknown;

/** An acquisition's `labels` option, checked (src/profile/labels.ts makes them; the locks only carry them). */
export interface OptionLabels {
  readonly key: string;
}

/** A scope: withLock's, withRLock's and withPermit's function run as one flow (deadlock detection's task). */
export type Scope = object;

/** What the locks see of an acquisition's record (observers keep more). */
export interface Acquisition {
  readonly lock: LockView;
  readonly mode: LockMode;
  /** whether its flow's resumption after its grant, and the use of its guard, are told (`resolvedWatched`, …) */
  readonly watch: boolean;
}

/** What observers see of a queued acquisition. */
export interface WaiterView {
  /** the next waiter of the lock (queue order), or null */
  readonly next: WaiterView | null;
  readonly mode: LockMode;
  /** a Semaphore's permits asked for, else 1 */
  readonly weight: number;
  /** when it started waiting, on the coarse clock (`observing.coarseMs`) */
  readonly since: number;
  readonly acq: Acquisition | null;
  /** observers': a followed wait's times (set by `waitStarted`), else null */
  times: object | null;
}

/** What observers see of a lock. */
export interface LockView {
  readonly name: string;
  /** 'Mutex', 'RWMutex', 'Semaphore', 'KeyedMutex', or the async-mutex drop-in's 'Mutex' and 'Semaphore' */
  readonly kind: string;
  /** whether its samples carry a mode label, read or write (RWMutex) */
  readonly sides: boolean;
  /** a Semaphore's permits (its acquisitions are all shared and weighed); other locks have none */
  readonly permits?: number;
  /** its waiters, oldest first, through `next` */
  readonly firstWaiter: WaiterView | null;
  /** the exclusive holder's record, when its acquisition has one */
  readonly holder: Acquisition | null;
  /** how many hold it now, recorded or not: exclusive 0 or 1; shared, readers (a Semaphore: permits held) */
  holding(): { exclusive: number; shared: number };
  /** the leaf frame of its acquisitions of `mode` ('Mutex.lock', 'RWMutex.rLock', 'Semaphore.acquire', …) */
  leafFor(mode: LockMode): string;
  /** 'Mutex "cache"': the lock in a message */
  describe(): string;
  /** observers': the lock's number in views, 0 until one is given (a KeyedMutex's key mutex resets it for a new key) */
  id: number;
  /** observers': followed waits queued now */
  followed: number;
  /** observers': whether waiting of followed waits that left without a release event is charged to the next one */
  carried: boolean;
  /** observers': the contention accounting's state of this lock (src/profile/contention.ts) */
  account: object | null;
  /** observers': the diagnostics' state of this lock (src/diagnostics/records.ts) */
  records: object | null;
}

/** What a guard is, for the hooks: disposable once. */
export type GuardLike = Disposable;

/**
 * The hooks: what the locks tell. Methods (not function properties), so that observers may implement them for the
 * record type they make.
 */
export interface LockHooks {
  /** Checks and interns a `labels` option (`method` names the call in errors). Throws on bad input. */
  labels(raw: unknown, method: string): OptionLabels;
  /**
   * An acquisition of `lock` past the fast path: its record, or null. `skip`: the method the user called; `scope`:
   * withLock's (openScope()), else null; `weight`: a Semaphore's permits, else 1.
   */
  acquiring(lock: LockView, mode: LockMode, labels: OptionLabels | null, skip: Method, scope: Scope | null, weight: number): Acquisition | null;
  /** `a` is granted: taken at once (tryLock too), or handed over (its waiter is granted right after). */
  granted(a: Acquisition): void;
  /** `a` (watch) was taken at once: the promise its call returns. */
  resolvedWatched(a: Acquisition, guard: GuardLike): Promise<GuardLike>;
  /** `a` (watch) is handed over: `grant` resolves its wait. */
  resumeWatched(a: Acquisition, grant: () => void): void;
  /** The guard of `a` (watch) is being used: `using` reads its Symbol.dispose. */
  guardUsed(a: Acquisition): void;
  /** `a` is about to wait: the signal to wait with (the caller's, or one an observer may abort). */
  waiting(a: Acquisition, signal: AbortSignal | undefined, skip: Method): AbortSignal | undefined;
  /** `a` left its queue without a grant (its signal aborted). */
  gaveUp(a: Acquisition): void;
  /** `a`, exclusive, is released. */
  released(a: Acquisition): void;
  /**
   * A shared release of `weight` (an RWMutex reader, Semaphore permits): the record it ends, or null. `record` is its
   * guard's record (null: the guard has none), or undefined for a release without a guard (rUnlock(), release()).
   */
  sharedReleased(lock: LockView, record: Acquisition | null | undefined, weight: number): Acquisition | null;
  /** `lock`'s queue was empty, and has a waiter now. */
  firstWaiter(lock: LockView): void;
  /** `w` queued on `lock` (`leaf`: its acquisition's leaf): the promise its call returns (p, or one that ends with it). */
  waitStarted<T>(lock: LockView, w: WaiterView, p: Promise<T>, leaf: string): Promise<T>;
  /**
   * A release event on `lock` (see above): `releaser` is the released record, `side` the mode label, `spare` room for
   * library frames that may follow `skip`. Returns the event's time, or 0 if not read.
   */
  releaseEvent(lock: LockView, leaf: string, skip: Method, releaser: Acquisition | null, side: 'read' | 'write' | null, spare: number): number;
  /**
   * Followed `w` left its queue: by a release event at `at` (0: not read yet), or without one (`byEvent` false);
   * granted, or given up (`aborted`: its signal aborted with `reason`, or the drop-in's cancel()). Returns the event's time.
   */
  waitEnded(lock: LockView, w: WaiterView, byEvent: boolean, at: number, aborted: boolean, reason: unknown): number;
  /** A scope for withLock's function (when `observing.scopes`). */
  openScope(): Scope;
  /** Runs `fn` as `scope`'s flow. */
  runScoped<T>(scope: Scope, fn: () => T): T;
  /** What `scope`'s flow carried before its function ran, for endScope(). */
  scopeMark(scope: Scope): number;
  /** The scope's function has settled: its flow carries `mark` again. */
  endScope(scope: Scope, mark: number): void;
}

/** What the locks read of the observers' settings on their paths (one per process: a setting made through any copy holds for all). */
export interface Observing {
  /** every acquisition calls `acquiring` (lock tracking, deadlock detection, the hold profile) */
  acquisitions: boolean;
  /** waits that queue call `waitStarted` (the contention profiles, lock metrics, traces) */
  waits: boolean;
  /** withLock, withRLock and withPermit run their function as a scope (deadlock detection) */
  scopes: boolean;
  /** the coarse clock (ms), which observers refresh while some lock has waiters: a waiter's `since` */
  coarseMs: number;
}

export const observing = shared<Observing>('observing', () => ({ acquisitions: false, waits: false, scopes: false, coarseMs: 0 }));

const noop = (): void => {};

/** The hooks in force: this copy's observers once src/observers.ts has installed them; until then, nothing is observed. */
export const hooks: LockHooks = {
  labels: () => ({ key: '' }),
  acquiring: () => null,
  granted: noop,
  resolvedWatched: (_a, g) => Promise.resolve(g),
  resumeWatched: (_a, grant) => grant(),
  guardUsed: noop,
  waiting: (_a, signal) => signal,
  gaveUp: noop,
  released: noop,
  sharedReleased: (_l, record) => record ?? null,
  firstWaiter: noop,
  waitStarted: (_l, _w, p) => p,
  releaseEvent: () => 0,
  waitEnded: (_l, _w, _e, at) => at,
  openScope: () => ({}),
  runScoped: (_s, fn) => fn(),
  scopeMark: () => 0,
  endScope: noop,
};

/**
 * The leaves: the frame each public lock method is named by in stacks, and the method (its source position). A
 * leaf's key is its frame's name ('Mutex.unlock'), followed by '@' and a qualifier where two APIs share a method
 * name ('Semaphore.release@async-mutex'): each keeps its own source position.
 */
export const leaves = shared('leaves', () => new Map<string, Method>());

/** Declares `name` ('Mutex.unlock') the leaf of samples taken in `method`. */
export function declareLeaf(name: string, method: Method): void {
  if (!leaves.has(name)) leaves.set(name, method);
}

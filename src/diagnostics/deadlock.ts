// Async deadlock detection by async context, as go-deadlock and Linux's lockdep do it for threads.
//
// ─── Tasks ──────────────────────────────────────────────────────────────────────────────────────────────────
// A task is one flow of async code and what it holds and waits for. withLock, withRLock, withPermit and
// detachedTask run their function as a task (AsyncLocalStorage.run: everything the function does, across awaits,
// is that task). lock(), rLock() and acquire() outside them mark the rest of the caller's flow with its task
// (enterWith), and later code of the flow finds it after its next await. That mark is the only way a library can
// follow a flow through awaits, and it is not exact: everything that captures the context after the mark carries
// it — the caller of an async function that goes on without awaiting it, siblings started by the same synchronous
// loop (Promise.all over a map) that await before they lock, work the holder starts and does not await. So a
// context names a task only while it is plausibly that task's own flow:
//   token      every acquisition by the task's flow marks its context anew with the next token: a context carrying an
//              older token was captured before the flow's last acquisition, by code that has gone its own way since;
//   turn       a second acquisition in the synchronous run (turn) in which the task last acquired is another flow
//              (the next sibling of a Promise.all over a map, the caller after the callee's first lock());
//   waiting    a task that waits for a lock, or was granted one and has not resumed yet, is not the code that calls;
//   idle       a task that holds nothing, on a mark that is not sure, has nothing to be confused with: the caller
//              gets a task of its own (on a sure mark, the flow keeps its task: its next acquisition costs less).
// A mark is *sure* when only the task's own flow (and what it starts from there) can carry it: made inside a scope,
// made by code that uses the task's guard (`using` reads Symbol.dispose where it is declared; only the holder of
// the guard can), or made in the flow's resumption right after a grant (the microtask that runs it sits between two
// markers that the grant queues: "resumeAs"). The mark of a flow's first lock() is not sure: the caller that goes on
// and the siblings after it carry it too. An acquisition made on a sure mark continues its task's *lineage*; one made
// on a mark that is not sure may be another flow's, and starts a new lineage. Lock order is learnt only between
// acquisitions of one lineage; re-entries and cycles, on any mark, are confirmed by how long they last (below).
// Where a context still names the wrong flow, the two are one task for a while: `using`, withLock, or a lock()
// right after the last grant keep a flow's marks sure.

// ─── Findings ───────────────────────────────────────────────────────────────────────────────────────────────
//   re-entry   lock() on a lock the caller's task holds, in a way that can never be granted;
//   cycle      the new wait closes a cycle in the wait-for graph (task → the tasks holding, or queued ahead for,
//              the lock it waits for), of any length;
//   inversion  A taken before B in one place and B before A in another, even if they never ran at once: a
//              potential deadlock, reported once per pair of locks with both acquisition stacks, never thrown.
// A re-entry or a cycle is a deadlock only if it lasts: every flow on it waits forever, so none of its locks is
// granted or released again. A wait that closes one is reported once it has lasted `confirmMs` (default 1000)
// with no grant or release on any lock of the cycle (it is looked at again if one moved and the cycle still holds).
// That is what tells a deadlock from two flows that one context took for one task: there the real holder goes
// on and releases. 'warn' reports (channel `mutexprof:deadlock`, and process.emitWarning code MUTEXPROF_DEADLOCK)
// and the wait goes on as it would; 'throw' then rejects that wait with DeadlockError (it leaves the queue, as an
// aborted wait does), and changes nothing for any other waiter or holder. Independent tasks that merely contend
// form no cycle.

import { AsyncLocalStorage, executionAsyncId } from 'node:async_hooks';
import { channel } from 'node:diagnostics_channel';
import { setTimeout as realTimeout, clearTimeout as clearRealTimeout } from 'node:timers';
import type { LockMode, LockView, Method } from '../locks/seam.js';
import { checkOptionsObject, checkTimerMs } from '../shared/check.js';
import { shared } from '../shared/state.js';
import { capture, resolve, type Captured, type Frame } from '../profile/stack.js';
import { diag, lockId, movesOf, reactivate, sharedHolders, type Acquisition, type Task } from './records.js';

/** One lock of a deadlock: who holds it, as far as known. */
export interface DeadlockLink {
  /** the lock's name ('' if none) */
  readonly lock: string;
  readonly kind: string;
  /** the side held */
  readonly mode: LockMode;
  /** the holder's labels (with `lock`) */
  readonly holderLabels: Record<string, string>;
  /** the holder's lock() stack, when lock tracking is 'stacks' */
  readonly holderStack: readonly Frame[] | null;
}

/** What a wait rejects with when it deadlocks, in setDeadlockDetection('throw'). */
export class DeadlockError extends Error {
  readonly code = 'ERR_MUTEXPROF_DEADLOCK';
  /** the locks of the cycle, starting with the one the rejected call asked for */
  readonly cycle: readonly DeadlockLink[];
  constructor(message: string, cycle: readonly DeadlockLink[]) {
    super(message);
    this.name = 'DeadlockError';
    this.cycle = cycle;
  }
}

/** A deadlock report, as published on the `mutexprof:deadlock` diagnostics channel. */
export interface DeadlockReport {
  readonly kind: 'reentry' | 'cycle' | 'inversion';
  readonly message: string;
  /** re-entry and cycle: the locks of the cycle (as DeadlockError.cycle) */
  readonly cycle: readonly DeadlockLink[];
  /** the stack of the lock() call that closes the cycle, or (inversion) of the two acquisitions in each order */
  readonly stacks: ReadonlyArray<readonly Frame[]>;
}

/** Options of setDeadlockDetection. */
export interface DeadlockOptions {
  /**
   * How long a re-entry or a wait cycle must last, with no lock of it granted or released, before it is reported
   * (and in 'throw', its wait rejected), in ms. Default 1000.
   */
  confirmMs?: number;
}

type DeadlockMode = 'off' | 'warn' | 'throw';

const deadlockChannel = channel('mutexprof:deadlock');
const MAX_ORDER_EDGES = 10_000;

/** What a context holds: a task, and the token its flow carried when it was marked (see "Tasks" above). */
interface Cell {
  readonly task: Task;
  readonly token: number;
}

/** A mark's context: the next token of `task`, of the sureness given. */
function marked(task: Task, sure: boolean): Cell {
  task.token = order.nextToken++;
  task.sure = sure;
  return { task, token: task.token };
}

/** A wait that closes a cycle (or can never be granted), watched until it is confirmed or resolved. */
interface Suspect {
  readonly task: Task;
  /** the wait, once queued */
  acq: Acquisition | null;
  /** the lock() call's stack, for the report */
  readonly here: Captured;
  /** 'throw': aborts the wait (with the DeadlockError as its reason) */
  readonly abort: AbortController | null;
  /** the locks it is stuck on now, or null once it could resolve */
  readonly stuck: (acq: Acquisition) => LockView[] | null;
  /** the finding, once confirmed */
  readonly finding: (locks: LockView[], acq: Acquisition) => { kind: 'reentry' | 'cycle'; message: string; cycle: DeadlockLink[] };
  /** the locks it was stuck on, and their grants and releases, when last looked at */
  locks: LockView[];
  moves: number;
  timer: ReturnType<typeof realTimeout> | null;
}

interface Order {
  readonly tasks: AsyncLocalStorage<Cell>;
  nextTask: number;
  /** tokens are unique in the process: a scope gives its caller's mark back without reviving any other */
  nextToken: number;
  /** the current synchronous run (see "Tasks"): bumped by a microtask once a task acquires in it */
  turn: number;
  bumping: boolean;
  /** the task whose flow is resuming now, right after a grant (between resumeAs' two markers) */
  resuming: Task | null;
  confirmMs: number;
  readonly suspects: Set<Suspect>;
  /** lock id → lock id → where the second was taken while holding the first */
  readonly edges: Map<number, Map<number, Captured>>;
  edgeCount: number;
  readonly reported: Set<string>;
}

const order = shared<Order>('deadlock', () => ({
  tasks: new AsyncLocalStorage<Cell>(),
  nextTask: 1,
  nextToken: 1,
  turn: 1,
  bumping: false,
  resuming: null,
  confirmMs: 1000,
  suspects: new Set(),
  edges: new Map(),
  edgeCount: 0,
  reported: new Set(),
}));

/**
 * Turns deadlock detection on (turning on the lock tracking it needs) or off; returns the previous mode. Bad input
 * throws and changes nothing.
 */
export function setDeadlockDetection(mode: DeadlockMode, options?: DeadlockOptions): DeadlockMode {
  const modes = ['off', 'warn', 'throw'] as const;
  const previous = modes[diag.deadlock];
  const i = modes.indexOf(mode);
  if (i < 0) throw new TypeError(`mutexprof: setDeadlockDetection(mode): mode must be 'off', 'warn' or 'throw', got ${typeof mode === 'string' ? JSON.stringify(mode) : typeof mode}`);
  const confirmMs = checkTimerMs('setDeadlockDetection', 'confirmMs', checkOptionsObject<DeadlockOptions>('setDeadlockDetection', options)?.confirmMs, 1000);
  diag.deadlock = i;
  order.confirmMs = confirmMs;
  if (i === 0) {
    // Off: forget every task and suspect, and let the task store go (on Node < 24 its promise hooks, one per
    // promise of the process, would cost the service as much as detection did). Tasks start afresh if it is on again.
    for (const s of order.suspects) if (s.timer !== null) clearRealTimeout(s.timer);
    order.suspects.clear();
    order.tasks.disable();
  }
  reactivate();
  return previous;
}

function newTask(): Task {
  return { id: order.nextTask++, held: [], waiting: null, token: 0, turn: 0, sure: false, lineage: order.nextToken++, suspended: false };
}

/**
 * The current synchronous run. Where async_hooks knows it (a macrotask's callback; any job while promise hooks are
 * on, as AsyncLocalStorage keeps them on Node < 24), by its execution id, for nothing; else (a promise reaction on
 * Node ≥ 24) by a counter that a microtask bumps once something in the run has acquired.
 */
function turnNow(): number {
  const id = executionAsyncId();
  if (id !== 0) return -id;
  if (!order.bumping) {
    order.bumping = true;
    queueMicrotask(bump);
  }
  return order.turn;
}

function bump(): void {
  order.turn++;
  order.bumping = false;
}

/** The task the context names, if it is plausibly its flow's own (see "Tasks" above), else null. */
function contextTask(): Task | null {
  const c = order.tasks.getStore();
  if (c === undefined) return null;
  const t = c.task;
  return c.token === t.token && t.waiting === null && !t.suspended && (t.held.length > 0 || t.sure || order.resuming === t) ? t : null;
}

/**
 * The task of a flow that acquires now: the context's, or a new one. Where this call is not surely the flow of the
 * task's last acquisition, it starts a new lineage (lock order is not learnt across lineages).
 */
function acquiring(): { task: Task; sure: boolean } {
  const now = turnNow();
  let t = contextTask();
  let sure = false;
  if (t === null || t.turn === now)
    t = newTask(); // the mark of a first lock() reaches whatever runs after it in this run
  else if (t.sure || order.resuming === t) sure = true;
  else t.lineage = order.nextToken++;
  t.turn = now;
  return { task: t, sure };
}

/**
 * The caller's task for lock(), rLock(), acquire() and try*() outside a scope. A mark that is not sure is
 * made anew (whatever captured the old one is told apart from then on); a sure one is only the flow's own already.
 */
export function taskOfCaller(): Task {
  const { task, sure } = acquiring();
  if (!sure || !task.sure) order.tasks.enterWith(marked(task, sure)); // a flow's marks are sure from its first sure call on
  return task;
}

/** The task withLock, withRLock and withPermit run their function as (runAs): the caller's, or a new one. */
export function taskForScope(): Task {
  return acquiring().task;
}

/**
 * Runs fn as `task` (a scope's function), under a sure mark of its own. Once fn has settled, endScope() gives the
 * caller's mark back (marks made inside the scope, and carried by work it started, are stale from then on).
 */
export function runAs<T>(task: Task, fn: () => T): T {
  return order.tasks.run(marked(task, true), fn);
}

/** The mark `task`'s flow carries now, for endScope(): its token, negative when not sure. */
export function scopeMark(task: Task): number {
  return task.sure ? task.token : -task.token;
}

/** The scope of `task`, entered when its flow carried `mark` (scopeMark()), has ended. */
export function endScope(task: Task, mark: number): void {
  task.token = Math.abs(mark);
  task.sure = mark > 0;
}

/** `task` was granted: its flow resumes between two markers (see "Tasks"), and `grant` resolves its wait. */
export function resumeAs(task: Task, grant: () => void): void {
  task.suspended = true;
  queueMicrotask(() => {
    task.suspended = false;
    order.resuming = task;
  });
  grant();
  queueMicrotask(() => {
    if (order.resuming === task) order.resuming = null;
  });
}

/** A promise of `value`, resolved for `task` as resumeAs does (a lock taken at once, under detection). */
export function resolvedAs<T>(task: Task, value: T): Promise<T> {
  task.suspended = true;
  return new Promise<T>((resolve) => queueMicrotask(() => resumeAs(task, () => resolve(value))));
}

/**
 * The guard of acquisition `a` is being used (`using` reads its Symbol.dispose where it is declared): only
 * the flow that holds the guard gets here, so its context gets a sure mark, of that acquisition's lineage.
 */
export function guardUsed(a: Acquisition): void {
  if (diag.deadlock === 0 || a.task === null) return;
  a.task.lineage = a.lineage; // the holder of the guard is the flow that made this acquisition
  order.tasks.enterWith(marked(a.task, true));
}

/** The task the context names, stale or not: whose record a guardless shared release ends first. */
export function taskOfReleaser(): Task | null {
  return order.tasks.getStore()?.task ?? null;
}

/**
 * Runs `fn` as a task of its own for deadlock detection: for work a lock holder starts and does not await (a
 * detached setImmediate, an event handler), which would otherwise inherit the holder's context and count as the
 * holder. Returns fn's result.
 */
export function detachedTask<T>(fn: () => T): T {
  if (typeof fn !== 'function') throw new TypeError(`mutexprof: detachedTask(fn): fn must be a function, got ${typeof fn}`);
  return order.tasks.run(marked(newTask(), true), fn);
}

/** Tracked `a`, of a task, is about to wait: checks the wait (see "Findings"); returns the signal to wait with. */
export function waiting(a: Acquisition, signal: AbortSignal | undefined, skip: Method): AbortSignal | undefined {
  const t = a.task!;
  const check = a.lock.permits === undefined ? checkWait(t, a.lock, a.mode, skip, signal) : checkPermits(t, a, skip, signal);
  t.waiting = a;
  if (check.suspect !== null) watchSuspect(check.suspect, a);
  return check.signal;
}

/** `a`, of a task, was granted: the task holds it. */
export function taskGranted(a: Acquisition): void {
  const t = a.task!;
  if (t.waiting === a) t.waiting = null;
  t.held.push(a);
}

/** `a`, of a task, gave up waiting. */
export function taskGaveUp(a: Acquisition): void {
  const t = a.task!;
  if (t.waiting === a) t.waiting = null;
}

/** `a`, of a task, was released: the task no longer holds it. */
export function taskReleased(a: Acquisition): void {
  const held = a.task!.held;
  const i = held.lastIndexOf(a);
  if (i >= 0) {
    held[i] = held[held.length - 1]; // order does not matter (noteOrder reads them all)
    held.pop();
  }
}

/**
 * A Semaphore's permits are shared: a wait is stuck for sure only when the task's own permits keep it from ever being
 * granted (a cycle through other holders may break when any of them releases).
 */
function checkPermits(t: Task, a: Acquisition, skip: Method, signal: AbortSignal | undefined): { signal: AbortSignal | undefined; suspect: Suspect | null } {
  const lock = a.lock;
  const permits = lock.permits!;
  const own = (): number => {
    let n = 0;
    const list = sharedHolders(lock);
    if (list !== null) for (const x of list) if (x.task === t) n += x.weight;
    return n;
  };
  const mine = own();
  if (mine + a.weight <= permits) return { signal, suspect: null };
  const what = `acquire() of ${a.weight} permits of ${lock.describe()} in an async context that holds ${mine} of its ${permits} (re-entry): it can never be granted`;
  return checkSelf(t, lock, what, skip, signal, () => own() + a.weight > permits);
}

/** The tasks a waiter of `lock` (mode `mode`, queued after `upTo` if given, else last) waits for. */
function blockers(lock: LockView, mode: LockMode, upTo: Acquisition | null): Task[] {
  const out: Task[] = [];
  const ex = lock.holder as Acquisition | null;
  if (ex !== null && ex.task !== null) out.push(ex.task);
  const shared = sharedHolders(lock);
  if (mode === 'exclusive' && shared !== null) for (const a of shared) if (a.task !== null) out.push(a.task);
  // FIFO: the waiters ahead are granted first (a reader waits only for the writers ahead of it)
  for (let w = lock.firstWaiter; w !== null; w = w.next) {
    const a = w.acq as Acquisition | null;
    if (a === upTo) break;
    if (a !== null && a.task !== null && (mode === 'exclusive' || a.mode === 'exclusive')) out.push(a.task);
  }
  return out;
}

/** The locks of a cycle that `task`'s wait for `lock` (`mode`; `upTo`: the wait, once queued) closes now, or null. */
function cycleOf(task: Task, lock: LockView, mode: LockMode, upTo: Acquisition | null): LockView[] | null {
  // A task that holds nothing closes no cycle: nobody can be waiting for it (a waiter behind it in a queue waits
  // for it, but it does not wait for that one). Most waits end here, before any search.
  if (task.held.length === 0) return null;
  // Depth-first over the wait-for graph, remembering the path of locks. Each lock is scanned once: a task that
  // waits for a lock already scanned is blocked by tasks of that scan (holders, or waiters ahead of it), so the
  // search is linear in the waiters, not quadratic in one lock's queue.
  const path: LockView[] = [lock];
  const seen = new Set<Task>();
  const scanned = new Set<LockView>([lock]);
  const search = (l: LockView, m: LockMode, ahead: Acquisition | null): boolean => {
    for (const b of blockers(l, m, ahead)) {
      if (b === task) return true;
      if (seen.has(b)) continue;
      seen.add(b);
      const w = b.waiting;
      if (w === null || scanned.has(w.lock)) continue;
      scanned.add(w.lock);
      path.push(w.lock);
      if (search(w.lock, w.mode, w)) return true;
      path.pop();
    }
    return false;
  };
  return search(lock, mode, upTo) ? path : null;
}

const lockLabel = (l: LockView): Record<string, string> => (l.name === '' ? {} : { lock: l.name });

function linkOf(a: Acquisition): DeadlockLink {
  const labels = lockLabel(a.lock);
  if (a.labels !== null) for (const [k, v] of a.labels.pairs) labels[k] = v;
  return {
    lock: a.lock.name,
    kind: a.lock.kind,
    mode: a.mode,
    holderLabels: labels,
    holderStack: a.stack === null ? null : resolve(a.stack, a.lock.leafFor(a.mode)),
  };
}

function describe(l: LockView): string {
  return l.describe();
}

/** Whether `task` holds `lock`. */
function holds(task: Task, lock: LockView): boolean {
  if (lock.holder !== null && (lock.holder as Acquisition).task === task) return true;
  const shared = sharedHolders(lock);
  if (shared !== null) for (const a of shared) if (a.task === task) return true;
  return false;
}

/** What makes waiters of `l` wait: its exclusive holder, a shared one, or the waiter at the head. */
function blocking(l: LockView): Acquisition | null {
  if (l.holder !== null) return l.holder as Acquisition;
  const shared = sharedHolders(l);
  if (shared !== null) for (const a of shared) return a;
  return (l.firstWaiter?.acq as Acquisition | null | undefined) ?? null;
}

const movesAll = (locks: readonly LockView[]): number => locks.reduce((n, l) => n + movesOf(l), 0);

function suspect(
  task: Task,
  skip: Method,
  signal: AbortSignal | undefined,
  locks: LockView[],
  stuck: Suspect['stuck'],
  finding: Suspect['finding'],
): { signal: AbortSignal | undefined; suspect: Suspect } {
  const abort = diag.deadlock === 2 ? new AbortController() : null;
  const s: Suspect = { task, acq: null, here: capture(skip, 1), abort, stuck, finding, locks, moves: movesAll(locks), timer: null };
  return { signal: abort === null ? signal : signal === undefined ? abort.signal : AbortSignal.any([signal, abort.signal]), suspect: s };
}

function cycleFinding(task: Task): Suspect['finding'] {
  return (path, a) => {
    const lock = a.lock;
    const call = a.mode === 'shared' ? 'rLock' : 'lock';
    const reentry = path.length === 1 && holds(task, lock);
    const message = reentry
      ? `mutexprof: deadlock: ${call}() of ${describe(lock)} in an async context that already holds it (re-entry): it can never be granted`
      : `mutexprof: deadlock: ${call}() of ${describe(lock)} closes a wait cycle: ${[...path, lock].map(describe).join(' → ')}`;
    const cycle = path.map((l): DeadlockLink => {
      const b = blocking(l);
      return b !== null ? linkOf(b) : { lock: l.name, kind: l.kind, mode: 'exclusive', holderLabels: lockLabel(l), holderStack: null };
    });
    return { kind: reentry ? 'reentry' : 'cycle', message, cycle };
  };
}

/**
 * A task is about to wait for `lock` (`mode`). If the wait closes a cycle (re-entry is a cycle of one),
 * it is a suspect: watchSuspect() follows it once queued, and it is confirmed or cleared later (see "Findings"
 * above). Returns the signal to wait with: in 'throw' mode, one that aborts with the DeadlockError (and with the
 * caller's `signal`, if any).
 */
function checkWait(task: Task, lock: LockView, mode: LockMode, skip: Method, signal: AbortSignal | undefined): { signal: AbortSignal | undefined; suspect: Suspect | null } {
  const path = cycleOf(task, lock, mode, null);
  if (path === null) return { signal, suspect: null };
  return suspect(task, skip, signal, path, (a) => cycleOf(task, a.lock, a.mode, a), cycleFinding(task));
}

/**
 * A wait that can never be granted, found by the lock itself (a Semaphore asked for more permits than it
 * leaves its own holder): a suspect like a cycle's, stuck while `stuck()` is true.
 */
function checkSelf(task: Task, lock: LockView, what: string, skip: Method, signal: AbortSignal | undefined, stuck: () => boolean): { signal: AbortSignal | undefined; suspect: Suspect } {
  return suspect(
    task,
    skip,
    signal,
    [lock],
    () => (stuck() ? [lock] : null),
    () => ({
      kind: 'reentry',
      message: `mutexprof: deadlock: ${what}`,
      cycle: [{ lock: lock.name, kind: lock.kind, mode: 'shared', holderLabels: lockLabel(lock), holderStack: null }],
    }),
  );
}

/** The suspect's wait is queued now as `acq`: watch it. */
function watchSuspect(s: Suspect, acq: Acquisition): void {
  s.acq = acq;
  order.suspects.add(s);
  s.timer = realTimeout(() => confirm(s), order.confirmMs);
}

/** A suspect's time is up: report it if it is still stuck and nothing it is stuck on moved; look again if it moved. */
function confirm(s: Suspect): void {
  s.timer = null;
  const a = s.acq!;
  const locks = diag.deadlock !== 0 && a.state === 'waiting' && s.task.waiting === a ? s.stuck(a) : null;
  if (locks === null) return void order.suspects.delete(s);
  const moves = movesAll(locks);
  if (moves !== s.moves) return watchAgain(s, locks);
  order.suspects.delete(s);
  const { kind, message, cycle } = s.finding(locks, a);
  report({ kind, message, cycle, stacks: [resolve(s.here, a.lock.leafFor(a.mode))] });
  s.abort?.abort(new DeadlockError(message, cycle));
  // Other suspects on these locks may be the same deadlock seen from another wait: what this report's rejection
  // releases may resolve them, so they are given another confirmMs (one rejection per deadlock in 'throw').
  for (const o of order.suspects) if (o.locks.some((l) => locks.includes(l))) watchAgain(o, o.locks);
}

function watchAgain(s: Suspect, locks: LockView[]): void {
  if (s.timer !== null) clearRealTimeout(s.timer);
  s.locks = locks;
  s.moves = movesAll(locks);
  s.timer = realTimeout(() => confirm(s), order.confirmMs);
}

/**
 * A task that holds `task.held` calls lock() on `lock`: record the order (first time each pair is
 * seen, with the stack of this call) and report an inversion if the other order was seen before.
 */
export function noteOrder(task: Task, lock: LockView, skip: Method): void {
  if (task.held.length === 0) return;
  const to = lockId(lock);
  let here: Captured | null = null;
  for (const a of task.held) {
    if (a.lock === lock || a.lineage !== task.lineage) continue; // learnt within a lineage only (see "Tasks")
    const from = lockId(a.lock);
    let out = order.edges.get(from);
    if (out?.has(to)) continue;
    if (order.edgeCount >= MAX_ORDER_EDGES) return;
    here ??= capture(skip, 1);
    if (out === undefined) order.edges.set(from, (out = new Map()));
    out.set(to, here);
    order.edgeCount++;
    const reverse = order.edges.get(to)?.get(from);
    const pair = from < to ? `${from}:${to}` : `${to}:${from}`;
    if (reverse !== undefined && !order.reported.has(pair)) {
      order.reported.add(pair);
      const message = `mutexprof: potential deadlock: ${describe(a.lock)} and ${describe(lock)} are taken in both orders (lock-order inversion)`;
      report({
        kind: 'inversion',
        message,
        cycle: [],
        stacks: [resolve(here, lock.leafFor('exclusive')), resolve(reverse, a.lock.leafFor('exclusive'))],
      });
    }
  }
}

function report(r: DeadlockReport): void {
  if (deadlockChannel.hasSubscribers) deadlockChannel.publish(r);
  if (r.kind === 'inversion' || diag.deadlock === 1) process.emitWarning(r.message, { code: 'MUTEXPROF_DEADLOCK', detail: formatStacks(r) });
}

function formatStacks(r: DeadlockReport): string {
  return r.stacks
    .map((s, i) => `${r.kind === 'inversion' ? (i === 0 ? 'this order, taken at:' : 'the other order, taken at:') : 'at:'}\n${s.map((f) => `    ${f.name} (${f.file}:${f.line})`).join('\n')}`)
    .join('\n');
}

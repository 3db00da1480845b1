// Async deadlock detection by async context, as go-deadlock and Linux's lockdep do it for threads.
//
// A task is an async context (AsyncLocalStorage): the acquisitions it holds and the one it waits for. withLock
// and withRLock run their function as the task that holds the lock (AsyncLocalStorage.run, precisely scoped).
// lock() and rLock() outside them mark the rest of the caller's context with a task (enterWith), which later
// code of the same flow finds after its next await. enterWith marks the whole synchronous run it happens in, and
// that run may be shared: the prefixes of sibling async calls started together (Promise.all over a map), the
// requests of one keep-alive connection, the ticks of one setInterval. So a task found in the context counts only
// in another execution than the one that made it (async_hooks.executionAsyncId differs), and only while it holds
// or waits for something; otherwise the caller gets a task of its own.
// Work a holder starts without awaiting (a detached setImmediate, an event handler) inherits its context and so
// counts as the holder: lock() there on a lock the holder holds is reported as re-entry — a deadlock if the
// holder awaits that work. Start such work with `detachedTask(fn)` to make it a task of its own.
//
// Three findings:
//   re-entry     lock() on a lock the caller's task holds, in a way that can never be granted;
//   cycle        the new wait closes a cycle in the wait-for graph (task → the tasks holding, or queued ahead
//                for, the lock it waits for), of any length;
//   inversion    A taken before B in one place and B before A in another, even if they never ran at once: a
//                potential deadlock, reported once per pair of locks with both acquisition stacks, never thrown.
// 'warn' reports them (channel `mutexprof:deadlock`, and process.emitWarning code MUTEXPROF_DEADLOCK) and the
// call proceeds; 'throw' rejects the lock() that would close a cycle or re-enter, at once, with DeadlockError,
// and changes nothing for any other waiter or holder. Independent tasks that merely contend form no cycle.

import { AsyncLocalStorage, executionAsyncId } from 'node:async_hooks';
import { channel } from 'node:diagnostics_channel';
import { shared } from '../shared.js';
import { capture, resolve, type Captured, type Frame } from '../profile/stack.js';
import { diag, reactivate, lockId, type Acquisition, type LockMode, type Task, type TrackedLock } from './acquisitions.js';

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

/** What `lock()` rejects with when it would deadlock, in setDeadlockDetection('throw'). */
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

const deadlockChannel = channel('mutexprof:deadlock');
const MAX_ORDER_EDGES = 10_000;

interface Order {
  readonly tasks: AsyncLocalStorage<Task>;
  nextTask: number;
  /** lock id → lock id → where the second was taken while holding the first */
  readonly edges: Map<number, Map<number, Captured>>;
  edgeCount: number;
  readonly reported: Set<string>;
}

const order = shared<Order>('deadlock', () => ({ tasks: new AsyncLocalStorage<Task>(), nextTask: 1, edges: new Map(), edgeCount: 0, reported: new Set() }));

/** Turns deadlock detection on (turning on the lock tracking it needs) or off; returns the previous mode. */
export function setDeadlockDetection(mode: 'off' | 'warn' | 'throw'): 'off' | 'warn' | 'throw' {
  const modes = ['off', 'warn', 'throw'] as const;
  const previous = modes[diag.deadlock];
  const i = modes.indexOf(mode);
  if (i < 0) throw new TypeError(`mutexprof: setDeadlockDetection(mode): mode must be 'off', 'warn' or 'throw', got ${typeof mode === 'string' ? JSON.stringify(mode) : typeof mode}`);
  diag.deadlock = i;
  // Off: the task store lets go of the process, or its promise hooks (Node < 22: one per promise) would cost the
  // service as much as detection itself did. Tasks start afresh if it is turned on again.
  if (i === 0) order.tasks.disable();
  reactivate();
  return previous;
}

/** `origin`: the execution that entered it with enterWith, or SCOPED for a task run() scopes. */
function newTask(origin: number): Task {
  return { id: order.nextTask++, held: [], waiting: null, origin };
}

const SCOPED = -1;

/** The context's task, if it is the caller's (see the top of this file), else null. */
function contextTask(): Task | null {
  const t = order.tasks.getStore();
  if (t === undefined) return null;
  if (t.origin === SCOPED) return t;
  return t.origin !== executionAsyncId() && (t.held.length > 0 || t.waiting !== null) ? t : null;
}

/** @internal The caller's task for a lock() outside withLock: the context's, or a new one entered into it. */
export function taskOfCaller(): Task {
  const t = contextTask();
  if (t !== null) return t;
  const fresh = newTask(executionAsyncId());
  order.tasks.enterWith(fresh);
  return fresh;
}

/** @internal The task withLock runs its function as: the caller's, or a new one. */
export function taskForScope(): Task {
  return contextTask() ?? newTask(SCOPED);
}

/** @internal Runs fn as `task` (withLock's function). */
export function runAs<T>(task: Task, fn: () => T): T {
  return order.tasks.run(task, fn);
}

/**
 * Runs `fn` as a task of its own for deadlock detection: for work a lock holder starts and does not await (a
 * detached setImmediate, an event handler), which would otherwise inherit the holder's context and count as the
 * holder. Returns fn's result.
 */
export function detachedTask<T>(fn: () => T): T {
  if (typeof fn !== 'function') throw new TypeError(`mutexprof: detachedTask(fn): fn must be a function, got ${typeof fn}`);
  return order.tasks.run(newTask(SCOPED), fn);
}

/** The tasks a waiter of `lock` (mode `mode`, queued after `upTo` if given, else last) waits for. */
function blockers(lock: TrackedLock, mode: LockMode, upTo: Acquisition | null): Task[] {
  const out: Task[] = [];
  const ex = lock._acq;
  if (ex !== null && ex.task !== null) out.push(ex.task);
  if (mode === 'exclusive' && lock._sharedAcqs !== null) for (const a of lock._sharedAcqs) if (a.task !== null) out.push(a.task);
  // FIFO: the waiters ahead are granted first (a reader waits only for the writers ahead of it)
  for (let w = lock._head; w !== null; w = w.next as typeof w) {
    const a = w._acq;
    if (a === upTo) break;
    if (a !== null && a.task !== null && (mode === 'exclusive' || a.mode === 'exclusive')) out.push(a.task);
  }
  return out;
}

function linkOf(a: Acquisition): DeadlockLink {
  const labels: Record<string, string> = a.lock.name === '' ? {} : { lock: a.lock.name };
  if (a.labels !== null) for (const [k, v] of a.labels.pairs) labels[k] = v;
  return {
    lock: a.lock.name,
    kind: a.lock._kind(),
    mode: a.mode,
    holderLabels: labels,
    holderStack: a.stack === null ? null : resolve(a.stack, a.lock._leafFor(a.mode)),
  };
}

function describe(l: TrackedLock): string {
  return l.name === '' ? l._kind() : `${l._kind()} ${JSON.stringify(l.name)}`;
}

/** Whether `task` holds `lock`. */
function holds(task: Task, lock: TrackedLock): boolean {
  if (lock._acq !== null && lock._acq.task === task) return true;
  if (lock._sharedAcqs !== null) for (const a of lock._sharedAcqs) if (a.task === task) return true;
  return false;
}

/** What makes waiters of `l` wait: its exclusive holder, a shared one, or the waiter at the head. */
function blocking(l: TrackedLock): Acquisition | null {
  if (l._acq !== null) return l._acq;
  if (l._sharedAcqs !== null) for (const a of l._sharedAcqs) return a;
  return l._head?._acq ?? null;
}

/**
 * @internal A task is about to wait for `lock`: if that closes a cycle (re-entry is a cycle of one), report it,
 * and in 'throw' mode return the error to reject with (nothing has changed yet). `skip` is the lock() method.
 */
export function checkWait(task: Task, lock: TrackedLock, mode: LockMode, skip: (...args: never[]) => unknown): DeadlockError | null {
  // A task that holds nothing closes no cycle: nobody can be waiting for it (a waiter behind it in a queue waits
  // for it, but it does not wait for that one). Most waits end here, before any search.
  if (task.held.length === 0) return null;
  // Depth-first over the wait-for graph, remembering the path of locks. Each lock is scanned once: a task that
  // waits for a lock already scanned is blocked by tasks of that scan (holders, or waiters ahead of it), so the
  // search is linear in the waiters, not quadratic in one lock's queue.
  const path: TrackedLock[] = [lock];
  const seen = new Set<Task>();
  const scanned = new Set<TrackedLock>([lock]);
  const search = (l: TrackedLock, m: LockMode, upTo: Acquisition | null): boolean => {
    for (const b of blockers(l, m, upTo)) {
      if (b === task) return true;
      if (seen.has(b)) continue;
      seen.add(b);
      const w = b.waiting;
      if (w === null || scanned.has(w.lock)) continue;
      scanned.add(w.lock);
      const next = w.lock;
      path.push(next);
      if (search(next, w.mode, w)) return true;
      path.pop();
    }
    return false;
  };
  if (!search(lock, mode, null)) return null;
  const links = path.map((l): DeadlockLink => {
    const a = blocking(l);
    return a !== null ? linkOf(a) : { lock: l.name, kind: l._kind(), mode: 'exclusive', holderLabels: l.name === '' ? {} : { lock: l.name }, holderStack: null };
  });
  const reentry = path.length === 1 && holds(task, lock);
  const message = reentry
    ? `mutexprof: deadlock: ${mode === 'shared' ? 'rLock' : 'lock'}() of ${describe(lock)} in an async context that already holds it (re-entry): it can never be granted`
    : `mutexprof: deadlock: ${mode === 'shared' ? 'rLock' : 'lock'}() of ${describe(lock)} would close a wait cycle: ${[...path, lock].map(describe).join(' → ')}`;
  const here = resolve(capture(skip, 1), lock._leafFor(mode));
  report({ kind: reentry ? 'reentry' : 'cycle', message, cycle: links, stacks: [here] });
  return diag.deadlock === 2 ? new DeadlockError(message, links) : null;
}

/**
 * @internal A task that holds `task.held` calls lock() on `lock`: record the order (first time each pair is
 * seen, with the stack of this call) and report an inversion if the other order was seen before.
 */
export function noteOrder(task: Task, lock: TrackedLock, skip: (...args: never[]) => unknown): void {
  if (task.held.length === 0) return;
  const to = lockId(lock);
  let here: Captured | null = null;
  for (const a of task.held) {
    if (a.lock === lock) continue;
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
        stacks: [resolve(here, lock._leafFor('exclusive')), resolve(reverse, a.lock._leafFor('exclusive'))],
      });
    }
  }
}

/**
 * @internal A wait that can never be granted, found by the lock itself (a Semaphore asked for more permits than it
 * leaves its own holder): reported as re-entry; in 'throw' mode, the error to reject with.
 */
export function refuse(lock: TrackedLock, what: string, skip: (...args: never[]) => unknown): DeadlockError | null {
  const message = `mutexprof: deadlock: ${what}`;
  const links: DeadlockLink[] = [{ lock: lock.name, kind: lock._kind(), mode: 'shared', holderLabels: lock.name === '' ? {} : { lock: lock.name }, holderStack: null }];
  report({ kind: 'reentry', message, cycle: links, stacks: [resolve(capture(skip, 1), lock._leafFor('shared'))] });
  return diag.deadlock === 2 ? new DeadlockError(message, links) : null;
}

function report(r: DeadlockReport): void {
  if (deadlockChannel.hasSubscribers) deadlockChannel.publish(r);
  if (r.kind === 'inversion' || diag.deadlock === 1) process.emitWarning(r.message, { code: 'MUTEXPROF_DEADLOCK', detail: formatStacks(r) });
}

function formatStacks(r: DeadlockReport): string {
  return r.stacks.map((s, i) => `${r.kind === 'inversion' ? (i === 0 ? 'this order, taken at:' : 'the other order, taken at:') : 'at:'}\n${s.map((f) => `    ${f.name} (${f.file}:${f.line})`).join('\n')}`).join('\n');
}

// The live view: who holds and who waits now (a superset of Web Locks' navigator.locks.query()), and the knobs
// of what it may cost: lock tracking and the hold profile.

import type { LockMode, LockView } from '../locks/seam.js';
import { sampling, checkRate, setFraction } from '../profile/sampling.js';
import { resolve, type Frame } from '../profile/stack.js';
import { diag, reactivate, lockId, refreshCoarse, pruneLive, liveList, sharedHolders, OFF, ON, STACKS, type Acquisition } from './records.js';

/** One holder or waiter of a lock, now. */
export interface LockState {
  /** the lock's name ('' if none) */
  readonly name: string;
  /** 'Mutex', 'RWMutex', 'Semaphore', … */
  readonly kind: string;
  readonly mode: LockMode;
  /**
   * How long it has held / waited so far (ms). Waiters are always known (to ±10 ms with tracking 'off'); holders
   * with tracking 'on', to ±10 ms (exactly when the hold profile follows the acquisition or metrics are on); null
   * otherwise.
   */
  readonly ageMs: number | null;
  /** the acquiring or waiting context's labels (withLabels, the `labels` option) and `lock` */
  readonly labels: Readonly<Record<string, string>>;
  /** the lock() call stack, leaf first; null unless tracking is 'stacks' */
  readonly stack: readonly Frame[] | null;
  /** the same number for all holders and waiters of one lock */
  readonly lockId: number;
  /** a Semaphore's permits held or asked for (when known) */
  readonly weight?: number;
}

/**
 * Sets what the live view and the detectors may cost; returns the previous mode. `'off'` (the default): nothing
 * on the uncontended path; queryLocks() lists every lock that has waiters, with its waiters. `'on'`: every held
 * lock too, with its age and labels (a record per acquisition). `'stacks'`: plus each lock() call's stack.
 */
export function setLockTracking(mode: 'off' | 'on' | 'stacks'): 'off' | 'on' | 'stacks' {
  const modes = ['off', 'on', 'stacks'] as const;
  const previous = modes[diag.tracking];
  const i = modes.indexOf(mode);
  if (i < 0) throw new TypeError(`mutexprof: setLockTracking(mode): mode must be 'off', 'on' or 'stacks', got ${typeof mode === 'string' ? JSON.stringify(mode) : typeof mode}`);
  diag.tracking = i === 0 ? OFF : i === 1 ? ON : STACKS;
  reactivate();
  return previous;
}

/**
 * The hold-time profile's fraction, with Go's fraction semantics: `< 0` only reads, 0 off (the default), 1 every
 * acquisition, N one in N (weighted ×N). Every acquisition counts, contended or not, so that a lock held long
 * before it is contended shows up. Returns the previous fraction.
 */
export function setHoldProfileFraction(rate: number): number {
  checkRate('setHoldProfileFraction', rate);
  const old = sampling.hold.fraction;
  if (rate >= 0) {
    setFraction(sampling.hold, rate);
    reactivate();
  }
  return old;
}

function labelsOf(lock: LockView, a: { labels: { pairs: ReadonlyArray<readonly [string, string]> } | null } | null): Record<string, string> {
  const out: Record<string, string> = lock.name === '' ? {} : { lock: lock.name };
  if (a?.labels) for (const [k, v] of a.labels.pairs) out[k] = v;
  return out;
}

/** One acquisition's state now. */
export function stateOf(a: Acquisition, nowNs: number): LockState {
  return {
    name: a.lock.name,
    kind: a.lock.kind,
    mode: a.mode,
    ageMs: (nowNs - a.since) / 1e6,
    labels: labelsOf(a.lock, a),
    stack: a.stack === null ? null : resolve(a.stack, a.lock.leafFor(a.mode)),
    ...(a.lock.kind === 'Semaphore' ? { weight: a.weight } : {}), // the drop-in's too (its permits are not fixed)
    lockId: lockId(a.lock),
  };
}

/** The holders of `lock` now. */
export function holdersOf(lock: LockView, nowNs: number): LockState[] {
  const out: LockState[] = [];
  const holder = lock.holder as Acquisition | null;
  if (holder !== null && holder.tracked) out.push(stateOf(holder, nowNs));
  const list = sharedHolders(lock);
  if (list !== null) for (const a of list) out.push(stateOf(a, nowNs));
  const { exclusive, shared } = untracked(lock);
  const unknown = (mode: LockMode): LockState => ({ name: lock.name, kind: lock.kind, mode, ageMs: null, labels: labelsOf(lock, null), stack: null, lockId: lockId(lock) });
  for (let i = 0; i < exclusive; i++) out.push(unknown('exclusive'));
  for (let i = 0; i < shared; i++) out.push(unknown('shared'));
  return out;
}

/** The waiters of `lock` now, oldest first. */
export function waitersOf(lock: LockView, nowNs: number): LockState[] {
  const out: LockState[] = [];
  const nowMs = nowNs / 1e6;
  for (let w = lock.firstWaiter; w !== null; w = w.next) {
    const a = w.acq as Acquisition | null;
    if (a !== null && a.tracked) out.push(stateOf(a, nowNs));
    else {
      out.push({
        name: lock.name,
        kind: lock.kind,
        mode: w.mode,
        ageMs: Math.max(0, nowMs - w.since),
        labels: labelsOf(lock, a === null ? null : { labels: a.labelsOption }),
        stack: null,
        ...(lock.kind === 'Semaphore' ? { weight: w.weight } : {}),
        lockId: lockId(lock),
      });
    }
  }
  return out;
}

/** Every lock that is held (tracked) or waited for now. */
export function liveLocks(): LockView[] {
  pruneLive();
  return [...liveList()];
}

/**
 * Holders of `lock` without a record (acquired while tracking was off): exclusive (0 or 1) and shared counts. A
 * Semaphore's unrecorded permits count as one holder (it does not know by whom they are held).
 */
function untracked(lock: LockView): { exclusive: number; shared: number } {
  const now = lock.holding();
  const holder = lock.holder as Acquisition | null;
  const exclusive = now.exclusive - (holder !== null && holder.tracked ? 1 : 0);
  let recorded = 0;
  const list = sharedHolders(lock);
  if (list !== null) for (const a of list) recorded += lock.permits === undefined ? 1 : a.weight;
  const shared = now.shared - recorded;
  return { exclusive, shared: lock.permits === undefined ? shared : shared > 0 ? 1 : 0 };
}

const oldestFirst = (x: LockState, y: LockState): number => (y.ageMs ?? -1) - (x.ageMs ?? -1);

/**
 * Who holds and who waits now, oldest first: every lock that has waiters (always), and every held lock when
 * tracking is on. A superset of Web Locks' `navigator.locks.query()`.
 */
export function queryLocks(): { held: LockState[]; pending: LockState[] } {
  refreshCoarse();
  const nowNs = sampling.now();
  const held: LockState[] = [];
  const pending: LockState[] = [];
  for (const lock of liveLocks()) {
    held.push(...holdersOf(lock, nowNs));
    pending.push(...waitersOf(lock, nowNs));
  }
  return { held: held.sort(oldestFirst), pending: pending.sort(oldestFirst) };
}

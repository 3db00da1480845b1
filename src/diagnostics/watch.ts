// The stall watchdog: go-deadlock's timeout report and JFR's monitor threshold, for async locks. A check every
// `intervalMs` (an unreferenced timer: it never keeps the process alive) looks at the locks that have waiters and
// at the held ones, and reports once per episode:
//   wait   a lock whose oldest waiter has waited ≥ waitMs; the episode lasts until no waiter of it is that old;
//   hold   an acquisition held ≥ holdMs (one report per acquisition; holds need tracking, which a watchdog
//          with holdMs turns on while it runs).
// Reports go to `onStall` if given, always to the diagnostics channel `mutexprof:stall`, and, without onStall,
// to process.emitWarning (code MUTEXPROF_STALL).

import { channel } from 'node:diagnostics_channel';
import { checkFunction, checkOptionsObject, checkTimerMs } from '../shared/check.js';
import { sampling } from '../profile/sampling.js';
import type { LockView } from '../locks/seam.js';
import { diag, reactivate, lockId, refreshCoarse, sharedHolders, type Acquisition } from './records.js';
import { holdersOf, liveLocks, waitersOf, type LockState } from './query.js';

/** A stall: a lock waited for, or held, longer than the watchdog's threshold. */
export interface StallReport {
  readonly reason: 'wait' | 'hold';
  /** the lock's name ('' if none) */
  readonly lock: string;
  readonly kind: string;
  readonly lockId: number;
  /** the oldest waiter's wait so far (ms), 0 if none */
  readonly waitMs: number;
  /** the oldest holder's hold so far (ms), null if not known (tracking off) */
  readonly holdMs: number | null;
  /** the oldest holder (labels, stack if captured), null if nobody holds it */
  readonly holder: LockState | null;
  readonly holders: readonly LockState[];
  /** oldest first */
  readonly waiters: readonly LockState[];
  /** one line, as the warning says it */
  readonly message: string;
}

/** Options of watchLocks. */
export interface WatchOptions {
  /** Report a lock whose oldest waiter has waited this long (ms). Default 1000 when holdMs is not given either. */
  waitMs?: number;
  /** Report an acquisition held this long (ms); turns lock tracking on while the watchdog runs. */
  holdMs?: number;
  /** How often to look (ms). Default: half the smaller threshold, at least 10. */
  intervalMs?: number;
  /** Receives each report (else a process warning is emitted). */
  onStall?: (report: StallReport) => void;
}

const stallChannel = channel('mutexprof:stall');

function describe(lock: LockView): string {
  return lock.describe();
}

/** Starts a stall watchdog; returns the function that stops it. */
export function watchLocks(options: WatchOptions = {}): () => void {
  const o = checkOptionsObject<WatchOptions>('watchLocks', options) ?? {};
  const holdMs = o.holdMs === undefined ? undefined : checkTimerMs('watchLocks', 'holdMs', o.holdMs, 0);
  const waitMs = o.waitMs === undefined ? (holdMs === undefined ? 1000 : undefined) : checkTimerMs('watchLocks', 'waitMs', o.waitMs, 0);
  const intervalMs = checkTimerMs('watchLocks', 'intervalMs', o.intervalMs, Math.max(10, Math.min(waitMs ?? Infinity, holdMs ?? Infinity) / 2));
  const onStall = checkFunction<(r: StallReport) => void>('watchLocks', 'onStall', o.onStall);

  const stalled = new Set<LockView>(); // locks in a wait episode
  const reportedHolds = new WeakSet<Acquisition>();
  const deliver = (r: StallReport): void => {
    if (stallChannel.hasSubscribers) stallChannel.publish(r);
    if (onStall !== undefined) {
      try {
        onStall(r);
      } catch (e) {
        process.emitWarning(`mutexprof: watchLocks onStall threw: ${String(e)}`, { code: 'MUTEXPROF_STALL' });
      }
    } else process.emitWarning(r.message, { code: 'MUTEXPROF_STALL', detail: detail(r) });
  };
  const reportOf = (reason: 'wait' | 'hold', lock: LockView, nowNs: number): StallReport => {
    const holders = holdersOf(lock, nowNs).sort((x, y) => (y.ageMs ?? -1) - (x.ageMs ?? -1));
    const waiters = waitersOf(lock, nowNs);
    const holder = holders[0] ?? null;
    const waited = waiters[0]?.ageMs ?? 0;
    const held = holder?.ageMs ?? null;
    const message =
      reason === 'wait'
        ? `mutexprof: ${describe(lock)} stalled: ${waiters.length} waiting, the oldest for ${Math.round(waited)} ms${held === null ? '' : `; held for ${Math.round(held)} ms`}`
        : `mutexprof: ${describe(lock)} held for ${Math.round(held ?? 0)} ms${waiters.length > 0 ? `, ${waiters.length} waiting` : ''}`;
    return { reason, lock: lock.name, kind: lock.kind, lockId: lockId(lock), waitMs: waited, holdMs: held, holder, holders, waiters, message };
  };

  const check = (): void => {
    refreshCoarse();
    const nowNs = sampling.now();
    const seen = new Set<LockView>();
    for (const lock of liveLocks()) {
      if (waitMs !== undefined && lock.firstWaiter !== null) {
        const oldest = waitersOf(lock, nowNs)[0];
        if (oldest !== undefined && (oldest.ageMs ?? 0) >= waitMs) {
          seen.add(lock);
          if (!stalled.has(lock)) {
            stalled.add(lock);
            deliver(reportOf('wait', lock, nowNs));
          }
        }
      }
      if (holdMs !== undefined) {
        const held = [lock.holder as Acquisition | null, ...(sharedHolders(lock) ?? [])].filter((a): a is Acquisition => a !== null && a.tracked && a.state === 'held');
        for (const a of held) {
          if ((nowNs - a.since) / 1e6 >= holdMs && !reportedHolds.has(a)) {
            reportedHolds.add(a);
            deliver(reportOf('hold', lock, nowNs));
          }
        }
      }
    }
    for (const lock of stalled) if (!seen.has(lock)) stalled.delete(lock); // episode over
  };

  if (holdMs !== undefined) {
    diag.watchers++;
    reactivate();
  }
  const timer = setInterval(check, intervalMs);
  timer.unref();
  let running = true;
  return () => {
    if (!running) return;
    running = false;
    clearInterval(timer);
    if (holdMs !== undefined) {
      diag.watchers--;
      reactivate();
    }
  };
}

function detail(r: StallReport): string {
  const line = (s: LockState, what: string): string => {
    const labels = Object.entries(s.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    const stack = s.stack === null ? '' : '\n' + s.stack.map((f) => `      ${f.name} (${f.file}:${f.line})`).join('\n');
    return `  ${what} ${s.mode} ${s.ageMs === null ? 'for ?' : `for ${Math.round(s.ageMs)} ms`} ${labels}${stack}`;
  };
  return [...r.holders.map((h) => line(h, 'held')), ...r.waiters.map((w) => line(w, 'waiting'))].join('\n');
}

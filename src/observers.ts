// The observers of the locks: the implementation of their seam (src/locks/seam.ts), as Go's runtime implements what
// sync declares. Every decision about what an acquisition, a wait or a release costs is made here, from the settings
// of the profiles and diagnostics:
//   labels, acquiring      the labels option (profile/labels); a record when diagnostics or the hold profile need one,
//                          its task and the lock order it teaches (diagnostics/deadlock);
//   granted, released,     the records' lists and the live list (diagnostics/records), the task's holdings
//   sharedReleased         (deadlock), the hold profile and hold metrics (profile/events, profile/lockstats);
//   waiting, gaveUp        deadlock detection's checks of a wait;
//   firstWaiter            the live list;
//   waitStarted, waitEnded, releaseEvent    the contention accounting (profile/contention): the mutex and block
//                          profiles, wait metrics, and the wait observers (traces: observeWaits);
//   the rest               deadlock detection's flows: watched grants and guards, scopes.
// Each entry point of mutexprof installs them for its copy's locks (installObservers).

import { hooks, observing, type Acquisition as SeamAcquisition, type LockHooks, type LockMode, type LockView, type Method, type OptionLabels, type Scope } from './locks/seam.js';
import * as contention from './profile/contention.js';
import { holdEvent } from './profile/events.js';
import { labelSetOf } from './profile/labels.js';
import { recordHold } from './profile/lockstats.js';
import { sampling } from './profile/sampling.js';
import * as deadlock from './diagnostics/deadlock.js';
import * as records from './diagnostics/records.js';
import { diag, type Acquisition, type Task } from './diagnostics/records.js';

function acquiring(lock: LockView, mode: LockMode, labels: OptionLabels | null, skip: Method, scope: Scope | null, weight: number): SeamAcquisition | null {
  if (!observing.acquisitions) return labels === null ? null : records.labelsOnly(lock, mode, labels);
  const holdFraction = records.drawHoldSample();
  if (holdFraction === 0 && !diag.recordAll) return labels === null ? null : records.labelsOnly(lock, mode, labels);
  const task = diag.deadlock !== 0 ? ((scope as Task | null) ?? deadlock.taskOfCaller()) : null;
  if (task !== null) deadlock.noteOrder(task, lock, skip);
  return records.newRecord(lock, mode, labels, skip, task, holdFraction, weight, scope !== null);
}

function granted(a: Acquisition): void {
  if (!a.tracked) return;
  records.granted(a);
  if (a.task !== null) deadlock.taskGranted(a);
}

function released(a: Acquisition): void {
  if (!a.tracked) return;
  records.released(a);
  if (a.task !== null) deadlock.taskReleased(a);
  if (a.holdFraction !== 0 || sampling.metrics) {
    const held = sampling.now() - a.since;
    if (a.holdFraction !== 0 && a.stack !== null) holdEvent(a.lock, a.mode, a.stack, a.holdFraction, a.labels, held);
    if (sampling.metrics) recordHold(a.lock, a.mode, held);
  }
}

function sharedReleased(lock: LockView, record: Acquisition | null | undefined, weight: number): Acquisition | null {
  if (record === null) return null;
  const ended = records.sharedEnded(lock, record, weight, diag.deadlock !== 0 ? deadlock.taskOfReleaser() : null);
  if (ended !== null) released(ended);
  return ended;
}

function waiting(a: Acquisition, signal: AbortSignal | undefined, skip: Method): AbortSignal | undefined {
  if (!a.tracked) return signal;
  records.waitStarts(a);
  return a.task === null ? signal : deadlock.waiting(a, signal, skip);
}

function gaveUp(a: Acquisition): void {
  if (a.task !== null) deadlock.taskGaveUp(a);
}

/** Installs this copy's observers into its locks' seam. */
export function installObservers(): void {
  const installed: LockHooks = {
    labels: labelSetOf,
    acquiring,
    granted,
    resolvedWatched: (a: Acquisition, g: Disposable) => deadlock.resolvedAs(a.task!, g),
    resumeWatched: (a: Acquisition, grant: () => void) => deadlock.resumeAs(a.task!, grant),
    guardUsed: deadlock.guardUsed,
    waiting,
    gaveUp,
    released,
    sharedReleased,
    firstWaiter: records.firstWaiter,
    waitStarted: contention.waitStarted,
    releaseEvent: contention.releaseEvent,
    waitEnded: contention.waitEnded,
    openScope: deadlock.taskForScope,
    runScoped: deadlock.runAs,
    scopeMark: deadlock.scopeMark,
    endScope: deadlock.endScope,
  };
  Object.assign(hooks, installed);
}

// The recorded profiles' recorders (mutex, block, hold), one set per process, and the drain that resolves their
// pending events off the lock's path.
//
// Events wait up to DRAIN_DELAY_MS for their resolution, so that a service sampling a few hundred events a
// second resolves them in batches, with V8's CallSite code and the frame tables warm in the CPU's caches, rather
// than one at a time, cold (bench: profiling, "one V8 stack capture"). A reader never waits for it: snapshots
// resolve what is pending first. DRAIN_NOW pending events (a burst) start the drain on the next turn instead, so
// the ring rarely fills. A turn of the drain resolves for at most DRAIN_SLICE_MS, then yields.

import { shared } from '../shared/state.js';
import { Recorder, type Mark } from './recorder.js';
import { nextTurn, sliceClock } from './slice.js';

const DRAIN_DELAY_MS = 100;
const DRAIN_NOW = 512;
/** How long one turn of the drain may resolve stacks before it yields (ms). */
const DRAIN_SLICE_MS = 4;

interface Settings {
  /** samples each profile keeps before attribution degrades (configureProfiler's maxEntries) */
  maxEntries: number;
  /** a drain is due after DRAIN_DELAY_MS */
  drainScheduled: boolean;
  /** a drain is due on the next turn */
  drainSoon: boolean;
}

export const settings = shared<Settings>('recorder', () => ({ maxEntries: 10_000, drainScheduled: false, drainSoon: false }));

const cap = (): number => settings.maxEntries;

/** The recorded profiles' recorders, one set per process. */
export const recorders = shared('recorders', () => ({ mutex: new Recorder(cap, scheduleDrain), block: new Recorder(cap, scheduleDrain), hold: new Recorder(cap, scheduleDrain) }));

function scheduleDrain(pending: number): void {
  if (pending >= DRAIN_NOW) drainSoon();
  else if (!settings.drainScheduled) {
    settings.drainScheduled = true;
    setTimeout(drainSlice, DRAIN_DELAY_MS).unref();
  }
}

function drainSoon(): void {
  if (settings.drainSoon) return;
  settings.drainSoon = true;
  setImmediate(drainSlice).unref();
}

/** A turn of the drain: resolves for at most DRAIN_SLICE_MS, then yields (to the next turn) if anything is left. */
function drainSlice(): void {
  settings.drainScheduled = settings.drainSoon = false;
  const deadline = sliceClock.now() + DRAIN_SLICE_MS;
  for (const r of Object.values(recorders)) {
    if (!r.drain(deadline)) {
      drainSoon();
      return;
    }
  }
}

/** Waits (yielding to the event loop) until every event before `m` is resolved. */
export async function settle(r: Recorder, m: Mark): Promise<void> {
  while (!r.settled(m)) {
    r.drain(sliceClock.now() + DRAIN_SLICE_MS);
    if (!r.settled(m)) await nextTurn();
  }
}

/**
 * Resolves everything pending, a slice at a time, yielding between slices: what a reader of counts awaits first, so
 * that count() (which resolves what is still pending, synchronously) finds nothing left to do.
 */
export async function settleAll(): Promise<void> {
  for (const r of Object.values(recorders)) while (!r.drain(sliceClock.now() + DRAIN_SLICE_MS)) await nextTurn();
}

/** Resolves everything pending now, synchronously. */
export function drainAll(): void {
  for (const r of Object.values(recorders)) r.drain();
}

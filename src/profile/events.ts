// The profiles' entry points: a sampled release event (mutex profile), a followed wait (block profile), a followed
// hold (hold profile). Each captures a stack and hands the event to its profile's recorder, which resolves and
// aggregates it later (src/profile/recorder.ts).

import type { LockMode, LockView, Method } from '../locks/seam.js';
import { eventLabels, type LabelSet } from './labels.js';
import { recorders } from './drain.js';
import { sampling } from './sampling.js';
import { capture, type Captured } from './stack.js';

/** A sampled release event of `delay` ns on lock `lock`, drawn at `fraction`: the releaser's stack below `skip`, counted ×fraction. */
export function mutexEvent(lock: string, side: string | null, fraction: number, delay: number, leaf: string, skip: Method, labels: LabelSet | null, spare: number): void {
  if (sampling.mutex.fraction <= 0) return; // turned off since the draw
  recorders.mutex.add(capture(skip, spare), leaf, lock, side, fraction, fraction * delay, eventLabels(labels));
}

/**
 * Blocks on the promise of a wait the block profile follows (drawn at `fraction`, the block fraction),
 * then records it by the block rate's rule.
 */
export async function blockWait<T>(p: Promise<T>, w: { t: number; end: number }, lock: string, side: string | null, leaf: string, fraction: number, labels: LabelSet | null): Promise<T> {
  try {
    return await p;
  } finally {
    // Captured here, after resuming: V8's async frames name the caller that awaited lock()/rLock() (or withLock's
    // helper, a library frame: room for it, at the price of an async frame, ~0.03 µs).
    const rate = sampling.blockRate;
    if (rate > 0) {
      const dt = w.end - w.t;
      if (dt >= rate || rate === 1) recorders.block.add(capture(blockWait, 1), leaf, lock, side, fraction, fraction * dt, eventLabels(labels));
      else if (sampling.random() * rate < dt) recorders.block.add(capture(blockWait, 1), leaf, lock, side, (fraction * rate) / dt, fraction * rate, eventLabels(labels));
    }
  }
}

/** A hold the hold profile follows (drawn at `fraction`) ended after `held` ns: recorded at its acquisition's stack. */
export function holdEvent(lock: LockView, mode: LockMode, stack: Captured, fraction: number, labels: LabelSet | null, held: number): void {
  recorders.hold.add(stack, lock.leafFor(mode), lock.name, sideOf(lock, mode), fraction, fraction * held, labels);
}

/** The `mode` label of a lock's samples: an RWMutex's side, read or write; null for other locks. */
export function sideOf(lock: LockView, mode: LockMode): 'read' | 'write' | null {
  return lock.sides ? (mode === 'shared' ? 'read' : 'write') : null;
}

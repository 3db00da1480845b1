// The profiles a recorder feeds, as registry descriptors: mutex and block (Go's sample types, `contentions`/count
// and `delay`/nanoseconds) and hold (`acquisitions`/count, `hold`/nanoseconds); snapshots at a mark, deltas
// between two marks.

import { recorders, settle } from '../profile/drain.js';
import type { Mark, Recorder, RecorderStats, Values } from '../profile/recorder.js';
import { sampling, type Draw } from '../profile/sampling.js';
import { atOnce, sliced, sortByKeyDescending, type Steps } from '../profile/slice.js';
import { drainAll } from '../profile/drain.js';
import { epochNanos } from './proto.js';
import { registerProfile, type ProfileSample, type ProfileSnapshot, type SampleType, type Window } from './registry.js';

const CONTENTION: readonly SampleType[] = [
  { type: 'contentions', unit: 'count' },
  { type: 'delay', unit: 'nanoseconds' },
];

/** What the bounds dropped, for the profile's comments and the index page. */
export function droppedNotes(s: RecorderStats): string[] {
  const notes: string[] = [];
  const keys = s.droppedKeys.length > 0 ? ` (${s.droppedKeys.slice(0, 8).join(', ')}${s.droppedKeys.length > 8 ? ', …' : ''})` : '';
  const half = `more than ${s.maxEntries >>> 1} samples of maxEntries ${s.maxEntries}`;
  if (s.labelsReduced > 0) notes.push(`mutexprof: ${s.labelsReduced} events lost their high-cardinality labels${keys}: ${half}`);
  if (s.labelsDropped > 0) notes.push(`mutexprof: ${s.labelsDropped} events lost all their withLabels labels, kept their stack and lock: ${half}`);
  if (s.stacksDropped > 0) notes.push(`mutexprof: ${s.stacksDropped} events kept only their lock, in its mutexprof.overflow sample: maxEntries ${s.maxEntries} samples reached`);
  return notes;
}

/**
 * The profile's comments: whether it is off in this process (a profile is never empty without saying why), what
 * the bounds dropped, and whether the sampling budget raised its fraction.
 */
function notesOf(r: Recorder, d: Draw, off: () => string | null): string[] {
  const why = off();
  const notes = why === null ? [] : [`mutexprof: the ${why}`];
  notes.push(...droppedNotes(r.stats()));
  if (d.eff > d.fraction)
    notes.push(
      `mutexprof: sampling 1 in ${d.eff} (fraction set: ${d.fraction}): more than maxSampledPerSecond ${sampling.budget} events a second would be sampled; samples weigh the fraction they were drawn at`,
    );
  return notes;
}

function sampleOf(r: Recorder, i: number, count: number, delay: number): ProfileSample {
  const e = r.entries[i];
  const labels: Array<readonly [string, string]> = e.lock === '' ? [] : [['lock', e.lock]];
  if (e.side !== null) labels.push(['mode', e.side]);
  if (e.labels !== null) labels.push(...e.labels.pairs);
  return { key: 'i' + i, frames: e.frames, labels, values: [Math.round(count), Math.round(delay)] };
}

/** Samples with a non-zero value in `v` (minus `base`), largest delay first. */
function* samplesOf(r: Recorder, v: Values, base?: Values): Steps<ProfileSample[]> {
  const n = v.count.length;
  const count = new Float64Array(n);
  const delay = new Float64Array(n);
  const kept = new Uint32Array(n);
  let m = 0;
  for (let i = 0; i < n; i++) {
    count[i] = v.count[i] - (base?.count[i] ?? 0);
    delay[i] = v.delay[i] - (base?.delay[i] ?? 0);
    if (Math.round(count[i]) !== 0 || Math.round(delay[i]) !== 0) kept[m++] = i;
    yield;
  }
  const order = yield* sortByKeyDescending(kept.subarray(0, m), delay);
  const samples: ProfileSample[] = new Array(m);
  for (let k = 0; k < m; k++) {
    const i = order[k];
    samples[k] = sampleOf(r, i, count[i], delay[i]);
    yield;
  }
  return samples;
}

/** A window from `start` (a mark made at `t0`, wall-clock `timeStart`); ending it may open the next at the same mark. */
function windowFrom(r: Recorder, d: Draw, off: () => string | null, name: string, start: Mark, t0: bigint, timeStart: bigint): Window {
  let open = true;
  const cancel = (): void => {
    if (open) r.unmark(start);
    open = false;
  };
  const close = async (reopen: boolean): Promise<{ snapshot: ProfileSnapshot; next: Window | null }> => {
    const end = r.mark();
    const t1 = process.hrtime.bigint();
    const timeEnd = epochNanos();
    try {
      await settle(r, end);
      const before = await r.valuesAt(start);
      const after = await r.valuesAt(end);
      const snapshot = { name, timeNanos: timeStart, durationNanos: Number(t1 - t0), samples: await sliced(samplesOf(r, after, before)), comments: notesOf(r, d, off) };
      // the next window starts where this one ends: nothing between them is lost or counted twice
      return { snapshot, next: reopen ? windowFrom(r, d, off, name, end, t1, timeEnd) : null };
    } catch (e) {
      if (reopen) r.unmark(end); // no next window: its start mark goes (the finally below does it otherwise)
      throw e;
    } finally {
      if (!reopen) r.unmark(end);
      cancel();
    }
  };
  return {
    cancel,
    end: async () => (await close(false)).snapshot,
    roll: async () => {
      const { snapshot, next } = await close(true);
      return { snapshot, next: next! };
    },
  };
}

function register(name: string, description: string, header: string, r: Recorder, d: Draw, off: () => string | null, sampleTypes: readonly SampleType[] = CONTENTION): void {
  notesByName.set(name, () => notesOf(r, d, off));
  registerProfile({
    name,
    description,
    sampleTypes,
    text: { header },
    count: () => r.count(),
    version: () => r.seqNow(), // no event since the last build: the same samples
    async snapshot(): Promise<ProfileSnapshot> {
      const m = r.mark();
      try {
        await settle(r, m);
        const v = await r.valuesAt(m);
        return { name, timeNanos: epochNanos(), durationNanos: 0, samples: await sliced(samplesOf(r, v)), comments: notesOf(r, d, off) };
      } finally {
        r.unmark(m);
      }
    },
    window: () => windowFrom(r, d, off, name, r.mark(), process.hrtime.bigint(), epochNanos()),
    note: () => notesOf(r, d, off).join(' '),
  });
}

const notesByName = new Map<string, () => string[]>();

/**
 * The profile `name` (mutex, block or hold) now, resolved and built at once: for a process's exit, where nothing may
 * wait (a test run's profile files).
 */
export function snapshotNow(name: 'mutex' | 'block' | 'hold'): ProfileSnapshot {
  drainAll();
  const r = recorders[name];
  const n = r.entries.length;
  const v = { count: new Float64Array(n), delay: new Float64Array(n) };
  r.entries.forEach((e, i) => {
    v.count[i] = e.count;
    v.delay[i] = e.delay;
  });
  return { name, timeNanos: epochNanos(), durationNanos: 0, samples: atOnce(samplesOf(r, v)), comments: notesByName.get(name)!() };
}

/** Registers the mutex, block and hold profiles (called once at load by src/index.ts). */
export function registerRecordedProfiles(): void {
  register(
    'block',
    'Stack traces that led to blocking on synchronization primitives (mutexprof: waits in lock and rLock)',
    '--- contention:\ncycles/second=1000000000\n',
    recorders.block,
    sampling.block,
    () => (sampling.blockRate > 0 ? null : 'block profile is off in this process: setBlockProfileRate(0), the default; nothing is recorded'),
  );
  // Values are already scaled by the rate in force when each event was sampled, so the mutex text says
  // `sampling period=1`: google/pprof's legacy parser multiplies by it, and any other number would misstate the
  // totals (Go ≥ 1.20 prints the current rate over pre-scaled values and so overstates them N-fold).
  register(
    'mutex',
    'Stack traces of holders of contended mutexes (mutexprof: releases that ended others’ waits)',
    '--- mutex:\ncycles/second=1000000000\nsampling period=1\n',
    recorders.mutex,
    sampling.mutex,
    () => (sampling.mutex.fraction > 0 ? null : 'mutex profile is off in this process: setMutexProfileFraction(0), the default; nothing is recorded'),
  );
  // Go has no hold profile: its text reads as a contention profile's (a legacy parser sees `acquisitions` as
  // contentions and `hold` as delay).
  register(
    'hold',
    'Stack traces of lock acquisitions, with how long each was held (mutexprof: setHoldProfileFraction)',
    '--- contention:\ncycles/second=1000000000\n',
    recorders.hold,
    sampling.hold,
    () => (sampling.hold.fraction > 0 ? null : 'hold profile is off in this process: setHoldProfileFraction(0), the default; nothing is recorded'),
    [
      { type: 'acquisitions', unit: 'count' },
      { type: 'hold', unit: 'nanoseconds' },
    ],
  );
}

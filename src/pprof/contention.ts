// The profiles a recorder feeds (mutex and block), as registry descriptors: samples with Go's sample types
// (`contentions`/count, `delay`/nanoseconds), snapshots at a mark, deltas between two marks.

import { recorders, settle, type Recorder, type RecorderStats } from '../profile/recorder.js';
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
  if (s.labelsReduced > 0) notes.push(`mutexprof: ${s.labelsReduced} events kept without their high-cardinality labels${keys}: past ${s.maxEntries >>> 1} of maxEntries ${s.maxEntries} samples`);
  if (s.labelsDropped > 0) notes.push(`mutexprof: ${s.labelsDropped} events kept their stack and lock but no withLabels labels: past ${s.maxEntries - (s.maxEntries >>> 2)} of maxEntries ${s.maxEntries} samples`);
  if (s.stacksDropped > 0) notes.push(`mutexprof: ${s.stacksDropped} events kept only their lock, in its mutexprof.overflow sample: maxEntries ${s.maxEntries} samples reached`);
  return notes;
}

function sampleOf(r: Recorder, i: number, count: number, delay: number): ProfileSample {
  const e = r.entries[i];
  const labels: Array<readonly [string, string]> = e.lock === '' ? [] : [['lock', e.lock]];
  if (e.labels !== null) labels.push(...e.labels.pairs);
  return { key: 'i' + i, frames: e.frames, labels, values: [Math.round(count), Math.round(delay)] };
}

/** Samples with any non-zero value among count[i] − base[i], largest delay first. */
function samplesOf(r: Recorder, count: Float64Array, delay: Float64Array, base?: { count: Float64Array; delay: Float64Array }): ProfileSample[] {
  const order: number[] = [];
  const c = base === undefined ? count : count.map((v, i) => v - (base.count[i] ?? 0));
  const d = base === undefined ? delay : delay.map((v, i) => v - (base.delay[i] ?? 0));
  for (let i = 0; i < c.length; i++) if (Math.round(c[i]) !== 0 || Math.round(d[i]) !== 0) order.push(i);
  order.sort((a, b) => d[b] - d[a]);
  return order.map((i) => sampleOf(r, i, c[i], d[i]));
}

function register(name: string, description: string, header: string, r: Recorder): void {
  registerProfile({
    name,
    description,
    sampleTypes: CONTENTION,
    text: { header },
    count: () => r.count(),
    version: () => r.seqNow(), // no event since the last build: the same samples
    async snapshot(): Promise<ProfileSnapshot> {
      const m = r.mark();
      try {
        await settle(r, m);
        const v = r.valuesAt(m);
        return { name, timeNanos: epochNanos(), durationNanos: 0, samples: samplesOf(r, v.count, v.delay), comments: droppedNotes(r.stats()) };
      } finally {
        r.unmark(m);
      }
    },
    window(): Window {
      const start = r.mark();
      const t0 = process.hrtime.bigint();
      const timeStart = epochNanos();
      let open = true;
      const cancel = (): void => {
        if (open) r.unmark(start);
        open = false;
      };
      return {
        cancel,
        async end(): Promise<ProfileSnapshot> {
          const end = r.mark();
          const duration = Number(process.hrtime.bigint() - t0);
          try {
            await settle(r, end);
            const before = r.valuesAt(start);
            const after = r.valuesAt(end);
            return { name, timeNanos: timeStart, durationNanos: duration, samples: samplesOf(r, after.count, after.delay, before), comments: droppedNotes(r.stats()) };
          } finally {
            r.unmark(end);
            cancel();
          }
        },
      };
    },
    note: () => droppedNotes(r.stats()).join(' '),
  });
}

/** Registers the mutex and block profiles (called once at load by src/index.ts). */
export function registerContentionProfiles(): void {
  register(
    'block',
    'Stack traces that led to blocking on synchronization primitives (mutexprof: waits in lock and rLock)',
    '--- contention:\ncycles/second=1000000000\n',
    recorders.block,
  );
  // Values are already scaled by the rate in force when each event was sampled, so the mutex text says
  // `sampling period=1`: google/pprof's legacy parser multiplies by it, and any other number would misstate the
  // totals (Go ≥ 1.20 prints the current rate over pre-scaled values and so overstates them N-fold).
  register(
    'mutex',
    'Stack traces of holders of contended mutexes (mutexprof: releases that ended others’ waits)',
    '--- mutex:\ncycles/second=1000000000\nsampling period=1\n',
    recorders.mutex,
  );
}

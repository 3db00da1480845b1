// Lock statistics: every contended wait (and, with tracking on, every hold) counted exactly, per lock name, kind
// and mode, into preallocated buckets: a few additions on the lock path, nothing else. What reads them is the
// Prometheus exporter (src/exporters/prometheus.ts), when scraped.
//
// Series are per lock name, kind and mode (unnamed locks share name ''), at most MAX_SERIES of them; past that,
// locks are counted under lock="mutexprof.other". KeyedMutex keys are never part of a series.

import { shared } from '../shared/state.js';
import type { LockMode, LockView } from '../locks/seam.js';

/** */
export const DEFAULT_BUCKETS = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10];
/** The most series kept; more lock names than this are counted as one. */
export const MAX_SERIES = 1000;

/** One series: a lock name, kind and mode. */
export interface Series {
  readonly labels: { lock: string; kind: string; mode: LockMode };
  waits: Float64Array; // per bucket, then +Inf
  waitSum: number;
  waitCount: number;
  holds: Float64Array;
  holdSum: number;
  holdCount: number;
}

/** */
export interface Metrics {
  /** collectors running (collectLockMetrics calls not yet stopped) */
  on: number;
  buckets: number[];
  readonly series: Map<string, Series>;
}

/** */
export const metrics = shared<Metrics>('metrics', () => ({ on: 0, buckets: DEFAULT_BUCKETS, series: new Map() }));

function seriesOf(lock: string, kind: string, mode: LockMode): Series {
  const key = `${lock}\0${kind}\0${mode}`;
  let s = metrics.series.get(key);
  if (s === undefined) {
    if (metrics.series.size >= MAX_SERIES) return seriesOf('mutexprof.other', kind, mode);
    const n = metrics.buckets.length + 1;
    s = { labels: { lock, kind, mode }, waits: new Float64Array(n), waitSum: 0, waitCount: 0, holds: new Float64Array(n), holdSum: 0, holdCount: 0 };
    metrics.series.set(key, s);
  }
  return s;
}

function bucketOf(seconds: number): number {
  const b = metrics.buckets;
  let i = 0;
  while (i < b.length && seconds > b[i]) i++;
  return i;
}

/** A wait of `ns` on a lock ended (granted, or given up). */
export function recordWait(lock: LockView, mode: LockMode, ns: number): void {
  const s = seriesOf(lock.name, lock.kind, mode);
  const seconds = ns / 1e9;
  s.waits[bucketOf(seconds)]++;
  s.waitSum += seconds;
  s.waitCount++;
}

/** A tracked acquisition was released after `ns`. */
export function recordHold(lock: LockView, mode: LockMode, ns: number): void {
  const s = seriesOf(lock.name, lock.kind, mode);
  const seconds = ns / 1e9;
  s.holds[bucketOf(seconds)]++;
  s.holdSum += seconds;
  s.holdCount++;
}

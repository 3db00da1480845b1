// What decides which events are recorded: the rates (Go's semantics), the clock and the random source.
// One set per process (src/shared.ts): a rate set through any copy of mutexprof holds for all.

import { performance } from 'node:perf_hooks';
import { shared } from '../shared.js';

/** @internal */
export interface Sampling {
  /** Whether contended waits are timed (a contention profile or lock metrics are on). Read on the lock path. */
  timing: boolean;
  /** Whether lock metrics are collected: every contended wait is timed and counted (src/exporters/metrics.ts). */
  metrics: boolean;
  mutexRate: number;
  blockRate: number;
  /** 1 in blockFraction of the waits the block rate selects are recorded, weighted ×blockFraction */
  blockFraction: number;
  /** Monotonic nanoseconds, > 0. */
  now: () => number;
  random: () => number;
  /** Mutex events to go until the next sampled one (see drawMutexSample). */
  gap: number;
  /** Waits to go until the next one the block profile follows (see drawBlockSample). */
  blockGap: number;
}

/** @internal */
export const sampling: Sampling = shared<Sampling>('sampling', () => ({
  timing: false,
  metrics: false,
  mutexRate: 0,
  blockRate: 0,
  blockFraction: 1,
  now: () => performance.now() * 1e6,
  random: Math.random,
  gap: 0,
  blockGap: 0,
}));

/** Current time in nanoseconds (monotonic; the origin is arbitrary). */
export function now(): number {
  return sampling.now();
}

/** @internal */
export function checkRate(fn: string, rate: unknown): number {
  if (typeof rate !== 'number') throw new TypeError(`mutexprof: ${fn}(rate): rate must be an integer number, got ${rate === null ? 'null' : typeof rate}`);
  if (!Number.isSafeInteger(rate)) throw new RangeError(`mutexprof: ${fn}(rate): rate must be a safe integer, got ${rate}`);
  return rate;
}

/** @internal Recomputes whether contended waits are timed. */
export function retime(): void {
  sampling.timing = sampling.mutexRate > 0 || sampling.blockRate > 0 || sampling.metrics;
}

/**
 * Go's runtime.SetMutexProfileFraction. `rate < 0` only reads; `0` turns the mutex profile off (the default);
 * `1` records every contention event; `N` records each event with probability 1/N. Returns the previous rate.
 */
export function setMutexProfileFraction(rate: number): number {
  checkRate('setMutexProfileFraction', rate);
  const old = sampling.mutexRate;
  if (rate >= 0) {
    sampling.mutexRate = rate;
    retime();
    if (rate > 1) sampling.gap = nextGap(rate); // the first sampled event is as far away as any other
  }
  return old;
}

/**
 * Go's runtime.SetBlockProfileRate, in nanoseconds: `≤ 0` off; `1` every wait; waits of at least `rate` ns are
 * always recorded, shorter ones with probability duration/rate and weighted to stay unbiased. Returns the
 * previous rate.
 */
export function setBlockProfileRate(rate: number): number {
  checkRate('setBlockProfileRate', rate);
  const old = sampling.blockRate;
  sampling.blockRate = rate > 0 ? rate : 0;
  retime();
  return old;
}

/**
 * mutexprof's addition to Go's block profile: of the waits the block rate would record, record 1 in `n` (drawn
 * when the wait starts) and weight each by `n`, so that estimates stay unbiased. Go's rule keeps every wait
 * longer than the rate, so in a service whose waits are all long the block profile captures a stack per wait,
 * whatever the rate; the fraction bounds that cost, as the mutex fraction does for releases. `n < 0` only reads;
 * `0` and `1` record every wait the rate selects (Go's behaviour, the default). Returns the previous fraction.
 */
export function setBlockProfileFraction(n: number): number {
  checkRate('setBlockProfileFraction', n);
  const old = sampling.blockFraction;
  if (n >= 0) {
    sampling.blockFraction = Math.max(1, n);
    if (n > 1) sampling.blockGap = nextGap(n);
  }
  return old;
}

/** @internal Re-draws the sampling gaps (after the random source changed). */
export function redraw(): void {
  if (sampling.mutexRate > 1) sampling.gap = nextGap(sampling.mutexRate);
  if (sampling.blockFraction > 1) sampling.blockGap = nextGap(sampling.blockFraction);
}

// Each event is sampled with probability 1/rate, independently. Drawn as geometric gaps between sampled events
// (the same distribution), so an unsampled event costs a decrement instead of a random number.
function nextGap(rate: number): number {
  return Math.floor(Math.log(1 - sampling.random()) / Math.log(1 - 1 / rate)) + 1;
}

/** @internal Draws whether the block profile follows a wait that starts now: returns its weight, or 0. */
export function drawBlockSample(): number {
  const n = sampling.blockFraction;
  if (n <= 1) return 1;
  if (--sampling.blockGap > 0) return 0;
  sampling.blockGap = nextGap(n);
  return n;
}

/** @internal Draws whether the next release event of a lock is sampled: returns its weight (the fraction), or 0. */
export function drawMutexSample(): number {
  const rate = sampling.mutexRate;
  if (rate <= 1) return rate <= 0 ? 0 : 1;
  if (--sampling.gap > 0) return 0;
  sampling.gap = nextGap(rate);
  return rate;
}

// What decides which events are recorded: the rates (Go's semantics), the clock and the random source.
// One set per process (src/shared/state.ts): a rate set through any copy of mutexprof holds for all.

import { performance } from 'node:perf_hooks';
import { observing } from '../locks/seam.js';
import { shared } from '../shared/state.js';

/**
 * One profile's draw: which events it records, 1 in `fraction` (Go's fraction semantics), raised while
 * more than the budget would be sampled (see "The budget" below). Kept as plain numbers: read on the lock path.
 */
export interface Draw {
  /** the fraction set: 0 off, 1 every event, N one in N */
  fraction: number;
  /** the fraction in force: `fraction`, or higher while the budget is exceeded; sampled events weigh this much */
  eff: number;
  /** events to go until the next sampled one */
  gap: number;
  /** the length of the current gap when it was drawn */
  drawn: number;
  /** events and sampled events since the budget window started at `since` (ns, 0 = not started) */
  seen: number;
  taken: number;
  since: number;
}

/** */
export interface Sampling {
  /** Whether lock metrics are collected: every contended wait is timed and counted (src/exporters/prometheus.ts). */
  metrics: boolean;
  /** wait observers (src/profile/contention.ts): while any, every contended wait is timed */
  observers: number;
  /** whether a profile or lock metrics need the contention accounting (src/profile/contention.ts); else only observers follow waits */
  accounting: boolean;
  /** the block profile's rate (ns), Go's SetBlockProfileRate */
  blockRate: number;
  /** release events the mutex profile records (its fraction: SetMutexProfileFraction) */
  mutex: Draw;
  /** waits the block profile follows, of those the block rate selects (setBlockProfileFraction) */
  block: Draw;
  /** acquisitions the hold profile follows (setHoldProfileFraction) */
  hold: Draw;
  /** sampled events a second each profile may take before its fraction rises (Infinity: no budget, Go's rule) */
  budget: number;
  /** Monotonic nanoseconds, > 0. */
  now: () => number;
  random: () => number;
}

const newDraw = (fraction: number): Draw => ({ fraction, eff: fraction, gap: 1, drawn: 1, seen: 0, taken: 0, since: 0 });

/** */
export const sampling: Sampling = shared<Sampling>('sampling', () => ({
  metrics: false,
  observers: 0,
  accounting: false,
  blockRate: 0,
  mutex: newDraw(0),
  block: newDraw(1),
  hold: newDraw(0),
  budget: Infinity,
  now: () => performance.now() * 1e6,
  random: Math.random,
}));

/** Current time in nanoseconds (monotonic; the origin is arbitrary). */
export function now(): number {
  return sampling.now();
}

/** */
export function checkRate(fn: string, rate: unknown): number {
  if (typeof rate !== 'number') throw new TypeError(`mutexprof: ${fn}(rate): rate must be an integer number, got ${rate === null ? 'null' : typeof rate}`);
  if (!Number.isSafeInteger(rate)) throw new RangeError(`mutexprof: ${fn}(rate): rate must be a safe integer, got ${rate}`);
  return rate;
}

/** Recomputes whether contended waits are timed (a contention profile, lock metrics or a wait observer is on). */
export function retime(): void {
  sampling.accounting = sampling.mutex.fraction > 0 || sampling.blockRate > 0 || sampling.metrics;
  observing.waits = sampling.accounting || sampling.observers > 0;
}

/**
 * Go's runtime.SetMutexProfileFraction. `rate < 0` only reads; `0` turns the mutex profile off (the default);
 * `1` records every contention event; `N` records each event with probability 1/N. Returns the previous rate.
 */
export function setMutexProfileFraction(rate: number): number {
  checkRate('setMutexProfileFraction', rate);
  const old = sampling.mutex.fraction;
  if (rate >= 0) {
    setFraction(sampling.mutex, rate);
    retime();
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
  const old = sampling.block.fraction;
  if (n >= 0) setFraction(sampling.block, Math.max(1, n));
  return old;
}

/** Sets a draw's fraction: the budget window starts anew, the first sampled event is as far away as any other. */
export function setFraction(d: Draw, fraction: number): void {
  d.fraction = d.eff = fraction;
  d.seen = d.taken = d.since = 0;
  d.gap = d.drawn = fraction > 0 ? nextGap(fraction) : 1;
}

/** Re-draws the sampling gaps (after the random source or the budget changed). */
export function redraw(): void {
  for (const d of [sampling.mutex, sampling.block, sampling.hold]) setFraction(d, d.fraction);
}

// Each event is sampled with probability 1/fraction, independently. Drawn as geometric gaps between sampled
// events (the same distribution), so an unsampled event costs a decrement instead of a random number.
function nextGap(fraction: number): number {
  return fraction <= 1 ? 1 : Math.floor(Math.log(1 - sampling.random()) / Math.log(1 - 1 / fraction)) + 1;
}

/**
 * Draws whether `d`'s profile records the event happening now: returns its weight (the fraction in
 * force), or 0.
 */
export function draw(d: Draw): number {
  if (--d.gap > 0) return d.eff === d.fraction || (d.gap & 15) !== 0 ? 0 : ease(d);
  if (d.eff <= 0) return 0;
  const weight = d.eff;
  if (sampling.budget !== Infinity) rebudget(d);
  d.gap = d.drawn = nextGap(d.eff);
  return weight;
}

// ─── The budget ─────────────────────────────────────────────────────────────────────────────────────────────
// A sampled event costs a V8 stack capture (4–10 µs, bench: "one sampled mutex event"), so at a fixed fraction
// the cost follows the contention: a service at 80 000 contended events a second pays 8 000 captures a second at
// fraction 10, just when it is in trouble. With a budget (configureProfiler({ maxSampledPerSecond })), a profile
// that would sample more than that raises its fraction to the rate it sees ÷ the budget, and lowers it again
// when the rate falls. Every sampled event weighs the fraction it was drawn at, and that fraction is decided from
// earlier events only, so every estimate stays unbiased (each event counts with probability 1/f and weight f).
// Checked at sampled events only: a window ends after a second, or as soon as it has taken the budget.
function rebudget(d: Draw): void {
  const t = sampling.now();
  d.seen += d.drawn;
  d.taken++;
  if (d.since === 0) {
    d.since = t;
    d.seen = d.taken = 0;
    return;
  }
  const dt = t - d.since;
  if ((dt < 1e9 && d.taken < sampling.budget) || dt <= 0) return;
  d.eff = Math.max(d.fraction, Math.ceil((d.seen * 1e9) / dt / sampling.budget));
  d.since = t;
  d.seen = d.taken = 0;
}

// While raised, every 16th event looks at the clock, so the fraction comes back down within about a second
// of the load falling (sampled events alone would come eff÷rate seconds apart). Its gap is drawn anew at the
// lower fraction: gaps are memoryless, so redrawing one at any time keeps every event's probability 1/eff.
function ease(d: Draw): number {
  const t = sampling.now();
  const dt = t - d.since;
  if (dt < 1e9) return 0;
  const eff = Math.max(d.fraction, Math.ceil(((d.seen + d.drawn - d.gap) * 1e9) / dt / sampling.budget));
  if (eff < d.eff) {
    d.eff = eff;
    d.since = t;
    d.seen = d.taken = 0;
    d.gap = d.drawn = nextGap(eff);
  }
  return 0;
}

/** Draws whether the block profile follows a wait that starts now: the fraction in force, or 0. */
export function drawBlockSample(): number {
  return draw(sampling.block);
}

/** Draws whether the next release event of a lock is sampled: the fraction in force, or 0. */
export function drawMutexSample(): number {
  return draw(sampling.mutex);
}

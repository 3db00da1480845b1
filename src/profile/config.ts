// configureProfiler: the profiler's clock, random source, bounds and budget.

import { drainAll, settings } from './drain.js';
import { redraw, sampling } from './sampling.js';
import { getMaxDepth, setMaxDepth } from './stack.js';

/** Profiler settings; every field is optional. */
export interface ProfilerConfig {
  /** Clock in nanoseconds (monotonic, always > 0). Default: performance.now() × 1e6. Inject one for deterministic tests. */
  now?: () => number;
  /** Uniform random numbers in [0, 1), for sampling decisions. Default Math.random. */
  random?: () => number;
  /** Distinct samples kept per profile before attribution degrades (see "Bounds" in the README). Default 10 000. */
  maxEntries?: number;
  /** User frames kept per stack. */
  maxDepth?: number;
  /**
   * Sampled events a second each profile (mutex, block, hold) may take before its fraction rises: a bound on what
   * profiling costs however contended the service gets. Estimates stay unbiased (each sampled event weighs the
   * fraction it was drawn at). Default Infinity: Go's fixed fractions.
   */
  maxSampledPerSecond?: number;
}

/**
 * Changes profiler settings (any subset) and returns the previous ones. When `maxDepth` or `maxEntries` changes,
 * events captured before the call are resolved first, under the settings they were captured with. Bad values
 * throw and change nothing.
 */
export function configureProfiler(config: ProfilerConfig): Required<ProfilerConfig> {
  if (config === null || typeof config !== 'object') throw new TypeError('mutexprof: configureProfiler(config): config must be an object');
  const { now: n, random: r, maxEntries: m, maxDepth: d, maxSampledPerSecond: b } = config;
  if (n !== undefined && typeof n !== 'function') throw new TypeError('mutexprof: configureProfiler: now must be a function');
  if (r !== undefined && typeof r !== 'function') throw new TypeError('mutexprof: configureProfiler: random must be a function');
  if (m !== undefined && (!Number.isSafeInteger(m) || m < 1)) throw new RangeError(`mutexprof: configureProfiler: maxEntries must be a positive integer, got ${String(m)}`);
  if (d !== undefined && (!Number.isSafeInteger(d) || d < 1 || d > 1024)) throw new RangeError(`mutexprof: configureProfiler: maxDepth must be an integer in 1..1024, got ${String(d)}`);
  if (b !== undefined && (typeof b !== 'number' || !(b >= 1))) throw new RangeError(`mutexprof: configureProfiler: maxSampledPerSecond must be a number ≥ 1 (or Infinity), got ${String(b)}`);
  const previous: Required<ProfilerConfig> = { now: sampling.now, random: sampling.random, maxEntries: settings.maxEntries, maxDepth: getMaxDepth(), maxSampledPerSecond: sampling.budget };
  // Only the depth and the cap decide how a pending event is resolved and admitted, so only their change resolves
  // what is pending first: synchronously, up to PENDING events a profile, a stall the other settings (a budget tuned
  // while the service runs) need not cost.
  if ((d !== undefined && d !== previous.maxDepth) || (m !== undefined && m !== previous.maxEntries)) drainAll();
  if (n !== undefined) sampling.now = n;
  if (b !== undefined) sampling.budget = b;
  if (r !== undefined) sampling.random = r;
  if (r !== undefined || (b !== undefined && b !== previous.maxSampledPerSecond)) redraw(); // fractions back to what was set, windows anew
  if (m !== undefined) settings.maxEntries = m;
  if (d !== undefined) setMaxDepth(d);
  return previous;
}

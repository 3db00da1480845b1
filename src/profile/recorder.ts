// The recorder: sampling rates, the two contention profiles, and how events become samples.
//
// ─── What is recorded ───────────────────────────────────────────────────────────────────────────────────────
// Mutex profile (the holders' view, Go's /debug/pprof/mutex):
//   event   = a release (unlock, rUnlock, guard dispose, end of withLock) while at least one timed waiter is
//             queued on that lock, or while waiting carried from waiters that left without a release is pending.
//   delay   = the waiting this release ends the blame for: Σ over every waiter queued at any time since the
//             previous release event on the same lock of (now − max(its enqueue time, that previous event)).
//             Go 1.22's rule ("100 goroutines blocked 10 ms → 1 s"), computed exactly. Waiters that abort, and
//             readers admitted because the writer ahead of them aborted, leave without a release: their waiting
//             since the previous event is carried into the next event's delay. So at rate 1 the mutex profile's
//             total delay equals the block profile's total for the same lock.
//   stack   = the releaser's, leaf `Mutex.unlock` / `RWMutex.unlock` / `RWMutex.rUnlock`.
// Block profile (the waiters' view, Go's /debug/pprof/block):
//   event   = a waiter that waited (granted or aborted); delay = its own wait; stack = its lock()/rLock() call.
// Sampling is decided per event and scaled when recorded (Go ≥ 1.20): mutex `count += rate, delay += rate·dt`
// with probability 1/rate; block: dt ≥ rate always (count 1, delay dt), shorter with probability dt/rate
// (count rate/dt, delay rate), unbiased (Go ≥ 1.17). A later rate change never rescales old samples.
// Waiters that queued while profiling was off carry no timestamp and are not counted.
// Labels: `lock` = the lock's name when it has one, plus the labels of withLabels() around the event.
// ─────────────────────────────────────────────────────────────────────────────────────────────────────────────

import { performance } from 'node:perf_hooks';
import { capture, resolve, syntheticFrame, setMaxDepth, getMaxDepth, type Frame } from './stack.js';
import { currentLabels, type LabelSet } from './labels.js';

/** Whether waiters take an enqueue timestamp: some profile is on. Read by the wait queue. */
export let timing = false;
export let mutexRate = 0;
export let blockRate = 0;

let clock: () => number = () => performance.now() * 1e6;
let random: () => number = Math.random;
let maxEntries = 10_000;
const MAX_PENDING = 4096;

/** Current time in nanoseconds (monotonic; the origin is arbitrary). */
export function now(): number {
  return clock();
}

function checkRate(fn: string, rate: unknown): number {
  if (typeof rate !== 'number') throw new TypeError(`mutexprof: ${fn}(rate): rate must be an integer number, got ${rate === null ? 'null' : typeof rate}`);
  if (!Number.isSafeInteger(rate)) throw new RangeError(`mutexprof: ${fn}(rate): rate must be a safe integer, got ${rate}`);
  return rate;
}

/**
 * Go's runtime.SetMutexProfileFraction. `rate < 0` only reads; `0` turns the mutex profile off (the default);
 * `1` records every contention event; `N` records each event with probability 1/N. Returns the previous rate.
 */
export function setMutexProfileFraction(rate: number): number {
  checkRate('setMutexProfileFraction', rate);
  const old = mutexRate;
  if (rate >= 0) {
    mutexRate = rate;
    timing = mutexRate > 0 || blockRate > 0;
    if (rate > 1) gap = nextGap(rate); // the first sampled event is as far away as any other
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
  const old = blockRate;
  blockRate = rate > 0 ? rate : 0;
  timing = mutexRate > 0 || blockRate > 0;
  return old;
}

/** Profiler settings; every field is optional. */
export interface ProfilerConfig {
  /** Clock in nanoseconds (monotonic, always > 0). Default: performance.now() × 1e6. Inject one for deterministic tests. */
  now?: () => number;
  /** Uniform random number in [0, 1) used for sampling decisions. Default: Math.random. */
  random?: () => number;
  /** Cap on distinct samples (stack × labels) per profile; beyond it events go to one overflow sample. Default 10000. */
  maxEntries?: number;
  /** Maximum user frames kept per stack. Default 64. */
  maxDepth?: number;
}

/** Changes profiler settings; returns the previous ones (so a test can restore them). */
export function configureProfiler(config: ProfilerConfig): Required<ProfilerConfig> {
  if (config === null || typeof config !== 'object') throw new TypeError('mutexprof: configureProfiler(config): config must be an object');
  const { now: n, random: r, maxEntries: m, maxDepth: d } = config;
  if (n !== undefined && typeof n !== 'function') throw new TypeError('mutexprof: configureProfiler: now must be a function');
  if (r !== undefined && typeof r !== 'function') throw new TypeError('mutexprof: configureProfiler: random must be a function');
  if (m !== undefined && !(Number.isSafeInteger(m) && m >= 1)) throw new RangeError(`mutexprof: configureProfiler: maxEntries must be an integer ≥ 1, got ${String(m)}`);
  if (d !== undefined && !(Number.isSafeInteger(d) && d >= 1 && d <= 1024)) throw new RangeError(`mutexprof: configureProfiler: maxDepth must be an integer in 1..1024, got ${String(d)}`);
  const previous: Required<ProfilerConfig> = { now: clock, random, maxEntries, maxDepth: getMaxDepth() };
  drainAll(); // pending events were captured under the old settings
  if (n !== undefined) clock = n;
  if (r !== undefined) random = r;
  if (mutexRate > 1) gap = nextGap(mutexRate);
  if (m !== undefined) maxEntries = m;
  if (d !== undefined) setMaxDepth(d);
  return previous;
}

/** One aggregated sample. */
export interface Entry {
  /** identity of the sample: stack, lock and labels */
  readonly key: string;
  readonly frames: readonly Frame[];
  /** the lock's name ('' when it has none) */
  readonly lock: string;
  readonly labels: LabelSet | null;
  count: number;
  delay: number;
}

interface Pending {
  stack: Error;
  leaf: string;
  lock: string;
  labels: LabelSet | null;
  count: number;
  delay: number;
}

const OVERFLOW = 'mutexprof.overflow';

// Aggregation without building key strings: a trie over frame ids, each node holding the samples (one per
// lock × labels) whose stack ends there.
interface Node {
  children: Map<number, Node> | null;
  samples: Map<string, Entry> | null;
}

/** One cumulative profile: aggregated entries plus captured-but-unresolved events. */
export class Recorder {
  private readonly root: Node = { children: null, samples: null };
  private readonly entries: Entry[] = [];
  private overflow: Entry | null = null;
  private pending: Pending[] = [];

  add(stack: Error, leaf: string, lock: string, count: number, delay: number): void {
    const p: Pending = { stack, leaf, lock, labels: currentLabels(), count, delay };
    // Past the bound (a burst with no turn of the event loop in between) resolve this one event now: the
    // release pays one resolution, never a whole batch, and memory stays bounded.
    if (this.pending.length >= MAX_PENDING) return this.aggregate(p);
    this.pending.push(p);
    scheduleDrain();
  }

  /** Resolves pending stacks and aggregates them. */
  drain(): void {
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    for (const p of batch) this.aggregate(p);
  }

  private aggregate(p: Pending): void {
    const frames = resolve(p.stack, p.leaf);
    let node = this.root;
    for (const f of frames) {
      const children = (node.children ??= new Map());
      let next = children.get(f.id);
      if (next === undefined) children.set(f.id, (next = { children: null, samples: null }));
      node = next;
    }
    const sk = p.labels === null ? p.lock : p.lock + '\0' + p.labels.key;
    const samples = (node.samples ??= new Map());
    let e = samples.get(sk);
    if (e === undefined) {
      if (this.entries.length >= maxEntries) {
        e = this.overflow ??= { key: OVERFLOW, frames: [syntheticFrame(OVERFLOW)], lock: '', labels: null, count: 0, delay: 0 };
      } else {
        let key = '';
        for (const f of frames) key += f.id + ',';
        e = { key: key + '|' + sk, frames, lock: p.lock, labels: p.labels, count: 0, delay: 0 };
        samples.set(sk, e);
        this.entries.push(e);
      }
    }
    e.count += p.count;
    e.delay += p.delay;
  }

  /** Distinct samples, after draining. */
  size(): number {
    this.drain();
    return this.entries.length + (this.overflow ? 1 : 0);
  }

  /** A copy of every sample, largest delay first. */
  snapshot(): Entry[] {
    this.drain();
    const out: Entry[] = [];
    for (const e of this.entries) out.push({ ...e });
    if (this.overflow) out.push({ ...this.overflow });
    out.sort((a, b) => b.delay - a.delay);
    return out;
  }
}

export const mutexProfile = new Recorder();
export const blockProfile = new Recorder();

let drainScheduled = false;
function scheduleDrain(): void {
  if (drainScheduled) return;
  drainScheduled = true;
  setImmediate(drainAll).unref();
}
function drainAll(): void {
  drainScheduled = false;
  mutexProfile.drain();
  blockProfile.drain();
}

// Each event is sampled with probability 1/rate, independently. Drawn as geometric gaps between sampled events
// (the same distribution), so an unsampled event costs a decrement instead of a random number.
let gap = 0;
function nextGap(rate: number): number {
  return Math.floor(Math.log(1 - random()) / Math.log(1 - 1 / rate)) + 1;
}

/** Draws whether the next release event of a lock is sampled: returns its weight (the fraction), or 0. */
export function drawMutexSample(): number {
  const rate = mutexRate;
  if (rate <= 1) return rate <= 0 ? 0 : 1;
  if (--gap > 0) return 0;
  gap = nextGap(rate);
  return rate;
}

/** A sampled release event of `delay` ns on lock `lock`: capture the releaser's stack, weight it. */
export function mutexEvent(lock: string, weight: number, delay: number, leaf: string): void {
  if (mutexRate <= 0) return; // turned off since the draw
  mutexProfile.add(capture(), leaf, lock, weight, weight * delay);
}

/** Blocks on a timed waiter's promise, then records its wait in the block profile. */
export async function blockWait<T>(p: Promise<T>, w: { t: number; end: number }, lock: string, leaf: string): Promise<T> {
  try {
    return await p;
  } finally {
    // Captured here, after resuming: V8's async frames name the caller that awaited lock()/rLock().
    const rate = blockRate;
    if (rate > 0) {
      const dt = w.end - w.t;
      if (dt >= rate || rate === 1) blockProfile.add(capture(), leaf, lock, 1, dt);
      else if (random() * rate < dt) blockProfile.add(capture(), leaf, lock, rate / dt, rate);
    }
  }
}

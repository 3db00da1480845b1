import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { getEventListeners } from 'node:events';

/** Lets every pending promise reaction run. */
export const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Tracks a promise's outcome synchronously observable after flush(). */
export function track<T>(p: Promise<T>): { readonly state: 'pending' | 'fulfilled' | 'rejected'; readonly value?: T; readonly reason?: unknown } {
  const t: { state: 'pending' | 'fulfilled' | 'rejected'; value?: T; reason?: unknown } = { state: 'pending' };
  p.then(
    (v) => {
      t.state = 'fulfilled';
      t.value = v;
    },
    (e) => {
      t.state = 'rejected';
      t.reason = e;
    },
  );
  return t;
}

export const abortListeners = (s: AbortSignal): number => getEventListeners(s, 'abort').length;

/** Deterministic PRNG (mulberry32) for seeded sampling. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A manual clock in nanoseconds. */
export function manualClock(start = 1_000_000): { now: () => number; advance: (ns: number) => void; set: (ns: number) => void } {
  let t = start;
  return { now: () => t, advance: (ns) => void (t += ns), set: (ns) => void (t = ns) };
}

export const ms = 1_000_000;

import { afterEach, beforeEach } from 'vitest';
import {
  configureProfiler,
  lookup,
  setBlockProfileRate,
  setDeadlockDetection,
  setHoldProfileFraction,
  setLockTracking,
  setMutexProfileFraction,
  type Mutex,
  type ProfileSample,
} from '../src/index.js';
import { recorders } from '../src/profile/drain.js';

/** Empties every recorded profile (mutex, block, hold), events still pending included: a test sees its own samples. */
export function resetProfiles(): void {
  for (const r of Object.values(recorders)) r.reset();
}

/** What a test file wants of the profiler (see useProfiler). */
export interface ProfilerSetup {
  /** the mutex profile's fraction (default 1: every release event) */
  mutex?: number;
  /** the block profile's rate (default 1: every wait) */
  block?: number;
  /** the random source (default () => 0: every draw samples at fraction 1, and the first of a gap otherwise) */
  random?: () => number;
}

/**
 * The profiler as a test file wants it, for each of its tests: the injected clock returned (no test sleeps), the
 * random source, the rates, and empty profiles before each test; after each, every setting off again.
 */
export function useProfiler(setup: ProfilerSetup = {}): ReturnType<typeof manualClock> {
  const clock = manualClock();
  beforeEach(() => {
    configureProfiler({ now: clock.now, random: setup.random ?? (() => 0) });
    setMutexProfileFraction(setup.mutex ?? 1);
    setBlockProfileRate(setup.block ?? 1);
    resetProfiles();
  });
  afterEach(() => {
    setMutexProfileFraction(0);
    setBlockProfileRate(0);
    setHoldProfileFraction(0);
    setLockTracking('off');
    setDeadlockDetection('off');
  });
  return clock;
}

/** A sample as the tests read it. */
export interface Seen {
  readonly frames: ProfileSample['frames'];
  readonly lock: string;
  /** the labels besides `lock`, in order */
  readonly pairs: ReadonlyArray<readonly [string, string]>;
  readonly count: number;
  readonly delay: number;
}

export function seen(s: ProfileSample): Seen {
  const lock = s.labels.find(([k]) => k === 'lock')?.[1] ?? '';
  return { frames: s.frames, lock, pairs: s.labels.filter(([k]) => k !== 'lock'), count: s.values[0], delay: s.values[1] };
}

/** Samples of one profile now (every one, or one lock's). */
export async function samples(profile: 'mutex' | 'block', lock?: string): Promise<Seen[]> {
  const all = (await lookup(profile).snapshot()).samples.map(seen);
  return lock === undefined ? all : all.filter((e) => e.lock === lock);
}

/** Samples of one profile for one lock. */
export const samplesOf = (profile: 'mutex' | 'block', lock: string): Promise<Seen[]> => samples(profile, lock);

/** Summed count and delay of one profile for one lock. */
export async function totalsOf(profile: 'mutex' | 'block', lock: string): Promise<{ count: number; delay: number }> {
  let count = 0;
  let delay = 0;
  for (const e of await samplesOf(profile, lock)) {
    count += e.count;
    delay += e.delay;
  }
  return { count, delay };
}

/** Function names of a sample, leaf first. */
export const names = (e: { frames: ProfileSample['frames'] }): string[] => e.frames.map((f) => f.name);

/** One contended release: hold `mu`, queue a waiter, let `ns` pass on `clock`, release, let the waiter finish. */
export async function contend(mu: Mutex, clock: { advance: (ns: number) => void }, ns: number): Promise<void> {
  await mu.lock();
  const w = mu.lock();
  clock.advance(ns);
  mu.unlock();
  (await w)[Symbol.dispose]();
}

/** The `go` binary when installed (CI installs Debian's golang-go), else null: the go tool pprof tests then skip. */
export function goBinary(): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/lib/go/bin']) {
    const p = join(dir, 'go');
    if (dir && existsSync(p)) return p;
  }
  return null;
}

/**
 * Collects the process warnings emitted while `fn` runs instead of printing them (the test output stays clean):
 * every other 'warning' listener, Node's printer among them, is set aside meanwhile.
 */
export async function captureWarnings<T>(fn: () => T | Promise<T>): Promise<{ result: T; warnings: Array<Error & { code?: string; detail?: string }> }> {
  const others = process.listeners('warning');
  const warnings: Array<Error & { code?: string; detail?: string }> = [];
  const collect = (w: Error): void => void warnings.push(w);
  process.removeAllListeners('warning');
  process.on('warning', collect);
  try {
    const result = await fn();
    await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
    return { result, warnings };
  } finally {
    process.off('warning', collect);
    for (const l of others) process.on('warning', l);
  }
}

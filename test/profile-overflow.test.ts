// The cap on distinct samples: beyond it, events go to one visible overflow sample and totals stay right.
import { test, expect } from 'vitest';
import { Mutex, setMutexProfileFraction, setBlockProfileRate, configureProfiler, lookup } from '../src/index.js';
import { manualClock, ms, contend } from './helpers.js';

test('maxEntries caps distinct samples; the rest lands in mutexprof.overflow', async () => {
  const clock = manualClock();
  configureProfiler({ now: clock.now, maxEntries: 3 });
  setMutexProfileFraction(1);
  setBlockProfileRate(0);
  let exact = 0;
  // 6 distinct lock names → 6 distinct samples, 2 events each
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 6; i++) {
      await contend(new Mutex({ name: `cap-${i}` }), clock, (i + 1) * ms);
      exact += (i + 1) * ms;
    }
  }
  const entries = lookup('mutex')!.snapshot().entries;
  expect(entries).toHaveLength(4); // 3 distinct samples + the overflow sample
  const overflow = entries.find((e) => e.frames[0].name === 'mutexprof.overflow')!;
  expect(overflow.lock).toBe('');
  expect(overflow.labels).toBeNull();
  expect(overflow.count).toBeGreaterThanOrEqual(6); // cap-3..5, twice (V8 may give a first event other async frames)
  expect(entries.reduce((s, e) => s + e.count, 0)).toBe(12);
  expect(entries.reduce((s, e) => s + e.delay, 0)).toBe(exact);
  expect(lookup('mutex')!.count()).toBe(4);
  expect(() => configureProfiler({ maxEntries: 0 })).toThrow(RangeError);
  expect(() => configureProfiler({ maxDepth: 1.5 })).toThrow(RangeError);
});

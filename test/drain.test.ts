// Captured events are resolved in batches (src/profile/recorder.ts, DRAIN_DELAY_MS). In a file of its own: no
// earlier test's drain may be pending when the timers are faked.
import { describe, test, expect, afterEach, vi } from 'vitest';
import { Mutex, setMutexProfileFraction, configureProfiler } from '../src/index.js';
import { recorders } from '../src/profile/drain.js';
import { manualClock, ms, contend, samples, flush } from './helpers.js';

const clock = manualClock();
configureProfiler({ now: clock.now, random: () => 0 });
setMutexProfileFraction(1);

describe('captured events are resolved in batches', () => {
  // A service sampling a few hundred events a second resolves them together, warm, rather than one by one, cold
  // (src/profile/recorder.ts, DRAIN_DELAY_MS). Timers are faked: whether the delay has passed is decided here.
  afterEach(() => vi.useRealTimers());

  test('an event waits for the batch; a reader never does; a burst is resolved on the next turn', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout'] });
    const mu = new Mutex({ name: 'batched' });
    await contend(mu, clock, ms);
    await flush();
    expect(recorders.mutex.pending()).toBe(1); // not resolved on the next turn
    vi.advanceTimersByTime(100);
    expect(recorders.mutex.pending()).toBe(0); // the batch's drain ran
    await contend(mu, clock, ms);
    expect((await samples('mutex', 'batched')).reduce((n, e) => n + e.count, 0)).toBe(2); // a reader resolves first
    expect(recorders.mutex.pending()).toBe(0);

    const burst = new Mutex({ name: 'burst' });
    const g = await burst.lock();
    const waiters = Array.from({ length: 600 }, () => burst.lock());
    g[Symbol.dispose]();
    for (const w of waiters) (await w)[Symbol.dispose]();
    expect(recorders.mutex.pending()).toBeGreaterThanOrEqual(512);
    for (let turns = 0; turns < 20 && recorders.mutex.pending() > 0; turns++) await flush(); // 4 ms slices
    expect(recorders.mutex.pending()).toBe(0); // drained without the timer
  });

  test('configureProfiler resolves what is pending only when the depth or the cap changes', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout'] });
    const mu = new Mutex({ name: 'reconfigured' });
    await contend(mu, clock, ms);
    expect(recorders.mutex.pending()).toBe(1);
    // a budget tuned while the service runs, or the same depth and cap set again: no synchronous drain
    const before = configureProfiler({ maxSampledPerSecond: 50 });
    configureProfiler({ maxDepth: before.maxDepth, maxEntries: before.maxEntries, maxSampledPerSecond: before.maxSampledPerSecond });
    expect(recorders.mutex.pending()).toBe(1);
    // a new depth: the pending event is resolved first, under the depth it was captured with
    configureProfiler({ maxDepth: before.maxDepth + 1 });
    expect(recorders.mutex.pending()).toBe(0);
    configureProfiler({ maxDepth: before.maxDepth });
    await contend(mu, clock, ms);
    configureProfiler({ maxEntries: before.maxEntries + 1 });
    expect(recorders.mutex.pending()).toBe(0);
    configureProfiler({ maxEntries: before.maxEntries });
    expect((await samples('mutex', 'reconfigured')).reduce((n, e) => n + e.count, 0)).toBe(2); // nothing lost
    vi.advanceTimersByTime(100); // the batch's drain, scheduled by the first event, runs (it finds nothing): no timer left
    expect(vi.getTimerCount()).toBe(0);
  });
});

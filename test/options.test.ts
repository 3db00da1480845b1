// Every public function checks its arguments: bad input gets mutexprof's error (a message that starts with
// "mutexprof:", naming the call and the option), thrown or, for a call that returns a promise, rejected; and it
// changes nothing (no timer started, no lock taken, no setting changed).
import { describe, test, expect } from 'vitest';
import { Writable } from 'node:stream';
import * as m from '../src/index.js';
import { recorders } from '../src/profile/drain.js';

type Call = [string, () => unknown, RegExp?];

const calls: Call[] = [
  ['watchLocks(null)', () => m.watchLocks(null as never)],
  ['watchLocks({ intervalMs: 3e9 }): Node would fire it every 1 ms', () => m.watchLocks({ intervalMs: 3e9 }), /intervalMs must be a number of milliseconds in \(0, 2147483647\]/],
  ['watchLocks({ waitMs: 1e10 })', () => m.watchLocks({ waitMs: 1e10 }), /waitMs/],
  ['watchLocks({ holdMs: 0 })', () => m.watchLocks({ holdMs: 0 }), /holdMs/],
  ['watchLocks({ onStall: 1 })', () => m.watchLocks({ onStall: 1 as never }), /onStall must be a function/],
  ['KeyedMutex.lock([])', () => new m.KeyedMutex().lock([]), /no keys/],
  ['KeyedMutex.lock([NaN])', () => new m.KeyedMutex().lock([Number.NaN]), /a key must be a string or a finite number/],
  ['KeyedMutex.withLock([], fn)', () => new m.KeyedMutex().withLock([], () => 0), /no keys/],
  ['KeyedMutex.isLocked(undefined)', () => new m.KeyedMutex().isLocked(undefined as never), /a key must be/],
  ['deltaSnapshot(null, null)', () => m.deltaSnapshot(null as never, null as never), /not a profile snapshot/],
  ['lookup().encode({})', () => m.lookup('mutex').encode({} as never), /not a profile snapshot/],
  ['lookup().text({})', () => m.lookup('mutex').text({} as never), /not a profile snapshot/],
  ['lookup().writeTo(null)', () => m.lookup('mutex').writeTo(null as never), /w must be a writable stream/],
  ['lookup().writeTo(w, "1")', () => m.lookup('mutex').writeTo(new Writable(), '1' as never), /debug must be a number/],
  ['pprofHandler({ maxSeconds: 1e9 }): a delta timer Node cannot take', () => m.pprofHandler({ maxSeconds: 1e9 }), /maxSeconds must be an integer in 1\.\./],
  ['pprofHandler({ cluster: { timeoutMs: 3e9 } })', () => m.pprofHandler({ cluster: { timeoutMs: 3e9 } }), /cluster\.timeoutMs/],
  ['pprofHandler({ cluster: "yes" })', () => m.pprofHandler({ cluster: 'yes' as never }), /cluster must be a boolean/],
  ['pprofHandler({ authorize: 1 })', () => m.pprofHandler({ authorize: 1 as never }), /authorize must be a function/],
  ['pprofHandler(null)', () => m.pprofHandler(null as never)],
  ['startPprofServer({ port: -1 })', () => m.startPprofServer({ port: -1 }), /port/],
  ['startPprofServer({ host: 1 })', () => m.startPprofServer({ host: 1 as never }), /host/],
  ['collectLockMetrics({ register: {} })', () => m.collectLockMetrics({ register: {} as never }), /register must be a prom-client Registry/],
  ['collectLockMetrics({ buckets: [2, 1] })', () => m.collectLockMetrics({ buckets: [2, 1] }), /buckets/],
  ['collectLockMetrics({ prefix: "a b" })', () => m.collectLockMetrics({ prefix: 'a b' }), /prefix/],
  ['configureProfiler({ maxDepth: 0 })', () => m.configureProfiler({ maxDepth: 0 }), /maxDepth/],
  ['configureProfiler({ now: 1 })', () => m.configureProfiler({ now: 1 as never }), /now must be a function/],
  ['setMutexProfileFraction(1.5)', () => m.setMutexProfileFraction(1.5), /safe integer/],
  ['setBlockProfileRate("1")', () => m.setBlockProfileRate('1' as never), /integer number/],
  ['setHoldProfileFraction(NaN)', () => m.setHoldProfileFraction(Number.NaN), /safe integer/],
  ['setLockTracking(1)', () => m.setLockTracking(1 as never), /mode must be/],
  ['setDeadlockDetection("loud")', () => m.setDeadlockDetection('loud' as never), /mode must be/],
  ['withLabels({ a: 1 }, fn)', () => m.withLabels({ a: 1 } as never, () => 0), /must be a string/],
  ['withLabels({ lock: "x" }, fn): reserved', () => m.withLabels({ lock: 'x' }, () => 0), /reserved/],
  ['detachedTask(1)', () => m.detachedTask(1 as never), /fn must be a function/],
  ['new Mutex({ name: 1 })', () => new m.Mutex({ name: 1 as never }), /name must be a string/],
  ['Mutex.lock(null)', () => new m.Mutex().lock(null as never), /options must be an object/],
  ['Mutex.lock({ signal: 1 })', () => new m.Mutex().lock({ signal: 1 as never }), /signal must be an AbortSignal/],
  ['Mutex.lock({ labels: [] })', () => new m.Mutex().lock({ labels: [] as never }), /labels must be an object of strings/],
  ['Mutex.withLock(1)', () => new m.Mutex().withLock(1 as never), /fn must be a function/],
  ['RWMutex.rLock(1)', () => new m.RWMutex().rLock(1 as never), /options must be an object/],
  ['new Semaphore(0)', () => new m.Semaphore(0), /permits must be a positive integer/],
  ['Semaphore.acquire({ weight: 3 }) of 2 permits', () => new m.Semaphore(2).acquire({ weight: 3 }), /could never be granted/],
  ['Semaphore.release(0)', () => new m.Semaphore(2).release(0), /weight must be a positive integer/],
  ['new KeyedMutex({ keyLabel: 1 })', () => new m.KeyedMutex({ keyLabel: 1 as never }), /keyLabel must be a boolean/],
  ['startProfilePush({ labels: null })', () => m.startProfilePush({ url: 'http://127.0.0.1:1', appName: 'a', labels: null as never }), /labels must be an object of strings/],
];

describe('bad arguments', () => {
  test.each(calls)('%s', async (_, call, message) => {
    const timersBefore = (process as unknown as { getActiveResourcesInfo(): string[] }).getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const marks = recorders.mutex.openMarks();
    let error: unknown = null;
    try {
      const r = call();
      if (r instanceof Promise)
        await r.then(
          () => void (error = new Error('resolved')),
          (e: unknown) => void (error = e),
        );
      else error = new Error(`returned ${typeof r}`);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/^mutexprof: /);
    if (message) expect((error as Error).message).toMatch(message);
    // nothing started: no timer, no window
    expect((process as unknown as { getActiveResourcesInfo(): string[] }).getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBe(timersBefore);
    expect(recorders.mutex.openMarks()).toBe(marks);
  });

  test('and change no setting', () => {
    const before = [m.setMutexProfileFraction(-1), m.setBlockProfileFraction(-1), m.setHoldProfileFraction(-1)];
    for (const bad of [1.5, Number.NaN, '2', Infinity]) {
      expect(() => m.setMutexProfileFraction(bad as number)).toThrow(/^mutexprof: /);
      expect(() => m.setHoldProfileFraction(bad as number)).toThrow(/^mutexprof: /);
    }
    expect([m.setMutexProfileFraction(-1), m.setBlockProfileFraction(-1), m.setHoldProfileFraction(-1)]).toEqual(before);
    expect(m.setLockTracking('off')).toBe('off');
  });
});

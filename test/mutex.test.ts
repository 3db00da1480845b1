import { describe, test, expect } from 'vitest';
import { Mutex } from '../src/index.js';
import { flush, track, abortListeners } from './helpers.js';

describe('Mutex', () => {
  test('uncontended lock resolves a guard; unlock frees', async () => {
    const mu = new Mutex({ name: 'a' });
    expect(mu.name).toBe('a');
    const g = await mu.lock();
    expect(typeof g[Symbol.dispose]).toBe('function');
    expect(mu.locked).toBe(true);
    mu.unlock();
    expect(mu.locked).toBe(false);
    expect(() => g[Symbol.dispose]()).toThrow(/already released/);
  });

  test('using releases at the end of the scope, also on throw', async () => {
    const mu = new Mutex();
    {
      using _g = await mu.lock();
      expect(mu.locked).toBe(true);
    }
    expect(mu.locked).toBe(false);
    const f = async () => {
      using _g = await mu.lock();
      throw new Error('boom');
    };
    await expect(f()).rejects.toThrow('boom');
    expect(mu.locked).toBe(false);
  });

  test('FIFO: waiters are granted in the order lock() was called', async () => {
    const mu = new Mutex();
    await mu.lock();
    const order: number[] = [];
    const done = [0, 1, 2, 3, 4].map((i) =>
      mu.lock().then((g) => {
        order.push(i);
        g[Symbol.dispose]();
      }),
    );
    expect(mu.waiting).toBe(5);
    mu.unlock();
    await Promise.all(done);
    expect(order).toEqual([0, 1, 2, 3, 4]);
    expect(mu.locked).toBe(false);
  });

  test('unlock hands off directly: the lock stays held and tryLock cannot barge', async () => {
    const mu = new Mutex();
    await mu.lock();
    const w = track(mu.lock());
    mu.unlock();
    expect(mu.locked).toBe(true); // handed to the waiter, synchronously
    expect(mu.waiting).toBe(0);
    expect(mu.tryLock()).toBe(false);
    await flush();
    expect(w.state).toBe('fulfilled');
  });

  test('tryLock fails while anyone waits, succeeds when free', async () => {
    const mu = new Mutex();
    expect(mu.tryLock()).toBe(true);
    expect(mu.tryLock()).toBe(false);
    const w = track(mu.lock());
    expect(mu.tryLock()).toBe(false);
    mu.unlock();
    await flush();
    expect(w.state).toBe('fulfilled');
    mu.unlock();
    expect(mu.tryLock()).toBe(true);
  });

  test('abort: the waiter leaves at once, rejects with signal.reason, no listener kept', async () => {
    const mu = new Mutex();
    await mu.lock();
    const ac = new AbortController();
    const a = track(mu.lock({ signal: ac.signal }));
    const b = track(mu.lock());
    expect(abortListeners(ac.signal)).toBe(1);
    const reason = new Error('gave up');
    ac.abort(reason);
    expect(mu.waiting).toBe(1);
    expect(abortListeners(ac.signal)).toBe(0);
    await flush();
    expect(a.state).toBe('rejected');
    expect(a.reason).toBe(reason);
    mu.unlock();
    await flush();
    expect(b.state).toBe('fulfilled'); // the next waiter is not lost
  });

  test('an already aborted signal rejects without queuing, even when the lock is free', async () => {
    const mu = new Mutex();
    const ac = new AbortController();
    ac.abort('no');
    await expect(mu.lock({ signal: ac.signal })).rejects.toBe('no');
    expect(mu.locked).toBe(false);
    await mu.lock();
    await expect(mu.lock({ signal: ac.signal })).rejects.toBe('no');
    expect(mu.waiting).toBe(0);
    expect(abortListeners(ac.signal)).toBe(0);
  });

  test('abort after the grant changes nothing and the listener is gone', async () => {
    const mu = new Mutex();
    await mu.lock();
    const ac = new AbortController();
    const w = track(mu.lock({ signal: ac.signal }));
    mu.unlock();
    expect(abortListeners(ac.signal)).toBe(0);
    ac.abort();
    await flush();
    expect(w.state).toBe('fulfilled');
    expect(mu.locked).toBe(true);
  });

  test('AbortSignal.timeout rejects a wait with TimeoutError', async () => {
    const mu = new Mutex();
    await mu.lock();
    await expect(mu.lock({ signal: AbortSignal.timeout(1) })).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(mu.waiting).toBe(0);
    expect(mu.locked).toBe(true);
  });

  test('misuse throws a clear error and changes nothing', async () => {
    const mu = new Mutex({ name: 'cache' });
    expect(() => mu.unlock()).toThrow('mutexprof: unlock of unlocked Mutex "cache"');
    expect(mu.locked).toBe(false);
    const g = await mu.lock();
    g[Symbol.dispose]();
    expect(() => g[Symbol.dispose]()).toThrow(/already released/);
    expect(mu.locked).toBe(false);
  });

  test('a stale guard never releases somebody else’s acquisition', async () => {
    const mu = new Mutex();
    const g1 = await mu.lock();
    mu.unlock(); // Go-style release of g1's acquisition
    const g2 = await mu.lock();
    expect(() => g1[Symbol.dispose]()).toThrow(/already released/);
    expect(mu.locked).toBe(true);
    g2[Symbol.dispose]();
    expect(mu.locked).toBe(false);
    expect(mu.tryLock()).toBe(true);
    expect(() => g2[Symbol.dispose]()).toThrow(/already released/);
    expect(mu.locked).toBe(true);
  });

  test('a hand-off makes the previous holder’s guard stale (the lock never looks free in between)', async () => {
    const mu = new Mutex();
    const g1 = await mu.lock();
    const next = mu.lock();
    mu.unlock(); // hands off to the waiter: the lock stays held
    expect(mu.locked).toBe(true);
    expect(() => g1[Symbol.dispose]()).toThrow(/already released/);
    const g2 = await next;
    expect(() => g1[Symbol.dispose]()).toThrow(/already released/);
    expect(mu.locked).toBe(true);
    g2[Symbol.dispose]();
    expect(mu.locked).toBe(false);
  });

  test('bad arguments are rejected with TypeError and change nothing', async () => {
    const mu = new Mutex();
    // @ts-expect-error wrong type on purpose
    await expect(mu.lock(5)).rejects.toThrow(TypeError);
    // @ts-expect-error wrong type on purpose
    await expect(mu.lock({ signal: {} })).rejects.toThrow(/signal must be an AbortSignal/);
    // @ts-expect-error wrong type on purpose
    await expect(mu.withLock(null)).rejects.toThrow(/fn must be a function/);
    expect(mu.locked).toBe(false);
    // @ts-expect-error wrong type on purpose
    expect(() => new Mutex({ name: 3 })).toThrow(/name must be a string/);
    // @ts-expect-error wrong type on purpose
    expect(() => new Mutex('x')).toThrow(/options must be an object/);
  });

  test('withLock returns the result and releases on return, throw, rejection and synchronous throw', async () => {
    const mu = new Mutex();
    expect(await mu.withLock(() => 42)).toBe(42);
    expect(await mu.withLock(async () => 'x')).toBe('x');
    expect(mu.locked).toBe(false);
    await expect(
      mu.withLock(() => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    expect(mu.locked).toBe(false);
    await expect(mu.withLock(() => Promise.reject(new Error('async')))).rejects.toThrow('async');
    expect(mu.locked).toBe(false);
    await expect(
      mu.withLock(async () => {
        await flush();
        throw new Error('later');
      }),
    ).rejects.toThrow('later');
    expect(mu.locked).toBe(false);
  });

  test('withLock serializes critical sections and honours abort', async () => {
    const mu = new Mutex();
    let inside = 0;
    let max = 0;
    await Promise.all(
      Array.from({ length: 20 }, () =>
        mu.withLock(async () => {
          inside++;
          max = Math.max(max, inside);
          await flush();
          inside--;
        }),
      ),
    );
    expect(max).toBe(1);
    await mu.lock();
    const ac = new AbortController();
    const p = mu.withLock(() => 1, { signal: ac.signal });
    ac.abort(new Error('stop'));
    await expect(p).rejects.toThrow('stop');
    expect(mu.waiting).toBe(0);
  });
});

import { describe, test, expect } from 'vitest';
import { RWMutex } from '../src/index.js';
import { flush, track, abortListeners } from './helpers.js';

describe('RWMutex', () => {
  test('readers share; a writer is exclusive', async () => {
    const rw = new RWMutex({ name: 'settings' });
    await rw.rLock();
    await rw.rLock();
    expect(rw.readers).toBe(2);
    expect(rw.tryLock()).toBe(false);
    const w = track(rw.lock());
    await flush();
    expect(w.state).toBe('pending');
    rw.rUnlock();
    await flush();
    expect(w.state).toBe('pending');
    rw.rUnlock(); // the last reader admits the writer
    expect(rw.locked).toBe(true);
    await flush();
    expect(w.state).toBe('fulfilled');
    expect(rw.tryRLock()).toBe(false);
  });

  test('once a writer waits, new readers queue behind it (writers never starve)', async () => {
    const rw = new RWMutex();
    await rw.rLock();
    const w = track(rw.lock());
    const r = track(rw.rLock());
    expect(rw.tryRLock()).toBe(false);
    expect(rw.waiting).toBe(2);
    await flush();
    expect(r.state).toBe('pending');
    rw.rUnlock();
    await flush();
    expect(w.state).toBe('fulfilled');
    expect(r.state).toBe('pending');
  });

  test('a writer’s unlock admits the readers ahead of the next writer together', async () => {
    const rw = new RWMutex();
    await rw.lock();
    const r1 = track(rw.rLock());
    const r2 = track(rw.rLock());
    const w2 = track(rw.lock());
    const r3 = track(rw.rLock());
    rw.unlock();
    expect(rw.readers).toBe(2);
    expect(rw.waiting).toBe(2);
    await flush();
    expect([r1.state, r2.state, w2.state, r3.state]).toEqual(['fulfilled', 'fulfilled', 'pending', 'pending']);
    rw.rUnlock();
    rw.rUnlock();
    await flush();
    expect(w2.state).toBe('fulfilled');
    rw.unlock();
    await flush();
    expect(r3.state).toBe('fulfilled');
    expect(rw.readers).toBe(1);
  });

  test('a writer’s unlock hands off to the next writer directly', async () => {
    const rw = new RWMutex();
    await rw.lock();
    const w2 = track(rw.lock());
    rw.unlock();
    expect(rw.locked).toBe(true);
    expect(rw.tryLock()).toBe(false);
    expect(rw.tryRLock()).toBe(false);
    await flush();
    expect(w2.state).toBe('fulfilled');
  });

  test('an aborted writer lets the readers queued behind it join the current readers', async () => {
    const rw = new RWMutex();
    await rw.rLock();
    const ac = new AbortController();
    const w = track(rw.lock({ signal: ac.signal }));
    const r = track(rw.rLock());
    ac.abort();
    expect(rw.readers).toBe(2);
    expect(rw.waiting).toBe(0);
    expect(abortListeners(ac.signal)).toBe(0);
    await flush();
    expect(w.state).toBe('rejected');
    expect(r.state).toBe('fulfilled');
  });

  test('misuse throws a clear error and changes nothing', async () => {
    const rw = new RWMutex({ name: 'db' });
    expect(() => rw.rUnlock()).toThrow('mutexprof: rUnlock of RWMutex "db" with no reader');
    expect(() => rw.unlock()).toThrow('mutexprof: unlock of unlocked RWMutex "db"');
    await rw.rLock();
    expect(() => rw.unlock()).toThrow(/that is read-locked/);
    expect(rw.readers).toBe(1);
    rw.rUnlock();
    await rw.lock();
    expect(() => rw.rUnlock()).toThrow(/that is write-locked/);
    expect(rw.locked).toBe(true);
  });

  test('a stale read guard never releases another reader', async () => {
    const rw = new RWMutex();
    const g1 = await rw.rLock();
    rw.rUnlock(); // Go-style release of g1's acquisition
    const g2 = await rw.rLock();
    expect(() => g1[Symbol.dispose]()).toThrow(/already released/);
    expect(rw.readers).toBe(1); // g2's acquisition is untouched
    g2[Symbol.dispose]();
    expect(rw.readers).toBe(0);
    expect(() => g2[Symbol.dispose]()).toThrow(/already released/);
    expect(rw.readers).toBe(0);
  });

  test('guards and Go-style rUnlock mix freely across readers', async () => {
    const rw = new RWMutex();
    const g = await rw.rLock(); // e.g. withRLock in a library
    await rw.rLock(); // Go style elsewhere
    expect(rw.tryRLock()).toBe(true);
    rw.rUnlock();
    rw.rUnlock();
    expect(rw.readers).toBe(1);
    g[Symbol.dispose]();
    expect(rw.readers).toBe(0);
  });

  test('a writer guard is stale once a reader or another writer took over', async () => {
    const rw = new RWMutex();
    const w1 = await rw.lock();
    rw.unlock();
    const r = await rw.rLock();
    expect(() => w1[Symbol.dispose]()).toThrow(/already released/);
    r[Symbol.dispose]();
    const w2 = await rw.lock();
    expect(() => w1[Symbol.dispose]()).toThrow(/already released/);
    expect(rw.locked).toBe(true);
    w2[Symbol.dispose]();
    expect(rw.locked).toBe(false);
  });

  test('withRLock and withLock release on every exit path', async () => {
    const rw = new RWMutex();
    expect(await rw.withRLock(() => 1)).toBe(1);
    await expect(
      rw.withRLock(() => {
        throw new Error('x');
      }),
    ).rejects.toThrow('x');
    await expect(rw.withLock(async () => Promise.reject(new Error('y')))).rejects.toThrow('y');
    expect(rw.readers).toBe(0);
    expect(rw.locked).toBe(false);
    // @ts-expect-error wrong type on purpose
    await expect(rw.withRLock(1)).rejects.toThrow(TypeError);
    // @ts-expect-error wrong type on purpose
    await expect(rw.rLock({ signal: 1 })).rejects.toThrow(TypeError);
  });

  test('an already aborted signal rejects rLock without queuing', async () => {
    const rw = new RWMutex();
    const ac = new AbortController();
    ac.abort('r');
    await expect(rw.rLock({ signal: ac.signal })).rejects.toBe('r');
    expect(rw.readers).toBe(0);
  });
});

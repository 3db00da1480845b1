// Waiters that share one AbortSignal (a request's signal, one AbortSignal.timeout for a batch): one listener on
// the signal for all of them, whichever locks they wait for; none left behind; no MaxListenersExceededWarning.
import { describe, test, expect, afterEach } from 'vitest';
import { Mutex, RWMutex, type Guard } from '../src/index.js';
import { flush, track, abortListeners } from './helpers.js';

const warnings: Error[] = [];
const onWarning = (w: Error): void => void warnings.push(w);
process.on('warning', onWarning);
afterEach(() => {
  warnings.length = 0;
});

describe('one signal, many waiters', () => {
  test('1000 waiters on two locks share one listener; abort rejects them all, in order, and removes it', async () => {
    const a = new Mutex({ name: 'a' });
    const b = new RWMutex({ name: 'b' });
    await a.lock();
    await b.lock();
    const ac = new AbortController();
    const order: number[] = [];
    const waits = Array.from({ length: 1000 }, (_, i) => {
      const p = i % 3 === 0 ? a.lock({ signal: ac.signal }) : i % 3 === 1 ? b.lock({ signal: ac.signal }) : b.rLock({ signal: ac.signal });
      return p.then(
        () => 'granted',
        (e: unknown) => {
          order.push(i);
          return e;
        },
      );
    });
    expect(abortListeners(ac.signal)).toBe(1);
    const reason = new Error('request gone');
    ac.abort(reason);
    expect(a.waiting + b.waiting).toBe(0);
    expect(abortListeners(ac.signal)).toBe(0);
    expect(await Promise.all(waits)).toEqual(Array(1000).fill(reason));
    expect(order).toEqual([...order].sort((x, y) => x - y));
    expect(a.locked && b.locked).toBe(true); // the holders are untouched
    await flush();
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
  });

  test('granted waiters leave the list; the listener goes with the last one', async () => {
    const mu = new Mutex();
    await mu.lock();
    const ac = new AbortController();
    const waits = Array.from({ length: 50 }, () => mu.lock({ signal: ac.signal }));
    expect(abortListeners(ac.signal)).toBe(1);
    for (let i = 0; i < 49; i++) {
      mu.unlock();
      expect(abortListeners(ac.signal)).toBe(1);
    }
    mu.unlock();
    expect(abortListeners(ac.signal)).toBe(0);
    const guards: Guard[] = await Promise.all(waits);
    expect(guards).toHaveLength(50);
    ac.abort(); // after every grant: changes nothing
    expect(mu.locked).toBe(true);
    // the signal can be used again: the list is re-armed
    const again = track(mu.lock({ signal: ac.signal }));
    await flush();
    expect(again.state).toBe('rejected'); // already aborted: rejected without queuing
    const ac2 = new AbortController();
    const w = track(mu.lock({ signal: ac2.signal }));
    mu.unlock();
    await flush();
    expect(w.state).toBe('fulfilled');
    expect(abortListeners(ac2.signal)).toBe(0);
  });

  test('readers behind an aborted writer on the same signal: the writer leaves, the readers are admitted or abort, nothing is lost', async () => {
    const rw = new RWMutex();
    await rw.rLock();
    const ac = new AbortController();
    const writer = track(rw.lock({ signal: ac.signal }));
    const readers = Array.from({ length: 5 }, () => track(rw.rLock({ signal: ac.signal })));
    const other = track(rw.rLock());
    expect(abortListeners(ac.signal)).toBe(1);
    ac.abort();
    await flush();
    // the writer's leaving admits the readers behind it, some of which were on the aborting list: each is
    // granted or rejected exactly once, and none stays queued
    expect(writer.state).toBe('rejected');
    for (const r of readers) expect(r.state).not.toBe('pending');
    expect(other.state).toBe('fulfilled');
    expect(rw.waiting).toBe(0);
    expect(abortListeners(ac.signal)).toBe(0);
  });

  test('AbortSignal.timeout shared by a batch: one timer, one listener, every waiter rejected with TimeoutError', async () => {
    const mu = new Mutex();
    await mu.lock();
    const signal = AbortSignal.timeout(5);
    const waits = Array.from({ length: 200 }, () => mu.lock({ signal }).catch((e: unknown) => e));
    expect(abortListeners(signal)).toBe(1);
    for (const e of await Promise.all(waits)) expect(e).toMatchObject({ name: 'TimeoutError' });
    expect(abortListeners(signal)).toBe(0);
    expect(mu.waiting).toBe(0);
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
  });
});

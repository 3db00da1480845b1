// Lock metrics, read as Prometheus reads them: the text output of a real prom-client registry.
import { describe, test, expect, afterEach } from 'vitest';
import { Registry, register as globalRegister } from 'prom-client';
import { Mutex, RWMutex, Semaphore, KeyedMutex, collectLockMetrics, setLockTracking } from '../src/index.js';
import { useProfiler, ms, flush } from './helpers.js';

const clock = useProfiler({ mutex: 0, block: 0 });

/** The value of one series line of the exposition text, or undefined. */
function valueOf(text: string, line: string): number | undefined {
  const m = text.split('\n').find((l) => l.startsWith(line + ' '));
  return m === undefined ? undefined : Number(m.slice(line.length + 1));
}

describe('collectLockMetrics', () => {
  let stop: (() => void) | null = null;
  afterEach(() => {
    stop?.();
    stop = null;
    setLockTracking('off');
  });

  test('every contended wait, exactly, per lock: histogram, counters, waiters now', async () => {
    const register = new Registry();
    stop = collectLockMetrics({ register, buckets: [0.001, 0.01, 0.1] });
    const mu = new Mutex({ name: 'orders' });
    const waits = [0.5, 2, 2, 50].map((x) => x * ms); // ns
    for (const w of waits) {
      await mu.lock();
      const p = mu.lock();
      clock.advance(w);
      mu.unlock();
      (await p)[Symbol.dispose]();
    }
    await mu.lock();
    const waiting = [mu.lock(), mu.lock()];
    const text = await register.metrics();
    const l = 'lock="orders",kind="Mutex",mode="exclusive"';
    expect(text).toContain('# TYPE mutexprof_lock_wait_seconds histogram');
    expect(valueOf(text, `mutexprof_lock_wait_seconds_bucket{le="0.001",${l}}`)).toBe(1);
    expect(valueOf(text, `mutexprof_lock_wait_seconds_bucket{le="0.01",${l}}`)).toBe(3);
    expect(valueOf(text, `mutexprof_lock_wait_seconds_bucket{le="0.1",${l}}`)).toBe(4);
    expect(valueOf(text, `mutexprof_lock_wait_seconds_bucket{le="+Inf",${l}}`)).toBe(4);
    expect(valueOf(text, `mutexprof_lock_wait_seconds_count{${l}}`)).toBe(4);
    expect(valueOf(text, `mutexprof_lock_wait_seconds_sum{${l}}`)).toBeCloseTo(0.0545, 12);
    expect(text).toContain('# TYPE mutexprof_lock_contentions_total counter');
    expect(valueOf(text, `mutexprof_lock_contentions_total{${l}}`)).toBe(4);
    expect(valueOf(text, `mutexprof_lock_wait_seconds_total{${l}}`)).toBeCloseTo(0.0545, 12);
    expect(valueOf(text, `mutexprof_lock_waiters{${l}}`)).toBe(2);
    mu.unlock();
    for (const p of waiting) (await p)[Symbol.dispose]();
    await flush();
    expect(valueOf(await register.metrics(), `mutexprof_lock_waiters{${l}}`)).toBe(0);
  });

  test('kinds and modes are labels; KeyedMutex keys are not; unnamed locks share lock=""', async () => {
    const register = new Registry();
    stop = collectLockMetrics({ register });
    const rw = new RWMutex({ name: 'config' });
    await rw.lock();
    const r = rw.rLock();
    rw.unlock();
    (await r)[Symbol.dispose]();
    const sem = new Semaphore(1, { name: 'pool' });
    const keyed = new KeyedMutex({ name: 'users' });
    const anonymous = new Mutex();
    for (const [take, again] of [
      [() => sem.acquire(), () => sem.acquire()],
      [() => keyed.lock('u1'), () => keyed.lock('u1')],
      [() => anonymous.lock(), () => anonymous.lock()],
    ] as const) {
      const g = await take();
      const w = again();
      g[Symbol.dispose]();
      (await w)[Symbol.dispose]();
    }
    const text = await register.metrics();
    for (const labels of [
      'lock="config",kind="RWMutex",mode="shared"',
      'lock="pool",kind="Semaphore",mode="shared"',
      'lock="users",kind="KeyedMutex",mode="exclusive"',
      'lock="",kind="Mutex",mode="exclusive"',
    ]) {
      expect(valueOf(text, `mutexprof_lock_contentions_total{${labels}}`)).toBe(1);
    }
    expect(text).not.toContain('u1');
  });

  test('with tracking on: hold times and holders now', async () => {
    setLockTracking('on');
    const register = new Registry();
    stop = collectLockMetrics({ register, prefix: 'app_' });
    const mu = new Mutex({ name: 'held' });
    await mu.lock();
    clock.advance(7 * ms);
    let text = await register.metrics();
    expect(valueOf(text, 'app_lock_held{lock="held",kind="Mutex",mode="exclusive"}')).toBe(1);
    mu.unlock();
    text = await register.metrics();
    expect(valueOf(text, 'app_lock_hold_seconds_count{lock="held",kind="Mutex",mode="exclusive"}')).toBe(1);
    expect(valueOf(text, 'app_lock_hold_seconds_sum{lock="held",kind="Mutex",mode="exclusive"}')).toBeCloseTo(0.007, 12);
    expect(valueOf(text, 'app_lock_held{lock="held",kind="Mutex",mode="exclusive"}')).toBe(0);
  });

  test('the returned function unregisters; bad options throw and register nothing', async () => {
    const register = new Registry();
    const off = collectLockMetrics({ register });
    expect(register.getMetricsAsArray().map((m) => m.name)).toContain('mutexprof_lock_wait_seconds');
    off();
    off();
    expect(register.getMetricsAsArray()).toEqual([]);
    expect(() => collectLockMetrics({ register, prefix: 'bad prefix' })).toThrow(TypeError);
    expect(() => collectLockMetrics({ register, buckets: [1, 0.5] })).toThrow(RangeError);
    // a name already taken: prom-client's error, and nothing of ours stays registered
    const taken = new Registry();
    taken.registerMetric({ name: 'mutexprof_lock_waiters', get: async () => ({}) } as never);
    expect(() => collectLockMetrics({ register: taken })).toThrow(/already been registered/);
    expect(taken.getMetricsAsArray().map((m) => m.name)).toEqual(['mutexprof_lock_waiters']);
    // the default is prom-client's global registry
    stop = collectLockMetrics();
    expect(globalRegister.getSingleMetric('mutexprof_lock_contentions_total')).toBeDefined();
  });
});

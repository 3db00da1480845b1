// Lock metrics for Prometheus, through prom-client (an optional peer dependency, as express is).
//
// Every contended wait is counted, exactly (not sampled): while metrics are collected, every waiter takes a
// timestamp, and its wait is added to its lock's series (src/profile/lockstats.ts) when it is granted or gives
// up — no prom-client call on the lock path. prom-client reads the series when scraped, through metric objects
// that answer its registry as its own Histogram, Counter and Gauge do.

import { createRequire } from 'node:module';
import { sampling, retime } from '../profile/sampling.js';
import type { LockMode } from '../locks/seam.js';
import { diag, sharedHolders, type Acquisition } from '../diagnostics/records.js';
import { liveLocks } from '../diagnostics/query.js';
import { metrics, type Series } from '../profile/lockstats.js';
import { describeValue } from '../shared/check.js';

/** What prom-client's registry needs of a metric: registerMetric(), then get() when scraped. */
interface PromMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'histogram' | 'counter' | 'gauge';
  readonly aggregator: 'sum';
  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: PromValue[] }>;
}

interface PromValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/**
 * The part of prom-client's Registry used here. registerMetric's parameter is `never` so that any prom-client
 * version's Registry fits (its own Metric types differ between versions); what is passed is a metric object that
 * answers get() in the shape every prom-client since 13 reads.
 */
export interface MetricsRegistry {
  registerMetric(metric: never): void;
  removeSingleMetric(name: string): void;
}

/** Options of collectLockMetrics. */
export interface LockMetricsOptions {
  /** A prom-client Registry. Default: prom-client's global registry. */
  register?: MetricsRegistry;
  /** Prefix of the metric names. Default 'mutexprof_'. */
  prefix?: string;
  /** Upper bounds (seconds) of the wait and hold histograms' buckets. Default 100 µs … 10 s. */
  buckets?: number[];
}

function histogram(name: string, help: string, pick: (s: Series) => [Float64Array, number, number]): PromMetric {
  return {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    async get() {
      const values: PromValue[] = [];
      for (const s of metrics.series.values()) {
        const [counts, sum, count] = pick(s);
        if (count === 0) continue;
        let cumulative = 0;
        metrics.buckets.forEach((le, i) => {
          cumulative += counts[i];
          values.push({ value: cumulative, labels: { le, ...s.labels }, metricName: `${name}_bucket` });
        });
        values.push({ value: count, labels: { le: '+Inf', ...s.labels }, metricName: `${name}_bucket` });
        values.push({ value: sum, labels: { ...s.labels }, metricName: `${name}_sum` });
        values.push({ value: count, labels: { ...s.labels }, metricName: `${name}_count` });
      }
      return { name, help, type: 'histogram', aggregator: 'sum', values };
    },
  };
}

function scalar(name: string, help: string, type: 'counter' | 'gauge', values: () => PromValue[]): PromMetric {
  return {
    name,
    help,
    type,
    aggregator: 'sum',
    async get() {
      return { name, help, type, aggregator: 'sum', values: values() };
    },
  };
}

/** The waiters (or, with tracking on, the holders) of every lock now, per series. */
function now(what: 'waiters' | 'held'): PromValue[] {
  const by = new Map<string, PromValue>();
  const add = (lock: string, kind: string, mode: LockMode): void => {
    const key = `${lock}\0${kind}\0${mode}`;
    const v = by.get(key);
    if (v === undefined) by.set(key, { value: 1, labels: { lock, kind, mode } });
    else v.value++;
  };
  for (const lock of liveLocks()) {
    if (what === 'waiters') {
      for (let w = lock.firstWaiter; w !== null; w = w.next) add(lock.name, lock.kind, w.mode);
    } else {
      if (lock.holder !== null && (lock.holder as Acquisition).tracked) add(lock.name, lock.kind, 'exclusive');
      const shared = sharedHolders(lock);
      if (shared !== null) for (const _ of shared) add(lock.name, lock.kind, 'shared');
    }
  }
  // series that had waiters or holders before, and have none now, read 0 (a gauge that vanished would keep its last value in dashboards)
  for (const s of metrics.series.values()) {
    const key = `${s.labels.lock}\0${s.labels.kind}\0${s.labels.mode}`;
    if (!by.has(key)) by.set(key, { value: 0, labels: { ...s.labels } });
  }
  return [...by.values()];
}

/**
 * Registers lock metrics with prom-client (an optional peer dependency), per lock name, kind and mode:
 * `mutexprof_lock_wait_seconds` (histogram of every contended wait, exact), `mutexprof_lock_contentions_total`,
 * `mutexprof_lock_wait_seconds_total` (the counterpart of Go's /sync/mutex/wait/total:seconds),
 * `mutexprof_lock_waiters` (gauge, now), and with lock tracking on, `mutexprof_lock_hold_seconds` and
 * `mutexprof_lock_held`. Returns a function that unregisters them.
 */
export function collectLockMetrics(options: LockMetricsOptions = {}): () => void {
  if (options === null || typeof options !== 'object') throw new TypeError('mutexprof: collectLockMetrics(options): options must be an object');
  const prefix = options.prefix ?? 'mutexprof_';
  if (typeof prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$|^$/.test(prefix))
    throw new TypeError(`mutexprof: collectLockMetrics({ prefix }): not a Prometheus metric name prefix: ${JSON.stringify(prefix)}`);
  const buckets = options.buckets;
  if (buckets !== undefined) {
    if (!Array.isArray(buckets) || buckets.length === 0 || buckets.some((b, i) => typeof b !== 'number' || !(b > 0) || !Number.isFinite(b) || (i > 0 && b <= buckets[i - 1]))) {
      throw new RangeError('mutexprof: collectLockMetrics({ buckets }): buckets must be increasing positive numbers of seconds');
    }
    if (metrics.on > 0 && buckets.join() !== metrics.buckets.join()) throw new RangeError('mutexprof: collectLockMetrics({ buckets }): another collector runs with other buckets');
  }
  const register = options.register ?? defaultRegistry();
  if (register === null || typeof register !== 'object' || typeof register.registerMetric !== 'function' || typeof register.removeSingleMetric !== 'function') {
    throw new TypeError(`mutexprof: collectLockMetrics({ register }): register must be a prom-client Registry, got ${describeValue(register)}`);
  }
  const p = prefix;
  const list: PromMetric[] = [
    histogram(`${p}lock_wait_seconds`, 'Waits for locks that were contended (every wait, not sampled).', (s) => [s.waits, s.waitSum, s.waitCount]),
    scalar(`${p}lock_contentions_total`, 'Contended acquisitions (waits) of locks.', 'counter', () =>
      [...metrics.series.values()].filter((s) => s.waitCount > 0).map((s) => ({ value: s.waitCount, labels: { ...s.labels } })),
    ),
    scalar(`${p}lock_wait_seconds_total`, 'Time spent waiting for locks (the counterpart of Go’s /sync/mutex/wait/total:seconds).', 'counter', () =>
      [...metrics.series.values()].filter((s) => s.waitCount > 0).map((s) => ({ value: s.waitSum, labels: { ...s.labels } })),
    ),
    scalar(`${p}lock_waiters`, 'Callers waiting for locks now.', 'gauge', () => now('waiters')),
    histogram(`${p}lock_hold_seconds`, 'How long locks were held (needs setLockTracking(\u2019on\u2019)).', (s) => [s.holds, s.holdSum, s.holdCount]),
    scalar(`${p}lock_held`, 'Holders of locks now (needs setLockTracking(\u2019on\u2019)).', 'gauge', () => (diag.recordAll ? now('held') : [])),
  ];
  const done: PromMetric[] = [];
  try {
    for (const m of list) {
      (register.registerMetric as (metric: PromMetric) => void).call(register, m);
      done.push(m);
    }
  } catch (e) {
    for (const m of done) register.removeSingleMetric(m.name); // a name was taken: nothing stays registered
    throw e;
  }
  if (buckets !== undefined && metrics.on === 0) {
    metrics.buckets = [...buckets];
    metrics.series.clear();
  }
  metrics.on++;
  sampling.metrics = true;
  retime();
  let registered = true;
  return () => {
    if (!registered) return;
    registered = false;
    for (const m of list) register.removeSingleMetric(m.name);
    metrics.on--;
    sampling.metrics = metrics.on > 0;
    retime();
  };
}

function defaultRegistry(): MetricsRegistry {
  let prom: { register: MetricsRegistry };
  try {
    prom = requirePeer('prom-client') as { register: MetricsRegistry };
  } catch {
    throw new Error('mutexprof: collectLockMetrics() needs prom-client (npm install prom-client), or pass { register } with a Registry of yours');
  }
  return prom.register;
}

// prom-client is an optional peer dependency: loaded only here, from the application's node_modules.
function requirePeer(name: string): unknown {
  for (const from of [createRequire(process.cwd() + '/'), createRequire(import.meta.url)]) {
    try {
      return from(name);
    } catch {
      /* try the next place */
    }
  }
  throw new Error(`cannot find ${name}`);
}

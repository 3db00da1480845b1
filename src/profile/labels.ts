// withLabels: like Go's pprof.Do. Contention recorded while fn runs (across awaits) carries these labels.

import { AsyncLocalStorage } from 'node:async_hooks';

/** An immutable, sorted label set with its aggregation key. */
export interface LabelSet {
  readonly pairs: ReadonlyArray<readonly [string, string]>;
  readonly key: string;
}

const storage = new AsyncLocalStorage<LabelSet>();

/** The labels of the current async context, or null. */
export function currentLabels(): LabelSet | null {
  return storage.getStore() ?? null;
}

/**
 * Runs `fn` with `labels` added to the labels of the current context (inner keys win) and returns its result.
 * Every contention sample recorded while `fn` runs, across awaits, carries them. The key `lock` is reserved
 * for the lock's name.
 */
export function withLabels<T>(labels: Record<string, string>, fn: () => T): T {
  if (labels === null || typeof labels !== 'object' || Array.isArray(labels)) {
    throw new TypeError(`mutexprof: withLabels(labels, fn): labels must be an object of strings, got ${labels === null ? 'null' : Array.isArray(labels) ? 'an array' : typeof labels}`);
  }
  if (typeof fn !== 'function') throw new TypeError(`mutexprof: withLabels(labels, fn): fn must be a function, got ${typeof fn}`);
  const merged = new Map<string, string>();
  const outer = storage.getStore();
  if (outer) for (const [k, v] of outer.pairs) merged.set(k, v);
  for (const k of Object.keys(labels)) {
    const v = labels[k];
    if (typeof v !== 'string') throw new TypeError(`mutexprof: withLabels: label ${JSON.stringify(k)} must be a string, got ${typeof v}`);
    if (k === '') throw new TypeError('mutexprof: withLabels: label keys must not be empty');
    if (k === 'lock') throw new TypeError('mutexprof: withLabels: the label key "lock" is reserved for the lock name');
    merged.set(k, v);
  }
  const pairs = [...merged].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const set: LabelSet = Object.freeze({ pairs, key: JSON.stringify(pairs) });
  return storage.run(set, fn);
}

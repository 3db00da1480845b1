// withLabels: like Go's pprof.Do. Contention recorded while fn runs (across awaits) carries these labels.
//
// The store is one AsyncLocalStorage per process (src/shared/state.ts), so labels set through any copy of mutexprof
// label the locks of every copy.

import { AsyncLocalStorage } from 'node:async_hooks';
import { shared } from '../shared/state.js';

/** An immutable label set, sorted by key. */
export interface LabelSet {
  readonly pairs: ReadonlyArray<readonly [string, string]>;
  /** The set as one string (computed when first read): the profiles aggregate samples by it. */
  readonly key: string;
}

class Labels implements LabelSet {
  #key: string | undefined;
  constructor(readonly pairs: ReadonlyArray<readonly [string, string]>) {
    Object.freeze(pairs);
  }
  get key(): string {
    return (this.#key ??= JSON.stringify(this.pairs));
  }
}

/** Label keys the profiles set themselves: the lock's name, the side of an RWMutex, held or waiting. */
export const RESERVED: ReadonlySet<string> = new Set(['lock', 'mode', 'state']);

const storage = shared('labels', () => new AsyncLocalStorage<LabelSet>());

/** The labels of the current async context, or null. */
export function currentLabels(): LabelSet | null {
  return storage.getStore() ?? null;
}

/** A label set from sorted, distinct pairs. */
export function labelSet(pairs: Array<readonly [string, string]>): LabelSet {
  return new Labels(pairs);
}

// Lock calls pass one constant object (`{ labels: ROUTE }`) on every call: it is read once, the first time it is
// used, and its labels are reused from then on (a labels object is a constant; pass a new one to change them).
const fromObject = new WeakMap<object, LabelSet>();
// and the last one looked up, before the WeakMap: a service passes one or a few, and a WeakMap lookup is a hash
let lastObject: unknown = null;
let lastSet: LabelSet | null = null;

/** The label set of a `labels` option, checked when first seen (`method` names the call in errors). */
export function labelSetOf(labels: unknown, method: string): LabelSet {
  if (labels === lastObject && lastSet !== null) return lastSet;
  const set = checkedLabelSet(labels, method);
  lastObject = labels;
  lastSet = set;
  return set;
}

function checkedLabelSet(labels: unknown, method: string): LabelSet {
  if (labels === null || typeof labels !== 'object' || Array.isArray(labels)) {
    throw new TypeError(`mutexprof: ${method}({ labels }): labels must be an object of strings, got ${labels === null ? 'null' : Array.isArray(labels) ? 'an array' : typeof labels}`);
  }
  const known = fromObject.get(labels);
  if (known !== undefined) return known;
  const record = labels as Record<string, unknown>;
  const pairs: Array<readonly [string, string]> = [];
  for (const k of Object.keys(record)) {
    const v = record[k];
    if (typeof v !== 'string') throw new TypeError(`mutexprof: ${method}({ labels }): label ${JSON.stringify(k)} must be a string, got ${typeof v}`);
    if (k === '') throw new TypeError(`mutexprof: ${method}({ labels }): label keys must not be empty`);
    if (RESERVED.has(k)) throw new TypeError(`mutexprof: ${method}({ labels }): the label key "${k}" is reserved (mutexprof sets it)`);
    pairs.push([k, v]);
  }
  const set = new Labels(pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
  fromObject.set(labels, set);
  return set;
}

/** Where labels of an event may also come from: its context beyond withLabels (OpenTelemetry's trace endpoint). */
export type LabelSource = () => ReadonlyArray<readonly [string, string]> | null;

/** The label sources, one list per process (src/shared/state.ts): a source added through any copy labels every copy's events. */
const sources = shared('labelSources', () => ({ list: [] as LabelSource[] }));

/** Adds a label source, read for each sampled event (and record); returns a function that removes it. */
export function addLabelSource(source: LabelSource): () => void {
  sources.list.push(source);
  return () => {
    const i = sources.list.indexOf(source);
    if (i >= 0) sources.list.splice(i, 1);
  };
}

/**
 * The labels of an event: the label sources' (a source's labels lose to withLabels'), the context's (withLabels),
 * with an acquisition's own on top.
 */
export function eventLabels(own: LabelSet | null): LabelSet | null {
  const context = storage.getStore() ?? null;
  if (sources.list.length !== 0) return withSources(context, own);
  if (own === null || context === null) return own ?? context;
  const merged = new Map<string, string>(context.pairs);
  for (const [k, v] of own.pairs) merged.set(k, v);
  return new Labels([...merged].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
}

function withSources(context: LabelSet | null, own: LabelSet | null): LabelSet | null {
  const merged = new Map<string, string>();
  for (const source of sources.list) {
    const pairs = source();
    if (pairs !== null) for (const [k, v] of pairs) if (!RESERVED.has(k)) merged.set(k, v);
  }
  if (context !== null) for (const [k, v] of context.pairs) merged.set(k, v);
  if (own !== null) for (const [k, v] of own.pairs) merged.set(k, v);
  return merged.size === 0 ? null : new Labels([...merged].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
}

/**
 * Runs `fn` with `labels` added to the labels of the current context (inner keys win) and returns its result.
 * Every contention sample recorded while `fn` runs, across awaits, carries them. The keys `lock`, `mode` and
 * `state` are reserved for what mutexprof sets itself (the lock's name, the side of an RWMutex, held or waiting).
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
    if (RESERVED.has(k)) throw new TypeError(`mutexprof: withLabels: the label key "${k}" is reserved (mutexprof sets it)`);
    merged.set(k, v);
  }
  const pairs = [...merged].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return storage.run(new Labels(pairs), fn);
}

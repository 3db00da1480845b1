// KeyedMutex: one Mutex per key (one refresh per user, one write per file), taken when a key is first locked and
// given up as soon as it is free with nobody waiting, so a key that is not in use holds no memory (a few free
// mutexes, at most SPARE, are kept to serve the next keys).
//
// Several keys are taken in one canonical order (numbers before strings, each ascending), so two callers with
// overlapping key sets cannot deadlock. Every key's lock is profiled under the KeyedMutex's name; the key itself
// is a label only with { keyLabel: true } (each key a label value: mind the cardinality).

import { Mutex } from './mutex.js';
import { checkFn, checkOptions, describeValue, type Guard, type LockOptions, type MutexOptions } from './options.js';
import { declareLeaf, hooks, type Method } from './seam.js';

/** A key of a KeyedMutex. */
export type LockKey = string | number;

/** Options of the KeyedMutex constructor. */
export interface KeyedMutexOptions extends MutexOptions {
  /** Label samples with `key=<the key>` (each key becomes a label value: keep the number of keys small). */
  keyLabel?: boolean;
}

/** Free key mutexes kept for reuse, per KeyedMutex (bench: locks, "KeyedMutex, one key": a new mutex per acquisition of an idle key costs more than the lock). */
const SPARE = 16;

const LEAF_LOCK = 'KeyedMutex.lock';
const LEAF_UNLOCK = 'KeyedMutex.unlock';

/** The Mutex of one key: it leaves its KeyedMutex's map when it is free and nobody waits. */
class KeyMutex extends Mutex {
  key: LockKey = '';
  constructor(
    name: string,
    private readonly owner: KeyedMutex,
  ) {
    super({ name });
  }

  /** @internal every release (unlock(), a guard, withLock) comes through here */
  override _unlock(skip: Method): void {
    super._unlock(skip);
    if (!this.locked && this._head === null) this.owner._free(this);
  }

  /** @internal */
  override _afterAbort(): void {
    if (!this.locked && this._head === null) this.owner._free(this);
  }

  /** @internal */
  override get kind(): string {
    return 'KeyedMutex';
  }

  /** @internal samples name what the caller called: KeyedMutex.lock, and its guard's release */
  override get _leafLock(): string {
    return LEAF_LOCK;
  }
  /** @internal */
  override get _leafUnlock(): string {
    return LEAF_UNLOCK;
  }
}

function checkKey(method: string, key: unknown): LockKey {
  if (typeof key === 'string' || (typeof key === 'number' && Number.isFinite(key))) return key;
  throw new TypeError(`mutexprof: ${method}: a key must be a string or a finite number, got ${describeValue(key)}`);
}

/** The keys, checked, without duplicates, in the canonical order (numbers ascending, then strings ascending). */
function canonical(method: string, keys: LockKey | readonly LockKey[]): LockKey[] {
  if (Array.isArray(keys) && keys.length === 0) throw new TypeError(`mutexprof: ${method}: no keys (an empty list would hold nothing)`);
  const list = Array.isArray(keys) ? [...new Set((keys as readonly unknown[]).map((k) => checkKey(method, k)))] : [checkKey(method, keys)];
  return list.sort((a, b) => (typeof a === typeof b ? (a < b ? -1 : a > b ? 1 : 0) : typeof a === 'number' ? -1 : 1));
}

export class KeyedMutex {
  readonly name: string;
  readonly #keyLabel: boolean;
  readonly #locks = new Map<LockKey, KeyMutex>();
  readonly #spare: KeyMutex[] = [];

  constructor(options?: KeyedMutexOptions) {
    if (options !== undefined && (options === null || typeof options !== 'object')) {
      throw new TypeError(`mutexprof: new KeyedMutex(options): options must be an object, got ${describeValue(options)}`);
    }
    const name = options?.name;
    if (name !== undefined && typeof name !== 'string') throw new TypeError(`mutexprof: new KeyedMutex({ name }): name must be a string, got ${describeValue(name)}`);
    if (options?.keyLabel !== undefined && typeof options.keyLabel !== 'boolean') throw new TypeError('mutexprof: new KeyedMutex({ keyLabel }): keyLabel must be a boolean');
    this.name = name ?? '';
    this.#keyLabel = options?.keyLabel === true;
  }

  /** Keys held or waited for now (a free key is not kept). */
  get size(): number {
    return this.#locks.size;
  }

  /** True while somebody holds `key`. */
  isLocked(key: LockKey): boolean {
    return this.#locks.get(checkKey('KeyedMutex.isLocked', key))?.locked ?? false;
  }

  /**
   * Waits for `key` (or every key of `keys`, taken in the canonical order). Resolves to a guard that releases
   * them all: `using _ = await keyed.lock(userId)`. Aborting while some keys are taken releases those.
   */
  lock(keys: LockKey | readonly LockKey[], options?: LockOptions): Promise<Guard> {
    if (typeof keys === 'string' && options === undefined && !this.#keyLabel) return this.#mutexOf(keys).lock(); // the common case
    let list: LockKey[];
    try {
      list = canonical('KeyedMutex.lock', keys);
      const signal = checkOptions(options, 'KeyedMutex.lock');
      if (options?.labels !== undefined) hooks.labels(options.labels, 'KeyedMutex.lock');
      // nothing is made for a call that cannot wait: a key's entry exists only while it is held or waited for
      if (signal?.aborted) return Promise.reject(signal.reason);
    } catch (e) {
      return Promise.reject(e);
    }
    if (list.length === 1) return this.#mutexOf(list[0]).lock(this.#optionsFor(list[0], options));
    return this.#lockAll(list, options);
  }

  /** Runs `fn` holding `key` (or `keys`) and returns its result; released on every exit path. */
  async withLock<T>(keys: LockKey | readonly LockKey[], fn: () => T | PromiseLike<T>, options?: LockOptions): Promise<Awaited<T>> {
    const bad = checkFn('KeyedMutex.withLock', fn);
    if (bad !== null) throw bad;
    const g = await this.lock(keys, options);
    try {
      return await fn();
    } finally {
      g[Symbol.dispose]();
    }
  }

  async #lockAll(keys: LockKey[], options: LockOptions | undefined): Promise<Guard> {
    const held: Guard[] = [];
    try {
      for (const k of keys) held.push(await this.#mutexOf(k).lock(this.#optionsFor(k, options)));
    } catch (e) {
      for (const g of held.reverse()) g[Symbol.dispose]();
      throw e;
    }
    let released = false;
    return {
      [Symbol.dispose]: () => {
        if (released) throw new Error(`mutexprof: guard of KeyedMutex${this.name ? ` ${JSON.stringify(this.name)}` : ''} is already released (disposed twice)`);
        released = true;
        for (let i = held.length - 1; i >= 0; i--) held[i][Symbol.dispose]();
      },
    };
  }

  #mutexOf(key: LockKey): KeyMutex {
    let m = this.#locks.get(key);
    if (m === undefined) {
      m = this.#spare.pop() ?? new KeyMutex(this.name, this);
      m.key = key;
      this.#locks.set(key, m);
    }
    return m;
  }

  /** @internal `m`'s key is free and nobody waits for it: the key leaves the map (its mutex may serve another). */
  _free(m: KeyMutex): void {
    this.#locks.delete(m.key);
    m.key = '';
    m.id = 0; // another key, another lock in the views
    if (this.#spare.length < SPARE) this.#spare.push(m);
  }

  #optionsFor(key: LockKey, options: LockOptions | undefined): LockOptions | undefined {
    if (!this.#keyLabel) return options;
    return { ...options, labels: { ...options?.labels, key: String(key) } };
  }
}

declareLeaf(LEAF_LOCK, KeyedMutex.prototype.lock);
declareLeaf(LEAF_UNLOCK, KeyMutex.prototype._unlock);

// Where the endpoint's profiles come from: this process, or merged over its cluster (the cluster option). One
// interface, so that serving a profile reads the same for both.

import { clusterSnapshot, clusterText, gather } from '../cluster/peers.js';
import { encodeSnapshot } from '../pprof/proto.js';
import { collectText, currentProto, currentSnapshot, currentText, deltaOver, profiles, sourceOf, type ProfileSnapshot, type ProfileSource } from '../pprof/registry.js';

/** What the index page shows: samples per profile, notes, and over which processes. */
export interface IndexFacts {
  /** whether the counts are merged over a cluster */
  readonly merged: boolean;
  /** samples per profile */
  readonly counts: ReadonlyMap<string, number>;
  /** the peers left out (they did not answer) */
  readonly missing: readonly string[];
  /** per profile, its notes (whether it is off, what the bounds dropped), each naming its process when merged */
  readonly notes: ReadonlyArray<readonly [string, string]>;
}

/** The profiles a request is answered from. Every call ends early (null) when `signal` aborts. */
export interface Profiles {
  /** What the index page shows (events pending resolved first), or null. */
  index(signal: AbortSignal): Promise<IndexFacts | null>;
  /** The snapshot of `source` now (shared by concurrent requests), or null. */
  snapshot(source: ProfileSource, signal: AbortSignal): Promise<ProfileSnapshot | null>;
  /** The delta of `source` over the next `seconds`, or null. */
  delta(source: ProfileSource, seconds: number, signal: AbortSignal): Promise<ProfileSnapshot | null>;
  /** The legacy text (debug=1), or null. */
  text(source: ProfileSource, signal: AbortSignal): Promise<string | Buffer[] | null>;
  /** The gzipped protobuf, or null. */
  proto(source: ProfileSource, signal: AbortSignal): Promise<Buffer | Buffer[] | null>;
}

/** This process's profiles. */
export const localProfiles: Profiles = {
  index: () =>
    Promise.resolve({
      merged: false,
      counts: new Map(profiles().map((p) => [p.name, p.count()])),
      missing: [],
      notes: profiles().map((p) => [p.name, sourceOf(p.name)?.note?.() ?? ''] as const),
    }),
  snapshot: (source) => currentSnapshot(source.name),
  delta: (source, seconds, signal) => deltaOver(source, seconds, signal),
  text: (source) => currentText(source.name),
  proto: (source) => currentProto(source.name),
};

/** Every profile merged over this process, its cluster workers and the threads that share theirs (src/cluster/peers.ts). */
export function clusterProfiles(timeoutMs: number): Profiles {
  const snapshot = (source: ProfileSource, signal: AbortSignal): Promise<ProfileSnapshot | null> => clusterSnapshot({ op: 'snapshot', name: source.name }, timeoutMs, signal);
  return {
    async index(signal) {
      const g = await gather({ op: 'counts' }, timeoutMs, signal);
      return g === null ? null : { merged: true, counts: new Map(Object.entries(g.counts ?? {})), missing: g.missing, notes: g.notes ?? [] };
    },
    snapshot,
    delta: (source, seconds, signal) => clusterSnapshot({ op: 'delta', name: source.name, seconds }, timeoutMs, signal),
    async text(source, signal) {
      // a text of its own (the locks dump): each process's, one after the other
      if (typeof source.text === 'function') return clusterText(source.name, timeoutMs, signal);
      const merged = await snapshot(source, signal);
      return merged === null ? null : derived(merged, 'text', () => collectText(source, merged));
    },
    async proto(source, signal) {
      const merged = await snapshot(source, signal);
      return merged === null ? null : derived(merged, 'proto', () => encodeSnapshot(merged, source.sampleTypes));
    },
  };
}

const derivations = new WeakMap<ProfileSnapshot, Map<string, Promise<unknown>>>();

/** What is made from a snapshot (its encoding, its text, a flame graph), made once per snapshot and kind. */
export function derived<T>(s: ProfileSnapshot, kind: string, make: () => Promise<T>): Promise<T> {
  let made = derivations.get(s);
  if (made === undefined) derivations.set(s, (made = new Map()));
  let p = made.get(kind) as Promise<T> | undefined;
  if (p === undefined) {
    made.set(kind, (p = make()));
    p.catch(() => made.delete(kind));
  }
  return p;
}

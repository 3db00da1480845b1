// The registry of profiles, modelled on Go's runtime/pprof (Profiles, Lookup, NewProfile): every profile is a
// descriptor — name, description, sample types, where its samples come from, whether a delta makes sense, its
// legacy text — and the encoders, the HTTP endpoint and its index read the registry, never a list of names.
// Adding a profile is one registerProfile() call.
//
// The registry is one per process (src/shared/state.ts), and so are the builds it caches: concurrent readers of one
// profile (HTTP clients, scrapers) share one snapshot and one encoding while nothing has changed in between.

import type { Writable } from 'node:stream';
import { shared } from '../shared/state.js';
import type { Frame } from '../profile/stack.js';
import { encodeSnapshot } from './proto.js';
import { textChunks } from './text.js';
import { describeValue } from '../shared/check.js';

/** A sample type, as pprof names it: `{ type: 'delay', unit: 'nanoseconds' }`. */
export interface SampleType {
  readonly type: string;
  readonly unit: string;
}

/** One sample: a stack (leaf first), its labels and one value per sample type. */
export interface ProfileSample {
  /** The sample's identity within its profile: the same in every snapshot of this process. */
  readonly key: string;
  readonly frames: readonly Frame[];
  /** `lock` (the lock's name) first when the lock has one, then the others, e.g. withLabels' */
  readonly labels: ReadonlyArray<readonly [string, string]>;
  readonly values: readonly number[];
}

/** A point-in-time copy of a profile. */
export interface ProfileSnapshot {
  readonly name: string;
  /** wall-clock time of the snapshot, ns since the epoch */
  readonly timeNanos: bigint;
  /** the window a delta covers, in ns; 0 for a cumulative snapshot */
  readonly durationNanos: number;
  /** samples, largest last value (e.g. delay) first */
  readonly samples: readonly ProfileSample[];
  /** notes carried into the pprof `comment` field, e.g. what the bounds dropped */
  readonly comments: readonly string[];
}

/**
 * A delta window: `end()` gives what happened since it was opened, `roll()` that and the next window,
 * opened where this one ends (for a pusher: contiguous windows), `cancel()` gives it up.
 */
export interface Window {
  end(): Promise<ProfileSnapshot>;
  roll(): Promise<{ snapshot: ProfileSnapshot; next: Window }>;
  cancel(): void;
}

/** What the registry holds for a profile. */
export interface ProfileSource {
  readonly name: string;
  /** one line, as on Go's /debug/pprof/ index page */
  readonly description: string;
  readonly sampleTypes: readonly SampleType[];
  /** the legacy debug=1 text's header (Go's `--- mutex:` and so on), or a formatter of its own */
  readonly text: { readonly header: string } | ((s: ProfileSnapshot) => AsyncIterable<string>);
  /** distinct samples now, cheaply (the index page's count) */
  count(): number;
  /** a number that changes whenever the next snapshot could differ (builds are shared while it stays) */
  version(): number;
  snapshot(): Promise<ProfileSnapshot>;
  /** present when the profile counts since the process started, so that `?seconds=N` deltas make sense */
  window?(): Window;
  /** one line for the index page about what the bounds dropped, or '' */
  note?(): string;
}

/** A profile, as Go's pprof.Profile: `lookup('mutex')`. */
export interface LockProfile {
  readonly name: string;
  /** One line, as on Go's /debug/pprof/ index page. */
  readonly description: string;
  readonly sampleTypes: readonly SampleType[];
  /** Whether the profile counts since the process started (then `?seconds=N` serves a delta). */
  readonly cumulative: boolean;
  /** Number of distinct samples. */
  count(): number;
  /** Copies the samples now (resolving captured stacks first, a few milliseconds per turn of the event loop). */
  snapshot(): Promise<ProfileSnapshot>;
  /** Gzipped pprof protobuf of the profile now (or of `snapshot`). */
  encode(snapshot?: ProfileSnapshot): Promise<Buffer>;
  /** The legacy `debug=1` text of the profile now (or of `snapshot`). */
  text(snapshot?: ProfileSnapshot): Promise<string>;
  /** As Go's Profile.WriteTo: debug 0 writes gzipped pprof, anything else the legacy text. */
  writeTo(w: Writable, debug?: number): Promise<void>;
}

/** @deprecated the name of LockProfile before the registry held more than contention profiles */
export type ContentionProfile = LockProfile;

/** A profile's shared encodings: one in flight is joined; a finished one serves while nothing has changed. */
interface Build<T> {
  version: number;
  result: Promise<T>;
  done: boolean;
}

interface Registered {
  readonly source: ProfileSource;
  snapshot: Build<ProfileSnapshot> | null;
  proto: Build<Buffer> | null;
  text: Build<Buffer[]> | null;
}

const registry = shared('profiles', () => new Map<string, Registered>());

/** Adds a profile; the first copy of mutexprof to register a name keeps it. */
export function registerProfile(source: ProfileSource): void {
  if (!registry.has(source.name)) registry.set(source.name, { source, snapshot: null, proto: null, text: null });
}

/** */
export function sourceOf(name: string): ProfileSource | undefined {
  return registry.get(name)?.source;
}

/** The build to answer with now: the one in flight, the last one if nothing changed since, or a new one. */
function share<T>(current: Build<T> | null, version: number, make: () => Promise<T>, keep: (b: Build<T> | null) => void): Promise<T> {
  if (current !== null && (!current.done || current.version === version)) return current.result;
  const b: Build<T> = { version, result: make(), done: false };
  b.result.then(
    () => void (b.done = true),
    () => keep(null),
  );
  keep(b);
  return b.result;
}

/** The shared snapshot of the profile now (what the flame-graph page reads). */
export function currentSnapshot(name: string): Promise<ProfileSnapshot> {
  const r = registry.get(name)!;
  return share(
    r.snapshot,
    r.source.version(),
    () => r.source.snapshot(),
    (b) => void (r.snapshot = b),
  );
}

/** The shared encoding of the profile now. */
export function currentProto(name: string): Promise<Buffer> {
  const r = registry.get(name)!;
  return share(
    r.proto,
    r.source.version(),
    async () => encodeSnapshot(await r.source.snapshot(), r.source.sampleTypes),
    (b) => void (r.proto = b),
  );
}

/** The shared legacy text of the profile now, in chunks. */
export function currentText(name: string): Promise<Buffer[]> {
  const r = registry.get(name)!;
  return share(
    r.text,
    r.source.version(),
    async () => collectText(r.source, await r.source.snapshot()),
    (b) => void (r.text = b),
  );
}

/** The legacy text of `s`, in chunks of about 64 KiB, yielding to the event loop between them. */
export async function collectText(source: ProfileSource, s: ProfileSnapshot): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  const gen = typeof source.text === 'function' ? source.text(s) : textChunks(source.text.header, s);
  for await (const c of gen) chunks.push(Buffer.from(c));
  return chunks;
}

/** A snapshot given to a public call: one of this profile's (bad input is mutexprof's error, not a crash inside). */
function checkSnapshot(where: string, s: unknown, name?: string): ProfileSnapshot {
  const x = s as Partial<ProfileSnapshot> | null;
  if (x === null || typeof x !== 'object' || typeof x.name !== 'string' || !Array.isArray(x.samples) || typeof x.timeNanos !== 'bigint') {
    throw new TypeError(`mutexprof: ${where}: not a profile snapshot (from LockProfile.snapshot()), got ${describeValue(s)}`);
  }
  if (name !== undefined && x.name !== name) throw new TypeError(`mutexprof: ${where}: a snapshot of profile ${x.name}, not ${name}`);
  return x as ProfileSnapshot;
}

class Handle implements LockProfile {
  readonly name: string;
  readonly description: string;
  readonly sampleTypes: readonly SampleType[];
  readonly cumulative: boolean;
  constructor(private readonly source: ProfileSource) {
    this.name = source.name;
    this.description = source.description;
    this.sampleTypes = source.sampleTypes;
    this.cumulative = source.window !== undefined;
  }

  count(): number {
    return this.source.count();
  }

  snapshot(): Promise<ProfileSnapshot> {
    return this.source.snapshot();
  }

  async encode(snapshot?: ProfileSnapshot): Promise<Buffer> {
    return snapshot === undefined ? currentProto(this.name) : encodeSnapshot(checkSnapshot('LockProfile.encode(snapshot)', snapshot, this.name), this.sampleTypes);
  }

  async text(snapshot?: ProfileSnapshot): Promise<string> {
    const chunks = snapshot === undefined ? await currentText(this.name) : await collectText(this.source, checkSnapshot('LockProfile.text(snapshot)', snapshot, this.name));
    return Buffer.concat(chunks).toString();
  }

  async writeTo(w: Writable, debug = 0): Promise<void> {
    if (w === null || typeof w !== 'object' || typeof (w as Partial<Writable>).write !== 'function')
      throw new TypeError(`mutexprof: LockProfile.writeTo(w): w must be a writable stream, got ${describeValue(w)}`);
    if (typeof debug !== 'number' || !Number.isFinite(debug)) throw new TypeError(`mutexprof: LockProfile.writeTo(w, debug): debug must be a number, got ${describeValue(debug)}`);
    const body = debug === 0 ? [await this.encode()] : await currentText(this.name);
    for (const chunk of body) {
      await new Promise<void>((resolve, reject) => {
        w.write(chunk, (err) => (err ? reject(err) : resolve()));
      });
    }
  }
}

/** The named profile (as Go's pprof.Lookup), or undefined. */
export function lookup(name: 'mutex' | 'block' | 'hold' | 'locks'): LockProfile;
export function lookup(name: string): LockProfile | undefined;
export function lookup(name: string): LockProfile | undefined {
  const r = registry.get(name);
  return r === undefined ? undefined : new Handle(r.source);
}

/** Every registered profile, sorted by name (as Go's pprof.Profiles). */
export function profiles(): LockProfile[] {
  return [...registry.keys()].sort().map((n) => new Handle(registry.get(n)!.source));
}

/** @deprecated profiles() */
export const allProfiles = profiles;

/**
 * Samples of `after` minus `before` (two snapshots of one profile, matched by sample key); all-zero samples
 * dropped. Its `durationNanos` is the time between them: what `?seconds=N` serves, and what a pusher to
 * Pyroscope's /ingest must send (it stores each push as it is).
 */
export function deltaSnapshot(before: ProfileSnapshot, after: ProfileSnapshot): ProfileSnapshot {
  checkSnapshot('deltaSnapshot(before, after)', before);
  checkSnapshot('deltaSnapshot(before, after)', after);
  if (before.name !== after.name) throw new TypeError(`mutexprof: deltaSnapshot: snapshots of different profiles (${before.name}, ${after.name})`);
  const base = new Map<string, ProfileSample>();
  for (const s of before.samples) base.set(s.key, s);
  const samples: ProfileSample[] = [];
  for (const s of after.samples) {
    const b = base.get(s.key);
    const values = b === undefined ? s.values : s.values.map((v, i) => v - (b.values[i] ?? 0));
    if (values.some((v) => Math.round(v) !== 0)) samples.push(b === undefined ? s : { ...s, values });
  }
  const last = samples[0]?.values.length ?? 1;
  samples.sort((a, b) => b.values[last - 1] - a.values[last - 1]);
  return { name: after.name, timeNanos: after.timeNanos, durationNanos: Number(after.timeNanos - before.timeNanos), samples, comments: after.comments };
}

/**
 * The delta of `source` over the next `seconds` (never shorter: timers run on a cached millisecond
 * clock and can fire early by the monotonic one, so they are re-armed for what is left, as Go's time.Sleep
 * would wait), or null if `signal` aborts first. Timers are unreferenced: a pending delta keeps nothing alive.
 */
export async function deltaOver(source: ProfileSource, seconds: number, signal: AbortSignal): Promise<ProfileSnapshot | null> {
  const window = source.window!();
  const end = process.hrtime.bigint() + BigInt(seconds) * 1_000_000_000n;
  const done = await new Promise<boolean>((resolve) => {
    const finish = (ok: boolean): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', abort);
      resolve(ok);
    };
    const abort = (): void => finish(false);
    const check = (): void => {
      const left = Number(end - process.hrtime.bigint());
      if (left <= 0) finish(true);
      else timer = setTimeout(check, Math.ceil(left / 1e6)).unref();
    };
    let timer = setTimeout(check, seconds * 1000).unref();
    signal.addEventListener('abort', abort);
    if (signal.aborted) abort();
  });
  if (!done) {
    window.cancel();
    return null;
  }
  return window.end();
}

// The programmatic API over the two profiles, modelled on Go's runtime/pprof: lookup(name), then encode or write.

import type { Writable } from 'node:stream';
import { blockProfile, mutexProfile, type Entry, type Recorder } from './recorder.js';
import { buildProfile, encodeProfile, epochNanos } from './pprof.js';
import { formatText } from './text.js';

/** A point-in-time copy of a profile's samples. */
export interface ProfileSnapshot {
  readonly name: 'mutex' | 'block';
  /** wall-clock time of the snapshot, ns since the epoch */
  readonly timeNanos: bigint;
  /** samples, largest delay first */
  readonly entries: readonly Entry[];
}

/** One of the two contention profiles. */
export interface ContentionProfile {
  readonly name: 'mutex' | 'block';
  /** One line, as on Go's /debug/pprof/ index page. */
  readonly description: string;
  /** Number of distinct samples (stack × labels). */
  count(): number;
  /** Copies the samples now. */
  snapshot(): ProfileSnapshot;
  /** Gzipped pprof protobuf of the profile (or of `snapshot`); `durationNanos` marks a delta profile. */
  encode(snapshot?: ProfileSnapshot, durationNanos?: number): Promise<Buffer>;
  /** Go's legacy `debug=1` text. */
  text(snapshot?: ProfileSnapshot): string;
  /** As Go's Profile.WriteTo: debug 0 writes gzipped pprof, anything else the legacy text. */
  writeTo(w: Writable, debug?: number): Promise<void>;
}

class Contention implements ContentionProfile {
  constructor(
    readonly name: 'mutex' | 'block',
    readonly description: string,
    private readonly recorder: Recorder,
  ) {}

  count(): number {
    return this.recorder.size();
  }

  snapshot(): ProfileSnapshot {
    return { name: this.name, timeNanos: epochNanos(), entries: this.recorder.snapshot() };
  }

  async encode(snapshot: ProfileSnapshot = this.snapshot(), durationNanos?: number): Promise<Buffer> {
    const p = await buildProfile(snapshot.entries, { timeNanos: snapshot.timeNanos, durationNanos });
    return encodeProfile(p);
  }

  text(snapshot: ProfileSnapshot = this.snapshot()): string {
    return formatText(this.name, snapshot.entries);
  }

  async writeTo(w: Writable, debug = 0): Promise<void> {
    const body = debug === 0 ? await this.encode() : this.text();
    await new Promise<void>((resolve, reject) => {
      w.write(body, (err) => (err ? reject(err) : resolve()));
    });
  }
}

const profiles: Record<'mutex' | 'block', ContentionProfile> = {
  mutex: new Contention('mutex', 'Stack traces of holders of contended mutexes', mutexProfile),
  block: new Contention('block', 'Stack traces that led to blocking on synchronization primitives', blockProfile),
};

/** The named profile (`'mutex'` or `'block'`), or undefined. */
export function lookup(name: string): ContentionProfile | undefined {
  return name === 'mutex' || name === 'block' ? profiles[name] : undefined;
}

/** Both profiles, sorted by name. */
export function allProfiles(): ContentionProfile[] {
  return [profiles.block, profiles.mutex];
}

/** Samples of `after` minus `before` (matched by stack and labels); all-zero samples dropped. */
export function deltaSnapshot(before: ProfileSnapshot, after: ProfileSnapshot): ProfileSnapshot {
  const base = new Map<string, Entry>();
  for (const e of before.entries) base.set(e.key, e);
  const entries: Entry[] = [];
  for (const e of after.entries) {
    const b = base.get(e.key);
    const count = e.count - (b?.count ?? 0);
    const delay = e.delay - (b?.delay ?? 0);
    if (Math.round(count) !== 0 || Math.round(delay) !== 0) entries.push({ ...e, count, delay });
  }
  entries.sort((a, b) => b.delay - a.delay);
  return { name: after.name, timeNanos: after.timeNanos, entries };
}

// Encoder: a profile snapshot → pprof (the protobuf Go's runtime/pprof writes), gzipped, without blocking the
// event loop for long: the profile is built and serialized a few hundred samples at a time, and gzip runs on
// zlib's thread pool.

import { promisify } from 'node:util';
import { gzip as gzipCb, gzipSync, constants as zlibConstants } from 'node:zlib';
import { performance } from 'node:perf_hooks';
import { Function as PFunction, Label, Line, Location, Mapping, Profile, Sample, StringTable, ValueType, emptyTableToken } from 'pprof-format';
import { atOnce, sliced, type Steps } from '../profile/slice.js';
import type { Frame } from '../profile/stack.js';
import type { ProfileSnapshot, SampleType } from './registry.js';

const gzip = promisify(gzipCb);
/** Repeated fields serialized between two yields to the event loop. */
const CHUNK = 500;

/** Wall-clock now in nanoseconds since the epoch. */
export function epochNanos(): bigint {
  const ms = performance.timeOrigin + performance.now();
  return BigInt(Math.floor(ms)) * 1_000_000n + BigInt(Math.round((ms % 1) * 1e6));
}

const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * Builds the pprof Profile of a snapshot. The first sample type is also the period type (as Go's
 * contention profiles: `contentions`/count, period 1).
 */
export function buildProfile(s: ProfileSnapshot, sampleTypes: readonly SampleType[]): Promise<Profile> {
  return sliced(profileSteps(s, sampleTypes));
}

function* profileSteps(s: ProfileSnapshot, sampleTypes: readonly SampleType[]): Steps<Profile> {
  const st = new StringTable();
  const types = sampleTypes.map((t) => new ValueType({ type: st.dedup(t.type), unit: st.dedup(t.unit) }));
  const functions: PFunction[] = [];
  const locations: Location[] = [];
  const fnIds = new Map<string, number>();
  const locIds = new Map<number, number>(); // frame id → location id
  let maxAddr = 0;
  const samples: Sample[] = [];

  const locationOf = (f: Frame): number => {
    let id = locIds.get(f.id);
    if (id !== undefined) return id;
    const fnKey = `${f.name}\0${f.file}\0${f.startLine}`;
    let fnId = fnIds.get(fnKey);
    if (fnId === undefined) {
      fnId = functions.length + 1;
      const name = st.dedup(f.name);
      functions.push(new PFunction({ id: fnId, name, systemName: name, filename: st.dedup(f.file), startLine: f.startLine }));
      fnIds.set(fnKey, fnId);
    }
    id = locations.length + 1;
    locations.push(new Location({ id, mappingId: 1, address: f.addr, line: [new Line({ functionId: fnId, line: f.line, column: f.column })] }));
    locIds.set(f.id, id);
    if (f.addr > maxAddr) maxAddr = f.addr;
    return id;
  };

  for (let i = 0; i < s.samples.length; i++) {
    yield;
    const e = s.samples[i];
    const label = e.labels.map(([k, v]) => new Label({ key: st.dedup(k), str: st.dedup(v) }));
    samples.push(new Sample({ locationId: e.frames.map(locationOf), value: e.values.map((v) => Math.round(v)), label }));
  }

  const mapping = new Mapping({
    id: 1,
    memoryStart: 0,
    memoryLimit: maxAddr + 0x10,
    fileOffset: 0,
    filename: st.dedup(process.argv[1] || process.execPath),
    buildId: 0,
    hasFunctions: true,
    hasFilenames: true,
    hasLineNumbers: true,
  });
  return new Profile({
    sampleType: types,
    sample: samples,
    mapping: [mapping],
    location: locations,
    function: functions,
    stringTable: st,
    timeNanos: s.timeNanos,
    durationNanos: s.durationNanos,
    periodType: types[0],
    period: 1,
    comment: s.comments.map((c) => st.dedup(c)),
  });
}

/**
 * Serializes and gzips a profile. pprof-format's encodeAsync() yields only between the top-level
 * fields, so it serializes all samples (and first measures the whole profile) in one go: 10 000 samples blocked
 * the event loop 2–3× longer than this (bench: "encode … longest event-loop block", both rows). A protobuf
 * message is the concatenation of its fields, so here the repeated fields are serialized in chunks of partial
 * profiles, yielding between chunks.
 */
export async function encodeProfile(profile: Profile): Promise<Buffer> {
  const parts: Uint8Array[] = [new Profile({ sampleType: profile.sampleType, stringTable: new StringTable(emptyTableToken) }).encode()];
  const chunked = async (key: 'sample' | 'location' | 'function'): Promise<void> => {
    const items = profile[key];
    for (let i = 0; i < items.length; i += CHUNK) {
      const part = new Profile({ stringTable: new StringTable(emptyTableToken) });
      (part[key] as unknown[]) = items.slice(i, i + CHUNK);
      parts.push(part.encode());
      await yieldToLoop();
    }
  };
  await chunked('sample');
  await chunked('location');
  await chunked('function');
  const rest = new Profile({
    mapping: profile.mapping,
    stringTable: profile.stringTable,
    timeNanos: profile.timeNanos,
    durationNanos: profile.durationNanos,
    periodType: profile.periodType,
    period: profile.period,
    comment: profile.comment,
  });
  parts.push(rest.encode());
  return gzip(Buffer.concat(parts), { level: zlibConstants.Z_BEST_SPEED });
}

/** A snapshot as gzipped pprof, built and encoded at once: for a process's exit, where nothing may wait. */
export function encodeSnapshotNow(s: ProfileSnapshot, sampleTypes: readonly SampleType[]): Buffer {
  return gzipSync(atOnce(profileSteps(s, sampleTypes)).encode(), { level: zlibConstants.Z_BEST_SPEED });
}

/** A snapshot as gzipped pprof. */
export async function encodeSnapshot(s: ProfileSnapshot, sampleTypes: readonly SampleType[]): Promise<Buffer> {
  return encodeProfile(await buildProfile(s, sampleTypes));
}

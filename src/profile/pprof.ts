// Encoder: profile samples → pprof (the protobuf Go's runtime/pprof writes for mutex and block), gzipped.

import { promisify } from 'node:util';
import { gzip as gzipCb, constants as zlibConstants } from 'node:zlib';
import { performance } from 'node:perf_hooks';
import { Function as PFunction, Label, Line, Location, Mapping, Profile, Sample, StringTable, ValueType, emptyTableToken } from 'pprof-format';
import type { Entry } from './recorder.js';
import type { Frame } from './stack.js';

const gzip = promisify(gzipCb);
const YIELD_EVERY = 500;

export interface BuildOptions {
  /** Profile time in ns since the epoch; default now. */
  timeNanos?: bigint;
  /** Set for delta profiles (Go sets it only for ?seconds=). */
  durationNanos?: number;
}

/** Wall-clock now in nanoseconds since the epoch. */
export function epochNanos(): bigint {
  const ms = performance.timeOrigin + performance.now();
  return BigInt(Math.floor(ms)) * 1_000_000n + BigInt(Math.round((ms % 1) * 1e6));
}

const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Builds a Go-shaped contention profile (`contentions`/count, `delay`/nanoseconds) from samples. */
export async function buildProfile(entries: readonly Entry[], options: BuildOptions = {}): Promise<Profile> {
  const st = new StringTable();
  const contentions = new ValueType({ type: st.dedup('contentions'), unit: st.dedup('count') });
  const delay = new ValueType({ type: st.dedup('delay'), unit: st.dedup('nanoseconds') });
  const lockKey = st.dedup('lock');
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

  for (let i = 0; i < entries.length; i++) {
    if (i > 0 && i % YIELD_EVERY === 0) await yieldToLoop();
    const e = entries[i];
    const count = Math.round(e.count);
    const ns = Math.round(e.delay);
    if (count === 0 && ns === 0) continue;
    const label: Label[] = [];
    if (e.lock) label.push(new Label({ key: lockKey, str: st.dedup(e.lock) }));
    if (e.labels) for (const [k, v] of e.labels.pairs) label.push(new Label({ key: st.dedup(k), str: st.dedup(v) }));
    samples.push(new Sample({ locationId: e.frames.map(locationOf), value: [count, ns], label }));
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
    sampleType: [contentions, delay],
    sample: samples,
    mapping: [mapping],
    location: locations,
    function: functions,
    stringTable: st,
    timeNanos: options.timeNanos ?? epochNanos(),
    durationNanos: options.durationNanos ?? 0,
    periodType: contentions,
    period: 1,
  });
}

const CHUNK = 500;

/**
 * Serializes and gzips a profile without blocking the event loop for long. A protobuf message is the
 * concatenation of its fields, so the repeated fields (samples, locations, functions) are encoded in chunks of
 * partial profiles, yielding between chunks; zlib then compresses on its thread pool.
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
  });
  parts.push(rest.encode());
  return gzip(Buffer.concat(parts), { level: zlibConstants.Z_BEST_SPEED });
}

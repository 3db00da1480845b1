// Profiles between processes and threads: a snapshot as plain JSON (what IPC and BroadcastChannel carry, with
// frames by content — function, file, line — never by this process's frame ids), and the merge of several such
// parts into one snapshot, each sample labelled with where it came from (`pid`, `worker`, `thread`).
//
// Identity is content: a merged sample's key is its resolved frames and its labels, so the same stack of the same
// worker is one sample in every merged snapshot, whichever process or order the parts came from.

import { frameOf, type Frame } from '../profile/frames.js';
import { atOnce, sliced, type Steps } from '../profile/slice.js';
import type { ProfileSample, ProfileSnapshot } from '../pprof/registry.js';

type Labels = Array<[string, string]>;

/** A snapshot as JSON: frames once each as [name, file, line, column, startLine], samples pointing at them. */
export interface WireSnapshot {
  name: string;
  /** ns since the epoch, as a decimal string (JSON has no bigint) */
  timeNanos: string;
  durationNanos: number;
  comments: string[];
  frames: Array<[string, string, number, number, number]>;
  samples: Array<[number[], Labels, number[]]>;
}

/** A profile of one process or thread (or a piece of it), and the labels that say which. */
export interface WirePart {
  /** e.g. [['pid', '123'], ['worker', '2']] */
  origin: Labels;
  snapshot: WireSnapshot;
}

/** Samples per piece: about 100 KB of JSON, which a receiver parses in a millisecond or two. */
export const PIECE = 1000;

/**
 * `s` as JSON-safe pieces of at most `size` samples, each with the frames its own samples use, so that each can
 * travel as one message and be parsed on its own (one large message would be parsed in one go). The first piece
 * carries the comments; there is always at least one. Yields to the event loop every few milliseconds.
 */
export async function* toWire(s: ProfileSnapshot, size = PIECE): AsyncGenerator<WireSnapshot> {
  for (let start = 0; start === 0 || start < s.samples.length; start += size) yield await sliced(pieceSteps(s, start, size));
}

/** `s` as one WireSnapshot, at once: for a process's exit, where nothing may wait. */
export function wireNow(s: ProfileSnapshot): WireSnapshot {
  return atOnce(pieceSteps(s, 0, Infinity));
}

/** The piece of `s` from sample `start`, of at most `size` samples. */
function* pieceSteps(s: ProfileSnapshot, start: number, size: number): Steps<WireSnapshot> {
  const frames: WireSnapshot['frames'] = [];
  const index = new Map<Frame, number>();
  const samples: WireSnapshot['samples'] = [];
  for (const sample of s.samples.slice(start, start + size)) {
    yield;
    const ids = sample.frames.map((f) => {
      let i = index.get(f);
      if (i === undefined) {
        index.set(f, (i = frames.length));
        frames.push([f.name, f.file, f.line, f.column, f.startLine]);
      }
      return i;
    });
    samples.push([ids, sample.labels.map(([k, v]) => [k, v]), [...sample.values]]);
  }
  return { name: s.name, timeNanos: String(s.timeNanos), durationNanos: s.durationNanos, comments: start === 0 ? [...s.comments] : [], frames, samples };
}

/** Who a part is, for the comments: "worker 2 (pid 123)", "thread 4 (pid 123)", "pid 123". */
export function originName(origin: Labels): string {
  const get = (k: string): string | undefined => origin.find(([key]) => key === k)?.[1];
  const pid = get('pid') ?? '?';
  const worker = get('worker');
  const thread = get('thread');
  return `${worker !== undefined ? `worker ${worker}` : thread !== undefined ? `thread ${thread}` : 'process'} (pid ${pid}${worker !== undefined && thread !== undefined ? `, thread ${thread}` : ''})`;
}

/**
 * One snapshot of profile `name` from `parts`: every sample with its part's origin labels appended, samples of
 * the same content added up, largest last value first. `comments` come first, then each part's own, prefixed by
 * its origin. The snapshot's time is the earliest part's; its duration the longest part's (the window of a delta).
 */
export function mergeParts(name: string, parts: readonly WirePart[], comments: readonly string[]): Promise<ProfileSnapshot> {
  return sliced(mergeSteps(name, parts, comments));
}

/** mergeParts() at once: for a process's exit, where nothing may wait. */
export function mergePartsNow(name: string, parts: readonly WirePart[], comments: readonly string[]): ProfileSnapshot {
  return atOnce(mergeSteps(name, parts, comments));
}

function* mergeSteps(name: string, parts: readonly WirePart[], comments: readonly string[]): Steps<ProfileSnapshot> {
  const by = new Map<string, { key: string; frames: Frame[]; labels: Labels; values: number[] }>();
  const notes = [...comments];
  let time: bigint | null = null;
  let duration = 0;
  for (const { origin, snapshot: w } of parts) {
    if (w.name !== name) throw new TypeError(`mutexprof: a part of profile ${w.name} in a merge of ${name}`);
    const t = BigInt(w.timeNanos);
    if (time === null || t < time) time = t;
    if (w.durationNanos > duration) duration = w.durationNanos;
    for (const c of w.comments) notes.push(`${originName(origin)}: ${c}`);
    const frames = w.frames.map(([fn, file, line, column, startLine]) => frameOf(fn, file, line, column, startLine));
    for (const [ids, labels, values] of w.samples) {
      yield;
      const stack = ids.map((i) => frames[i]);
      const all: Labels = [...labels, ...origin];
      const key = `${stack.map((f) => f.id).join(',')}|${all.map(([k, v]) => `${k}=${v}`).join('\0')}`;
      const e = by.get(key);
      if (e === undefined) by.set(key, { key, frames: stack, labels: all, values: [...values] });
      else values.forEach((v, i) => (e.values[i] = (e.values[i] ?? 0) + v));
    }
  }
  const samples: ProfileSample[] = [...by.values()];
  const last = (s: ProfileSample): number => s.values[s.values.length - 1] ?? 0;
  samples.sort((a, b) => last(b) - last(a));
  return { name, timeNanos: time ?? 0n, durationNanos: duration, samples, comments: notes };
}

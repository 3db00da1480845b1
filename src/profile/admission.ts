// Sample admission: how a resolved event finds its sample, or makes one, within bounds that hold under any traffic.
//
// ─── Bounds ─────────────────────────────────────────────────────────────────────────────────────────────────
// Captured stacks wait, unresolved, in a ring of at most PENDING events per profile; a drain resolves them in
// batches, up to DRAIN_DELAY_MS later, a few milliseconds at a time. Samples aggregate by (stack, lock, labels), at most
// `maxEntries` of them (plus one overflow sample per lock), and attribution degrades in steps as they fill up,
// never to nothing, with exact totals throughout:
//   below ½ maxEntries  a new sample keeps every label;
//   below ¾             it drops the label keys seen with more than min(64, maxEntries/16) distinct values (a
//                       request id goes, a route stays);
//   below the cap       it drops every withLabels label and keeps its stack and `lock`;
//   past the cap        it lands in its lock's `mutexprof.overflow` sample (leaf, then mutexprof.overflow).
// An event whose sample already exists always lands in it. Nothing grows before a sample is admitted, so memory
// follows the number of samples, not of distinct stacks or label sets. What was dropped is counted (stats()),
// and shown in the profile's comments and on the index page.
//
// ─────────────────────────────────────────────────────────────────────────────────────────────────────────────

import { labelSet, type LabelSet } from './labels.js';
import { leafFrame, syntheticFrame, type Frame } from './frames.js';

/** Label keys seen with more distinct values than this (or than maxEntries/16) are dropped first under pressure. */
const HIGH_CARDINALITY = 64;
const TRACKED_KEYS = 256;
const OVERFLOW_LOCKS = 1000;
const OVERFLOW = 'mutexprof.overflow';

/** One aggregated sample. */
export interface Entry {
  /** position in the recorder (stable for the process's life) */
  readonly index: number;
  readonly frames: readonly Frame[];
  /** the lock's name ('' when it has none) */
  readonly lock: string;
  /** the RWMutex side ('read' or 'write'), null for other locks */
  readonly side: string | null;
  readonly labels: LabelSet | null;
  count: number;
  delay: number;
  /** sequence number of the event that created it */
  readonly born: number;
  /** sequence number of the last event applied to it */
  mod: number;
}

/** What admission reads of an event: where it happened, its labels, and its sequence number. */
export interface Site {
  readonly leaf: string;
  readonly lock: string;
  readonly side: string | null;
  readonly labels: LabelSet | null;
  readonly seq: number;
}

interface Stack {
  readonly frames: readonly Frame[];
  readonly samples: Map<string, Entry>;
}

/** What the bounds cost attribution so far, in events. */
export interface AdmissionStats {
  /** events recorded without some of their labels (the high-cardinality keys in `droppedKeys`) */
  readonly labelsReduced: number;
  /** events recorded with their stack and lock but none of their withLabels labels */
  readonly labelsDropped: number;
  /** events recorded in their lock's overflow sample, without their stack */
  readonly stacksDropped: number;
  readonly droppedKeys: readonly string[];
}

/** A sample's lock and side, as one key. */
function sampleKey(p: Site): string {
  return p.side === null ? p.lock : p.lock + '\u0001' + p.side;
}

function hashFrames(frames: readonly Frame[]): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < frames.length; i++) h = Math.imul(h ^ frames[i].id, 0x01000193);
  return h;
}

function sameFrames(a: readonly Frame[], b: readonly Frame[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The samples of one profile, and how new ones are admitted as they fill up to `cap()`. */
export class Admission {
  readonly entries: Entry[] = [];
  private readonly stacks = new Map<number, Stack[]>();
  private readonly overflows = new Map<string, Entry>();
  /** label key → the distinct values seen (up to HIGH_CARDINALITY), or null once past it */
  private readonly cardinality = new Map<string, Set<string> | null>();
  private readonly dropped = new Set<string>();
  private reduced = 0;
  private unlabeled = 0;
  private overflowed = 0;

  constructor(private readonly cap: () => number) {}

  /** The sample an event at `frames` lands in (made if it is admitted). */
  entryFor(frames: readonly Frame[], p: Site): Entry {
    const hash = hashFrames(frames);
    const stack = this.stacks.get(hash)?.find((s) => sameFrames(s.frames, frames)) ?? null;
    const cap = this.cap();
    const n = this.entries.length;
    const labels = p.labels;
    const site = sampleKey(p);
    if (labels !== null) {
      const full = stack?.samples.get(site + '\0' + labels.key);
      if (full !== undefined) return full;
      this.noteValues(labels);
      if (n < cap >>> 1) return this.create(stack, frames, hash, p, labels);
      const kept = this.withoutHighCardinality(labels);
      if (kept === labels) {
        if (n < cap - (cap >>> 2)) return this.create(stack, frames, hash, p, labels);
      } else if (kept !== null) {
        const e = stack?.samples.get(site + '\0' + kept.key);
        if (e !== undefined || n < cap - (cap >>> 2)) {
          this.reduced++;
          return e ?? this.create(stack, frames, hash, p, kept);
        }
      }
    }
    const e = stack?.samples.get(site);
    if (e !== undefined || n < cap) {
      if (labels !== null) this.unlabeled++;
      return e ?? this.create(stack, frames, hash, p, null);
    }
    this.overflowed++;
    return this.overflowOf(p);
  }

  private create(stack: Stack | null, frames: readonly Frame[], hash: number, p: Site, labels: LabelSet | null): Entry {
    if (stack === null) {
      stack = { frames, samples: new Map() };
      const bucket = this.stacks.get(hash);
      if (bucket === undefined) this.stacks.set(hash, [stack]);
      else bucket.push(stack);
    }
    const e: Entry = { index: this.entries.length, frames: stack.frames, lock: p.lock, side: p.side, labels, count: 0, delay: 0, born: p.seq, mod: p.seq };
    const site = sampleKey(p);
    stack.samples.set(labels === null ? site : site + '\0' + labels.key, e);
    this.entries.push(e);
    return e;
  }

  private overflowOf(p: Site): Entry {
    const lock = this.overflows.has(p.lock) || this.overflows.size < OVERFLOW_LOCKS ? p.lock : 'mutexprof.other';
    const key = p.leaf + '\0' + lock + '\0' + (p.side ?? '');
    let e = this.overflows.get(key);
    if (e === undefined) {
      e = { index: this.entries.length, frames: [leafFrame(p.leaf), syntheticFrame(OVERFLOW)], lock, side: p.side, labels: null, count: 0, delay: 0, born: p.seq, mod: p.seq };
      this.overflows.set(key, e);
      this.entries.push(e);
    }
    return e;
  }

  /** Counts the distinct values of each label key, up to the high-cardinality threshold. */
  private noteValues(labels: LabelSet): void {
    const high = Math.max(1, Math.min(HIGH_CARDINALITY, Math.floor(this.cap() / 16)));
    for (const [k, v] of labels.pairs) {
      let values = this.cardinality.get(k);
      if (values === null) continue;
      if (values === undefined) {
        if (this.cardinality.size >= TRACKED_KEYS) continue;
        this.cardinality.set(k, (values = new Set()));
      }
      values.add(v);
      if (values.size > high) this.cardinality.set(k, null);
    }
  }

  private isHighCardinality(key: string): boolean {
    const values = this.cardinality.get(key);
    return values === null || (values === undefined && this.cardinality.size >= TRACKED_KEYS);
  }

  /** The labels without their high-cardinality keys (the same set if none), or null if none is left. */
  private withoutHighCardinality(labels: LabelSet): LabelSet | null {
    let kept: Array<readonly [string, string]> | null = null;
    const pairs = labels.pairs;
    for (let i = 0; i < pairs.length; i++) {
      if (this.isHighCardinality(pairs[i][0])) {
        kept ??= pairs.slice(0, i);
        if (this.dropped.size < TRACKED_KEYS) this.dropped.add(pairs[i][0]);
      } else if (kept !== null) kept.push(pairs[i]);
    }
    if (kept === null) return labels;
    return kept.length === 0 ? null : labelSet(kept);
  }

  /** Forgets every sample. */
  reset(): void {
    this.entries.length = 0;
    this.stacks.clear();
    this.overflows.clear();
    this.cardinality.clear();
    this.dropped.clear();
    this.reduced = this.unlabeled = this.overflowed = 0;
  }

  stats(): AdmissionStats {
    return { labelsReduced: this.reduced, labelsDropped: this.unlabeled, stacksDropped: this.overflowed, droppedKeys: [...this.dropped] };
  }
}

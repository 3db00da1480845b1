// Delta windows against a model. A window (`?seconds=N`, a cluster's delta, a push, deltaSnapshot) must hold
// exactly what happened in it, to the count and the nanosecond, whatever happens meanwhile. fast-check drives random
// interleavings of events on old and new samples, partial drains, windows opened, rolled, ended and cancelled,
// cumulative snapshots, maxEntries changes (the bounds' steps under label cardinality) and turns of the event loop,
// with every long read yielding at each check (so that events are applied while a window is being read). The model
// is naive: a second recorder that applies each event at once and copies all its samples at every mark; a window
// must equal the difference of the two copies. Per lock, it must also equal the plain sum of the window's events,
// which no bound may change.
import { describe, test, expect, afterEach } from 'vitest';
import fc from 'fast-check';
import '../src/index.js';
import { Recorder } from '../src/profile/recorder.js';
import { recorders, settings } from '../src/profile/drain.js';
import { configureProfiler } from '../src/profile/config.js';
import { sourceOf, deltaSnapshot, type ProfileSnapshot, type Window } from '../src/pprof/registry.js';
import { sliceClock } from '../src/profile/slice.js';
import { labelSet, type LabelSet } from '../src/profile/labels.js';
import type { Frame } from '../src/profile/stack.js';

type Values = Map<string, [number, number]>;

const identity = (frames: readonly Frame[], labels: ReadonlyArray<readonly [string, string]>): string => `${frames.map((f) => f.id).join(',')}|${labels.map(([k, v]) => `${k}=${v}`).join('\u0000')}`;

/** The model's copy of every sample now (what a mark would have to remember without an undo log). */
function copy(model: Recorder): Values {
  const out: Values = new Map();
  for (const e of model.entries) {
    const labels: Array<readonly [string, string]> = e.lock === '' ? [] : [['lock', e.lock]];
    if (e.side !== null) labels.push(['mode', e.side]);
    if (e.labels !== null) labels.push(...e.labels.pairs);
    out.set(identity(e.frames, labels), [e.count, e.delay]);
  }
  return out;
}

function minus(after: Values, before: Values): Values {
  const out: Values = new Map();
  for (const [k, [c, d]] of after) {
    const [c0, d0] = before.get(k) ?? [0, 0];
    if (c - c0 !== 0 || d - d0 !== 0) out.set(k, [c - c0, d - d0]);
  }
  return out;
}

function valuesOf(s: ProfileSnapshot): Values {
  const out: Values = new Map();
  for (const x of s.samples) out.set(identity(x.frames, x.labels), [x.values[0], x.values[1]]);
  return out;
}

interface Event {
  leaf: string;
  lock: string;
  mode: string | null;
  labels: LabelSet | null;
  count: number;
  delay: number;
}

/** Per lock and side: the plain sum of events [from, to). */
function byLock(events: readonly Event[], from: number, to: number): Values {
  const out: Values = new Map();
  for (const e of events.slice(from, to)) {
    const k = `${e.lock}/${e.mode}`;
    const t = out.get(k) ?? [0, 0];
    out.set(k, [t[0] + e.count, t[1] + e.delay]);
  }
  return out;
}

function byLockOf(s: ProfileSnapshot): Values {
  const out: Values = new Map();
  for (const x of s.samples) {
    const k = `${x.labels.find(([l]) => l === 'lock')?.[1] ?? ''}/${x.labels.find(([l]) => l === 'mode')?.[1] ?? null}`;
    const t = out.get(k) ?? [0, 0];
    out.set(k, [t[0] + x.values[0], t[1] + x.values[1]]);
  }
  return out;
}

const LABELS = (i: number): Array<Array<readonly [string, string]> | null> => [
  null,
  [['route', '/a']],
  [['route', '/b']],
  [['req', `r${i}`]], // a fresh value per event: high cardinality
  [
    ['req', `r${i}`],
    ['route', '/a'],
  ],
  [['tenant', `t${i % 3}`]],
];

type Op =
  | { t: 'event'; stack: number; lock: number; mode: number; labels: number; count: number; delay: number }
  | { t: 'drain'; n: number }
  | { t: 'open' }
  | { t: 'end'; w: number }
  | { t: 'roll'; w: number }
  | { t: 'cancel'; w: number }
  | { t: 'snapshot' }
  | { t: 'tick' }
  | { t: 'cap'; maxEntries: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record({
      t: fc.constant('event' as const),
      // mostly a few hot samples (events on old samples), sometimes a new one
      stack: fc.oneof({ weight: 5, arbitrary: fc.nat(2) }, { weight: 1, arbitrary: fc.nat(14) }),
      lock: fc.oneof({ weight: 5, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.nat(3) }),
      mode: fc.oneof({ weight: 5, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.nat(2) }),
      labels: fc.oneof({ weight: 5, arbitrary: fc.nat(2) }, { weight: 2, arbitrary: fc.nat(5) }),
      count: fc.integer({ min: 1, max: 3 }),
      delay: fc.integer({ min: 1, max: 5000 }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('drain' as const), n: fc.integer({ min: 1, max: 24 }) }) },
  { weight: 2, arbitrary: fc.constant({ t: 'open' as const }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('end' as const), w: fc.nat(7) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('roll' as const), w: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('cancel' as const), w: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'snapshot' as const }) },
  { weight: 4, arbitrary: fc.constant({ t: 'tick' as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('cap' as const), maxEntries: fc.constantFrom(12, 40, 10_000) }) },
);

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

interface Slot {
  window: Window | null; // null while a roll is in flight
  start: Values;
  from: number;
}

/** Runs one schedule on profile `name`; returns the problems found (empty: every window was exact). */
async function run(name: 'mutex' | 'block' | 'hold', ops: readonly Op[]): Promise<string[]> {
  const r = recorders[name];
  const source = sourceOf(name)!;
  r.reset();
  const model = new Recorder(
    () => settings.maxEntries,
    () => {},
  ); // drained by hand
  const events: Event[] = [];
  const problems: string[] = [];
  const inflight: Array<Promise<void>> = [];
  const slots: Slot[] = [];
  let lastSnapshot: { s: ProfileSnapshot; at: Values; from: number } | null = null;

  const check = (what: string, s: ProfileSnapshot, start: Values, end: Values, from: number, to: number): void => {
    const got = valuesOf(s);
    const want = minus(end, start);
    const show = (v: Values): string => JSON.stringify([...v].sort());
    if (show(got) !== show(want)) problems.push(`${what} [${from}, ${to}): samples ${show(got)}, model ${show(want)}`);
    const perLock = byLockOf(s);
    const plain = byLock(events, from, to);
    for (const k of new Set([...perLock.keys(), ...plain.keys()])) {
      const [a, b] = [perLock.get(k) ?? [0, 0], plain.get(k) ?? [0, 0]];
      if (a[0] !== b[0] || a[1] !== b[1]) problems.push(`${what} [${from}, ${to}): lock ${k} ${a} where its events add up to ${b}`);
    }
  };
  const mark = (): { at: Values; n: number } => ({ at: copy(model), n: events.length });

  try {
    for (const o of ops) await step(o);
  } catch (e) {
    // leave no mark open for the next run, whatever went wrong
    for (const slot of slots.splice(0)) slot.window?.cancel();
    await Promise.allSettled(inflight.splice(0));
    for (const slot of slots.splice(0)) slot.window?.cancel();
    throw e;
  }
  return finish();

  async function step(o: Op): Promise<void> {
    switch (o.t) {
      case 'event': {
        const i = events.length;
        const pairs = LABELS(i)[o.labels];
        const e: Event = { leaf: `stack.${o.stack}`, lock: `lock${o.lock}`, mode: [null, 'read', 'write'][o.mode], labels: pairs === null ? null : labelSet(pairs), count: o.count, delay: o.delay };
        events.push(e);
        r.add({}, e.leaf, e.lock, e.mode, e.count, e.delay, e.labels);
        model.add({}, e.leaf, e.lock, e.mode, e.count, e.delay, e.labels);
        model.drain();
        break;
      }
      case 'drain':
        r.drain(Infinity, o.n);
        break;
      case 'open': {
        if (slots.length >= 8) break;
        const m = mark();
        slots.push({ window: source.window!(), start: m.at, from: m.n });
        break;
      }
      case 'end':
      case 'roll':
      case 'cancel': {
        const slot = slots[o.w % Math.max(1, slots.length)];
        if (slot === undefined || slot.window === null) break;
        const w = slot.window;
        if (o.t === 'cancel') {
          w.cancel();
          slots.splice(slots.indexOf(slot), 1);
          break;
        }
        const { start, from } = slot;
        const end = mark(); // the window's end mark is made now, synchronously
        if (o.t === 'end') {
          slots.splice(slots.indexOf(slot), 1);
          inflight.push(w.end().then((s) => check('end', s, start, end.at, from, end.n)));
        } else {
          slot.window = null;
          inflight.push(
            w.roll().then(({ snapshot, next }) => {
              check('roll', snapshot, start, end.at, from, end.n);
              Object.assign(slot, { window: next, start: end.at, from: end.n });
            }),
          );
        }
        break;
      }
      case 'snapshot': {
        const m = mark();
        const before = lastSnapshot;
        inflight.push(
          source.snapshot().then((s) => {
            check('snapshot', s, new Map(), m.at, 0, m.n);
            if (before !== null && before.from <= m.n) check('deltaSnapshot', deltaSnapshot(before.s, s), before.at, m.at, before.from, m.n);
            if (lastSnapshot === null || lastSnapshot.from <= m.n) lastSnapshot = { s, at: m.at, from: m.n };
          }),
        );
        break;
      }
      case 'tick':
        await turn();
        break;
      case 'cap':
        configureProfiler({ maxEntries: o.maxEntries });
        break;
    }
  }

  async function finish(): Promise<string[]> {
    // finish what is in flight (rolls reopen windows: end those too)
    while (inflight.length > 0 || slots.length > 0) {
      await Promise.all(inflight.splice(0));
      for (const slot of slots.splice(0)) {
        if (slot.window === null) continue;
        const end = mark();
        inflight.push(slot.window.end().then((s) => check('end', s, slot.start, end.at, slot.from, end.n)));
      }
    }
    if (r.openMarks() !== 0) problems.push(`${r.openMarks()} marks left open`);
    return problems;
  }
}

describe('delta windows hold exactly what happened in them (model-based)', () => {
  const { now, mask } = sliceClock;
  afterEach(() => {
    Object.assign(sliceClock, { now, mask });
    configureProfiler({ maxEntries: 10_000 });
  });

  test.each(['mutex', 'block', 'hold'] as const)('%s: random interleavings of events, drains, windows, snapshots and bounds', async (name) => {
    let t = 0;
    // a second passes between any two looks at the clock, and loops look at every iteration: every long read yields
    // at every step, and the schedule's events, drains and other reads run in between
    Object.assign(sliceClock, { now: () => (t += 1000), mask: 0 });
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 20, maxLength: 250 }), async (ops) => {
        const problems = await run(name, ops);
        expect(problems).toEqual([]);
      }),
      { numRuns: 120 },
    );
  });
});

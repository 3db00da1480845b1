// The `locks` profile: what is held and waited for now, as Go's goroutine profile shows what runs now. One sample
// per stack × lock × mode × state, values `count` and `age`/nanoseconds (summed), labels `lock`, `state`
// (held/waiting) and `mode` (exclusive/shared), so `go tool pprof -traces …/locks` shows where holders and waiters
// are (their lock() stacks with tracking 'stacks'; the lock method alone otherwise). Its `debug=1` text is a dump
// for a terminal, grouped by lock: holders first, then waiters, oldest first, each with age, labels and stack.

import { leafFrame, type Frame } from '../profile/frames.js';
import type { LockView } from '../locks/seam.js';
import { queryLocks, liveLocks, holdersOf, waitersOf, type LockState } from '../diagnostics/query.js';
import { sampling } from '../profile/sampling.js';
import { diag, liveList, trackedHolders, refreshCoarse, OFF, STACKS } from '../diagnostics/records.js';
import { epochNanos } from './proto.js';
import { escapeLine } from './text.js';
import { registerProfile, type ProfileSample, type ProfileSnapshot } from './registry.js';

const MODES = ['off', 'on', 'stacks'];

function snapshot(): ProfileSnapshot {
  refreshCoarse();
  const nowNs = sampling.now();
  const samples = new Map<string, { key: string; frames: readonly Frame[]; labels: Array<readonly [string, string]>; values: number[] }>();
  // without a stack, a state's leaf is the call that its lock's holders and waiters made (Semaphore.acquire, …)
  const add = (lock: LockView, s: LockState, state: 'held' | 'waiting'): void => {
    const frames = s.stack ?? [leafFrame(lock.leafFor(s.mode))];
    const key = `${frames.map((f) => f.id).join(',')}|${s.name}|${s.mode}|${state}`;
    let e = samples.get(key);
    if (e === undefined) {
      const labels: Array<readonly [string, string]> = s.name === '' ? [] : [['lock', s.name]];
      labels.push(['state', state], ['mode', s.mode]);
      samples.set(key, (e = { key, frames, labels, values: [0, 0] }));
    }
    e.values[0] += 1;
    e.values[1] += Math.round((s.ageMs ?? 0) * 1e6);
  };
  for (const lock of liveLocks()) {
    for (const s of holdersOf(lock, nowNs)) add(lock, s, 'held');
    for (const s of waitersOf(lock, nowNs)) add(lock, s, 'waiting');
  }
  const out: ProfileSample[] = [...samples.values()].sort((a, b) => b.values[1] - a.values[1]);
  const comments = diag.tracking === OFF && diag.deadlock === 0 ? ['mutexprof: lock tracking is off: only locks that have waiters are shown, and holders without age'] : [];
  return { name: 'locks', timeNanos: epochNanos(), durationNanos: 0, samples: out, comments };
}

function ms(v: number | null): string {
  return v === null ? '?' : v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`;
}

/** The terminal dump of what is held and waited for now. */
async function* dump(): AsyncGenerator<string> {
  const { held, pending } = queryLocks();
  const byLock = new Map<number, { first: LockState; held: LockState[]; waiting: LockState[] }>();
  const group = (s: LockState): { first: LockState; held: LockState[]; waiting: LockState[] } => {
    let g = byLock.get(s.lockId);
    if (g === undefined) byLock.set(s.lockId, (g = { first: s, held: [], waiting: [] }));
    return g;
  };
  for (const s of held) group(s).held.push(s);
  for (const s of pending) group(s).waiting.push(s);
  let out = `locks: ${held.length} held, ${pending.length} waiting (lock tracking ${MODES[diag.tracking]}${diag.tracking === STACKS ? '' : "; setLockTracking('stacks') adds lock() stacks"})\n`;
  // the locks with the oldest waiter first, then the rest by their oldest holder
  const groups = [...byLock.values()].sort((a, b) => (b.waiting[0]?.ageMs ?? -1) - (a.waiting[0]?.ageMs ?? -1) || (b.held[0]?.ageMs ?? -1) - (a.held[0]?.ageMs ?? -1));
  for (const g of groups) {
    const name = g.first.name === '' ? g.first.kind : `${g.first.kind} ${JSON.stringify(g.first.name)}`;
    out += `\n${escapeLine(name)} (lock ${g.first.lockId}): ${g.held.length} held, ${g.waiting.length} waiting\n`;
    for (const [state, list] of [
      ['held   ', g.held],
      ['waiting', g.waiting],
    ] as const) {
      for (const s of list) {
        const labels = Object.entries(s.labels)
          .filter(([k]) => k !== 'lock')
          .map(([k, v]) => `${k}=${v}`)
          .join(' ');
        out += `  ${state}  ${s.mode.padEnd(9)}  ${ms(s.ageMs).padStart(8)}  ${escapeLine(labels)}\n`;
        if (s.stack !== null) for (const f of s.stack.slice(1)) out += `      ${escapeLine(f.name)} (${escapeLine(f.file)}:${f.line})\n`;
      }
    }
  }
  yield out;
}

let reads = 0;

/** Registers the `locks` profile (called once at load by src/index.ts). */
export function registerLocksProfile(): void {
  registerProfile({
    name: 'locks',
    description: 'Locks held and waited for now: holders and waiters with their ages, labels and lock() stacks (mutexprof)',
    sampleTypes: [
      { type: 'count', unit: 'count' },
      { type: 'age', unit: 'nanoseconds' },
    ],
    text: dump,
    count: () => {
      let n = 0;
      for (const l of liveList()) n += (l.firstWaiter !== null ? 1 : 0) + trackedHolders(l);
      return n;
    },
    version: () => ++reads, // live: never the same as the last build (concurrent readers still share one)
    snapshot: () => Promise.resolve(snapshot()),
  });
}

// One profile for a cluster. The process that serves with `{ cluster: true }` (a node:cluster primary, or any
// process with worker threads) asks every live cluster worker over IPC and every worker thread that shares its
// profiles over a BroadcastChannel, waits a bounded time, and merges the answers (wire.ts), each sample labelled
// `pid`, and `worker` (cluster worker id) or `thread` (threadId). Whoever is left out is named in a comment.
//
// Why these transports:
// - Cluster workers answer as soon as mutexprof is imported, with no call of their own (a PM2 or node:cluster
//   app does not change). IPC messages whose `cmd` starts with 'NODE_' are delivered by Node as the
//   'internalMessage' event, never as 'message' (lib/internal/child_process.js, isInternal): the app's own message
//   listeners never see ours, and an 'internalMessage' listener does not ref the channel (only 'message' and
//   'disconnect' listeners do) — a worker that disconnects exits as it would without mutexprof. The primary's
//   cluster module ignores internal messages whose cmd is not NODE_CLUSTER.
// - Worker threads have no channel to the main thread that a library may use, so they opt in with one call,
//   shareProfilesWithMainThread(): a BroadcastChannel, unreferenced on both sides. Threads say hello when they
//   start sharing and when the gathering side asks who is there; a thread that stops answering is left out.
//
// Bounds: a snapshot waits at most `timeoutMs` for each peer (a delta, its seconds plus `timeoutMs`); peers are
// asked in parallel; a cancelled request (client gone, server closing) cancels the peers' deltas too. Answers
// travel in pieces of at most 1000 samples (wire.ts), one message each, so that no single message takes long to
// serialize or parse; concurrent requests for one snapshot share one round of asking (clusterSnapshot).

import cluster, { type Worker } from 'node:cluster';
import { BroadcastChannel, isMainThread, threadId } from 'node:worker_threads';
import type { EventEmitter } from 'node:events';
import { shared } from '../shared.js';
import { collectText, deltaOver, profiles, sourceOf, type ProfileSnapshot } from '../pprof/registry.js';
import { mergeParts, originName, toWire, type WirePart } from './wire.js';
import { Slicer } from '../profile/slice.js';
import { settleAll } from '../profile/recorder.js';

const CMD = 'NODE_MUTEXPROF';
const THREADS = 'mutexprof:threads';

/** What a peer is asked. */
export type PeerOp = { op: 'snapshot'; name: string } | { op: 'delta'; name: string; seconds: number } | { op: 'counts' } | { op: 'text'; name: string };
type SnapshotOp = Extract<PeerOp, { op: 'snapshot' | 'delta' }>;

interface Answer {
  parts?: WirePart[];
  counts?: Record<string, number>;
  /** per profile, what its process says of it (off, what the bounds dropped), naming the process */
  notes?: Array<[string, string]>;
  /** a profile's own text (the `locks` dump, which a merged snapshot cannot give), per process or thread */
  texts?: Array<{ origin: Array<[string, string]>; text: string }>;
  error?: string;
  /** peers of the answering process left out (its threads), named */
  missing?: string[];
}

/** This process or thread, as labels. */
function origin(): Array<[string, string]> {
  const o: Array<[string, string]> = [['pid', String(process.pid)]];
  if (cluster.isWorker && cluster.worker !== undefined) o.push(['worker', String(cluster.worker.id)]);
  if (!isMainThread) o.push(['thread', String(threadId)]);
  return o;
}

/** The answer of this process or thread alone. */
async function answerHere(op: PeerOp, signal: AbortSignal): Promise<Answer> {
  if (op.op === 'counts') {
    await settleAll();
    const who = originName(origin());
    const notes = profiles().flatMap((p): Array<[string, string]> => {
      const note = sourceOf(p.name)?.note?.() ?? '';
      return note === '' ? [] : [[p.name, `${who}: ${note}`]];
    });
    return { counts: Object.fromEntries(profiles().map((p) => [p.name, p.count()])), notes };
  }
  const source = sourceOf(op.name);
  if (source === undefined) return { error: `no profile ${op.name}` };
  if (op.op === 'text') {
    const snapshot = await source.snapshot();
    return { texts: [{ origin: origin(), text: Buffer.concat(await collectText(source, snapshot)).toString() }] };
  }
  let s: ProfileSnapshot | null;
  if (op.op === 'delta') {
    if (source.window === undefined) return { error: `${op.name} is not a cumulative profile` };
    s = await deltaOver(source, op.seconds, signal);
  } else s = await source.snapshot();
  const parts: WirePart[] = [];
  if (s !== null) for await (const piece of toWire(s)) parts.push({ origin: origin(), snapshot: piece });
  return { parts };
}

/** The answer of this process and the worker threads sharing with it. */
async function answerWithThreads(op: PeerOp, timeoutMs: number, signal: AbortSignal): Promise<Answer & { missing: string[] }> {
  const [own, threads] = await Promise.all([answerHere(op, signal), askThreads(op, timeoutMs, signal)]);
  if (own.error !== undefined) return { ...own, missing: [] };
  return combine([own, ...threads.answers], [...threads.missing]);
}

function combine(answers: Answer[], missing: string[]): Answer & { missing: string[] } {
  const parts: WirePart[] = [];
  const counts: Record<string, number> = {};
  const notes: Array<[string, string]> = [];
  const texts: NonNullable<Answer['texts']> = [];
  for (const a of answers) {
    if (a.parts) parts.push(...a.parts);
    if (a.notes) notes.push(...a.notes);
    if (a.texts) texts.push(...a.texts);
    if (a.missing) missing.push(...a.missing);
    for (const [k, v] of Object.entries(a.counts ?? {})) counts[k] = (counts[k] ?? 0) + v;
  }
  return { parts, counts, notes, texts, missing };
}

// ---- cluster workers: the answering side, installed when mutexprof is imported in a worker ----

interface Request {
  cmd: typeof CMD;
  id: number;
  req?: PeerOp;
  /** how long the asked worker may wait for its own threads (ms): less than the primary waits for it */
  threadsMs?: number;
  cancel?: true;
}

/** An answer on the wire: its parts one message each (`piece`), then the rest (`done`). */
type Reply = { piece: WirePart } | (Omit<Answer, 'parts'> & { done: true });

function isMessage(m: unknown): m is Request & Partial<{ piece: WirePart; done: true }> & Answer {
  return typeof m === 'object' && m !== null && (m as { cmd?: unknown }).cmd === CMD && typeof (m as { id?: unknown }).id === 'number';
}

/**
 * Sends `a` as replies: each part on its own (a receiver parses one message in one go: pieces keep that short),
 * yielding to the event loop between them once a slice is used up, then the rest.
 */
async function inPieces(a: Answer, post: (r: Reply) => void): Promise<void> {
  const { parts = [], ...rest } = a;
  const slice = new Slicer();
  for (const piece of parts) {
    post({ piece });
    await slice.check();
  }
  post({ ...rest, done: true });
}

/** Collects the replies of one answer: returns the answer once `done` has come, else null. */
function collect(pieces: WirePart[], r: Partial<{ piece: WirePart; done: true }> & Answer): Answer | null {
  if (r.piece !== undefined) {
    pieces.push(r.piece);
    return null;
  }
  if (r.done !== true) return null;
  const { done: _, ...answer } = r;
  return { ...answer, parts: pieces };
}

/** @internal Called once per process at import: in a cluster worker, answers the primary's requests. */
export function answerClusterPrimary(): void {
  if (!cluster.isWorker || typeof process.send !== 'function') return;
  shared('clusterAnswer', () => {
    openThreadHub(); // this worker's own threads are part of its answer
    const running = new Map<number, AbortController>();
    (process as EventEmitter).on('internalMessage', (m: unknown) => {
      if (!isMessage(m)) return;
      if (m.cancel) return void running.get(m.id)?.abort();
      if (m.req === undefined) return;
      const ac = new AbortController();
      running.set(m.id, ac);
      const reply = (a: Answer): Promise<void> => {
        running.delete(m.id);
        return inPieces(a, (msg) => {
          if (process.connected) process.send!({ cmd: CMD, id: m.id, ...msg }, undefined, {}, () => {});
        });
      };
      // its threads get half the time the primary gives this worker, so that their absence is reported
      answerWithThreads(m.req, m.threadsMs ?? 1000, ac.signal).then(reply, (e: unknown) => reply({ error: e instanceof Error ? e.message : String(e) }));
    });
    return true;
  });
}

// ---- cluster primary: the asking side ----

interface Asked {
  pieces: WirePart[];
  settle(r: Answer | string): void;
}
const workerState = shared('clusterAsk', () => ({ nextId: 1, pending: new Map<Worker, Map<number, Asked>>() }));

function pendingOf(w: Worker): Map<number, Asked> {
  let p = workerState.pending.get(w);
  if (p === undefined) {
    const mine = (p = new Map());
    workerState.pending.set(w, mine);
    (w.process as EventEmitter).on('internalMessage', (m: unknown) => {
      if (!isMessage(m) || m.req !== undefined || m.cancel) return;
      const asked = mine.get(m.id);
      const answer = asked === undefined ? null : collect(asked.pieces, m);
      if (answer !== null) asked!.settle(answer);
    });
    w.once('exit', () => {
      workerState.pending.delete(w);
      for (const a of [...mine.values()]) a.settle('exited before answering');
    });
  }
  return p;
}

function askWorker(w: Worker, op: PeerOp, ms: number, timeoutMs: number): { answer: Promise<Answer | string>; cancel(): void } {
  const pending = pendingOf(w);
  const id = workerState.nextId++;
  const send = (m: Request): void => {
    if (w.isConnected()) w.process.send(m, undefined, {}, () => {});
  };
  let settle!: (r: Answer | string) => void;
  const answer = new Promise<Answer | string>((resolve) => {
    const timer = setTimeout(() => {
      send({ cmd: CMD, id, cancel: true });
      settle(`did not answer within ${ms} ms`);
    }, ms).unref();
    settle = (r) => {
      clearTimeout(timer);
      pending.delete(id);
      resolve(r);
    };
  });
  pending.set(id, { pieces: [], settle });
  send({ cmd: CMD, id, req: op, threadsMs: Math.max(1, Math.floor(timeoutMs / 2)) });
  return {
    answer,
    cancel: () => {
      send({ cmd: CMD, id, cancel: true });
      settle('cancelled');
    },
  };
}

// ---- worker threads ----

type ThreadMessage =
  | { t: 'who' }
  | { t: 'hello'; thread: number }
  | { t: 'req'; from: number; id: number; req: PeerOp }
  | { t: 'cancel'; from: number; id: number }
  | { t: 'reply'; to: number; id: number; thread: number; r: Reply };

interface Hub {
  channel: BroadcastChannel;
  members: Set<number>;
  nextId: number;
  pending: Map<number, { waiting: Set<number>; pieces: Map<number, WirePart[]>; answers: Answer[]; done(): void }>;
}

const hubs = shared('threadHub', () => ({ hub: null as Hub | null }));

/** @internal Opens (once) this thread's side of the threads' channel, where sharing threads say hello. */
export function openThreadHub(): Hub {
  if (hubs.hub !== null) return hubs.hub;
  const hub: Hub = { channel: new BroadcastChannel(THREADS), members: new Set(), nextId: 1, pending: new Map() };
  hub.channel.onmessage = (e: unknown): void => {
    const m = (e as { data: ThreadMessage }).data;
    if (m.t === 'hello') hub.members.add(m.thread);
    else if (m.t === 'reply' && m.to === threadId) {
      hub.members.add(m.thread); // a thread once left out for being slow is back
      const p = hub.pending.get(m.id);
      if (p === undefined || !p.waiting.has(m.thread)) return;
      let pieces = p.pieces.get(m.thread);
      if (pieces === undefined) p.pieces.set(m.thread, (pieces = []));
      const answer = collect(pieces, m.r);
      if (answer === null) return;
      p.waiting.delete(m.thread);
      p.answers.push(answer);
      if (p.waiting.size === 0) p.done();
    }
  };
  hub.channel.unref();
  hub.channel.postMessage({ t: 'who' } satisfies ThreadMessage);
  return (hubs.hub = hub);
}

async function askThreads(op: PeerOp, ms: number, signal: AbortSignal): Promise<{ answers: Answer[]; missing: string[] }> {
  const hub = hubs.hub;
  if (hub === null || hub.members.size === 0) return { answers: [], missing: [] };
  const id = hub.nextId++;
  const waiting = new Set([...hub.members].filter((t) => t !== threadId));
  if (waiting.size === 0) return { answers: [], missing: [] };
  const answers: Answer[] = [];
  const wait = op.op === 'delta' ? op.seconds * 1000 + ms : ms;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', cancel);
      hub.pending.delete(id);
      resolve();
    };
    const cancel = (): void => {
      hub.channel.postMessage({ t: 'cancel', from: threadId, id } satisfies ThreadMessage);
      done();
    };
    const timer = setTimeout(cancel, wait).unref();
    signal.addEventListener('abort', cancel);
    hub.pending.set(id, { waiting, pieces: new Map(), answers, done });
    hub.channel.postMessage({ t: 'req', from: threadId, id, req: op } satisfies ThreadMessage);
  });
  const pid = String(process.pid);
  const missing = [...waiting].map((t) => {
    hub.members.delete(t); // asked again once it says hello or answers late
    return `${originName([
      ['pid', pid],
      ['thread', String(t)],
    ])} did not answer within ${wait} ms`;
  });
  return { answers, missing };
}

/**
 * In a worker thread: lets the thread that serves profiles with `{ cluster: true }` (usually the main thread)
 * include this thread's profiles, labelled `thread`. The channel is unreferenced: it keeps nothing alive.
 * Returns a function that stops sharing.
 */
export function shareProfilesWithMainThread(): () => void {
  if (isMainThread) throw new Error('mutexprof: shareProfilesWithMainThread() is for worker threads; the main thread serves with { cluster: true }');
  const state = shared<{ stop: () => void } | { stop: null }>('threadShare', () => ({ stop: null }));
  if (state.stop !== null) return state.stop;
  const channel = new BroadcastChannel(THREADS);
  const running = new Map<string, AbortController>();
  const hello = (): void => channel.postMessage({ t: 'hello', thread: threadId } satisfies ThreadMessage);
  channel.onmessage = (e: unknown): void => {
    const m = (e as { data: ThreadMessage }).data;
    if (m.t === 'who') return hello();
    if (m.t === 'cancel') return void running.get(`${m.from}:${m.id}`)?.abort();
    if (m.t !== 'req' || m.from === threadId) return;
    const key = `${m.from}:${m.id}`;
    const ac = new AbortController();
    running.set(key, ac);
    answerHere(m.req, ac.signal)
      .catch((err: unknown) => ({ error: err instanceof Error ? err.message : String(err) }))
      .then((answer) => {
        running.delete(key);
        if (ac.signal.aborted && m.req.op === 'delta') return;
        return inPieces(answer, (r) => {
          try {
            channel.postMessage({ t: 'reply', to: m.from, id: m.id, thread: threadId, r } satisfies ThreadMessage);
          } catch {
            /* stopped sharing meanwhile */
          }
        });
      });
  };
  channel.unref();
  hello();
  const stop = (): void => {
    for (const ac of running.values()) ac.abort();
    channel.close();
    (state as { stop: (() => void) | null }).stop = null;
  };
  (state as { stop: (() => void) | null }).stop = stop;
  return stop;
}

// ---- the gathering side ----

/**
 * @internal Asks this process, its sharing threads and (in a cluster primary) every live worker, in parallel.
 * Resolves with every answer, and the peers left out (named, with why), within the bound; null if `signal`
 * aborted (the peers' deltas are cancelled).
 */
export async function gather(op: PeerOp, timeoutMs: number, signal: AbortSignal): Promise<(Answer & { missing: string[] }) | null> {
  const ms = op.op === 'delta' ? op.seconds * 1000 + timeoutMs : timeoutMs;
  const workers = cluster.isPrimary ? Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected() && !w.isDead()) : [];
  const asked = workers.map((w) => ({ w, ...askWorker(w, op, ms, timeoutMs) }));
  const cancel = (): void => asked.forEach((a) => a.cancel());
  signal.addEventListener('abort', cancel);
  try {
    const [here, ...fromWorkers] = await Promise.all([answerWithThreads(op, timeoutMs, signal), ...asked.map((a) => a.answer)]);
    if (signal.aborted) return null;
    if (here.error !== undefined) return here;
    const answers: Answer[] = [here];
    const missing: string[] = [];
    fromWorkers.forEach((r, i) => {
      const who = `worker ${asked[i].w.id} (pid ${asked[i].w.process.pid ?? '?'})`;
      if (typeof r === 'string') missing.push(`${who} ${r}`);
      else if (r.error !== undefined) missing.push(`${who} could not answer: ${r.error}`);
      else answers.push(r);
    });
    return combine(answers, missing);
  } finally {
    signal.removeEventListener('abort', cancel);
  }
}

/**
 * @internal The merged snapshot of profile `name` over the cluster (see gather), or null if `signal` aborts first.
 * Concurrent requests for the same snapshot share one round of asking (a client that leaves does not end it for
 * the others: it is bounded by the timeout anyway); each delta asks on its own, over its own window.
 */
export async function clusterSnapshot(op: SnapshotOp, timeoutMs: number, signal: AbortSignal): Promise<ProfileSnapshot | null> {
  if (op.op === 'delta') return merged(op, timeoutMs, signal);
  const key = `${op.name}\0${timeoutMs}`;
  let round = inflight.get(key);
  if (round === undefined) {
    round = merged(op, timeoutMs, new AbortController().signal) as Promise<ProfileSnapshot>;
    inflight.set(key, round);
    const done = (): void => void inflight.delete(key);
    round.then(done, done);
  }
  if (signal.aborted) return null;
  return new Promise<ProfileSnapshot | null>((resolve, reject) => {
    const abort = (): void => resolve(null);
    signal.addEventListener('abort', abort, { once: true });
    round.then(
      (s) => (signal.removeEventListener('abort', abort), resolve(s)),
      (e: unknown) => (signal.removeEventListener('abort', abort), reject(e)),
    );
  });
}

const inflight = new Map<string, Promise<ProfileSnapshot>>();

async function merged(op: SnapshotOp, timeoutMs: number, signal: AbortSignal): Promise<ProfileSnapshot | null> {
  const g = await gather(op, timeoutMs, signal);
  if (g === null) return null;
  if (g.error !== undefined) throw new Error(g.error);
  const notes = g.missing.map((m) => `mutexprof cluster: left out: ${m}`);
  return mergeParts(op.name, g.parts ?? [], notes);
}

/**
 * @internal A profile's own legacy text over the cluster (for profiles whose text is not a rendering of their
 * snapshot, as the `locks` dump): each process's or thread's text under a header naming it; null if cancelled.
 */
export async function clusterText(name: string, timeoutMs: number, signal: AbortSignal): Promise<string | null> {
  const g = await gather({ op: 'text', name }, timeoutMs, signal);
  if (g === null) return null;
  if (g.error !== undefined) throw new Error(g.error);
  let out = '';
  for (const { origin, text } of g.texts ?? []) out += `=== ${originName(origin)} ===\n${text}\n`;
  for (const m of g.missing) out += `=== left out: ${m} ===\n`;
  return out;
}

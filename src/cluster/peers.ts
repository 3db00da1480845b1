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
import type { ProfileSnapshot } from '../pprof/registry.js';
import { combine, type Answer, type PeerOp, type SnapshotOp } from './protocol.js';
import { answerWithThreads } from './threads.js';
import { mergeParts, originName } from './wire.js';
import { askWorker } from './workers.js';

export { answerClusterPrimary } from './workers.js';
export { openThreadHub, shareProfilesWithMainThread } from './threads.js';

/**
 * Asks this process, its sharing threads and (in a cluster primary) every live worker, in parallel.
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
 * The merged snapshot of profile `name` over the cluster (see gather), or null if `signal` aborts first.
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
 * A profile's own legacy text over the cluster (for profiles whose text is not a rendering of their
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

// Worker threads: a thread opts in with shareProfilesWithMainThread() (a BroadcastChannel, unreferenced on both sides),
// and the thread that gathers asks every thread that said hello. Threads say hello when they start sharing and when
// the gathering side asks who is there; a thread that stops answering is left out, and asked again once it is back.

import { BroadcastChannel, isMainThread, threadId } from 'node:worker_threads';
import { shared } from '../shared/state.js';
import { answerHere, collect, combine, inPieces, THREADS, type Answer, type PeerOp, type Reply } from './protocol.js';
import { originName, type WirePart } from './wire.js';

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

/** Opens (once) this thread's side of the threads' channel, where sharing threads say hello. */
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

export async function askThreads(op: PeerOp, ms: number, signal: AbortSignal): Promise<{ answers: Answer[]; missing: string[] }> {
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

/** The answer of this process and the worker threads sharing with it. */
export async function answerWithThreads(op: PeerOp, timeoutMs: number, signal: AbortSignal): Promise<Answer & { missing: string[] }> {
  const [own, threads] = await Promise.all([answerHere(op, signal), askThreads(op, timeoutMs, signal)]);
  if (own.error !== undefined) return { ...own, missing: [] };
  return combine([own, ...threads.answers], [...threads.missing]);
}

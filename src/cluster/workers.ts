// node:cluster workers: a worker answers its primary over IPC as soon as mutexprof is imported (answerClusterPrimary),
// and the primary asks each live worker (askWorker). Messages are internal ones (their cmd starts with 'NODE_'):
// see the top of src/cluster/peers.ts for why.

import cluster, { type Worker } from 'node:cluster';
import type { EventEmitter } from 'node:events';
import { shared } from '../shared/state.js';
import { CMD, collect, inPieces, isMessage, type Answer, type PeerOp, type Request } from './protocol.js';
import { answerWithThreads, openThreadHub } from './threads.js';
import type { WirePart } from './wire.js';

/** Called once per process at import: in a cluster worker, answers the primary's requests. */
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

export function askWorker(w: Worker, op: PeerOp, ms: number, timeoutMs: number): { answer: Promise<Answer | string>; cancel(): void } {
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

// What the processes and threads of a cluster ask each other and answer (src/cluster/peers.ts gathers the answers):
// the operations, an answer and how it travels in pieces, and this process's own answer.

import cluster from 'node:cluster';
import { isMainThread, threadId } from 'node:worker_threads';
import { settleAll } from '../profile/drain.js';
import { Slicer } from '../profile/slice.js';
import { collectText, deltaOver, profiles, sourceOf, type ProfileSnapshot } from '../pprof/registry.js';
import { originName, toWire, type WirePart } from './wire.js';

export const CMD = 'NODE_MUTEXPROF';
export const THREADS = 'mutexprof:threads';

/** What a peer is asked. */
export type PeerOp = { op: 'snapshot'; name: string } | { op: 'delta'; name: string; seconds: number } | { op: 'counts' } | { op: 'text'; name: string };
export type SnapshotOp = Extract<PeerOp, { op: 'snapshot' | 'delta' }>;

export interface Answer {
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
export function origin(): Array<[string, string]> {
  const o: Array<[string, string]> = [['pid', String(process.pid)]];
  if (cluster.isWorker && cluster.worker !== undefined) o.push(['worker', String(cluster.worker.id)]);
  if (!isMainThread) o.push(['thread', String(threadId)]);
  return o;
}

/** The answer of this process or thread alone. */
export async function answerHere(op: PeerOp, signal: AbortSignal): Promise<Answer> {
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

export function combine(answers: Answer[], missing: string[]): Answer & { missing: string[] } {
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

export interface Request {
  cmd: typeof CMD;
  id: number;
  req?: PeerOp;
  /** how long the asked worker may wait for its own threads (ms): less than the primary waits for it */
  threadsMs?: number;
  cancel?: true;
}

/** An answer on the wire: its parts one message each (`piece`), then the rest (`done`). */
export type Reply = { piece: WirePart } | (Omit<Answer, 'parts'> & { done: true });

export function isMessage(m: unknown): m is Request & Partial<{ piece: WirePart; done: true }> & Answer {
  return typeof m === 'object' && m !== null && (m as { cmd?: unknown }).cmd === CMD && typeof (m as { id?: unknown }).id === 'number';
}

/**
 * Sends `a` as replies: each part on its own (a receiver parses one message in one go: pieces keep that short),
 * yielding to the event loop between them once a slice is used up, then the rest.
 */
export async function inPieces(a: Answer, post: (r: Reply) => void): Promise<void> {
  const { parts = [], ...rest } = a;
  const slice = new Slicer();
  for (const piece of parts) {
    post({ piece });
    await slice.check();
  }
  post({ ...rest, done: true });
}

/** Collects the replies of one answer: returns the answer once `done` has come, else null. */
export function collect(pieces: WirePart[], r: Partial<{ piece: WirePart; done: true }> & Answer): Answer | null {
  if (r.piece !== undefined) {
    pieces.push(r.piece);
    return null;
  }
  if (r.done !== true) return null;
  const { done: _, ...answer } = r;
  return { ...answer, parts: pieces };
}

// A run's profile files, as `go test -mutexprofile`: one file per profile for the whole run, merged over every
// process and worker thread it starts, each sample labelled pid (and worker or thread, as a cluster merge is).
//
// Every process and thread of the run writes its own profiles into a spool directory (a file each, replaced
// atomically), shortly after its events and when it exits. The process that named the spool merges it into the
// files when it exits (under a lock; the parts it merged fold into one merged part); it exits after the processes
// it started, so its files hold them all. The spool is named in the environment (MUTEXPROF_SPOOL) by the
// first process that joins, so that the processes it starts (a test runner's forks, jest's workers, the runner under
// npm or npx) inherit it, as do the worker threads that load mutexprof while it is set. Processes whose parent does
// not take part (node --test's files, whose runner runs no preload) find one spool by their parent's identity, and
// each merges when it exits: the last one's files hold them all. Everything at exit is synchronous, as nothing may wait there.
//
// Nothing is lost when a process exits early, or is stopped by SIGTERM or SIGINT (it writes before it goes). A
// worker thread is stopped by terminate() without an exit event, so the threads that join delay terminate() of the
// threads they start until those have written (at most TERMINATE_WAIT_MS: no hang if one does not answer). A process
// killed by SIGKILL keeps what it wrote FLUSH_MS after its last events.

import { BroadcastChannel, isMainThread, threadId, Worker } from 'node:worker_threads';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { shared } from '../shared/state.js';
import { recorders } from '../profile/drain.js';
import { origin } from '../cluster/protocol.js';
import { mergePartsNow, wireNow, type WirePart } from '../cluster/wire.js';
import { encodeSnapshotNow } from '../pprof/proto.js';
import { snapshotNow } from '../pprof/recorded.js';
import { lookup } from '../pprof/registry.js';

const SPOOL = 'MUTEXPROF_SPOOL';
const CHANNEL = 'mutexprof:run';
const FLUSH_MS = 200;
const TERMINATE_WAIT_MS = 2000;
/** How long an exiting process waits for another's merge; a lock older than this is a dead process's. */
const LOCK_MS = 10_000;
const MERGED = 'merged.json';

type Name = 'mutex' | 'block' | 'hold';
/** The files of a run, per profile (absolute paths), or null for a profile not asked for. */
export type RunFiles = Record<Name, string | null>;

interface Run {
  dir: string;
  /** whether this process named the spool (it was not inherited): it removes it when it is the last such process */
  named: boolean;
  files: RunFiles;
  /** what was last written: the recorders' sequence numbers */
  written: string;
  timer: ReturnType<typeof setTimeout> | null;
  threads: Set<number>;
}

const runs = shared('run', () => ({ run: null as Run | null }));

type Message = { t: 'hello'; thread: number } | { t: 'flush'; thread: number } | { t: 'flushed'; thread: number };

/** Joins the run (once per process or thread): as its root, or, with MUTEXPROF_SPOOL set, as one of its parts. */
export function joinRun(wanted: RunFiles): void {
  if (runs.run !== null) return;
  const files: RunFiles = { mutex: absolute(wanted.mutex), block: absolute(wanted.block), hold: absolute(wanted.hold) };
  const inherited = process.env[SPOOL];
  const dir = inherited ?? spoolOf(files);
  mkdirSync(dir, { recursive: true });
  process.env[SPOOL] = dir;
  const run: Run = { dir, named: inherited === undefined, files, written: '', timer: null, threads: new Set() };
  if (!run.named && isMainThread) writeFileSync(join(dir, `inherited-${process.pid}`), ''); // see removeAtEnd
  runs.run = run;
  for (const r of Object.values(recorders)) r.onEvent = () => soon(run);
  process.on('exit', () => finish(run));
  if (isMainThread) for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, onSignal(run, signal));
  talk(run);
  stopWorkersAfterTheyWrite(run);
}

function absolute(file: string | null): string | null {
  return file === null ? null : resolve(file);
}

/**
 * The spool of a run whose processes inherited none: one per parent process (its pid and start time, so that a later
 * process that reuses the pid is another run) and set of files.
 */
function spoolOf(files: RunFiles): string {
  const parent = `${process.ppid} ${startOf(process.ppid)}`;
  const id = createHash('sha256')
    .update(JSON.stringify([parent, files]))
    .digest('hex')
    .slice(0, 16);
  const dir = join(tmpdir(), `mutexprof-run-${id}`);
  removeStale();
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'parent'), parent);
  return dir;
}

/** When process `pid` started (Linux), so that a later process with its pid is told apart; '' elsewhere. */
function startOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

/** Removes the spools that runs left behind (see removeAtEnd) whose parent process is gone. */
function removeStale(): void {
  try {
    for (const f of readdirSync(tmpdir())) {
      if (!f.startsWith('mutexprof-run-')) continue;
      const dir = join(tmpdir(), f);
      try {
        const [pid, started] = readFileSync(join(dir, 'parent'), 'utf8').split(' ');
        if (!alive(Number(pid), started)) rmSync(dir, { recursive: true, force: true });
      } catch {
        // not a spool of this kind, or removed meanwhile
      }
    }
  } catch {
    // no temporary directory to read
  }
}

function alive(pid: number, started: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  return startOf(pid) === started;
}

/** Writes this process's or thread's part shortly (coalesced), so that a kill loses at most FLUSH_MS of events. */
function soon(run: Run): void {
  if (run.timer !== null) return;
  run.timer = setTimeout(() => {
    run.timer = null;
    write(run);
  }, FLUSH_MS);
  run.timer.unref();
}

function wanted(run: Run): Name[] {
  return (Object.keys(run.files) as Name[]).filter((n) => run.files[n] !== null);
}

/** This process's or thread's profiles, as parts labelled with where they come from. */
function parts(run: Run): WirePart[] {
  return wanted(run).map((n) => ({ origin: origin(), snapshot: wireNow(snapshotNow(n)) }));
}

/** Writes this part into the spool, if anything changed since it last did (atomically: a reader sees a whole file). */
function write(run: Run): void {
  const seq = Object.values(recorders)
    .map((r) => r.seqNow())
    .join(',');
  if (seq === run.written) return;
  const file = join(run.dir, `${process.pid}-${threadId}.json`);
  try {
    writeFileSync(file + '.tmp', JSON.stringify(parts(run)));
    renameSync(file + '.tmp', file);
    run.written = seq;
  } catch {
    // the root has finished and removed the spool: a straggler's profile has nowhere to go
  }
}

/**
 * At exit: this process's or thread's part is written; a process that named the spool then merges it into the files
 * (the processes that inherited it only write: a runner may kill a worker that takes long to exit).
 */
function finish(run: Run): void {
  if (run.timer !== null) clearTimeout(run.timer);
  write(run);
  if (isMainThread && run.named) merge(run);
}

/** Merges every part in the spool (and what earlier merges folded) into the files, under the spool's lock. */
function merge(run: Run): void {
  const started = performance.now();
  const lock = join(run.dir, 'merge.lock');
  if (!acquire(lock)) {
    writeSync(2, `mutexprof: the run's profiles were not merged: ${lock} is held by another process\n`);
    return;
  }
  try {
    const all: WirePart[] = [];
    const consumed: string[] = [];
    let others = 0;
    for (const f of readdirSync(run.dir)) {
      if (!f.endsWith('.json')) continue;
      try {
        all.push(...(JSON.parse(readFileSync(join(run.dir, f), 'utf8')) as WirePart[]));
        if (f !== MERGED) consumed.push(f);
        if (f !== MERGED && f !== own()) others++;
      } catch {
        // unreadable (a process killed while it wrote its first part): left out
      }
    }
    const folded: WirePart[] = [];
    for (const name of wanted(run)) {
      const merged = mergePartsNow(
        name,
        all.filter((p) => p.snapshot.name === name),
        [],
      );
      folded.push({ origin: [], snapshot: wireNow(merged) });
      const file = run.files[name]!;
      const comments = [`mutexprof: the ${name} profile of a run, merged over its processes and threads (MUTEXPROF_${name.toUpperCase()}PROFILE)`, ...merged.comments];
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file + '.tmp', encodeSnapshotNow({ ...merged, comments }, lookup(name).sampleTypes));
      renameSync(file + '.tmp', file);
    }
    writeFileSync(join(run.dir, MERGED + '.tmp'), JSON.stringify(folded));
    renameSync(join(run.dir, MERGED + '.tmp'), join(run.dir, MERGED));
    for (const f of consumed) rmSync(join(run.dir, f), { force: true });
    run.written = ''; // this process's part is folded: write it anew if anything follows
    if (process.env.MUTEXPROF_DEBUG_RUN === '1') writeSync(2, `mutexprof: ${others + 1} parts merged into the run's profiles in ${(performance.now() - started).toFixed(0)} ms\n`);
  } catch (e) {
    writeSync(2, `mutexprof: the run's profiles could not be written: ${e instanceof Error ? e.message : String(e)}\n`);
  } finally {
    release(lock);
  }
  // the process that named the spool and whose children inherited it exits last: the run is over
  if (run.named) removeAtEnd(run);
}

/** This process's part's file name. */
function own(): string {
  return `${process.pid}-${threadId}.json`;
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/** Takes the merge lock (a file made exclusively, naming its holder), waiting for another process's merge; false after LOCK_MS. */
function acquire(lock: string): boolean {
  const until = Date.now() + LOCK_MS;
  for (;;) {
    try {
      const fd = openSync(lock, 'wx');
      writeSync(fd, `${process.pid} ${startOf(process.pid)}`);
      closeSync(fd);
      return true;
    } catch {
      try {
        const [pid, started] = readFileSync(lock, 'utf8').split(' ');
        // a process that died holding it (a lock just made may not name its holder yet: it gets LOCK_MS)
        if ((pid !== undefined && pid !== '' && !alive(Number(pid), started ?? '')) || Date.now() - statSync(lock).mtimeMs > LOCK_MS) unlinkSync(lock);
      } catch {
        // released meanwhile
      }
      if (Date.now() > until) return false;
      Atomics.wait(pause, 0, 0, 5);
    }
  }
}

function release(lock: string): void {
  rmSync(lock, { force: true });
}

/**
 * Removes the spool at the end of the run: when this process named it and either processes it started inherited it
 * (they have exited before it), or its parent is no Node.js process (nothing else will come). Where processes of one
 * parent each named it (node --test's files under Node 20), none can know it is the last: the merged part stays in
 * the OS's temporary directory until a later run finds its parent gone (removeStale).
 */
function removeAtEnd(run: Run): void {
  try {
    const inherited = readdirSync(run.dir).some((f) => f.startsWith('inherited-'));
    if (inherited || !parentIsNode()) rmSync(run.dir, { recursive: true, force: true });
  } catch {
    // removed already
  }
}

function parentIsNode(): boolean {
  try {
    const exe = readlinkSync(`/proc/${process.ppid}/exe`);
    return exe === process.execPath || basename(exe).startsWith('node');
  } catch {
    return false; // not Linux: taken as a run of its own
  }
}

/** SIGTERM, SIGINT: write first, then let the signal do what it would have done without this listener. */
function onSignal(run: Run, signal: 'SIGTERM' | 'SIGINT'): () => void {
  const listener = (): void => {
    process.off(signal, listener);
    finish(run);
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  return listener;
}

/**
 * The threads of a process say hello on one channel when they join, and write when asked (the thread that starts
 * them asks before it terminates them).
 */
function talk(run: Run): void {
  const channel = new BroadcastChannel(CHANNEL);
  channel.unref();
  channel.onmessage = (e: unknown): void => {
    const m = (e as { data: Message }).data;
    if (m.t === 'hello') run.threads.add(m.thread);
    else if (m.t === 'flush' && m.thread === threadId) {
      write(run);
      channel.postMessage({ t: 'flushed', thread: threadId } satisfies Message);
    } else if (m.t === 'flushed') waiting.get(m.thread)?.();
  };
  if (!isMainThread) channel.postMessage({ t: 'hello', thread: threadId } satisfies Message);
  asker = channel;
}

let asker: BroadcastChannel | null = null;
const waiting = new Map<number, () => void>();

/** terminate() of a thread that joined the run waits until it has written (or TERMINATE_WAIT_MS). */
function stopWorkersAfterTheyWrite(run: Run): void {
  const terminate = Worker.prototype.terminate;
  Worker.prototype.terminate = function (this: Worker): Promise<number> {
    const id = this.threadId;
    if (asker === null || !run.threads.has(id)) return terminate.call(this);
    run.threads.delete(id);
    const channel = asker;
    return new Promise<void>((done) => {
      const timer = setTimeout(done, TERMINATE_WAIT_MS);
      waiting.set(id, () => {
        clearTimeout(timer);
        done();
      });
      channel.postMessage({ t: 'flush', thread: id } satisfies Message);
    }).then(() => {
      waiting.delete(id);
      return terminate.call(this);
    });
  };
}

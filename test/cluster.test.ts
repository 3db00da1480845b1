// One profile for a cluster: a real node:cluster app (test/fixtures/cluster-app.mjs), 3 workers contending on
// named locks, the primary serving with { cluster: true }; and worker threads sharing with the main thread.
import { describe, test, expect, beforeAll, afterAll } from 'vitest';
import { fork, execFile, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import { goBinary } from './helpers.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');
const go = goBinary();

interface Decoded {
  /** delay per pid, per lock (but 'late', counted in `late`) */
  byPid: Map<string, Record<string, number>>;
  /** contentions of the lock 'late' per pid */
  late: Map<string, number>;
  workers: Map<string, string>;
  comments: string[];
  raw: Buffer;
}

function decode(gz: Buffer): Decoded {
  const p = Profile.decode(gunzipSync(gz));
  const str = (i: unknown): string => p.stringTable.strings[Number(i)];
  const byPid = new Map<string, Record<string, number>>();
  const late = new Map<string, number>();
  const workers = new Map<string, string>();
  for (const s of p.sample) {
    const labels = Object.fromEntries(s.label.map((l) => [str(l.key), str(l.str)]));
    if (labels.lock === 'late') {
      late.set(labels.pid, (late.get(labels.pid) ?? 0) + Number(s.value[0]));
      continue;
    }
    const t = byPid.get(labels.pid) ?? {};
    t[labels.lock ?? ''] = (t[labels.lock ?? ''] ?? 0) + Number(s.value[1]);
    byPid.set(labels.pid, t);
    if (labels.worker !== undefined) workers.set(labels.pid, labels.worker);
  }
  return { byPid, late, workers, comments: p.comment.map(str), raw: gz };
}

interface Totals {
  pid: number;
  worker: number;
  mutex: Record<string, number>;
  block: Record<string, number>;
  /** after a window: the contentions of a lock born inside it that the window saw (by sequence number) */
  late?: number;
  stray: number;
}

describe('cluster: true in a node:cluster primary', () => {
  let app: ChildProcess;
  let base = '';
  let pids: Array<{ worker: number; pid: number }> = [];
  let home = '';
  const order = async <T>(m: object): Promise<T> => {
    app.send(m);
    return ((await once(app, 'message')) as [T])[0];
  };
  const get = async (path: string): Promise<Decoded> => decode(Buffer.from(await (await fetch(base + path)).arrayBuffer()));

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'mutexprof-cluster-'));
    app = fork(join(root, 'test/fixtures/cluster-app.mjs'), [], { env: { ...process.env, MUTEXPROF_DIST: dist, TIMEOUT_MS: '800' }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const [ready] = (await once(app, 'message')) as [{ port: number; pids: typeof pids }];
    base = `http://127.0.0.1:${ready.port}/debug/pprof`;
    pids = ready.pids;
  });
  afterAll(async () => {
    if (app.exitCode === null && app.signalCode === null) {
      app.kill();
      await once(app, 'exit');
    }
    rmSync(home, { recursive: true, force: true });
  });

  test('merged totals are the sum of each worker’s; go tool pprof -tags shows the pid split', async () => {
    const { totals } = await order<{ totals: Totals[] }>({ do: 'round' });
    expect(totals).toHaveLength(3);
    for (const kind of ['mutex', 'block'] as const) {
      const merged = await get(`/${kind}`);
      for (const t of totals) {
        expect(t[kind].orders).toBeGreaterThan(0);
        expect(merged.byPid.get(String(t.pid))).toEqual(t[kind]); // per worker and lock, to the nanosecond
        expect(merged.workers.get(String(t.pid))).toBe(String(t.worker));
      }
      expect([...merged.byPid.keys()].sort()).toEqual(totals.map((t) => String(t.pid)).sort()); // the primary holds no locks
      expect(merged.comments.filter((c) => c.includes('left out'))).toEqual([]);
      if (kind === 'mutex' && go) {
        const file = join(home, 'mutex.pb.gz');
        writeFileSync(file, merged.raw);
        const { stdout } = await promisify(execFile)(go, ['tool', 'pprof', '-tags', file], { env: { ...process.env, HOME: home }, timeout: 60_000 });
        expect(stdout).toMatch(/pid: Total/);
        for (const { pid, worker } of pids) {
          expect(stdout).toMatch(new RegExp(`pid: Total[\\s\\S]*%\\): ${pid}\\n`));
          expect(stdout).toMatch(new RegExp(`worker: Total[\\s\\S]*%\\): ${worker}\\n`));
        }
      }
    }
    // the index counts the workers' samples
    const index = await (await fetch(base + '/')).text();
    expect(index).toContain('Merged over this process and its cluster workers');
    // the locks dump is each process's own, under a header naming it
    const dump = await (await fetch(base + '/locks?debug=1')).text();
    for (const { pid, worker } of pids) expect(dump).toContain(`=== worker ${worker} (pid ${pid}) ===\nlocks: 0 held, 0 waiting`);
    expect(dump).toContain(`=== process (pid ${app.pid}) ===`);
  });

  test('?seconds= deltas of the merged view hold exactly what happened in the window, also for a lock born inside it', async () => {
    const before = (await order<{ totals: Totals[] }>({ do: 'round' })).totals;
    const delta = fetch(base + '/mutex?seconds=2').then(async (r) => decode(Buffer.from(await r.arrayBuffer())));
    const { totals: after, stray } = await order<{ totals: Totals[]; stray: number }>({ do: 'round', afterWindow: true });
    const d = await delta;
    for (const a of after) {
      const b = before.find((x) => x.pid === a.pid)!;
      // a lock without contention in the window has no sample in the delta, as in Go's (zero samples are dropped)
      const want = Object.fromEntries(Object.entries(a.mutex).flatMap(([k, v]) => (v === (b.mutex[k] ?? 0) ? [] : [[k, v - (b.mutex[k] ?? 0)]])));
      expect(d.byPid.get(String(a.pid))).toEqual(want);
      // the lock born inside the window, contended through its end (the background drain resolving it meanwhile)
      expect(a.late).toBeGreaterThan(20);
      expect(d.late.get(String(a.pid))).toBe(a.late);
    }
    // neither side's app saw the other's messages
    expect(stray).toBe(0);
    expect(after.every((t) => t.stray === 0)).toBe(true);
  });

  test('a worker that does not answer, or dies, is left out and named; the request does not hang', async () => {
    await order({ do: 'misbehave' });
    const t0 = Date.now();
    const merged = await get('/mutex');
    expect(Date.now() - t0).toBeLessThan(2500);
    const left = merged.comments.filter((c) => c.includes('left out'));
    expect(left).toEqual(
      expect.arrayContaining([
        expect.stringMatching(new RegExp(`worker ${pids[0].worker} \\(pid ${pids[0].pid}\\) did not answer within 800 ms`)),
        expect.stringMatching(new RegExp(`worker ${pids[1].worker} \\(pid ${pids[1].pid}\\) exited before answering`)),
      ]),
    );
    expect([...merged.byPid.keys()]).toEqual([String(pids[2].pid)]);
  });

  test('workers that disconnect exit: mutexprof keeps no worker alive', async () => {
    const { exitedMs } = await order<{ exitedMs: number }>({ do: 'disconnect' });
    expect(exitedMs).toBeLessThan(10_000);
  });
});

describe('cluster: true where only the primary turned profiling on (settings are per process)', () => {
  test('the merged profile, its index and its flame graph say which process has which profile off', async () => {
    const app = fork(join(root, 'test/fixtures/cluster-app.mjs'), [], {
      env: { ...process.env, MUTEXPROF_DIST: dist, TIMEOUT_MS: '2000', WORKER_RATES: 'off' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    try {
      const [ready] = (await once(app, 'message')) as [{ port: number; pids: Array<{ worker: number; pid: number }> }];
      const base = `http://127.0.0.1:${ready.port}/debug/pprof`;
      app.send({ do: 'round' });
      await once(app, 'message');
      const merged = decode(Buffer.from(await (await fetch(`${base}/mutex`)).arrayBuffer()));
      expect(merged.byPid.size).toBe(0); // nothing recorded: the workers, which hold the locks, never turned it on
      for (const { worker, pid } of ready.pids) {
        expect(merged.comments).toContain(`worker ${worker} (pid ${pid}): mutexprof: the mutex profile is off in this process: setMutexProfileFraction(0), the default; nothing is recorded`);
      }
      expect(merged.comments.some((c) => c.startsWith(`process (pid ${app.pid})`))).toBe(false); // the primary has it on
      const index = await (await fetch(`${base}/`)).text();
      for (const { worker, pid } of ready.pids) expect(index).toContain(`worker ${worker} (pid ${pid}): mutexprof: the mutex profile is off in this process`);
      const flame = (await (await fetch(`${base}/ui/data.json?profile=mutex`)).json()) as { comments: string[] };
      expect(flame.comments.filter((c) => c.includes('is off in this process'))).toHaveLength(3 * 1);
    } finally {
      app.kill();
      await once(app, 'exit').catch(() => {});
    }
  });
});

describe('cluster: true with worker threads', () => {
  test('threads that share their profiles are merged, labelled thread; a thread gone is named', async () => {
    const app = fork(join(root, 'test/fixtures/threads-app.mjs'), [], { env: { ...process.env, MUTEXPROF_DIST: dist }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    try {
      const [r] = (await once(app, 'message')) as [{ threads: Array<{ thread: number; delay: number }>; merged: Array<{ thread: string; delay: number }>; afterExit: string[]; exitCode: number }];
      expect(r.threads).toHaveLength(2);
      for (const t of r.threads) {
        expect(t.delay).toBeGreaterThan(0);
        expect(r.merged).toContainEqual({ thread: String(t.thread), delay: t.delay });
      }
      expect(r.afterExit.some((c) => /thread \d+ \(pid \d+\) did not answer within 300 ms/.test(c))).toBe(true);
      expect(r.exitCode).toBe(0);
    } finally {
      if (app.exitCode === null) app.kill();
      await once(app, 'exit').catch(() => {});
    }
  });
});

describe('cluster option', () => {
  test('the index of a standalone server leaves no listener behind on the server (MaxListenersExceededWarning)', async () => {
    const { startPprofServer } = await import('../src/index.js');
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.name);
    process.on('warning', onWarning);
    const server = await startPprofServer({ port: 0, cluster: { timeoutMs: 200 } });
    try {
      const { port } = server.address() as { port: number };
      for (let i = 0; i < 15; i++) expect((await fetch(`http://127.0.0.1:${port}/debug/pprof/`)).status).toBe(200);
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
      expect(warnings).not.toContain('MaxListenersExceededWarning');
    } finally {
      process.off('warning', onWarning);
      await new Promise((r) => server.close(r));
    }
  });

  test('bad input throws a clear error', async () => {
    const { pprofHandler, shareProfilesWithMainThread } = await import('../src/index.js');
    expect(() => pprofHandler({ cluster: 'yes' as unknown as boolean })).toThrow(/cluster must be a boolean/);
    expect(() => pprofHandler({ cluster: { timeoutMs: 0 } })).toThrow(RangeError);
    expect(() => shareProfilesWithMainThread()).toThrow(/worker threads/); // vitest runs this file in a child process's main thread
  });
});

// mutexprof/register on real applications that do not import mutexprof: their locks are their dependencies'
// async-mutex locks (test/fixtures/instrumented: cache-lib in CommonJS, queue-lib an ES module), substituted by the
// drop-in (MUTEXPROF_INSTRUMENT=async-mutex) and served on MUTEXPROF_PPROF_ADDR, read back with pprof-format and
// `go tool pprof`; a bad variable stops the process; another async-mutex version is left alone; pushes to Pyroscope.
import { describe, test, expect, afterAll } from 'vitest';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import { goBinary } from './helpers.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const fixture = join(root, 'test/fixtures/instrumented');
const go = goBinary();
const scratch: string[] = [];
afterAll(() => scratch.forEach((d) => rmSync(d, { recursive: true, force: true })));

/**
 * An application directory: the fixture apps, their dependencies installed, mutexprof and async-mutex linked (or, with
 * `asyncMutexVersion`, a copy of async-mutex that says it is that version).
 */
function appDir(asyncMutexVersion?: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'mutexprof-register-'));
  scratch.push(dir);
  cpSync(fixture, dir, { recursive: true });
  const modules = join(dir, 'node_modules');
  mkdirSync(modules);
  for (const lib of ['cache-lib', 'queue-lib']) cpSync(join(fixture, lib), join(modules, lib), { recursive: true });
  if (asyncMutexVersion === undefined) symlinkSync(join(root, 'node_modules/async-mutex'), join(modules, 'async-mutex'));
  else {
    cpSync(join(root, 'node_modules/async-mutex'), join(modules, 'async-mutex'), { recursive: true, dereference: true });
    const manifest = join(modules, 'async-mutex/package.json');
    writeFileSync(manifest, JSON.stringify({ ...(JSON.parse(readFileSync(manifest, 'utf8')) as object), version: asyncMutexVersion }));
    symlinkSync(join(root, 'node_modules/tslib'), join(modules, 'tslib'));
  }
  symlinkSync(root, join(modules, 'mutexprof'));
  return dir;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function start(dir: string, args: string[], env: Record<string, string>): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, args, { cwd: dir, env: { ...process.env, NODE_OPTIONS: '', TMPDIR: dir, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return Object.assign(child, { output: () => out });
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code))));
}

async function fetchProfile(port: number, name: string): Promise<Profile> {
  const res = await fetch(`http://127.0.0.1:${port}/debug/pprof/${name}`);
  expect(res.status).toBe(200);
  return Profile.decode(gunzipSync(Buffer.from(await res.arrayBuffer())));
}

/** Total [count, delay] per lock label of a decoded profile. */
function byLock(p: Profile): Map<string, [number, number]> {
  const str = (i: unknown): string => p.stringTable.strings[Number(i)];
  const out = new Map<string, [number, number]>();
  for (const s of p.sample) {
    const lock = s.label.map((l) => [str(l.key), str(l.str)]).find(([k]) => k === 'lock')?.[1] ?? '';
    const t = out.get(lock) ?? [0, 0];
    out.set(lock, [t[0] + Number(s.value[0]), t[1] + Number(s.value[1])]);
  }
  return out;
}

/** Polls the served mutex profile until the app has contended (it prints 'done'). */
async function servedOnce(child: ChildProcess & { output: () => string }, port: number): Promise<Profile> {
  for (let i = 0; i < 200 && !child.output().includes('done'); i++) await new Promise((r) => setTimeout(r, 50));
  expect(child.output()).toContain('done');
  return fetchProfile(port, 'mutex');
}

const LOCKS = ['node_modules/cache-lib/index.js:6', 'node_modules/queue-lib/index.js:5'];
const SETTINGS = { MUTEXPROF_INSTRUMENT: 'async-mutex', MUTEXPROF_MUTEX_FRACTION: '1', MUTEXPROF_BLOCK_RATE: '1', HOLD_OPEN: '1' };

describe('node --import mutexprof/register, configured by the environment only', () => {
  test('an ES module app: its dependencies’ async-mutex locks in the served profiles, named by where they are made; go tool pprof reads them', async () => {
    const dir = appDir();
    const port = await freePort();
    const child = start(dir, ['app.mjs'], { ...SETTINGS, NODE_OPTIONS: '--import mutexprof/register', MUTEXPROF_PPROF_ADDR: `127.0.0.1:${port}` });
    try {
      const mutex = byLock(await servedOnce(child, port));
      expect([...mutex.keys()].sort()).toEqual(LOCKS);
      for (const lock of LOCKS) expect(mutex.get(lock)![0]).toBeGreaterThan(0);
      // every contended acquisition waited: the block profile's count of each lock is at least its releases'
      const block = byLock(await fetchProfile(port, 'block'));
      for (const lock of LOCKS) expect(block.get(lock)![0]).toBeGreaterThanOrEqual(mutex.get(lock)![0]);
      if (go !== null) {
        const { stdout } = await promisify(execFile)(go, ['tool', 'pprof', '-top', '-sample_index=delay', `http://127.0.0.1:${port}/debug/pprof/mutex`], {
          env: { ...process.env, PPROF_TMPDIR: dir },
        });
        expect(stdout).toContain('Mutex.release');
        expect(stdout).toContain('Semaphore.release');
      }
    } finally {
      child.kill();
      await exited(child);
    }
  });

  test('a CommonJS app with --require: the same, the profile served on loopback by default', async () => {
    const dir = appDir();
    const port = await freePort();
    const child = start(dir, ['app.cjs'], { ...SETTINGS, NODE_OPTIONS: '--require mutexprof/register', MUTEXPROF_PPROF_ADDR: String(port) });
    try {
      expect([...byLock(await servedOnce(child, port)).keys()].sort()).toEqual(LOCKS);
    } finally {
      child.kill();
      await exited(child);
    }
  });

  test('a cluster primary with MUTEXPROF_CLUSTER=1 serves its workers’ locks merged, labelled by worker', async () => {
    const dir = appDir();
    const port = await freePort();
    const child = start(dir, ['cluster.mjs'], { ...SETTINGS, NODE_OPTIONS: '--import mutexprof/register', MUTEXPROF_PPROF_ADDR: String(port), MUTEXPROF_CLUSTER: '1' });
    try {
      for (let i = 0; i < 200 && child.output().split('done').length < 3; i++) await new Promise((r) => setTimeout(r, 50));
      const p = await fetchProfile(port, 'mutex');
      const str = (i: unknown): string => p.stringTable.strings[Number(i)];
      const workers = new Set(p.sample.flatMap((s) => s.label.filter((l) => str(l.key) === 'worker').map((l) => str(l.str))));
      expect([...workers].sort()).toEqual(['1', '2']);
      expect([...byLock(p).keys()].sort()).toEqual(LOCKS);
    } finally {
      child.kill();
      await exited(child);
    }
  });

  test('a bad variable stops the process before the app runs, naming the variable', async () => {
    const dir = appDir();
    for (const [name, value] of [
      ['MUTEXPROF_MUTEX_FRACTION', 'ten'],
      ['MUTEXPROF_LOCK_TRACKING', 'all'],
      ['MUTEXPROF_PPROF_ADDR', 'localhost:http'],
      ['MUTEXPROF_PYROSCOPE_URL', 'pyroscope:4040'],
      ['MUTEXPROF_INSTRUMENT', 'await-lock'],
    ]) {
      const child = start(dir, ['app.mjs'], { NODE_OPTIONS: '--import mutexprof/register', [name]: value });
      expect(await exited(child)).toBe(9);
      expect(child.output()).toContain(`mutexprof/register: ${name}=${JSON.stringify(value)}`);
      expect(child.output()).not.toContain('done');
    }
  });

  test('another async-mutex version is left as it is, and named once', async () => {
    const dir = appDir('0.4.1');
    const port = await freePort();
    const child = start(dir, ['app.mjs'], { ...SETTINGS, NODE_OPTIONS: '--import mutexprof/register', MUTEXPROF_PPROF_ADDR: String(port) });
    try {
      const p = await servedOnce(child, port);
      expect(p.sample).toHaveLength(0); // nothing of async-mutex 0.4.1 is profiled
      const warnings = child.output().match(/MUTEXPROF_INSTRUMENT.*async-mutex 0\.4\.1/g) ?? [];
      expect(warnings).toHaveLength(1); // once, though both dependencies load it
    } finally {
      child.kill();
      await exited(child);
    }
  });

  test('MUTEXPROF_PYROSCOPE_*: pushes under the app name with the labels, the last window before the app exits', async () => {
    const pushes: Array<{ name: string; locks: string[] }> = [];
    const server = http.createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const url = new URL(req.url!, 'http://localhost');
      const form = await new Request(url, { method: 'POST', headers: req.headers as Record<string, string>, body: Buffer.concat(chunks) }).formData();
      const profile = form.get('profile') as Blob;
      const p = Profile.decode(gunzipSync(Buffer.from(await profile.arrayBuffer())));
      pushes.push({ name: url.searchParams.get('name')!, locks: [...byLock(p).keys()] });
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const dir = appDir();
      const child = start(dir, ['app.mjs'], {
        MUTEXPROF_INSTRUMENT: 'async-mutex',
        MUTEXPROF_MUTEX_FRACTION: '1',
        NODE_OPTIONS: '--import mutexprof/register',
        MUTEXPROF_PYROSCOPE_URL: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
        MUTEXPROF_PYROSCOPE_APP: 'orders',
        MUTEXPROF_PYROSCOPE_LABELS: 'env=test,region=eu',
      });
      expect(await exited(child)).toBe(0); // it exits as it would without mutexprof
      expect(pushes.length).toBeGreaterThan(0);
      expect(new Set(pushes.map((p) => p.name))).toEqual(new Set(['orders{env=test,region=eu}']));
      expect(new Set(pushes.flatMap((p) => p.locks))).toEqual(new Set(LOCKS));
    } finally {
      server.close();
    }
  });
});

// Stacks a user can read: escaped names, no Node-internal or compiler-helper frames, leaf frames at their real
// source line, no collisions in minified one-line bundles.
import { describe, test, expect, beforeEach, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, symlinkSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import ts from 'typescript';
import { transformSync } from 'esbuild';
import { EventEmitter } from 'node:events';
import { Mutex, type Guard, setMutexProfileFraction, setBlockProfileRate, configureProfiler, lookup, pprofHandler, withLabels } from '../src/index.js';
import { manualClock, ms, samples, names, goBinary, flush } from './helpers.js';
import { drainAll } from '../src/profile/drain.js';
import { leafFrame } from '../src/profile/frames.js';
import { leaves } from '../src/locks/seam.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'mutexprof-stacks-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const clock = manualClock();
configureProfiler({ now: clock.now, random: () => 0 });
beforeEach(() => {
  setMutexProfileFraction(1);
  setBlockProfileRate(1);
});

/** Holds `mu` while a waiter queues, lets 1 ms pass, releases through `release`. */
async function contendVia(mu: Mutex, release: () => void | Promise<void>): Promise<void> {
  await mu.lock();
  const w = mu.lock();
  clock.advance(ms);
  await release();
  (await w)[Symbol.dispose]();
}

describe('names are escaped in line-oriented answers', () => {
  const evil = 'evil\n999999999 1 @ 0x100011\n#\t0x100010\tforged+0x0\tforged.go:1';
  const holder = {
    [evil](mu: Mutex): void {
      mu.unlock();
    },
  };

  test('a function named with newlines injects no record into debug=1 text or /symbol', async () => {
    const mu = new Mutex({ name: 'escaped' });
    await contendVia(mu, () => holder[evil](mu));
    const text = await lookup('mutex').text();
    expect(text).not.toContain('\n999999999 1 @');
    expect(text).toContain('evil\\x0a999999999 1 @ 0x100011\\x0a#\\x090x100010\\x09forged+0x0\\x09forged.go:1+0x0');
    // every record line is a sample line or a frame line
    for (const line of text.split('\n').slice(3)) expect(line).toMatch(/^$|^\d+ \d+ @( 0x[0-9a-f]+)+$|^#\t0x[0-9a-f]+\t/);

    const server = http.createServer(pprofHandler());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      const [sample] = (await samples('mutex', 'escaped')).filter((e) => names(e)[1].startsWith('evil'));
      const addr = '0x' + sample.frames[1].addr.toString(16);
      const body = await new Promise<string>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/debug/pprof/symbol' }, (res) => {
          let s = '';
          res.on('data', (c: Buffer) => (s += c.toString()));
          res.on('end', () => resolve(s));
        });
        req.on('error', reject);
        req.end(addr);
      });
      expect(body.split('\n')).toEqual([`${addr} evil\\x0a999999999 1 @ 0x100011\\x0a#\\x090x100010\\x09forged+0x0\\x09forged.go:1`, '']);
    } finally {
      server.close();
    }
  });

  test.skipIf(!goBinary())('go tool pprof -raw reads back the true totals, no forged sample', async () => {
    const file = join(dir, 'escaped.txt');
    writeFileSync(file, await lookup('mutex').text());
    const raw = execFileSync(goBinary()!, ['tool', 'pprof', '-raw', file], { encoding: 'utf8', env: { ...process.env, PPROF_TMPDIR: dir }, stdio: ['ignore', 'pipe', 'pipe'] });
    expect(raw).not.toMatch(/999999999/);
    expect(raw).not.toContain('forged.go');
  });
});

describe('frames a user did not write are dropped', () => {
  test('Node’s internal frames: releases from timers make one stack, without process.processTimers', async () => {
    const mu = new Mutex({ name: 'timers' });
    function releaseLater(): Promise<void> {
      return new Promise<void>((resolve) =>
        setTimeout(() => {
          mu.unlock();
          resolve();
        }, 0),
      );
    }
    await contendVia(mu, releaseLater);
    await contendVia(mu, releaseLater);
    const m = await samples('mutex', 'timers');
    expect(m).toHaveLength(1);
    expect(m[0].count).toBe(2);
    for (const f of m[0].frames) expect(f.file).not.toMatch(/^node:internal\//);
  });

  test('the `using` helper of the compiler vitest runs (oxc’s usingCtx, as Babel’s and SWC’s)', async () => {
    const mu = new Mutex({ name: 'using-esbuild' });
    async function holdWithUsing(): Promise<void> {
      using _g = await mu.lock();
      const w = mu.lock();
      clock.advance(ms);
      void w.then((g) => g[Symbol.dispose]());
    }
    await holdWithUsing();
    const [m] = await samples('mutex', 'using-esbuild');
    expect(names(m).slice(0, 2)).toEqual(['Mutex.unlock', 'holdWithUsing']);
  });

  const usingApp = `
      import { Mutex, setMutexProfileFraction, lookup } from 'mutexprof';
      setMutexProfileFraction(1);
      const mu = new Mutex({ name: 'using-tsc' });
      async function holdWithUsing(): Promise<void> {
        using _g = await mu.lock();
        void mu.lock().then((g) => g[Symbol.dispose]());
      }
      await holdWithUsing();
      const s = await lookup('mutex').snapshot();
      console.log(JSON.stringify(s.samples.map((x) => x.frames.map((f) => f.name))));`;

  /** Runs compiled JavaScript that imports mutexprof as an installed package; returns the mutex profile's stacks. */
  function runCompiled(name: string, js: string): string[][] {
    const app = join(dir, name);
    mkdirSync(join(app, 'node_modules'), { recursive: true });
    symlinkSync(root, join(app, 'node_modules', 'mutexprof'));
    writeFileSync(join(app, 'app.mjs'), js);
    return JSON.parse(execFileSync(process.execPath, [join(app, 'app.mjs')], { encoding: 'utf8' })) as string[][];
  }

  test('TypeScript’s `using` helpers (__disposeResources and its inner next)', () => {
    const js = ts.transpileModule(usingApp, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } }).outputText;
    expect(js).toContain('__disposeResources');
    const stacks = runCompiled('tsc-app', js);
    expect(stacks).toHaveLength(1);
    expect(stacks[0].slice(0, 2)).toEqual(['Mutex.unlock', 'holdWithUsing']);
  });

  test('esbuild’s `using` helpers (__callDispose and its inner next), as tsx emits them', () => {
    const js = transformSync(usingApp, { loader: 'ts', format: 'esm', target: 'node20' }).code;
    expect(js).toContain('__callDispose');
    const stacks = runCompiled('esbuild-app', js);
    expect(stacks).toHaveLength(1);
    expect(stacks[0].slice(0, 2)).toEqual(['Mutex.unlock', 'holdWithUsing']);
  });
});

/** Whether `line` (1-based) is the header of a method matching `header` or one of the 3 lines after it. */
function inMethod(src: string[], line: number, header: RegExp): boolean {
  for (let i = Math.max(0, line - 4); i < line; i++) if (header.test(src[i])) return true;
  return false;
}

describe('leaf frames', () => {
  test('carry a real source position, in the profile and in the protobuf go tool pprof reads', async () => {
    const mu = new Mutex({ name: 'leaf-line' });
    await contendVia(mu, () => mu.unlock());
    const [m] = await samples('mutex', 'leaf-line');
    expect(m.frames[0].file).toBe(join(root, 'src/locks/mutex.ts'));
    expect(m.frames[0].line).toBeGreaterThan(0);
    const p = Profile.decode(gunzipSync(await lookup('mutex').encode()));
    const fn = p.function.find((f) => p.stringTable.strings[Number(f.name)] === 'Mutex.unlock')!;
    expect(p.stringTable.strings[Number(fn.filename)]).toBe(join(root, 'src/locks/mutex.ts'));
    expect(Number(fn.startLine)).toBeGreaterThan(0);
    expect(Number(p.location.find((l) => l.line[0].functionId === fn.id)!.line[0].line)).toBe(m.frames[0].line);
  });

  test('every declared leaf has its method’s source position, the drop-in’s apart from mutexprof’s own', async () => {
    await import('../src/async-mutex/index.js'); // declares the drop-in's leaves (Semaphore.release@async-mutex, …)
    const where = new Map<string, string>();
    for (const name of leaves.keys()) {
      const f = leafFrame(name);
      expect(f.name, name).toBe(name.split('@')[0]);
      expect(f.file, name).not.toBe('');
      expect(f.line, name).toBeGreaterThan(0);
      where.set(name, `${f.file}:${f.line}`);
    }
    expect([...where.keys()]).toEqual(expect.arrayContaining(['KeyedMutex.unlock', 'Semaphore.release', 'Semaphore.release@async-mutex']));
    expect(where.get('Semaphore.release')).toMatch(/src\/locks\/semaphore\.ts:/);
    expect(where.get('Semaphore.release@async-mutex')).toMatch(/src\/async-mutex\//);
    expect(where.get('KeyedMutex.unlock')).toMatch(/src\/locks\/keyed\.ts:/);
  });

  const leafScript = (from: string): string => `
    import { Mutex, setMutexProfileFraction, setBlockProfileRate, lookup } from '${from}';
    setMutexProfileFraction(1);
    setBlockProfileRate(1);
    const mu = new Mutex();
    await mu.lock();
    const w = mu.lock();
    mu.unlock();
    (await w)[Symbol.dispose]();
    const leaf = async (p) => (await lookup(p).snapshot()).samples[0].frames[0];
    console.log(JSON.stringify([await leaf('mutex'), await leaf('block')]));`;

  test('carry the method’s first line in the TypeScript sources (tsx)', () => {
    const script = join(dir, 'leaf.mts');
    writeFileSync(script, leafScript(pathToFileURL(join(root, 'src/index.js')).href));
    const [unlock, lock] = JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', script], { cwd: root, encoding: 'utf8' })) as Array<{ file: string; line: number }>;
    const src = readFileSync(join(root, 'src/locks/mutex.ts'), 'utf8').split('\n');
    expect(unlock.file).toBe(join(root, 'src/locks/mutex.ts'));
    expect(inMethod(src, unlock.line, /^\s+unlock\(\): void \{/)).toBe(true);
    expect(inMethod(src, lock.line, /^\s+lock\(options\?: LockOptions\): Promise<Guard> \{/)).toBe(true);
  });

  test('Semaphore.release’s is the release itself, after the arguments are checked (tsx)', () => {
    const script = join(dir, 'release-leaf.mts');
    writeFileSync(
      script,
      `import { Semaphore, setMutexProfileFraction, lookup } from '${pathToFileURL(join(root, 'src/index.js')).href}';
      setMutexProfileFraction(1);
      const sem = new Semaphore(1);
      await sem.acquire();
      const w = sem.acquire();
      sem.release();
      (await w)[Symbol.dispose]();
      console.log(JSON.stringify((await lookup('mutex').snapshot()).samples[0].frames[0]));`,
    );
    const leaf = JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', script], { cwd: root, encoding: 'utf8' })) as { name: string; file: string; line: number };
    expect(leaf.name).toBe('Semaphore.release');
    expect(readFileSync(leaf.file, 'utf8').split('\n')[leaf.line - 1]).toMatch(/^\s+this\.#release\(this\.#releasable\(weight\)/);
  });

  test('carry the method’s first line in the built bundle (dist)', () => {
    const [unlock, lock] = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', leafScript('mutexprof')], { cwd: root, encoding: 'utf8' })) as Array<{ file: string; line: number }>;
    const dist = readFileSync(join(root, 'dist/index.js'), 'utf8').split('\n');
    expect(unlock.file).toBe(join(root, 'dist/index.js'));
    expect(inMethod(dist, unlock.line, /^\s+unlock\(\) \{/)).toBe(true);
    expect(inMethod(dist, lock.line, /^\s+lock\(options\) \{/)).toBe(true);
  });
});

test('positions in a minified one-line bundle never collide (columns ≥ 2^20)', async () => {
  // line 1 column c + 2^20 and line 2 column c: the same number under a line·2^20 + column key
  const near = 'export function near(mu) {';
  const far = 'export function far(mu) {';
  const call = ' mu.unlock(); }';
  const file = join(dir, 'minified.mjs');
  writeFileSync(file, far + ' '.repeat(near.length + 2 ** 20 - far.length) + call + '\n' + near + call + '\n');
  const mod = (await import(pathToFileURL(file).href)) as Record<'near' | 'far', (mu: Mutex) => void>;
  const mu = new Mutex({ name: 'minified' });
  await contendVia(mu, () => mod.far(mu));
  await contendVia(mu, () => mod.near(mu));
  await contendVia(mu, () => mod.near(mu));
  const byName: Record<string, number> = {};
  for (const e of await samples('mutex', 'minified')) byName[names(e)[1]] = (byName[names(e)[1]] ?? 0) + e.count;
  expect(byName).toEqual({ far: 1, near: 2 });
});

describe('every release path keeps maxDepth frames of the caller', () => {
  // Five user frames above the release; maxDepth 3 keeps the three nearest, whichever mutexprof path released:
  // no library frame (a guard's dispose, withLock's helper) takes one of their places.
  function u1(f: () => unknown): unknown {
    return u2(f);
  }
  function u2(f: () => unknown): unknown {
    return u3(f);
  }
  function u3(f: () => unknown): unknown {
    return u4(f);
  }
  function u4(f: () => unknown): unknown {
    return u5(f);
  }
  function u5(f: () => unknown): unknown {
    return f();
  }

  test.each([
    ['unlock()', 'Mutex.unlock', (mu: Mutex) => u1(() => mu.unlock())],
    ['a guard', 'Mutex.unlock', (mu: Mutex, g: Guard) => u1(() => g[Symbol.dispose]())],
  ])('released by %s', async (_how, leaf, release) => {
    const previous = configureProfiler({ maxDepth: 3 });
    try {
      const mu = new Mutex({ name: `depth-${_how}` });
      const g = await mu.lock();
      const w = mu.lock();
      clock.advance(ms);
      release(mu, g);
      (await w)[Symbol.dispose]();
      const [sample] = await samples('mutex', `depth-${_how}`);
      // the leaf, the arrow that released, then u5 and u4: three of the caller's frames
      expect(names(sample)).toHaveLength(4);
      expect([names(sample)[0], ...names(sample).slice(2)]).toEqual([leaf, 'u5', 'u4']);
    } finally {
      configureProfiler({ maxDepth: previous.maxDepth });
    }
  });

  test('released by withLock: the frames above withLock, not its helper', async () => {
    const previous = configureProfiler({ maxDepth: 3 });
    try {
      const mu = new Mutex({ name: 'depth-withLock' });
      async function v1(): Promise<void> {
        await v2();
      }
      async function v2(): Promise<void> {
        await v3();
      }
      async function v3(): Promise<void> {
        await v4();
      }
      async function v4(): Promise<void> {
        await mu.withLock(async () => {
          const w = mu.lock();
          clock.advance(ms);
          void w.then((g) => g[Symbol.dispose]());
        });
      }
      await v1();
      await flush();
      const [sample] = await samples('mutex', 'depth-withLock');
      expect(names(sample)).toEqual(['Mutex.unlock', 'v4', 'v3', 'v2']);
    } finally {
      configureProfiler({ maxDepth: previous.maxDepth });
    }
  });
});

test('functions made by new Function or eval (no file) keep their own names', async () => {
  // Such code has no file name: sites of different functions at the same position must not share a frame.
  const made = (name: string, g: (f: () => void) => void): ((f: () => void) => void) => new Function('g', `return function ${name}(f) { return g(f); }`)(g) as never;
  const mu = new Mutex({ name: 'no-file' });
  const outer = made(
    'outerMade',
    made('innerMade', (f) => f()),
  );
  await contendVia(mu, () => outer(() => mu.unlock()));
  const [sample] = await samples('mutex', 'no-file');
  expect(names(sample).filter((n) => n.endsWith('Made'))).toEqual(['innerMade', 'outerMade']);
});

describe("Node's frames between the user's", () => {
  function w1(f: () => unknown): unknown {
    return w2(f);
  }
  function w2(f: () => unknown): unknown {
    return withLabels({ job: 'deep' }, () => w3(f)); // AsyncLocalStorage.run (node:async_hooks) between w2 and w3
  }
  function w3(f: () => unknown): unknown {
    const events = new EventEmitter(); // EventEmitter.emit (node:events) between w3 and w4
    let r: unknown;
    events.on('go', () => (r = w4(f)));
    events.emit('go');
    return r;
  }
  function w4(f: () => unknown): unknown {
    return w5(f);
  }
  function w5(f: () => unknown): unknown {
    return f();
  }

  test('are dropped, and a stack keeps maxDepth user frames all the same (once one such stack was resolved)', async () => {
    const previous = configureProfiler({ maxDepth: 6 });
    try {
      const mu = new Mutex({ name: 'through-node' });
      for (let i = 0; i < 2; i++) {
        const g = await mu.lock();
        const w = mu.lock();
        clock.advance(ms);
        w1(() => g[Symbol.dispose]());
        (await w)[Symbol.dispose]();
        drainAll(); // the first capture is resolved (as the background drain would) before the second is taken
      }
      const found = await samples('mutex', 'through-node');
      for (const s of found) expect(s.frames.every((f) => !f.file.startsWith('node:'))).toBe(true);
      // the second release, asked for more frames, keeps six of the user's: the arrow, w5, w4, the listener, w3, the arrow
      const deepest = found.map(names).sort((a, b) => b.length - a.length)[0];
      expect(deepest).toHaveLength(7);
      expect(deepest.slice(0, 1).concat(deepest.slice(2, 4))).toEqual(['Mutex.unlock', 'w5', 'w4']);
      expect(deepest).toContain('w3');
    } finally {
      configureProfiler({ maxDepth: previous.maxDepth });
    }
  });
});

// /debug/pprof over HTTP, against Go's net/http/pprof behaviour: node:http handler, Express 5 and Express 4.
import { describe, test, expect, beforeAll, afterAll } from 'vitest';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, symlinkSync, mkdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { once } from 'node:events';
import { Profile } from 'pprof-format';
import { Mutex, pprofHandler, startPprofServer, setMutexProfileFraction, configureProfiler } from '../src/index.js';
import { recorders } from '../src/profile/drain.js';
import { captureWarnings } from './helpers.js';

const root = fileURLToPath(new URL('..', import.meta.url));

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export function request(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Starts test/fixtures/server.mjs where `express` resolves to the given package (or none for node:http). */
async function startFixture(kind: 'http' | 'express5' | 'express4'): Promise<{ port: number; child: ChildProcess; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), `mutexprof-${kind}-`));
  mkdirSync(join(dir, 'node_modules'));
  if (kind !== 'http') symlinkSync(join(root, 'node_modules', kind === 'express5' ? 'express' : 'express4'), join(dir, 'node_modules', 'express'));
  const child = spawn(process.execPath, [join(root, 'test/fixtures/server.mjs'), kind === 'http' ? 'http' : 'express'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  const { port } = JSON.parse(line.toString()) as { port: number };
  if (kind !== 'http') expect(stderr).toMatch(kind === 'express5' ? /^express 5\./ : /^express 4\./);
  return { port, child, dir };
}

const decode = (body: Buffer): Profile => Profile.decode(gunzipSync(body));

describe.each(['http', 'express5', 'express4'] as const)('%s', (kind) => {
  let port = 0;
  let child: ChildProcess;
  let dir = '';
  beforeAll(async () => {
    ({ port, child, dir } = await startFixture(kind));
  });
  afterAll(async () => {
    child.kill();
    await once(child, 'exit');
    rmSync(dir, { recursive: true, force: true });
  });
  const get = (path: string, headers?: Record<string, string>): Promise<Reply> => request(port, 'GET', path, headers);
  const expectGoError = (r: Reply, status: number, message: string): void => {
    expect(r.status).toBe(status);
    expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(r.headers['x-go-pprof']).toBe('1');
    expect(r.headers['content-disposition']).toBeUndefined();
    expect(r.body.toString()).toBe(message + '\n');
  };

  test('/debug/pprof redirects to /debug/pprof/', async () => {
    const r = await get('/debug/pprof');
    expect(r.status).toBe(301);
    expect(r.headers.location).toBe('/debug/pprof/');
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
  });

  test('the index lists both profiles with counts and debug=1 links', async () => {
    const r = await get('/debug/pprof/');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    const html = r.body.toString();
    expect(html).toMatch(/<tr><td>[1-9]\d*<\/td><td><a href='mutex\?debug=1'>mutex<\/a><\/td><\/tr>/);
    expect(html).toMatch(/<a href='block\?debug=1'>block<\/a>/);
    expect(html).toContain('Stack traces of holders of contended mutexes');
  });

  test.each(['mutex', 'block'])('GET /debug/pprof/%s: gzipped pprof with Go’s headers', async (name) => {
    const r = await get(`/debug/pprof/${name}?gc=1`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/octet-stream');
    expect(r.headers['content-disposition']).toBe(`attachment; filename="${name}"`);
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(Number(r.headers['content-length'])).toBe(r.body.length);
    const p = decode(r.body);
    const strings = p.stringTable.strings;
    expect(strings).toContain(name === 'mutex' ? 'holdFixture' : 'waitFixture');
    expect(strings).toContain('fixture');
    expect(strings).toContain('/fixture');
  });

  test('HEAD gives the headers without a body; other methods get 405 with Allow', async () => {
    const h = await request(port, 'HEAD', '/debug/pprof/mutex');
    expect(h.status).toBe(200);
    expect(h.headers['content-disposition']).toBe('attachment; filename="mutex"');
    expect(Number(h.headers['content-length'])).toBeGreaterThan(0);
    expect(h.body.length).toBe(0);
    for (const m of ['POST', 'PUT', 'DELETE']) {
      const r = await request(port, m, '/debug/pprof/mutex');
      expectGoError(r, 405, 'Method Not Allowed');
      expect(r.headers.allow).toBe('GET, HEAD');
    }
  });

  test('?debug=N (N ≠ 0) serves the legacy text; unparsable debug means 0, as in Go', async () => {
    for (const d of ['1', '2', '-1']) {
      const r = await get(`/debug/pprof/mutex?debug=${d}`);
      expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(r.headers['content-disposition']).toBeUndefined();
      expect(r.body.toString()).toMatch(/^--- mutex:\ncycles\/second=1000000000\nsampling period=1\n\d+ \d+ @/);
    }
    expect((await get('/debug/pprof/block?debug=1')).body.toString()).toMatch(/^--- contention:\n/);
    expect((await get('/debug/pprof/mutex?debug=abc')).headers['content-type']).toBe('application/octet-stream');
  });

  test('bad seconds: 400 with Go’s wording, every time', async () => {
    for (const s of ['abc', '0', '-1', '1.5', '61', '99999999999999999999', '9'.repeat(3000), '0x10', ' 1', '1e3']) {
      expectGoError(await get(`/debug/pprof/mutex?seconds=${encodeURIComponent(s)}`), 400, 'invalid value for "seconds" - must be a positive integer no larger than 60');
    }
    expectGoError(await get('/debug/pprof/mutex?seconds=1&debug=1'), 400, 'seconds and debug params are incompatible');
    expect((await get('/debug/pprof/mutex?seconds=')).status).toBe(200); // empty seconds is ignored, as in Go
  });

  test('unknown profiles, trailing slashes and long queries', async () => {
    expectGoError(await get('/debug/pprof/nosuch'), 404, 'Unknown profile');
    expectGoError(await get('/debug/pprof/mutex/'), 404, 'Unknown profile');
    expectGoError(await get('/debug/pprof/heap'), 404, 'Unknown profile');
    const long = await get(`/debug/pprof/mutex?debug=1&junk=${'x'.repeat(12_000)}`);
    expect(long.status).toBe(200);
    expect(long.body.toString()).toMatch(/^--- mutex:/);
  });

  test('authorize: false → 403', async () => {
    expectGoError(await get('/debug/pprof/mutex', { 'x-deny': '1' }), 403, 'Forbidden');
  });

  test('?seconds=1: a delta profile with duration and filename mutex-delta', async () => {
    const r = await get('/debug/pprof/mutex?seconds=1');
    expect(r.status).toBe(200);
    expect(r.headers['content-disposition']).toBe('attachment; filename="mutex-delta"');
    const p = decode(r.body);
    expect(Number(p.durationNanos)).toBeGreaterThanOrEqual(1e9);
    expect(Number(p.durationNanos)).toBeLessThan(3e9);
    expect(p.sample).toHaveLength(0); // no contention during the window: all-zero samples dropped
  });

  test('symbolz answers for the pseudo addresses of the text format', async () => {
    expect((await get('/debug/pprof/symbol')).body.toString()).toBe('num_symbols: 1\n');
    const text = (await get('/debug/pprof/mutex?debug=1')).body.toString();
    const addrs = text.split('\n')[3].split('@ ')[1].split(' ');
    const r = await request(port, 'POST', '/debug/pprof/symbol', {}, addrs.map((a) => '0x' + (parseInt(a, 16) - 1).toString(16)).join('+'));
    expect(r.body.toString()).toMatch(/^0x[0-9a-f]+ Mutex\.unlock\n0x[0-9a-f]+ holdFixture\n/);
  });

  test('ui → ui/; the page, its script and styles come from the package, under a CSP that allows nothing else', async () => {
    const r = await request(port, 'GET', '/debug/pprof/ui');
    expect(r.status).toBe(301);
    expect(r.headers.location).toBe('/debug/pprof/ui/');
    const page = await request(port, 'GET', '/debug/pprof/ui/');
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(page.body.toString()).toContain('<script src=flamegraph.js>');
    const js = await request(port, 'GET', '/debug/pprof/ui/flamegraph.js');
    expect(js.headers['content-type']).toMatch(/^text\/javascript/);
    expect(js.body.toString()).toContain('d3-flame-graph');
    const css = await request(port, 'GET', '/debug/pprof/ui/flamegraph.css');
    expect(css.body.toString()).toContain('.d3-flame-graph');
    expect((await request(port, 'GET', '/debug/pprof/')).body.toString()).toContain("<a href='ui/'>Flame graphs</a>");
  });

  test('data.json: the tree of a profile, by lock and value; bad input is a clear error', async () => {
    const r = await request(port, 'GET', '/debug/pprof/ui/data.json?profile=block&value=contentions');
    expect(r.status).toBe(200);
    const d = JSON.parse(r.body.toString()) as { profile: string; value: string; tree: { name: string; value: number; children: unknown[] }; total: number; profiles: string[] };
    expect(d.profile).toBe('block');
    expect(d.value).toBe('contentions');
    expect(d.tree.name).toBe('all');
    expect(d.tree.value).toBe(d.total);
    expect(d.profiles).toEqual(expect.arrayContaining(['mutex', 'block', 'hold', 'locks']));
    expect((await request(port, 'GET', '/debug/pprof/ui/data.json?profile=mutex&value=nope')).status).toBe(400);
    expect((await request(port, 'GET', '/debug/pprof/ui/data.json?profile=nosuch')).status).toBe(404);
    expect((await request(port, 'GET', '/debug/pprof/ui/nosuch.js')).status).toBe(404);
  });
});

describe('pprofHandler in process', () => {
  test('other paths: 404 without next, next() with it', async () => {
    const h = pprofHandler();
    const server = http.createServer((req, res) => h(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    expect((await request(port, 'GET', '/elsewhere')).status).toBe(404);
    let nexted = false;
    const s2 = http.createServer((req, res) =>
      h(req, res, () => {
        nexted = true;
        res.end('next');
      }),
    );
    await new Promise<void>((r) => s2.listen(0, '127.0.0.1', r));
    const p2 = (s2.address() as { port: number }).port;
    expect((await request(p2, 'GET', '/elsewhere')).body.toString()).toBe('next');
    expect(nexted).toBe(true);
    server.close();
    s2.close();
  });

  test('bad options throw at construction', () => {
    expect(() => pprofHandler({ maxSeconds: 0 })).toThrow(RangeError);
    expect(() => pprofHandler({ authorize: 1 as unknown as () => boolean })).toThrow(TypeError);
  });

  test('many concurrent delta requests, some clients leaving: right answers, nothing left behind', async () => {
    setMutexProfileFraction(1);
    const server = await startPprofServer({ port: 0 });
    const port = (server.address() as { port: number }).port;
    expect((server.address() as { address: string }).address).toBe('127.0.0.1');
    const windows = (): number => recorders.mutex.openMarks();
    const waitFor = async (cond: () => boolean): Promise<void> => {
      for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 2));
    };

    // Clients that leave a 60 s delta: each one's window is open while it waits and closed once it leaves.
    let arrived = 0;
    server.on('request', () => arrived++);
    const leavers = Array.from({ length: 12 }, () => {
      const req = http.get({ host: '127.0.0.1', port, path: '/debug/pprof/mutex?seconds=60' });
      req.on('error', () => {});
      return req;
    });
    await waitFor(() => arrived === 12);
    await new Promise((r) => setTimeout(r, 20));
    expect(windows()).toBe(12);
    for (const req of leavers) req.destroy();
    await waitFor(() => windows() === 0);
    expect(windows()).toBe(0);

    // Clients that stay get the contention of their window.
    const mu = new Mutex({ name: 'during-delta' });
    const finishing = Array.from({ length: 12 }, () => request(port, 'GET', '/debug/pprof/mutex?seconds=1'));
    await mu.lock();
    const w = mu.lock();
    await new Promise((r) => setTimeout(r, 200));
    mu.unlock();
    (await w)[Symbol.dispose]();
    for (const r of await Promise.all(finishing)) {
      expect(r.status).toBe(200);
      expect(decode(r.body).stringTable.strings).toContain('during-delta');
    }
    server.close();
    setMutexProfileFraction(0);
  });

  test('?seconds=1 holds exactly what happened in its window, also for a lock that first contends inside it', async () => {
    // Events come every few ms, the background drain resolves them every 100 ms, and some are still pending when
    // the window ends: the sample is born inside the window, and changes after its end mark. The events in the
    // window are known exactly by their sequence numbers, read from the marks the window makes.
    let t = 1_000_000;
    const previous = configureProfiler({ now: () => t });
    setMutexProfileFraction(1);
    const r = recorders.mutex;
    const marks: Array<{ seq: number; pending: number }> = [];
    const mark = r.mark;
    r.mark = function (this: typeof r) {
      const m = mark.call(this);
      marks.push({ seq: m.seq, pending: this.pending() });
      return m;
    };
    const server = await startPprofServer({ port: 0 });
    try {
      const port = (server.address() as { port: number }).port;
      let done = false;
      const reply = request(port, 'GET', '/debug/pprof/mutex?seconds=1').finally(() => (done = true));
      while (marks.length === 0) await new Promise((resolve) => setTimeout(resolve, 1));
      const mu = new Mutex({ name: 'first-in-window' });
      const events: Array<{ seq: number; delay: number }> = [];
      for (let i = 1; !done; i++) {
        await mu.lock();
        const w = mu.lock();
        t += i * 1000;
        mu.unlock();
        events.push({ seq: r.seqNow(), delay: i * 1000 });
        (await w)[Symbol.dispose]();
        await new Promise((resolve) => setTimeout(resolve, i % 3)); // the drain and the window's timer get their turns
      }
      const { status, body } = await reply;
      expect(status).toBe(200);
      const [start, end] = marks;
      const inside = events.filter((e) => e.seq > start.seq && e.seq <= end.seq);
      expect(inside.length).toBeGreaterThan(50);
      expect(events.length).toBeGreaterThan(inside.length); // some came after the window ended
      expect(end.pending).toBeGreaterThan(0); // and some were still pending when it did
      const p = decode(body);
      const str = (i: unknown): string => p.stringTable.strings[Number(i)];
      const mine = p.sample.filter((x) => x.label.some((l) => str(l.key) === 'lock' && str(l.str) === 'first-in-window'));
      expect(mine.reduce((n, x) => n + Number(x.value[0]), 0)).toBe(inside.length);
      expect(mine.reduce((n, x) => n + Number(x.value[1]), 0)).toBe(inside.reduce((n, e) => n + e.delay, 0));
    } finally {
      r.mark = mark;
      server.close();
      configureProfiler({ now: previous.now });
      setMutexProfileFraction(0);
    }
  });

  test('twenty-five requests in flight at once, deltas and merged views, print no MaxListenersExceededWarning', async () => {
    const { warnings } = await captureWarnings(async () => {
      for (const cluster of [false, true]) {
        const server = await startPprofServer({ port: 0, cluster });
        try {
          const port = (server.address() as { port: number }).port;
          const replies = await Promise.all(Array.from({ length: 25 }, (_, i) => request(port, 'GET', i % 2 ? '/debug/pprof/mutex?seconds=1' : '/debug/pprof/block')));
          expect(replies.map((r) => r.status)).toEqual(Array.from({ length: 25 }, () => 200));
        } finally {
          await new Promise((r) => server.close(r));
        }
      }
    });
    expect(warnings.map((w) => w.name)).toEqual([]);
  });

  test('close() of the standalone server ends pending deltas (503) instead of waiting for them', async () => {
    const server = await startPprofServer({ port: 0, maxSeconds: 600 });
    const port = (server.address() as { port: number }).port;
    let arrived = 0;
    server.on('request', () => arrived++);
    const pending = Array.from({ length: 5 }, () => request(port, 'GET', '/debug/pprof/block?seconds=600'));
    for (let i = 0; i < 500 && arrived < 5; i++) await new Promise((r) => setTimeout(r, 2));
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    expect(performance.now() - t0).toBeLessThan(1000); // not the 600 s the deltas asked for
    for (const r of await Promise.all(pending)) {
      expect(r.status).toBe(503);
      expect(r.headers['x-go-pprof']).toBe('1');
      expect(r.body.toString()).toBe('profile collection cancelled: the server is closing\n');
    }
    expect(recorders.block.openMarks()).toBe(0);
  });

  test('a pending delta does not keep the process alive', () => {
    // a process that starts the server, asks itself for a 10-minute delta, then closes the server: it must exit
    const script = `
      import http from 'node:http';
      import { startPprofServer } from 'mutexprof';
      const server = await startPprofServer({ port: 0, maxSeconds: 600 });
      const port = server.address().port;
      server.on('request', () => setImmediate(() => server.close()));
      http.get({ host: '127.0.0.1', port, path: '/debug/pprof/mutex?seconds=600' }, (res) => {
        console.log(res.statusCode);
        res.resume();
      });`;
    const t0 = performance.now();
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', timeout: 20_000 });
    expect(out.trim()).toBe('503');
    expect(performance.now() - t0).toBeLessThan(15_000);
  });

  test('startPprofServer rejects bad arguments and busy ports', async () => {
    await expect(startPprofServer({ port: -1 })).rejects.toThrow(RangeError);
    const s = await startPprofServer({ port: 0 });
    const port = (s.address() as { port: number }).port;
    await expect(startPprofServer({ port })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    s.close();
  });
});

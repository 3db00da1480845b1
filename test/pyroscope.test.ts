// Pushing to Pyroscope: a local server parses each request the way Pyroscope's /ingest handler does (query,
// multipart file parts `profile` and `sample_type_config`, pprof), and stores it, or fails in the ways a real one
// does: refusing the connection, 503/429/408, 400, storing then answering 500, storing then not answering in time.
// Pyroscope keeps every push it stores, so what the server stored must add up to the profile exactly once.
import { describe, test, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import http from 'node:http';
import { execFile } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Profile } from 'pprof-format';
import { Mutex, setMutexProfileFraction, setBlockProfileRate, configureProfiler, startProfilePush, lookup, type PushOutcome } from '../src/index.js';
import { drainAll } from '../src/profile/drain.js';
import { captureWarnings, manualClock, ms, totalsOf } from './helpers.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const clock = manualClock();
configureProfiler({ now: clock.now, random: () => 0 });

interface Stored {
  name: string;
  from: number;
  until: number;
  kind: string;
  /** total [count, delay] per lock label */
  totals: Map<string, [number, number]>;
}

/** What the server does with each request, in order; 'ok' once the list is used up. */
type Behaviour = 'ok' | 'store-then-500' | 'store-then-hang' | '503' | '429' | '408' | '400';
let script: Behaviour[] = [];
const stored: Stored[] = [];
let requests = 0;
const hanging: http.ServerResponse[] = [];

async function parse(req: http.IncomingMessage, body: Buffer): Promise<Stored | null> {
  const url = new URL(req.url!, 'http://localhost');
  if (url.pathname !== '/ingest' || url.searchParams.has('format')) return null;
  // multipart, as Go's mime/multipart reads it: file parts
  const form = await new Request(url, { method: 'POST', headers: req.headers as Record<string, string>, body }).formData();
  const profile = form.get('profile');
  const config = form.get('sample_type_config');
  if (!(profile instanceof Blob) || !(config instanceof Blob)) return null;
  const p = Profile.decode(gunzipSync(Buffer.from(await profile.arrayBuffer())));
  const str = (i: unknown): string => p.stringTable.strings[Number(i)];
  const totals = new Map<string, [number, number]>();
  for (const s of p.sample) {
    const lock = s.label.map((l) => [str(l.key), str(l.str)]).find(([k]) => k === 'lock')?.[1] ?? '';
    const t = totals.get(lock) ?? [0, 0];
    totals.set(lock, [t[0] + Number(s.value[0]), t[1] + Number(s.value[1])]);
  }
  const kind = (JSON.parse(await config.text()) as { delay: { 'display-name': string } }).delay['display-name'].split('_')[0];
  return { name: url.searchParams.get('name')!, from: Number(url.searchParams.get('from')), until: Number(url.searchParams.get('until')), kind, totals };
}

const server = http.createServer(async (req, res) => {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  requests++;
  const what = script.shift() ?? 'ok';
  if (what === '503' || what === '429' || what === '408' || what === '400') {
    res.statusCode = Number(what);
    if (what === '429') res.setHeader('Retry-After', '0');
    return void res.end(what === '400' ? 'profile rejected: bad labels' : 'not now');
  }
  const s = await parse(req, Buffer.concat(chunks));
  if (s === null) {
    res.statusCode = 400;
    return void res.end('not a Pyroscope ingest request');
  }
  stored.push(s);
  if (what === 'store-then-hang') return void hanging.push(res); // answers after the pusher gave up
  res.statusCode = what === 'store-then-500' ? 500 : 200;
  res.end();
});
let port = 0;

beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  script = [];
  stored.length = 0;
  requests = 0;
  setMutexProfileFraction(1);
  setBlockProfileRate(1);
});

async function contend(mu: Mutex, delay: number): Promise<void> {
  await mu.lock();
  const w = mu.lock();
  clock.advance(delay);
  mu.unlock();
  (await w)[Symbol.dispose]();
}

/** The delay of lock `lock` in what the server stored, per push of profile `kind`. */
const pushed = (kind: string, lock: string): number[] => stored.filter((s) => s.kind === kind && s.totals.has(lock)).map((s) => s.totals.get(lock)![1]);

/** Outcomes published on mutexprof:push, and the warnings (collected, not printed), while `f` runs. */
async function observing<T>(f: () => Promise<T>): Promise<{ result: T; outcomes: PushOutcome[]; warnings: string[] }> {
  const outcomes: PushOutcome[] = [];
  const onOutcome = (m: unknown): void => void outcomes.push(m as PushOutcome);
  subscribe('mutexprof:push', onOutcome);
  try {
    const { result, warnings } = await captureWarnings(f);
    return { result, outcomes, warnings: warnings.filter((w) => w.code === 'MUTEXPROF_PUSH').map((w) => w.message) };
  } finally {
    unsubscribe('mutexprof:push', onOutcome);
  }
}

describe('startProfilePush', () => {
  test('each push is the delta since the last, exactly, also for samples born inside a window (a drain between events)', async () => {
    const mu = new Mutex({ name: 'born-inside' });
    const push = startProfilePush({ url: `http://127.0.0.1:${port}`, appName: 'orders', labels: { env: 'test' }, intervalMs: 3_600_000 });
    try {
      // one call site, so one sample: born inside the first window, resolved mid-window (as the background drain
      // does within 100 ms), then changed by an event still pending when the window ends
      for (const [delay, then] of [
        [1 * ms, 'drain'],
        [2 * ms, 'push'],
        [4 * ms, 'drain'],
        [8 * ms, 'push'],
      ] as const) {
        await contend(mu, delay);
        if (then === 'drain') drainAll();
        else await push.flush();
      }
    } finally {
      await push.stop();
    }
    for (const kind of ['mutex', 'block']) {
      expect(pushed(kind, 'born-inside')).toEqual([3 * ms, 12 * ms]);
      expect((await totalsOf(kind as 'mutex' | 'block', 'born-inside')).delay).toBe(15 * ms);
    }
    for (const s of stored) {
      expect(s.name).toBe('orders{env=test}');
      expect(s.until).toBeGreaterThanOrEqual(s.from);
    }
    expect(lookup('mutex').cumulative).toBe(true);
  });

  test('exactly once: what may have been stored is never sent again; what cannot have been is retried or kept', async () => {
    const mu = new Mutex({ name: 'once' });
    const push = startProfilePush({ url: `http://127.0.0.1:${port}`, appName: 'orders', profiles: ['mutex'], intervalMs: 3_600_000, timeoutMs: 300, attempts: 2 });
    const { outcomes, warnings } = await observing(async () => {
      try {
        await contend(mu, 1 * ms);
        script = ['store-then-500'];
        await push.flush(); // stored, then 500: not sent again
        await contend(mu, 2 * ms);
        script = ['store-then-hang'];
        await push.flush(); // stored, then no answer within timeoutMs: not sent again
        await contend(mu, 4 * ms);
        script = ['503', '429'];
        await push.flush(); // refused twice, not stored: kept
        await contend(mu, 8 * ms);
        script = ['408'];
        await push.flush(); // the kept delta merged with this one: retried once, then stored
        await contend(mu, 16 * ms);
        script = ['400'];
        await push.flush(); // refused: dropped, reported
        await contend(mu, 32 * ms);
      } finally {
        await push.stop();
      }
    });
    expect(pushed('mutex', 'once')).toEqual([1 * ms, 2 * ms, 12 * ms, 32 * ms]);
    expect(requests).toBe(1 + 1 + 2 + 2 + 1 + 1);
    expect(outcomes.map((o) => `${o.outcome} ${o.reason.split(':')[0]}`)).toEqual([
      'dropped HTTP 500',
      'dropped no answer within timeoutMs',
      'kept HTTP 429',
      'stored ',
      'dropped HTTP 400',
      'stored ',
    ]);
    expect(warnings).toEqual([
      expect.stringMatching(/\(1 samples\) may have been stored, so it is not sent again \(Pyroscope does not de-duplicate pushes\): HTTP 500/),
      expect.stringMatching(/may have been stored, so it is not sent again .*: no answer within timeoutMs/),
      expect.stringMatching(/was not delivered \(it cannot have been stored\): it is kept and sent with the next push: HTTP 429/),
      expect.stringMatching(/was refused: it is dropped: HTTP 400: profile rejected: bad labels/),
    ]);
    for (const res of hanging.splice(0)) res.end();
  });

  test('a refused connection is retried within the interval, then kept until Pyroscope is back', async () => {
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const downPort = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    const mu = new Mutex({ name: 'down' });
    const push = startProfilePush({ url: `http://127.0.0.1:${downPort}`, appName: 'orders', profiles: ['mutex'], intervalMs: 3_600_000, attempts: 2 });
    const late = http.createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const s = await parse(req, Buffer.concat(chunks));
      if (s !== null) stored.push(s);
      res.end();
    });
    try {
      const { outcomes } = await observing(async () => {
        await contend(mu, 1 * ms);
        await push.flush(); // refused twice (1 s apart): kept
        await contend(mu, 2 * ms);
        await new Promise<void>((r) => late.listen(downPort, '127.0.0.1', r));
        await push.flush(); // both windows in one push
      });
      expect(outcomes.map((o) => [o.outcome, o.reason, o.attempts])).toEqual([
        ['kept', 'ECONNREFUSED', 2],
        ['stored', '', 1],
      ]);
      expect(pushed('mutex', 'down')).toEqual([3 * ms]);
    } finally {
      await push.stop();
      await new Promise((r) => late.close(r));
    }
  });

  test('stop() delivers the last window in a process with nothing else alive, or gives up within its bound', async () => {
    const run = (url: string, stopMs: number): Promise<{ stdout: string; stderr: string }> =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', join(root, 'test/fixtures/push-at-exit.ts'), url, String(stopMs)], { env: { ...process.env }, timeout: 30_000 });
    // a live server: the code after `await push.stop()` runs, and the last window was stored
    const ok = await run(`http://127.0.0.1:${port}`, 5000);
    expect(ok.stdout).toMatch(/^stopped after \d+ ms\n$/);
    expect(pushed('mutex', 'at-exit')).toEqual([5 * ms]);
    // a server that never answers: stop() gives up after its bound, says what was lost, and the process exits
    script = ['store-then-hang'];
    const t0 = Date.now();
    const hung = await run(`http://127.0.0.1:${port}`, 700);
    expect(Date.now() - t0).toBeLessThan(15_000);
    const took = Number(/^stopped after (\d+) ms/.exec(hung.stdout)?.[1]);
    expect(took).toBeGreaterThanOrEqual(650);
    expect(took).toBeLessThan(3000);
    expect(hung.stderr).toMatch(/MUTEXPROF_PUSH.*may have been stored, so it is not sent again .*: still in flight when stop\(\) gave up/s);
    for (const res of hanging.splice(0)) res.end();
  });

  test('every bad option throws mutexprof’s error and starts nothing', async () => {
    const url = 'http://127.0.0.1:1';
    const bad: Array<[unknown, RegExp]> = [
      [undefined, /options are required/],
      [null, /options must be an object, got null/],
      [{ url: 'not a url', appName: 'a' }, /not a URL/],
      [{ url: 'ftp://x', appName: 'a' }, /over http or https, got ftp:/],
      [{ url: undefined, appName: 'a' }, /url must be a string/],
      [{ url, appName: 'a{b}' }, /appName/],
      [{ url, appName: 'a', labels: null }, /labels must be an object of strings, got null/],
      [{ url, appName: 'a', labels: { 'bad-name': 'v' } }, /cannot take the label/],
      [{ url, appName: 'a', labels: { k: 1 } }, /labels\.k must be a string/],
      [{ url, appName: 'a', intervalMs: 0 }, /intervalMs must be a number of milliseconds in \(0, 2147483647\]/],
      [{ url, appName: 'a', intervalMs: 3e9 }, /intervalMs must be a number of milliseconds/],
      [{ url, appName: 'a', timeoutMs: 3e9 }, /timeoutMs must be a number of milliseconds/],
      [{ url, appName: 'a', timeoutMs: Number.NaN }, /timeoutMs/],
      [{ url, appName: 'a', attempts: 0 }, /attempts must be an integer in 1\.\.100/],
      [{ url, appName: 'a', profiles: ['mutex', 'mutex'] }, /"mutex" is listed twice/],
      [{ url, appName: 'a', profiles: [] }, /non-empty array/],
      [{ url, appName: 'a', profiles: 'mutex' }, /non-empty array/],
      [{ url, appName: 'a', profiles: ['locks'] }, /not a cumulative profile/],
      [{ url, appName: 'a', headers: { 'bad header': 'x' } }, /headers/],
      [{ url, appName: 'a', headers: { ok: 'a\nb' } }, /headers/],
      [{ url, appName: 'a', headers: null }, /headers must be an object of strings/],
    ];
    for (const [options, message] of bad) expect(() => startProfilePush(options as Parameters<typeof startProfilePush>[0]), JSON.stringify(options)).toThrow(message);
    const push = startProfilePush({ url, appName: 'a', profiles: ['mutex'] });
    await expect(push.stop({ timeoutMs: -1 })).rejects.toThrow(/ProfilePush\.stop: timeoutMs/);
    await push.stop({ timeoutMs: 50 });
  });
});

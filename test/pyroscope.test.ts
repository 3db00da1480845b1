// Pushing to Pyroscope: a local server parses each request the way Pyroscope's /ingest handler does (query,
// multipart file parts `profile` and `sample_type_config`, pprof), and fails, hangs and recovers on demand.
import { describe, test, expect, beforeAll, afterAll } from 'vitest';
import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import { Mutex, setMutexProfileFraction, setBlockProfileRate, configureProfiler, startProfilePush, lookup } from '../src/index.js';
import { manualClock, ms, totalsOf } from './helpers.js';

const clock = manualClock();
configureProfiler({ now: clock.now, random: () => 0 });

interface Push {
  name: string;
  from: number;
  until: number;
  config: Record<string, { 'display-name': string; units: string }> | null;
  /** total [count, delay] per lock label */
  totals: Map<string, [number, number]>;
}

let mode: 'ok' | 'fail' | 'hang' = 'ok';
const accepted: Push[] = [];
let refused = 0;
let port = 0;
const server = http.createServer(async (req, res) => {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  if (mode === 'hang') return; // never answers
  if (mode === 'fail') {
    refused++;
    res.statusCode = 500;
    res.end('ingester unavailable');
    return;
  }
  const url = new URL(req.url!, 'http://localhost');
  if (url.pathname !== '/ingest' || url.searchParams.has('format')) {
    res.statusCode = 400;
    return void res.end();
  }
  // multipart, as Go's mime/multipart reads it: file parts
  const form = await new Request(url, { method: 'POST', headers: req.headers as Record<string, string>, body: Buffer.concat(chunks) }).formData();
  const profile = form.get('profile');
  const config = form.get('sample_type_config');
  if (!(profile instanceof Blob) || (config !== null && !(config instanceof Blob))) {
    res.statusCode = 400;
    return void res.end();
  }
  const p = Profile.decode(gunzipSync(Buffer.from(await profile.arrayBuffer())));
  const str = (i: unknown): string => p.stringTable.strings[Number(i)];
  const totals = new Map<string, [number, number]>();
  for (const s of p.sample) {
    const lock = s.label.map((l) => [str(l.key), str(l.str)]).find(([k]) => k === 'lock')?.[1] ?? '';
    const t = totals.get(lock) ?? [0, 0];
    totals.set(lock, [t[0] + Number(s.value[0]), t[1] + Number(s.value[1])]);
  }
  accepted.push({
    name: url.searchParams.get('name')!,
    from: Number(url.searchParams.get('from')),
    until: Number(url.searchParams.get('until')),
    config: config instanceof Blob ? JSON.parse(await config.text()) : null,
    totals,
  });
  res.end();
});

beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

async function contend(mu: Mutex, delay: number): Promise<void> {
  await mu.lock();
  const w = mu.lock();
  clock.advance(delay);
  mu.unlock();
  (await w)[Symbol.dispose]();
}

describe('startProfilePush', () => {
  test('deltas, as Pyroscope reads them; through failures, hangs and recovery nothing is lost or counted twice', async () => {
    setMutexProfileFraction(1);
    setBlockProfileRate(1);
    const mu = new Mutex({ name: 'pushed' });
    const push = startProfilePush({ url: `http://127.0.0.1:${port}`, appName: 'orders', labels: { env: 'test' }, intervalMs: 3_600_000, timeoutMs: 300, attempts: 2 });
    try {
      await contend(mu, 1 * ms);
      await push.flush(); // ok
      await contend(mu, 2 * ms);
      mode = 'fail';
      await push.flush(); // refused twice: the delta is kept
      await contend(mu, 4 * ms);
      mode = 'hang';
      await push.flush(); // times out: kept, merged with the one before
      mode = 'ok';
      await contend(mu, 8 * ms);
      await push.flush(); // recovers: the three deltas go in one push
      await contend(mu, 16 * ms);
    } finally {
      mode = 'ok';
      await push.stop(); // the last one
    }
    expect(refused).toBe(2 * 2); // two profiles, two attempts each
    const mutex = accepted.filter((p) => p.config?.delay['display-name'] === 'mutex_duration');
    const block = accepted.filter((p) => p.config?.delay['display-name'] === 'block_duration');
    expect(mutex.map((p) => p.totals.get('pushed')?.[1])).toEqual([1 * ms, 14 * ms, 16 * ms]);
    expect(block.map((p) => p.totals.get('pushed')?.[1])).toEqual([1 * ms, 14 * ms, 16 * ms]);
    // the totals over the pushes are the cumulative profile's
    for (const kind of ['mutex', 'block'] as const) {
      const pushed = (kind === 'mutex' ? mutex : block).reduce((t, p) => t + (p.totals.get('pushed')?.[1] ?? 0), 0);
      expect(pushed).toBe((await totalsOf(kind, 'pushed')).delay);
    }
    for (const p of accepted) {
      expect(p.name).toBe('orders{env=test}');
      expect(p.until).toBeGreaterThanOrEqual(p.from);
      expect(p.config!.contentions.units).toBe('lock_samples');
    }
    expect(lookup('mutex').cumulative).toBe(true);
  });

  test('bad options throw', () => {
    expect(() => startProfilePush({ url: 'not a url', appName: 'a' })).toThrow(TypeError);
    expect(() => startProfilePush({ url: 'http://x', appName: 'a{b}' })).toThrow(TypeError);
    expect(() => startProfilePush({ url: 'http://x', appName: 'a', labels: { 'bad-name': 'v' } })).toThrow(TypeError);
    expect(() => startProfilePush({ url: 'http://x', appName: 'a', profiles: ['locks'] })).toThrow(/not a cumulative profile/);
    expect(() => startProfilePush({ url: 'http://x', appName: 'a', intervalMs: 0 })).toThrow(RangeError);
  });
});

// Label cardinality and the sample cap: attribution degrades in steps, never to nothing, with exact totals.
import { describe, test, expect } from 'vitest';
import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import { Mutex, setBlockProfileRate, configureProfiler, lookup, withLabels, startPprofServer } from '../src/index.js';
import { useProfiler, ms, contend, samples, names } from './helpers.js';

const clock = useProfiler();

async function importantContention(): Promise<void> {
  const important = new Mutex({ name: 'important' });
  async function holdImportant(): Promise<void> {
    await important.lock();
    const w = waitImportant();
    clock.advance(7 * ms);
    important.unlock();
    await w;
  }
  async function waitImportant(): Promise<void> {
    const g = await important.lock();
    g[Symbol.dispose]();
  }
  await holdImportant();
}

function get(port: number, path: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks)));
      })
      .on('error', reject);
  });
}

// The steps first: they count samples from an empty recorder (the profiles are process-wide).
describe('the steps, on a cap of 8 samples', () => {
  test('½: all labels; ¾: high-cardinality keys dropped; cap: stack and lock only; past it: per-lock overflow', async () => {
    configureProfiler({ maxEntries: 8 }); // ½ = 4, ¾ = 6; keys with more than 8/16 → 1 distinct value are high
    setBlockProfileRate(0);
    try {
      const mu = new Mutex({ name: 'steps' });
      async function site1(): Promise<void> {
        await contend(mu, clock, ms);
      }
      for (let i = 0; i < 4; i++) await withLabels({ req: `a${i}`, route: '/x' }, site1); // samples 1–4: all labels
      expect((await samples('mutex', 'steps')).map((e) => e.pairs)).toEqual(
        [0, 1, 2, 3].map((i) => [
          ['req', `a${i}`],
          ['route', '/x'],
        ]),
      );
      // past ½: `req` (many values) is dropped, `route` (one) kept: sample 5
      for (let i = 4; i < 70; i++) await withLabels({ req: `a${i}`, route: '/x' }, site1);
      const after = await samples('mutex', 'steps');
      expect(after.filter((e) => e.pairs.length === 1)).toEqual([expect.objectContaining({ pairs: [['route', '/x']], count: 66 })]);
      async function site2(): Promise<void> {
        await contend(mu, clock, ms);
      }
      await withLabels({ route: '/x' }, site2); // sample 6: below ¾, labels of low cardinality kept
      await withLabels({ route: '/x', tenant: 't' }, site2); // sample 7: past ¾, the stack and lock only
      const site2s = (await samples('mutex', 'steps')).filter((e) => names(e).includes('site2'));
      expect(site2s.map((e) => e.pairs)).toEqual([[['route', '/x']], []]);
      // the cap: one more distinct stack, then the lock's overflow sample
      async function site3(): Promise<void> {
        await contend(mu, clock, ms);
      }
      async function site4(): Promise<void> {
        await contend(mu, clock, 2 * ms);
      }
      await site3(); // sample 8
      await site4(); // past the cap
      await site4();
      const overflow = (await samples('mutex', 'steps')).find((e) => names(e)[1] === 'mutexprof.overflow')!;
      expect(names(overflow)).toEqual(['Mutex.unlock', 'mutexprof.overflow']);
      expect(overflow).toMatchObject({ lock: 'steps', count: 2, delay: 4 * ms });
      // totals stay exact
      const all = await samples('mutex', 'steps');
      expect(all.reduce((t, e) => t + e.count, 0)).toBe(70 + 2 + 3);
      expect(all.reduce((t, e) => t + e.delay, 0)).toBe((70 + 2 + 1 + 4) * ms);
      // and what was dropped is counted
      const comments = (await lookup('mutex').snapshot()).comments.join('\n');
      expect(comments).toMatch(/66 events lost their high-cardinality labels \(req\)/);
      expect(comments).toMatch(/1 events lost all their withLabels labels, kept their stack and lock/);
      expect(comments).toMatch(/2 events kept only their lock, in its mutexprof.overflow sample/);
    } finally {
      configureProfiler({ maxEntries: 10_000 });
    }
  });

  test('configureProfiler rejects bad caps and changes nothing', () => {
    expect(() => configureProfiler({ maxEntries: 0 })).toThrow(RangeError);
    expect(() => configureProfiler({ maxDepth: 1.5 })).toThrow(RangeError);
    expect(configureProfiler({}).maxEntries).toBe(10_000);
  });
});

describe('a fresh request id on every wait (default cap, 10 000 samples)', () => {
  test('after 12 000 such waits, a new lock is still attributed to its own stack and name, cumulative and in a delta', async () => {
    const busy = new Mutex({ name: 'busy' });
    let exact = 0;
    for (let i = 0; i < 12_000; i++) {
      await withLabels({ req: `r${i}`, route: `/route${i % 5}` }, () => contend(busy, clock, ms));
      exact += ms;
    }
    // every event is counted, though most lost their request id
    const busyMutex = await samples('mutex', 'busy');
    expect(busyMutex.reduce((t, e) => t + e.delay, 0)).toBe(exact);
    expect(busyMutex.reduce((t, e) => t + e.count, 0)).toBe(12_000);
    // the route (5 values) survived where the request id (12 000) was dropped
    expect(busyMutex.some((e) => e.pairs.length === 1 && e.pairs[0][0] === 'route')).toBe(true);

    const server = await startPprofServer({ port: 0 });
    try {
      const port = (server.address() as { port: number }).port;
      const delta = get(port, '/debug/pprof/mutex?seconds=1');
      await new Promise((r) => setTimeout(r, 100)); // the window is open
      await importantContention();

      const m = await samples('mutex', 'important');
      expect(m).toHaveLength(1);
      expect(names(m[0]).slice(0, 2)).toEqual(['Mutex.unlock', 'holdImportant']);
      expect(m[0]).toMatchObject({ count: 1, delay: 7 * ms, pairs: [] });
      const b = await samples('block', 'important');
      expect(names(b[0]).slice(0, 2)).toEqual(['Mutex.lock', 'waitImportant']);

      const p = Profile.decode(gunzipSync(await delta));
      const str = (i: unknown): string => p.stringTable.strings[Number(i)];
      const fn = (id: unknown): string => {
        const loc = p.location.find((l) => l.id === id)!;
        return str(p.function.find((f) => f.id === loc.line[0].functionId)!.name);
      };
      const inDelta = p.sample.filter((s) => s.label.some((l) => str(l.key) === 'lock' && str(l.str) === 'important'));
      expect(inDelta).toHaveLength(1);
      expect(inDelta[0].locationId.slice(0, 2).map(fn)).toEqual(['Mutex.unlock', 'holdImportant']);
      expect(inDelta[0].value.map(Number)).toEqual([1, 7 * ms]);
    } finally {
      server.close();
    }

    // and it says so: in the profile's comments
    const snap = await lookup('mutex').snapshot();
    expect(snap.comments.join('\n')).toMatch(/events lost their high-cardinality labels \(req\)/);
  });
});

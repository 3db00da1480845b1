// The encoders' output, decoded with pprof-format and read by the real `go tool pprof` when go is installed.
import { describe, test, expect, beforeAll, afterAll } from 'vitest';
import { gunzipSync } from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, mkdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Profile } from 'pprof-format';
import { buildSync } from 'esbuild';
import { Mutex, RWMutex, setMutexProfileFraction, setBlockProfileRate, configureProfiler, lookup, withLabels } from '../src/index.js';
import { manualClock, ms, flush, goBinary } from './helpers.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const clock = manualClock();

const go = goBinary();
const dir = mkdtempSync(join(tmpdir(), 'mutexprof-encode-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function holdLong(mu: Mutex, waiters: number, holdMs: number): Promise<void> {
  await mu.lock();
  const ws = Array.from({ length: waiters }, () => waitShort(mu));
  await flush();
  clock.advance(holdMs * ms);
  mu.unlock();
  await Promise.all(ws);
}
async function waitShort(mu: Mutex): Promise<void> {
  const g = await mu.lock();
  clock.advance(1 * ms);
  g[Symbol.dispose]();
}
async function readMostly(rw: RWMutex): Promise<void> {
  await rw.rLock();
  const w = rw.lock();
  clock.advance(5 * ms);
  rw.rUnlock();
  (await w)[Symbol.dispose]();
}

beforeAll(async () => {
  configureProfiler({ now: clock.now, random: () => 0 });
  setMutexProfileFraction(1);
  setBlockProfileRate(1);
  const cache = new Mutex({ name: 'cache' });
  await withLabels({ route: '/users' }, () => holdLong(cache, 3, 100));
  await holdLong(cache, 1, 10);
  await readMostly(new RWMutex({ name: 'settings' }));
});

const decode = async (name: 'mutex' | 'block'): Promise<Profile> => Profile.decode(gunzipSync(await lookup(name).encode()));
const str = (p: Profile, i: unknown): string => p.stringTable.strings[Number(i)];

describe('pprof protobuf', () => {
  test.each(['mutex', 'block'] as const)('%s: Go’s shape, decodable by pprof-format', async (name) => {
    const body = await lookup(name).encode();
    expect([body[0], body[1]]).toEqual([0x1f, 0x8b]); // gzip
    const p = Profile.decode(gunzipSync(body));
    expect(p.sampleType.map((t) => [str(p, t.type), str(p, t.unit)])).toEqual([
      ['contentions', 'count'],
      ['delay', 'nanoseconds'],
    ]);
    expect([str(p, p.periodType!.type), str(p, p.periodType!.unit), Number(p.period)]).toEqual(['contentions', 'count', 1]);
    expect(BigInt(p.timeNanos)).toBeGreaterThan(1_600_000_000n * 1_000_000_000n);
    expect(Number(p.durationNanos)).toBe(0);
    expect(p.mapping).toHaveLength(1);
    expect(p.mapping[0].hasFunctions).toBe(true);
    for (const f of p.function) {
      expect(f.name).toBe(f.systemName);
      expect(str(p, f.filename)).not.toMatch(/^file:/);
    }
    for (const l of p.location) {
      expect(Number(l.mappingId)).toBe(1);
      expect(l.line).toHaveLength(1);
    }
    const delays = p.sample.map((s) => Number(s.value[1]));
    expect(delays).toEqual([...delays].sort((a, b) => b - a));
    const leaf = (s: (typeof p.sample)[number]): string => {
      const loc = p.location.find((l) => l.id === s.locationId[0])!;
      return str(p, p.function.find((f) => f.id === loc.line[0].functionId)!.name);
    };
    expect(new Set(p.sample.map(leaf))).toEqual(name === 'mutex' ? new Set(['Mutex.unlock', 'RWMutex.rUnlock']) : new Set(['Mutex.lock', 'RWMutex.lock']));
  });

  test('mutex samples carry the numbers and the labels', async () => {
    const p = await decode('mutex');
    const labelsOf = (s: (typeof p.sample)[number]) => Object.fromEntries(s.label.map((l) => [str(p, l.key), str(p, l.str)]));
    const withRoute = p.sample.find((s) => labelsOf(s).route === '/users')!;
    expect(labelsOf(withRoute)).toEqual({ lock: 'cache', route: '/users' });
    expect(withRoute.value.map(Number)).toEqual([1, 300 * ms]);
    const total = p.sample.reduce((t, s) => t + Number(s.value[1]), 0);
    const block = await decode('block');
    expect(total).toBe(block.sample.reduce((t, s) => t + Number(s.value[1]), 0));
  });
});

describe('debug=1 text', () => {
  test('Go’s legacy layout', async () => {
    const text = await lookup('mutex').text();
    const lines = text.split('\n');
    expect(lines.slice(0, 3)).toEqual(['--- mutex:', 'cycles/second=1000000000', 'sampling period=1']);
    expect(lines[3]).toMatch(/^\d+ \d+ @( 0x[0-9a-f]+)+$/);
    expect(lines[4]).toMatch(/^#\t0x[0-9a-f]+\tMutex\.unlock\+0x0\t+\S.*:\d+$/);
    expect(text.endsWith('\n\n')).toBe(true);
    const block = (await lookup('block').text()).split('\n');
    expect(block.slice(0, 2)).toEqual(['--- contention:', 'cycles/second=1000000000']);
    expect(block[2]).toMatch(/^\d+ \d+ @/);
  });
});

// Sums of `go tool pprof -raw` sample lines: [contentions, delay].
function rawTotals(out: string): [number, number] {
  const body = out.split('Samples:\n')[1].split('Locations')[0];
  let c = 0;
  let d = 0;
  for (const m of body.matchAll(/^\s*(\d+)\s+(\d+):/gm)) {
    c += Number(m[1]);
    d += Number(m[2]);
  }
  return [c, d];
}

describe.skipIf(!go)('go tool pprof reads what we write', () => {
  const pprof = (...args: string[]): string => execFileSync(go!, ['tool', 'pprof', ...args], { encoding: 'utf8', env: { ...process.env, PPROF_TMPDIR: dir }, stdio: ['ignore', 'pipe', 'pipe'] });

  test('-raw, -traces, -tagfocus on the protobuf', async () => {
    const file = join(dir, 'mutex.pb.gz');
    writeFileSync(file, await lookup('mutex').encode());
    const raw = pprof('-raw', file);
    expect(raw).toContain('PeriodType: contentions count');
    expect(raw).toContain('contentions/count delay/nanoseconds');
    expect(raw).toMatch(/Mutex\.unlock/);
    expect(raw).toMatch(/holdLong .*encode\.test\.ts/);
    const p = await decode('mutex');
    expect(rawTotals(raw)).toEqual([p.sample.reduce((t, s) => t + Number(s.value[0]), 0), p.sample.reduce((t, s) => t + Number(s.value[1]), 0)]);
    const traces = pprof('-traces', file);
    expect(traces).toContain('Type: delay');
    expect(traces).toMatch(/lock:\s+cache/);
    expect(traces).toMatch(/route:\s+\/users/);
    expect(traces).toMatch(/300ms\s+Mutex\.unlock\s+holdLong/);
    const focused = pprof('-top', '-tagfocus', 'lock=settings', file);
    expect(focused).toMatch(/Showing nodes accounting for 5ms/);
    expect(focused).toMatch(/5ms\s+[\d.]+%\s+[\d.]+%\s+5ms\s+[\d.]+%\s+RWMutex\.rUnlock\n/);
    expect(focused).toMatch(/readMostly\n/);
    expect(focused).not.toMatch(/ Mutex\.unlock\n/);
  });

  test.each([0, 1, 5])('the debug=1 text reads back to the protobuf’s totals (current fraction %i)', async (rate) => {
    const old = setMutexProfileFraction(rate);
    try {
      const text = join(dir, `mutex-${rate}.txt`);
      const proto = join(dir, `mutex-${rate}.pb.gz`);
      writeFileSync(text, await lookup('mutex').text());
      writeFileSync(proto, await lookup('mutex').encode());
      const fromText = rawTotals(pprof('-raw', text));
      expect(fromText).toEqual(rawTotals(pprof('-raw', proto)));
      expect(fromText[1]).toBeGreaterThan(0);
    } finally {
      setMutexProfileFraction(old);
    }
  });

  test('the block profile’s text and protobuf agree too', async () => {
    writeFileSync(join(dir, 'block.txt'), await lookup('block').text());
    writeFileSync(join(dir, 'block.pb.gz'), await lookup('block').encode());
    expect(rawTotals(pprof('-raw', join(dir, 'block.txt')))).toEqual(rawTotals(pprof('-raw', join(dir, 'block.pb.gz'))));
  });
});

describe('source positions', () => {
  test('under tsx, frames name the TypeScript file and line', () => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'test/fixtures/sourcemap-app.ts'], { cwd: root, encoding: 'utf8' });
    expect(out).toMatch(/typedHolder\+0x0\t+\S*test\/fixtures\/sourcemap-app\.ts:13\n/);
    expect(out).toMatch(/typedWaiter\+0x0\t+\S*test\/fixtures\/sourcemap-app\.ts:17\n/);
  });

  test('compiled JS: with --enable-source-maps the .ts line, without it the .js file', () => {
    // an app that installed mutexprof: its own node_modules links to this package
    const app = join(dir, 'app');
    mkdirSync(join(app, 'node_modules'), { recursive: true });
    symlinkSync(root, join(app, 'node_modules', 'mutexprof'));
    writeFileSync(join(app, 'package.json'), '{"type":"module"}');
    const js = join(app, 'sourcemap-app.mjs');
    buildSync({ entryPoints: [join(root, 'test/fixtures/sourcemap-app.ts')], bundle: false, format: 'esm', sourcemap: true, outfile: js, logLevel: 'silent' });
    const mapped = execFileSync(process.execPath, ['--enable-source-maps', js], { encoding: 'utf8' });
    expect(mapped).toMatch(/typedHolder\+0x0\t+\S*sourcemap-app\.ts:13\n/);
    const plain = execFileSync(process.execPath, [js], { encoding: 'utf8' });
    expect(plain).toMatch(/typedHolder\+0x0\t+\S*sourcemap-app\.mjs:\d+\n/);
  });
});

// mutexprof/opentelemetry with the real SDK: a traced express service (test/fixtures/otel/service.cjs: Node SDK,
// http and express instrumentations, an in-memory exporter) whose requests contend. Its lock-wait spans are checked
// against the waits the block profile recorded; its profiles are split by endpoint with no labels in its code.
import { describe, test, expect, beforeAll, afterAll } from 'vitest';
import { fork, execFile, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import { context, trace, type Span } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { DeadlockError, KeyedMutex, Mutex, RWMutex, Semaphore, configureProfiler, setDeadlockDetection, setLockTracking, setMutexProfileFraction, withLabels } from '../src/index.js';
import { Mutex as DropInMutex, Semaphore as DropInSemaphore } from '../src/async-mutex/index.js';
import { MutexprofInstrumentation, type MutexprofInstrumentationConfig } from '../src/opentelemetry/index.js';
import { goBinary, manualClock, ms } from './helpers.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const go = goBinary();

interface SpanJson {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  start: number;
  end: number;
  attributes: Record<string, string | number>;
  status: number;
}

let child: ChildProcess;
let base = '';
beforeAll(async () => {
  child = fork(join(root, 'test/fixtures/otel/service.cjs'), [], { cwd: root, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, NODE_OPTIONS: '' } });
  const { port } = await new Promise<{ port: number }>((r) => child.once('message', (m) => r(m as { port: number })));
  base = `http://127.0.0.1:${port}`;
});
afterAll(() => void child.kill());

const get = async (path: string): Promise<unknown> => (await fetch(base + path)).json();

async function profile(name: string): Promise<Profile> {
  return Profile.decode(gunzipSync(Buffer.from(await (await fetch(`${base}/debug/pprof/${name}`)).arrayBuffer())));
}

function labelsOf(p: Profile): Array<Map<string, string> & { value: number[] }> {
  const str = (i: unknown): string => p.stringTable.strings[Number(i)];
  return p.sample.map((s) => Object.assign(new Map(s.label.map((l) => [str(l.key), str(l.str)])), { value: s.value.map(Number) }));
}

/** What a test with the SDK in this process gets: spans, the instrumentation, and a request span to run code in. */
interface Traced {
  exporter: InMemorySpanExporter;
  i: MutexprofInstrumentation;
  parent: Span;
  inRequest<T>(fn: () => Promise<T>): Promise<T>;
  /** lock-wait spans started and not yet ended */
  open(): number;
}

/** Runs `fn` with a tracer provider (in-memory exporter), a context manager and the instrumentation; undone after. */
async function withTracing(config: MutexprofInstrumentationConfig, fn: (t: Traced) => Promise<void>): Promise<void> {
  const exporter = new InMemorySpanExporter();
  let open = 0;
  const isWait = (span: { name: string }): boolean => span.name.startsWith('lock wait');
  const counting = {
    onStart: (span: { name: string }) => void (open += isWait(span) ? 1 : 0),
    onEnd: (span: { name: string }) => void (open -= isWait(span) ? 1 : 0),
    forceFlush: async () => {},
    shutdown: async () => {},
  };
  const provider = new BasicTracerProvider({ spanProcessors: [counting, new SimpleSpanProcessor(exporter)] });
  const contexts = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contexts);
  const i = new MutexprofInstrumentation(config);
  i.setTracerProvider(provider);
  const parent = provider.getTracer('test').startSpan('request');
  try {
    await fn({ exporter, i, parent, inRequest: (f) => context.with(trace.setSpan(context.active(), parent), f), open: () => open });
  } finally {
    i.disable();
    parent.end();
    context.disable();
    contexts.disable();
  }
}

describe('MutexprofInstrumentation with the OpenTelemetry SDK', () => {
  test('a contended wait of a traced request is a span of its trace, as long as the wait the block profile recorded', async () => {
    await Promise.all(Array.from({ length: 4 }, (_, i) => get(`/orders/${i}`)));
    await Promise.all([get('/stock'), get('/stock'), get('/legacy'), get('/legacy')]);
    const spans = (await get('/spans')) as SpanJson[];
    const waits = spans.filter((s) => s.name.startsWith('lock wait'));
    const byName = (n: string): SpanJson[] => waits.filter((s) => s.name === `lock wait ${n}`);
    expect(byName('orders')).toHaveLength(3); // 4 requests at once: 3 wait
    expect(byName('pool')).toHaveLength(1);
    expect(byName('legacy')).toHaveLength(1); // the drop-in's locks too
    for (const w of waits) {
      // a child of a span of the same request (the express handler's, under the HTTP server span)
      const parent = spans.find((s) => s.spanId === w.parentSpanId);
      expect(parent, w.name).toBeDefined();
      expect(parent!.traceId).toBe(w.traceId);
      expect(w.attributes['mutexprof.wait.outcome']).toBe('granted');
    }
    expect(byName('orders')[0].attributes).toMatchObject({ 'mutexprof.lock.name': 'orders', 'mutexprof.lock.kind': 'Mutex', 'mutexprof.lock.mode': 'exclusive' });
    expect(byName('pool')[0].attributes).toMatchObject({ 'mutexprof.lock.kind': 'Semaphore', 'mutexprof.lock.mode': 'shared', 'mutexprof.lock.weight': 1 });
    // each span lasts its wait: their total is the block profile's (rate 1: every wait), to the microsecond per wait
    const block = labelsOf(await profile('block'));
    for (const lock of ['orders', 'pool', 'legacy']) {
      const recorded = block.filter((s) => s.get('lock') === lock).reduce((n, s) => n + s.value[1], 0);
      const traced = byName(lock).reduce((n, s) => n + (s.end - s.start), 0);
      expect(Math.abs(traced - recorded), lock).toBeLessThanOrEqual(byName(lock).length * 2000);
    }
    // uncontended acquisitions add nothing: a lone request makes no wait span
    const before = waits.length;
    await get('/orders/lone');
    expect(((await get('/spans')) as SpanJson[]).filter((s) => s.name.startsWith('lock wait'))).toHaveLength(before);
  });

  test('a wait that gives up is a span with its outcome', async () => {
    const hold = get('/hold?ms=80');
    await new Promise((r) => setTimeout(r, 10));
    expect(await get('/give-up')).toEqual({ aborted: true });
    await hold;
    const aborted = ((await get('/spans')) as SpanJson[]).filter((s) => s.attributes['mutexprof.wait.outcome'] === 'aborted');
    expect(aborted).toHaveLength(1);
    expect(aborted[0].end - aborted[0].start).toBeGreaterThanOrEqual(15e6);
  });

  test('sampled events of the mutex, block and hold profiles carry the request’s endpoint (trace_endpoint) with no labels in the code, and its root span’s id (span_id) when asked; go tool pprof -tags shows them', async () => {
    const mutex = labelsOf(await profile('mutex'));
    const endpoints = new Set(mutex.filter((s) => s.get('lock') === 'orders').map((s) => s.get('trace_endpoint')));
    expect(endpoints.has('GET /orders/:id')).toBe(true);
    const block = labelsOf(await profile('block'));
    expect(new Set(block.filter((s) => s.get('lock') === 'pool').map((s) => s.get('trace_endpoint')))).toEqual(new Set(['GET /stock']));
    const hold = labelsOf(await profile('hold'));
    expect(new Set(hold.filter((s) => s.get('lock') === 'pool').map((s) => s.get('trace_endpoint')))).toEqual(new Set(['GET /stock']));
    expect(new Set(hold.filter((s) => s.get('lock') === 'orders').map((s) => s.get('trace_endpoint')))).toContain('GET /orders/:id');
    // span_id (on in this service): the id of the request's server span, the local root of its trace
    const spans = (await get('/spans')) as SpanJson[];
    const servers = new Map(spans.filter((s) => s.parentSpanId === null).map((s) => [s.spanId, s.name]));
    const stockIds = block.filter((s) => s.get('lock') === 'pool').map((s) => s.get('span_id'));
    expect(stockIds.length).toBeGreaterThan(0);
    for (const id of stockIds) expect(servers.get(id ?? ''), id).toBe('GET /stock');
    expect(hold.filter((s) => s.get('lock') === 'pool').every((s) => servers.get(s.get('span_id') ?? '') === 'GET /stock')).toBe(true);
    if (go !== null) {
      const { stdout } = await promisify(execFile)(go, ['tool', 'pprof', '-tags', `${base}/debug/pprof/mutex`], { env: { ...process.env, PPROF_TMPDIR: root + 'node_modules/.cache' } });
      expect(stdout).toContain('trace_endpoint');
      expect(stdout).toContain('GET /orders/:id');
    }
  });
});

describe('MutexprofInstrumentation on its own', () => {
  test('bad options are a clear error', () => {
    expect(() => new MutexprofInstrumentation({ minWaitMs: -1 })).toThrow(/minWaitMs/);
    expect(() => new MutexprofInstrumentation({ endpointLabel: 'yes' as never })).toThrow(/endpointLabel/);
    expect(() => new MutexprofInstrumentation(3 as never)).toThrow(/options must be an object/);
    for (const bad of [0, 1.5, -1, NaN, '100'] as never[]) expect(() => new MutexprofInstrumentation({ maxSpansPerSecond: bad })).toThrow(/maxSpansPerSecond/);
  });

  test('every lock kind: a span per contended wait with its kind, mode and weight, the holder’s labels where known, none open while it waits', async () => {
    await withTracing({ minWaitMs: 0 }, async ({ exporter, inRequest, open }) => {
      /** A traced wait on a lock held by `hold()`: no lock-wait span is open while it waits; the last span made. */
      const waitBehind = async (hold: () => Promise<() => void>, wait: () => Promise<() => void>): Promise<Record<string, unknown>> => {
        const release = await hold();
        const waiting = inRequest(wait);
        await null;
        expect(open()).toBe(0);
        release();
        (await waiting)();
        expect(open()).toBe(0);
        const spans = exporter.getFinishedSpans();
        return { name: spans.at(-1)?.name, ...spans.at(-1)?.attributes, spans: spans.length };
      };
      const disposer = (g: Disposable) => () => g[Symbol.dispose]();
      const holderKeys = (attributes: Record<string, unknown>): string[] => Object.keys(attributes).filter((k) => k.startsWith('mutexprof.holder'));
      const rw = new RWMutex({ name: 'config' });
      expect(
        await waitBehind(
          async () => disposer(await rw.lock({ labels: { route: '/reload' } })),
          async () => disposer(await rw.rLock()),
        ),
      ).toEqual({
        name: 'lock wait config',
        'mutexprof.lock.name': 'config',
        'mutexprof.lock.kind': 'RWMutex',
        'mutexprof.lock.mode': 'shared',
        'mutexprof.wait.outcome': 'granted',
        'mutexprof.holder.route': '/reload', // the holder's labels option, with tracking off
        spans: 1,
      });
      // a writer waits for readers: no one holder
      const behindReader = await waitBehind(
        async () => disposer(await rw.rLock({ labels: { route: '/read' } })),
        async () => disposer(await rw.lock()),
      );
      expect(behindReader).toMatchObject({ 'mutexprof.lock.mode': 'exclusive', spans: 2 });
      expect(holderKeys(behindReader)).toEqual([]);
      const keyed = new KeyedMutex({ name: 'users' });
      expect(
        await waitBehind(
          async () => disposer(await keyed.lock('u1')),
          async () => disposer(await keyed.lock('u1')),
        ),
      ).toMatchObject({ name: 'lock wait users', 'mutexprof.lock.kind': 'KeyedMutex', 'mutexprof.lock.mode': 'exclusive', spans: 3 });
      const pool = new Semaphore(3, { name: 'pool' });
      expect(
        await waitBehind(
          async () => disposer(await pool.acquire({ weight: 2 })),
          async () => disposer(await pool.acquire({ weight: 2 })),
        ),
      ).toMatchObject({ 'mutexprof.lock.kind': 'Semaphore', 'mutexprof.lock.mode': 'shared', 'mutexprof.lock.weight': 2, spans: 4 });
      // the async-mutex drop-in's locks, as async-mutex code uses them
      const legacy = new DropInMutex({ name: 'legacy' });
      expect(
        await waitBehind(
          () => legacy.acquire(),
          () => legacy.acquire(),
        ),
      ).toMatchObject({ name: 'lock wait legacy', 'mutexprof.lock.kind': 'Mutex', 'mutexprof.lock.mode': 'exclusive', spans: 5 });
      const slots = new DropInSemaphore(2, { name: 'slots' });
      const permits = async (n: number): Promise<() => void> => (await slots.acquire(n))[1];
      expect(
        await waitBehind(
          () => permits(2),
          () => permits(1),
        ),
      ).toMatchObject({ 'mutexprof.lock.kind': 'Semaphore', 'mutexprof.lock.weight': 1, spans: 6 });
      // tracked: the holder's labels are its context's (withLabels) and its option's
      setLockTracking('on');
      try {
        const mu = new Mutex({ name: 'orders' });
        const held = await waitBehind(
          () => withLabels({ tenant: 't1' }, async () => disposer(await mu.lock({ labels: { route: '/orders' } }))),
          async () => disposer(await mu.lock()),
        );
        expect(held).toMatchObject({ 'mutexprof.holder.tenant': 't1', 'mutexprof.holder.route': '/orders', spans: 7 });
      } finally {
        setLockTracking('off');
      }
      // a holder without labels after one with them: none
      const mu = new Mutex({ name: 'plain' });
      await waitBehind(
        async () => disposer(await mu.lock({ labels: { route: '/a' } })),
        async () => disposer(await mu.lock()),
      );
      expect(
        holderKeys(
          await waitBehind(
            async () => disposer(await mu.lock()),
            async () => disposer(await mu.lock()),
          ),
        ),
      ).toEqual([]);
    });
  });

  test('a wait that deadlock detection rejects is a whole span, outcome deadlock, status ERROR', async () => {
    setDeadlockDetection('throw', { confirmMs: 20 });
    try {
      await withTracing({ minWaitMs: 0 }, async ({ exporter, parent, inRequest }) => {
        const mu = new Mutex({ name: 'again' });
        const err = await inRequest(async () => {
          await mu.lock();
          await null;
          const e = await mu.lock().catch((x: unknown) => x); // re-entry: rejected after confirmMs
          mu.unlock();
          return e;
        });
        expect(err).toBeInstanceOf(DeadlockError);
        const spans = exporter.getFinishedSpans();
        expect(spans).toHaveLength(1);
        expect(spans[0].name).toBe('lock wait again');
        expect(spans[0].attributes['mutexprof.wait.outcome']).toBe('deadlock');
        expect(spans[0].status.code).toBe(2); // SpanStatusCode.ERROR
        expect(spans[0].parentSpanContext?.spanId ?? (spans[0] as unknown as { parentSpanId?: string }).parentSpanId).toBe(parent.spanContext().spanId);
        expect(spans[0].duration[0] * 1e3 + spans[0].duration[1] / 1e6).toBeGreaterThanOrEqual(15);
      });
    } finally {
      setDeadlockDetection('off');
    }
  });

  test('minWaitMs holds to the ns: a wait that long has its span, one ns shorter none, after setConfig too', async () => {
    const clock = manualClock();
    const { now } = configureProfiler({ now: clock.now });
    try {
      await withTracing({ minWaitMs: 2.5 }, async ({ exporter, i, inRequest }) => {
        const mu = new Mutex({ name: 'edge' });
        /** How many spans a traced wait of `ns` makes. */
        const spansOf = async (ns: number): Promise<number> => {
          exporter.reset();
          await inRequest(async () => {
            await mu.lock();
            const w = mu.lock();
            clock.advance(ns);
            mu.unlock();
            await w;
            mu.unlock();
          });
          return exporter.getFinishedSpans().filter((s) => s.name === 'lock wait edge').length;
        };
        expect(await spansOf(2.5 * ms - 1)).toBe(0);
        expect(await spansOf(2.5 * ms)).toBe(1);
        i.setConfig({ minWaitMs: 4 });
        expect(await spansOf(4 * ms - 1)).toBe(0);
        expect(await spansOf(4 * ms)).toBe(1);
        i.setConfig({ minWaitMs: 0 });
        expect(await spansOf(1)).toBe(1);
      });
    } finally {
      configureProfiler({ now });
    }
  });

  test('at most maxSpansPerSecond spans a second: a full second doubles the threshold, quieter ones bring it back', async () => {
    const clock = manualClock();
    const { now } = configureProfiler({ now: clock.now });
    try {
      await withTracing({ minWaitMs: 5, maxSpansPerSecond: 4 }, async ({ exporter, i, inRequest }) => {
        const mu = new Mutex({ name: 'budget' });
        /** A traced wait of `waitMs`, then `afterMs` more before the next. */
        const wait = (waitMs: number, afterMs = 0): Promise<void> =>
          inRequest(async () => {
            await mu.lock();
            const w = mu.lock();
            clock.advance(waitMs * ms);
            mu.unlock();
            await w;
            mu.unlock();
            clock.advance(afterMs * ms);
          });
        const spans = (): Array<{ name: string; threshold: unknown; ms: number }> =>
          exporter.getFinishedSpans().map((s) => ({ name: s.name, threshold: s.attributes['mutexprof.wait.threshold_ms'], ms: s.duration[0] * 1e3 + s.duration[1] / 1e6 }));
        // second 1: 10 waits of 6 ms, 4 spans (the budget), the rest none
        for (let k = 0; k < 10; k++) await wait(6, 10);
        expect(spans()).toHaveLength(4);
        expect(spans().every((s) => s.name === 'lock wait budget' && s.threshold === undefined)).toBe(true);
        // turned off and on again within that second: no new budget
        i.disable();
        i.enable();
        await wait(6);
        expect(spans()).toHaveLength(4);
        // second 2: the threshold is 10 ms; waits of 6 ms get none, of 12 ms get theirs, marked
        clock.advance(1000 * ms);
        exporter.reset();
        await wait(6);
        await wait(12);
        expect(spans().map((s) => s.threshold)).toEqual([10]);
        // a quiet second (under half the budget) halves it back to minWaitMs: a 6 ms wait has its span again, unmarked
        clock.advance(1000 * ms);
        exporter.reset();
        await wait(6);
        expect(spans()).toHaveLength(1);
        expect(spans()[0].threshold).toBeUndefined();
      });
    } finally {
      configureProfiler({ now });
    }
  });

  test('a contended wait of an untraced flow reads no clock; a traced wait still ends in a span if disable() comes while it waits', async () => {
    const clock = manualClock();
    let reads = 0;
    const { now } = configureProfiler({ now: () => (reads++, clock.now()) });
    try {
      await withTracing({ minWaitMs: 5 }, async ({ exporter, i, inRequest }) => {
        const mu = new Mutex({ name: 'reads' });
        const contend = async (disableWhileWaiting = false): Promise<void> => {
          await mu.lock();
          const w = mu.lock();
          clock.advance(6 * ms);
          if (disableWhileWaiting) i.disable();
          mu.unlock();
          await w;
          mu.unlock();
        };
        const readsOf = async (work: () => Promise<void>): Promise<number> => {
          reads = 0;
          await work();
          return reads;
        };
        const untraced = async (): Promise<void> => {
          for (let k = 0; k < 5; k++) await contend();
        };
        // as many reads as with the instrumentation off (the live list's, once per episode of contention)
        i.disable();
        await untraced();
        const off = await readsOf(untraced);
        i.enable();
        expect(await readsOf(untraced)).toBe(off);
        expect(exporter.getFinishedSpans()).toHaveLength(0);
        expect(await readsOf(() => inRequest(() => contend()))).toBeGreaterThan(off);
        expect(exporter.getFinishedSpans()).toHaveLength(1);
        // followed while enabled, so it is told of its end: a whole span, not a lost one
        await inRequest(() => contend(true));
        expect(exporter.getFinishedSpans().map((s) => s.duration[0] * 1e3 + s.duration[1] / 1e6)).toEqual([6, 6]);
      });
    } finally {
      configureProfiler({ now });
    }
  });

  test('with no tracer provider registered, contention goes on as before; disable() stops it', async () => {
    const i = new MutexprofInstrumentation({ minWaitMs: 0 });
    expect(i.getConfig()).toMatchObject({ enabled: true, minWaitMs: 0, endpointLabel: true, spanIdLabel: false });
    setMutexProfileFraction(1);
    const mu = new Mutex({ name: 'untraced' });
    await mu.lock();
    const w = mu.lock();
    mu.unlock();
    (await w)[Symbol.dispose]();
    i.disable();
    i.disable();
    setMutexProfileFraction(0);
    expect(i.getConfig().enabled).toBe(false);
  });
});

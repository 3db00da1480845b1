// mutexprof/opentelemetry: lock waits in traces, and profiles labelled by endpoint with no labels in code.
//
//   registerInstrumentations({ instrumentations: [new HttpInstrumentation(), new MutexprofInstrumentation()] })
//
// An OpenTelemetry Instrumentation (the interface @opentelemetry/instrumentation's registerInstrumentations and the
// SDKs' `instrumentations` lists take; nothing to patch: the locks tell their observers):
//   - Waits in traces. A contended wait of a traced flow that lasts at least minWaitMs becomes a span of its trace,
//     a child of the span active when lock() was called, from the wait's start to its grant (or its giving up), named
//     after the lock. A span rather than a span event: trace UIs draw a span as a bar across the gap the wait left in
//     the request, where an event is a dot with no duration. The span is made when the wait ends, with its start and
//     end: none is ever left open (an abort, a deadlock, a process that exits while waiting make none or a whole one).
//     Uncontended acquisitions, untraced flows and shorter waits add nothing to any trace. What following costs: a
//     contended wait is asked about (a context read); one of a traced flow is timed (a clock read at each end) and
//     allocates its times; an untraced one reads no clock (bench/opentelemetry.mjs, docs/opentelemetry.md#cost).
//   - The span budget. A span costs what the SDK makes of it (~10 µs with a batch processor), and in a service whose
//     every request waits that is a span per request: at most maxSpansPerSecond lock-wait spans are made a second
//     (default 100). A second that reached the budget doubles the threshold for the next (from minWaitMs, or 1 ms
//     from 0), a second under half of it halves it back, down to minWaitMs: the longest waits keep their spans, and
//     each span made under a raised threshold says it (mutexprof.wait.threshold_ms). Decided from the waits' own
//     clock (the profiler's, configureProfiler({ now })).
//   - Profiles by endpoint. Sampled events of the mutex, block and hold profiles carry `trace_endpoint`: the local
//     root span's route (`GET /orders/:id`, from the HTTP instrumentation's request metadata, which routers such as
//     express fill in), read only for sampled events. Optionally (spanIdLabel) `span_id`, the local root span's id, as
//     Pyroscope's span profiles read it: one label value per request, so a profile holds a sample per request
//     (maxEntries bounds it: the bounds drop it first, as any high-cardinality label).
// `@opentelemetry/api` is an optional peer dependency: without it this entry point says so when the instrumentation
// is made, and nothing else of mutexprof needs it.

import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import type { Attributes, Context, Span, Tracer, TracerProvider } from '@opentelemetry/api';
import type { LockView, WaiterView } from '../locks/seam.js';
import { observeWaits, type WaitObserver, type WaitTimes } from '../profile/contention.js';
import { addLabelSource } from '../profile/labels.js';
import { now as clockNow } from '../profile/sampling.js';
import { checkOptionsObject, describeValue } from '../shared/check.js';
import { VERSION } from '../shared/state.js';
import { start } from '../start.js';

start();

/** Options of MutexprofInstrumentation. */
export interface MutexprofInstrumentationConfig {
  /** Whether it is enabled when made (OpenTelemetry's convention). Default true. */
  enabled?: boolean;
  /** The shortest contended wait that becomes a span, in ms (0: every contended wait of a traced flow). Default 5. */
  minWaitMs?: number;
  /** Label sampled profile events with the local root span's route, `trace_endpoint`. Default true. */
  endpointLabel?: boolean;
  /** Label sampled profile events with the local root span's id, `span_id` (a value per request). Default false. */
  spanIdLabel?: boolean;
  /** At most this many lock-wait spans a second; beyond it the threshold rises (Infinity: no budget). Default 100. */
  maxSpansPerSecond?: number;
}

type Api = typeof import('@opentelemetry/api');

/** performance.timeOrigin, read once: its getter is not free. */
const TIME_ORIGIN = performance.timeOrigin;

/** The HTTP instrumentation's request metadata in the context (@opentelemetry/core's RPC metadata, keyed by Symbol.for). */
const RPC_METADATA = Symbol.for('OpenTelemetry SDK Context Key RPC_METADATA');

interface RpcMetadata {
  span?: Span;
  route?: string;
}

function loadApi(): Api {
  try {
    return createRequire(import.meta.url)('@opentelemetry/api') as Api;
  } catch {
    throw new Error('mutexprof/opentelemetry: @opentelemetry/api is not installed (an optional peer dependency of mutexprof): npm install @opentelemetry/api');
  }
}

function checkConfig(config: unknown): Required<MutexprofInstrumentationConfig> {
  const c = checkOptionsObject<MutexprofInstrumentationConfig>('new MutexprofInstrumentation', config) ?? {};
  const bool = (name: keyof MutexprofInstrumentationConfig, v: unknown, d: boolean): boolean => {
    if (v === undefined) return d;
    if (typeof v !== 'boolean') throw new TypeError(`mutexprof: MutexprofInstrumentation({ ${name} }): must be a boolean, got ${describeValue(v)}`);
    return v;
  };
  const minWaitMs = c.minWaitMs ?? 5;
  if (typeof minWaitMs !== 'number' || !(minWaitMs >= 0) || !Number.isFinite(minWaitMs)) {
    throw new RangeError(`mutexprof: MutexprofInstrumentation({ minWaitMs }): must be a number of ms ≥ 0, got ${describeValue(minWaitMs)}`);
  }
  const maxSpansPerSecond = c.maxSpansPerSecond ?? 100;
  if (typeof maxSpansPerSecond !== 'number' || !(maxSpansPerSecond >= 1) || (!Number.isSafeInteger(maxSpansPerSecond) && maxSpansPerSecond !== Infinity)) {
    throw new RangeError(`mutexprof: MutexprofInstrumentation({ maxSpansPerSecond }): must be a whole number ≥ 1 or Infinity, got ${describeValue(maxSpansPerSecond)}`);
  }
  return {
    enabled: bool('enabled', c.enabled, true),
    minWaitMs,
    endpointLabel: bool('endpointLabel', c.endpointLabel, true),
    spanIdLabel: bool('spanIdLabel', c.spanIdLabel, false),
    maxSpansPerSecond,
  };
}

type LabelPairs = ReadonlyArray<readonly [string, string]>;

/**
 * What a followed wait of a traced flow keeps until it ends: its context, with its holder's labels when it began if
 * the holder had any (else the context alone: the usual wait allocates nothing here).
 */
class WithHolder {
  constructor(
    readonly context: Context,
    readonly holder: LabelPairs,
  ) {}
}

type Pending = Context | WithHolder;

/** What the holder's record keeps of its labels (src/diagnostics/records.ts): all of them while tracked, else its option's. */
interface HolderRecord {
  labels?: { pairs: LabelPairs } | null;
  labelsOption?: { pairs: LabelPairs } | null;
}

/** The holder's labels where known: a tracked acquisition's (its context's and its option's), else its `labels` option. */
function holderLabels(holder: HolderRecord | null): LabelPairs | undefined {
  if (holder === null) return undefined;
  const pairs = (holder.labels ?? holder.labelsOption)?.pairs;
  return pairs === undefined || pairs.length === 0 ? undefined : pairs;
}

/** The span budget's state: spans made in the second that began at `since` (ns), and the threshold in force (ms). */
interface Budget {
  since: number;
  made: number;
  threshold: number;
}

/** Lock waits in traces, and profiles labelled by endpoint: an OpenTelemetry Instrumentation. */
export class MutexprofInstrumentation {
  readonly instrumentationName = 'mutexprof';
  readonly instrumentationVersion: string = VERSION;
  readonly #api: Api;
  readonly #context: Api['context'];
  readonly #trace: Api['trace'];
  #config: Required<MutexprofInstrumentationConfig>;
  /** #config.minWaitMs in ns, the waits' unit */
  #minWaitNs: number;
  #tracer: Tracer;
  #stop: Array<() => void> = [];
  // kept across disable() and enable(): turning it off and on again grants no new budget
  #budget: Budget = { since: 0, made: 0, threshold: 0 };
  // made once: the same functions at the call sites of the locks' paths across disable() and enable()
  readonly #observer: WaitObserver = {
    started: (lock) => this.#started(lock),
    ended: (lock, w, times, token, aborted, reason) => {
      // most waits are shorter than minWaitMs: decided here, in ns, before anything else is read
      if (times.end - times.t >= this.#minWaitNs) this.#ended(lock, w, times, token as Pending, aborted, reason);
    },
  };
  readonly #labelSource = (): Array<readonly [string, string]> | null => this.#labels();

  constructor(config: MutexprofInstrumentationConfig = {}) {
    this.#config = checkConfig(config);
    this.#minWaitNs = this.#config.minWaitMs * 1e6;
    this.#budget.threshold = this.#config.minWaitMs;
    this.#api = loadApi();
    this.#context = this.#api.context;
    this.#trace = this.#api.trace;
    this.#tracer = this.#trace.getTracer(this.instrumentationName, this.instrumentationVersion);
    if (this.#config.enabled) this.enable();
  }

  /** Starts following waits and labelling profiles (idempotent). */
  enable(): void {
    if (this.#stop.length > 0) return;
    this.#config = { ...this.#config, enabled: true };
    this.#stop.push(observeWaits(this.#observer));
    if (this.#config.endpointLabel || this.#config.spanIdLabel) this.#stop.push(addLabelSource(this.#labelSource));
  }

  /** Stops both (idempotent). */
  disable(): void {
    for (const stop of this.#stop.splice(0)) stop();
    this.#config = { ...this.#config, enabled: false };
  }

  setTracerProvider(provider: TracerProvider): void {
    this.#tracer = provider.getTracer(this.instrumentationName, this.instrumentationVersion);
  }

  /** No metrics of its own: lock metrics are mutexprof's collectLockMetrics(). */
  setMeterProvider(): void {}

  setConfig(config: MutexprofInstrumentationConfig = {}): void {
    const next = checkConfig({ ...this.#config, ...config });
    const running = this.#stop.length > 0;
    this.disable();
    this.#config = next;
    this.#minWaitNs = next.minWaitMs * 1e6;
    this.#budget = { since: 0, made: 0, threshold: next.minWaitMs };
    if (running && next.enabled) this.enable();
  }

  getConfig(): MutexprofInstrumentationConfig {
    return { ...this.#config };
  }

  /**
   * A wait starts: followed if its flow is traced (the context active in lock() is the caller's), and while the
   * budget's second has room (once it is spent, a wait that starts reads the clock to see whether the second is over,
   * and is not followed). Every contended wait comes here: it reads the context, and allocates nothing unless the
   * holder has labels (bench/opentelemetry.mjs).
   */
  #started(lock: LockView): Pending | null {
    if (this.#budget.made >= this.#config.maxSpansPerSecond && !this.#room(clockNow())) return null;
    const context = this.#context.active();
    const span = this.#trace.getSpan(context);
    if (span === undefined || !span.isRecording()) return null;
    const holder = holderLabels(lock.holder as HolderRecord | null);
    return holder === undefined ? context : new WithHolder(context, holder);
  }

  /** A wait that lasted minWaitMs ended (the observer's `ended` checked): a span, if the budget has room for it. */
  #ended(lock: LockView, w: WaiterView, times: WaitTimes, p: Pending, aborted: boolean, reason: unknown): void {
    const ms = (times.end - times.t) / 1e6;
    if (!this.#spend(ms, times.end)) return;
    const context = p instanceof WithHolder ? p.context : p;
    const deadlock = aborted && (reason as { code?: unknown } | null)?.code === 'ERR_MUTEXPROF_DEADLOCK';
    const attributes: Attributes = {
      'mutexprof.lock.name': lock.name,
      'mutexprof.lock.kind': lock.kind,
      'mutexprof.lock.mode': w.mode,
      'mutexprof.wait.outcome': deadlock ? 'deadlock' : aborted ? 'aborted' : 'granted',
    };
    if (p instanceof WithHolder) for (const [k, v] of p.holder) attributes[`mutexprof.holder.${k}`] = v;
    if (lock.kind === 'Semaphore') attributes['mutexprof.lock.weight'] = w.weight; // the drop-in's too (no fixed permits)
    if (this.#budget.threshold > this.#config.minWaitMs) attributes['mutexprof.wait.threshold_ms'] = this.#budget.threshold;
    // the wait's length on the profiler's clock (as the block profile has it), ending now
    const end = TIME_ORIGIN + performance.now();
    const span = this.#tracer.startSpan(`lock wait ${lock.name === '' ? lock.kind : lock.name}`, { startTime: end - ms, attributes }, context);
    if (deadlock) span.setStatus({ code: this.#api.SpanStatusCode.ERROR, message: reason instanceof Error ? reason.message : 'deadlock' });
    span.end(end);
  }

  /** Whether a wait of `ms` ending at `now` (ns) gets a span under the budget (see "The span budget" above). */
  #spend(ms: number, now: number): boolean {
    if (!this.#room(now) || ms < this.#budget.threshold) return false;
    this.#budget.made++;
    return true;
  }

  /** Whether the budget's second at `now` (ns) has room for a span, the second rolled on first. */
  #room(now: number): boolean {
    const b = this.#budget;
    if (now - b.since >= 1e9) this.#roll(now);
    return b.made < this.#config.maxSpansPerSecond;
  }

  /** A new budget second at `now`: the one that ended reached the budget, double; under half of it, or seconds without a wait, halve (each). */
  #roll(now: number): void {
    const b = this.#budget;
    const max = this.#config.maxSpansPerSecond;
    const seconds = Math.floor((now - b.since) / 1e9);
    const min = this.#config.minWaitMs;
    let t = b.threshold;
    if (max === Infinity) t = min;
    else if (b.made >= max && seconds === 1) t = Math.max(t * 2, 1, min);
    else if (b.made < max / 2 || seconds > 1) {
      t /= 2 ** Math.min(seconds, 64);
      if (t < Math.max(min, 1)) t = min;
    }
    b.threshold = t;
    b.since = now;
    b.made = 0;
  }

  /** The labels of a sampled event: its local root span's route and id. */
  #labels(): Array<readonly [string, string]> | null {
    const meta = this.#context.active().getValue(RPC_METADATA) as RpcMetadata | undefined;
    const root = meta?.span;
    if (root === undefined) return null;
    const out: Array<readonly [string, string]> = [];
    if (this.#config.endpointLabel) {
      const name = (root as unknown as { name?: unknown }).name;
      const base = typeof name === 'string' ? name : '';
      // the server span is named by its method until the response (then `GET /orders/:id`); a router sets the route
      const endpoint = meta?.route ? `${base.split(' ')[0]} ${meta.route}` : base;
      if (endpoint !== '') out.push(['trace_endpoint', endpoint]);
    }
    if (this.#config.spanIdLabel) out.push(['span_id', root.spanContext().spanId]);
    return out;
  }
}

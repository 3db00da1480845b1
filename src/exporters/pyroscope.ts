// Push to Pyroscope: every interval, the delta of each profile since the last push, to Pyroscope's /ingest.
//
// What Pyroscope expects, read from its ingest handler (grafana/pyroscope: pkg/ingester/pyroscope/ingest_handler.go,
// pkg/og/convert/pprof/profile.go, api/model/labelset/labelset.go, pkg/og/util/form/form.go):
//   - POST /ingest?name=<app>{k=v,…}&from=<unix s>&until=<unix s>&spyName=…; the app name and labels in that
//     `name{k=v}` form (label names [a-zA-Z_][a-zA-Z0-9_.]*; values without , { } =);
//   - each push is stored as the profile it is (__delta__="false"): a pusher sends deltas, never cumulative
//     profiles, which would count everything again at each push;
//   - a multipart/form-data body whose *file* parts (form.File: each part has a filename) are `profile` (the
//     gzipped pprof) and `sample_type_config` (JSON: sample type → { units, display-name }); with no `format`
//     query parameter: `format=pprof` makes the handler read the whole body as pprof, and not as a form;
//   - the profile's name comes from its sample types through that config: display names `mutex_*` make a mutex
//     profile, `block_*` a block profile (both have Go's `contentions`/`delay` types, which Pyroscope's defaults
//     map to mutex: the block profile must say so).
// Delivery, exactly once or reported. Pyroscope stores each push as it comes and has no de-duplication, so a push
// is sent again only when it cannot have been stored:
//   - the connection was refused, or the host not found (nothing was sent);
//   - the server answered 429 or 503 (it says it did not take the request; Retry-After is honoured) or 408 (it did
//     not receive the whole request).
// Those are retried with backoff (1 s, 2 s, …) while the interval lasts; a delta still not delivered then is kept
// and merged into the next push (it was never stored). Any other failure may have stored the push — a 500 answered
// after storing, a timeout after the body was sent, a connection reset — and is not sent again: it is reported
// (warning MUTEXPROF_PUSH) and dropped. A 4xx other than 408 and 429 is a refusal: reported and dropped.
// Shutdown: stop() ends the pusher within a bound of its own (stop({ timeoutMs }), default the push timeoutMs): it
// waits for a push in flight and pushes the last window, keeping the process alive only that long; what it could
// not deliver by then is reported. Otherwise no timer and no push keeps the process alive beyond a request's own
// timeoutMs.

import { channel } from 'node:diagnostics_channel';
import { sourceOf, type ProfileSample, type ProfileSnapshot, type ProfileSource, type Window } from '../pprof/registry.js';
import { encodeSnapshot } from '../pprof/proto.js';
import { VERSION } from '../shared/state.js';
import { checkInteger, checkOptionsObject, checkStringRecord, checkTimerMs, describeValue } from '../shared/check.js';

/** Options of startProfilePush. */
export interface ProfilePushOptions {
  /** Pyroscope's base URL, http or https, e.g. 'http://pyroscope:4040' (the pusher posts to its /ingest). */
  url: string;
  /** The application's name in Pyroscope (its service_name). */
  appName: string;
  /** Labels of every push, e.g. { env: 'prod', instance: 'api-1' }. */
  labels?: Record<string, string>;
  /** Milliseconds between pushes. Default 15 000. */
  intervalMs?: number;
  /** The profiles to push (cumulative ones, each once). Default ['mutex', 'block']. */
  profiles?: string[];
  /** Headers of every request, e.g. { Authorization: 'Bearer …', 'X-Scope-OrgID': 'tenant' }. */
  headers?: Record<string, string>;
  /** Milliseconds one request may take before it is given up. Default 10 000. */
  timeoutMs?: number;
  /** Attempts per push, for failures that cannot have stored it (see above), with backoff within the interval. Default 3. */
  attempts?: number;
}

/** Options of ProfilePush.stop(). */
export interface ProfilePushStopOptions {
  /** Milliseconds stop() may take, waiting for a push in flight and pushing the last window. Default: the pusher's timeoutMs. */
  timeoutMs?: number;
}

/** A running pusher. */
export interface ProfilePush {
  /** Pushes now what has happened since the last push (also what the next interval would do). */
  flush(): Promise<void>;
  /**
   * Stops the pusher: pushes the last window, and resolves once it is delivered or `timeoutMs` has passed (what
   * was not delivered by then is reported). The process stays alive that long, no longer.
   */
  stop(options?: ProfilePushStopOptions): Promise<void>;
}

/** What one push became, as published on the diagnostics channel `mutexprof:push`. */
export interface PushOutcome {
  readonly profile: string;
  /** stored; kept (not delivered, sent with the next push); dropped (refused, or may have been stored, or stop() gave up) */
  readonly outcome: 'stored' | 'kept' | 'dropped';
  /** why, when not stored: e.g. 'HTTP 500', 'ECONNREFUSED', 'no answer within timeoutMs' */
  readonly reason: string;
  readonly samples: number;
  readonly attempts: number;
}

const pushChannel = channel('mutexprof:push');

const SAMPLE_TYPE_CONFIG: Record<string, unknown> = {
  mutex: { contentions: { units: 'lock_samples', 'display-name': 'mutex_count' }, delay: { units: 'lock_nanoseconds', 'display-name': 'mutex_duration' } },
  block: { contentions: { units: 'lock_samples', 'display-name': 'block_count' }, delay: { units: 'lock_nanoseconds', 'display-name': 'block_duration' } },
};

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_.]*$/;
const LABEL_VALUE = /^[^,{}=]*$/;
/** Connection failures before anything was sent. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

/** Samples of two consecutive deltas of one profile, added up (the second's time ends the merged window). */
function merged(a: ProfileSnapshot, b: ProfileSnapshot): ProfileSnapshot {
  const by = new Map<string, ProfileSample>();
  for (const s of a.samples) by.set(s.key, s);
  for (const s of b.samples) {
    const t = by.get(s.key);
    by.set(s.key, t === undefined ? s : { ...s, values: s.values.map((v, i) => v + (t.values[i] ?? 0)) });
  }
  const samples = [...by.values()].sort((x, y) => y.values[y.values.length - 1] - x.values[x.values.length - 1]);
  return { name: b.name, timeNanos: a.timeNanos, durationNanos: a.durationNanos + b.durationNanos, samples, comments: b.comments };
}

/** What an attempt's result means for the push: stored; retry (it cannot have been stored); refused or unknown (drop). */
type Attempt = { kind: 'stored' } | { kind: 'retry' | 'refused' | 'unknown'; reason: string; afterMs?: number };

function retryAfterMs(v: string | null): number | undefined {
  if (v === null) return undefined;
  const s = Number(v);
  if (Number.isFinite(s) && s >= 0) return s * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

async function answered(res: Response): Promise<Attempt> {
  const text = await res.text().catch(() => '');
  if (res.ok) return { kind: 'stored' };
  const reason = `HTTP ${res.status}${text.trim() ? `: ${text.trim().slice(0, 200)}` : ''}`;
  if (res.status === 408 || res.status === 429 || res.status === 503) return { kind: 'retry', reason, afterMs: retryAfterMs(res.headers.get('retry-after')) };
  return { kind: res.status >= 400 && res.status < 500 ? 'refused' : 'unknown', reason };
}

function failed(e: unknown): Attempt {
  const err = e as { name?: string; message?: string; cause?: { code?: string; errors?: Array<{ code?: string }> } } | null;
  const codes = err?.cause?.errors?.map((x) => x.code) ?? [err?.cause?.code];
  if (codes.length > 0 && codes.every((c) => c !== undefined && NOT_SENT.has(c))) return { kind: 'retry', reason: String(codes[0]) };
  if (err?.name === 'TimeoutError') return { kind: 'unknown', reason: 'no answer within timeoutMs' };
  if (err?.name === 'AbortError') return { kind: 'unknown', reason: 'still in flight when stop() gave up' };
  return { kind: 'unknown', reason: String(err?.cause?.code ?? err?.message ?? e) };
}

/** Waits `ms`, or less if `signal` aborts; `keepAlive`: the timer keeps the process alive (only while stopping). */
function sleep(ms: number, keepAlive: boolean, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    if (!keepAlive) t.unref();
    signal.addEventListener('abort', done);
  });
}

function checkPushOptions(options: unknown): Required<ProfilePushOptions> & { target: URL; sources: ProfileSource[] } {
  const where = 'startProfilePush';
  if (options === undefined) throw new TypeError(`mutexprof: ${where}(options): options are required: { url, appName }`);
  const o = checkOptionsObject<ProfilePushOptions>(where, options)!;
  if (typeof o.url !== 'string') throw new TypeError(`mutexprof: ${where}({ url }): url must be a string, got ${describeValue(o.url)}`);
  let target: URL;
  try {
    target = new URL('ingest', o.url.endsWith('/') ? o.url : o.url + '/');
  } catch {
    throw new TypeError(`mutexprof: ${where}({ url }): not a URL: ${describeValue(o.url)}`);
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new TypeError(`mutexprof: ${where}({ url }): Pyroscope is reached over http or https, got ${target.protocol}`);
  const appName = o.appName;
  if (typeof appName !== 'string' || appName.trim() === '' || !LABEL_VALUE.test(appName))
    throw new TypeError(`mutexprof: ${where}({ appName }): a non-empty name without , { } =, got ${describeValue(appName)}`);
  const labels = checkStringRecord(where, 'labels', o.labels);
  for (const [k, v] of Object.entries(labels)) {
    if (!LABEL_NAME.test(k) || !LABEL_VALUE.test(v)) throw new TypeError(`mutexprof: ${where}({ labels }): Pyroscope cannot take the label ${JSON.stringify(k)}=${JSON.stringify(v)}`);
  }
  const headers = checkStringRecord(where, 'headers', o.headers);
  try {
    new Headers(headers);
  } catch (e) {
    throw new TypeError(`mutexprof: ${where}({ headers }): ${(e as Error).message}`, { cause: e });
  }
  const intervalMs = checkTimerMs(where, 'intervalMs', o.intervalMs, 15_000);
  const timeoutMs = checkTimerMs(where, 'timeoutMs', o.timeoutMs, 10_000);
  const attempts = checkInteger(where, 'attempts', o.attempts, 3, 1, 100);
  const profiles = o.profiles ?? ['mutex', 'block'];
  if (!Array.isArray(profiles) || profiles.length === 0) throw new TypeError(`mutexprof: ${where}({ profiles }): profiles must be a non-empty array of profile names, got ${describeValue(profiles)}`);
  const sources = profiles.map((name, i) => {
    if (typeof name !== 'string') throw new TypeError(`mutexprof: ${where}({ profiles }): profile names are strings, got ${describeValue(name)}`);
    if (profiles.indexOf(name) !== i) throw new TypeError(`mutexprof: ${where}({ profiles }): ${JSON.stringify(name)} is listed twice (each push would carry it twice)`);
    const source = sourceOf(name);
    if (source?.window === undefined) throw new TypeError(`mutexprof: ${where}({ profiles }): ${JSON.stringify(name)} is not a cumulative profile`);
    return source;
  });
  return { url: o.url, appName, labels, headers, intervalMs, timeoutMs, attempts, profiles, target, sources };
}

/**
 * Pushes the delta of each profile to Pyroscope's /ingest every `intervalMs` (see the top of this file for the
 * format, from Pyroscope's source, and for what is retried). Returns { flush, stop }.
 */
export function startProfilePush(options: ProfilePushOptions): ProfilePush {
  const { appName, labels, headers, intervalMs, timeoutMs, attempts, target, sources } = checkPushOptions(options);
  // Node loads fetch, FormData and Blob (undici) on first use, synchronously: 15–20 ms of blocked event loop.
  // Load them now, at startup, rather than in the service's first push (bench: serving, "Pyroscope push").
  const post0 = globalThis.fetch;
  new FormData().append('warm-up', new Blob([]), 'warm-up');
  const name = `${appName}{${Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',')}}`;

  // per profile: the open window, and the delta that could not be delivered yet (never stored: see above)
  const windows: Window[] = sources.map((s) => s.window!());
  const unsent: Array<ProfileSnapshot | null> = sources.map(() => null);
  let timer: ReturnType<typeof setTimeout> | null = null;
  let stopping: Promise<void> | null = null;
  // aborted when stop() gives up: every request and backoff still running ends then
  const giveUp = new AbortController();
  // one report per reason until a push is stored again: a down Pyroscope does not flood stderr
  const reported = new Set<string>();
  const report = (o: PushOutcome, what: string): void => {
    if (pushChannel.hasSubscribers) pushChannel.publish(o);
    if (o.outcome === 'stored') return void reported.clear();
    const key = `${what}\0${o.reason}`;
    if (reported.has(key)) return;
    reported.add(key);
    process.emitWarning(`mutexprof: a push of the ${o.profile} profile to ${target.origin} (${o.samples} samples) ${what}: ${o.reason}`, { code: 'MUTEXPROF_PUSH' });
  };

  // pushes run one after another; a failed one does not stop the next
  let running: Promise<void> = Promise.resolve();
  const then = (f: () => Promise<void>): Promise<void> => {
    const p = running.then(f);
    running = p.catch(() => {});
    return p;
  };

  /** Delivers one delta: 'stored', 'kept' (retryable failures until `deadline`: not stored) or 'dropped'. */
  const deliver = async (s: ProfileSnapshot, deadline: number, final: boolean): Promise<void> => {
    const body = new FormData();
    body.append('profile', new Blob([await encodeSnapshot(s, sourceOf(s.name)!.sampleTypes)]), 'profile.pprof');
    const config = SAMPLE_TYPE_CONFIG[s.name];
    if (config !== undefined) body.append('sample_type_config', new Blob([JSON.stringify(config)]), 'sample_type_config.json');
    const from = Number(s.timeNanos / 1_000_000_000n);
    const until = Math.ceil(Number(s.timeNanos + BigInt(Math.round(s.durationNanos))) / 1e9);
    const url = new URL(target);
    url.search = new URLSearchParams({ name, from: String(from), until: String(until), spyName: 'nodespy' }).toString();
    let last: Attempt = { kind: 'retry', reason: 'stop() gave up' };
    let n = 0;
    while (n < attempts && !giveUp.signal.aborted) {
      n++;
      try {
        const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), giveUp.signal]);
        last = await answered(await post0(url, { method: 'POST', body, headers: { 'User-Agent': `mutexprof/${VERSION}`, ...headers }, signal }));
      } catch (e) {
        last = failed(e);
      }
      if (last.kind !== 'retry') break;
      const wait = Math.max(last.afterMs ?? 0, 1000 * 2 ** (n - 1));
      if (n === attempts || Date.now() + wait >= deadline) break;
      await sleep(wait, final, giveUp.signal);
    }
    const base = { profile: s.name, samples: s.samples.length, attempts: n };
    if (last.kind === 'stored') return report({ ...base, outcome: 'stored', reason: '' }, '');
    if (last.kind === 'retry' && !final && !giveUp.signal.aborted) {
      unsent[sources.findIndex((x) => x.name === s.name)] = s;
      return report({ ...base, outcome: 'kept', reason: last.reason }, 'was not delivered (it cannot have been stored): it is kept and sent with the next push');
    }
    if (last.kind === 'retry') return report({ ...base, outcome: 'dropped', reason: last.reason }, 'was not delivered before stop() gave up: it is lost');
    if (last.kind === 'refused') return report({ ...base, outcome: 'dropped', reason: last.reason }, 'was refused: it is dropped');
    report({ ...base, outcome: 'dropped', reason: last.reason }, 'may have been stored, so it is not sent again (Pyroscope does not de-duplicate pushes)');
  };

  const push = async (final: boolean, deadline: number): Promise<void> => {
    await Promise.all(
      sources.map(async (source, i) => {
        let snapshot: ProfileSnapshot;
        try {
          ({ snapshot, next: windows[i] } = await windows[i].roll());
        } catch {
          windows[i] = source.window!(); // the window is gone: start again from now
          return;
        }
        const delta = unsent[i] === null ? snapshot : merged(unsent[i]!, snapshot);
        unsent[i] = null;
        if (delta.samples.length > 0) await deliver(delta, deadline, final);
      }),
    );
  };

  const schedule = (): void => {
    if (stopping !== null) return;
    timer = setTimeout(() => {
      timer = null;
      void then(() => push(false, Date.now() + intervalMs)).finally(schedule);
    }, intervalMs);
    timer.unref();
  };
  schedule();

  return {
    flush: () => (stopping !== null ? Promise.resolve() : then(() => push(false, Date.now() + intervalMs))),
    stop(stopOptions?: ProfilePushStopOptions): Promise<void> {
      if (stopping !== null) return stopping;
      let ms: number;
      try {
        ms = checkTimerMs('ProfilePush.stop', 'timeoutMs', checkOptionsObject<ProfilePushStopOptions>('ProfilePush.stop', stopOptions)?.timeoutMs, timeoutMs);
      } catch (e) {
        return Promise.reject(e); // bad input: nothing stops
      }
      if (timer !== null) clearTimeout(timer);
      const deadline = Date.now() + ms;
      // referenced: the process stays alive for the last push, this long at most
      const bound = setTimeout(() => giveUp.abort(), ms);
      stopping = then(() => push(true, deadline)).finally(() => {
        clearTimeout(bound);
        giveUp.abort(); // nothing of this pusher outlives stop()
        for (const w of windows) w.cancel();
      });
      return stopping;
    },
  };
}

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
// Failures never hurt the service: each push has a timeout and a bounded retry with backoff; a delta that could
// not be sent is kept (one interval's worth at most: it is merged into the next one) and sent with the next
// interval; stop() pushes what is left once and resolves. No timer keeps the process alive.

import { sourceOf, type ProfileSample, type ProfileSnapshot, type Window } from '../pprof/registry.js';
import { encodeSnapshot } from '../pprof/proto.js';
import { VERSION } from '../shared.js';

/** Options of startProfilePush. */
export interface ProfilePushOptions {
  /** Pyroscope's base URL, e.g. 'http://pyroscope:4040' (the pusher posts to its /ingest). */
  url: string;
  /** The application's name in Pyroscope (its service_name). */
  appName: string;
  /** Labels of every push, e.g. { env: 'prod', instance: 'api-1' }. */
  labels?: Record<string, string>;
  /** Milliseconds between pushes. Default 15 000. */
  intervalMs?: number;
  /** The profiles to push (cumulative ones). Default ['mutex', 'block']. */
  profiles?: string[];
  /** Headers of every request, e.g. { Authorization: 'Bearer …', 'X-Scope-OrgID': 'tenant' }. */
  headers?: Record<string, string>;
  /** Milliseconds one request may take before it is given up. Default 10 000. */
  timeoutMs?: number;
  /** Attempts per push, with backoff between them (1 s, 2 s, … but within the interval). Default 3. */
  attempts?: number;
}

/** A running pusher. */
export interface ProfilePush {
  /** Pushes now what has happened since the last push (also what the next interval would do). */
  flush(): Promise<void>;
  /** Stops the pusher: pushes once more what is left, then resolves. */
  stop(): Promise<void>;
}

const SAMPLE_TYPE_CONFIG: Record<string, unknown> = {
  mutex: { contentions: { units: 'lock_samples', 'display-name': 'mutex_count' }, delay: { units: 'lock_nanoseconds', 'display-name': 'mutex_duration' } },
  block: { contentions: { units: 'lock_samples', 'display-name': 'block_count' }, delay: { units: 'lock_nanoseconds', 'display-name': 'block_duration' } },
};

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_.]*$/;
const LABEL_VALUE = /^[^,{}=]*$/;

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

/**
 * Pushes the delta of each profile to Pyroscope's /ingest every `intervalMs` (see the top of this file for the
 * format, from Pyroscope's source). Returns { flush, stop }.
 */
export function startProfilePush(options: ProfilePushOptions): ProfilePush {
  if (options === null || typeof options !== 'object') throw new TypeError('mutexprof: startProfilePush(options): options must be an object');
  const { appName, labels = {}, intervalMs = 15_000, profiles = ['mutex', 'block'], headers = {}, timeoutMs = 10_000, attempts = 3 } = options;
  let url: URL;
  try {
    url = new URL('ingest', options.url.endsWith('/') ? options.url : options.url + '/');
  } catch {
    throw new TypeError(`mutexprof: startProfilePush({ url }): not a URL: ${String(options.url)}`);
  }
  if (typeof appName !== 'string' || appName.trim() === '' || !LABEL_VALUE.test(appName)) throw new TypeError(`mutexprof: startProfilePush({ appName }): a non-empty name without , { } =, got ${JSON.stringify(appName)}`);
  for (const [k, v] of Object.entries(labels)) {
    if (!LABEL_NAME.test(k) || typeof v !== 'string' || !LABEL_VALUE.test(v)) throw new TypeError(`mutexprof: startProfilePush({ labels }): Pyroscope cannot take the label ${JSON.stringify(k)}=${JSON.stringify(v)}`);
  }
  for (const [n, v] of [
    ['intervalMs', intervalMs],
    ['timeoutMs', timeoutMs],
    ['attempts', attempts],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`mutexprof: startProfilePush({ ${n} }): must be a positive integer, got ${String(v)}`);
  }
  const sources = profiles.map((name) => {
    const source = sourceOf(name);
    if (source?.window === undefined) throw new TypeError(`mutexprof: startProfilePush({ profiles }): ${JSON.stringify(name)} is not a cumulative profile`);
    return source;
  });
  // Node loads fetch, FormData and Blob (undici) on first use, synchronously: 15–20 ms of blocked event loop.
  // Load them now, at startup, rather than in the service's first push (bench: serving, "Pyroscope push").
  const post0 = globalThis.fetch;
  new FormData().append('warm-up', new Blob([]), 'warm-up');
  const name = `${appName}{${Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',')}}`;

  // per profile: the open window, and the delta that could not be sent yet
  const windows: Window[] = sources.map((s) => s.window!());
  const unsent: Array<ProfileSnapshot | null> = sources.map(() => null);
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | null = null;
  // pushes run one after another; a failed one does not stop the next
  let running: Promise<void> = Promise.resolve();
  const then = (f: () => Promise<void>): Promise<void> => {
    const p = running.then(f);
    running = p.catch(() => {});
    return p;
  };

  const post = async (s: ProfileSnapshot, deadline: number): Promise<boolean> => {
    const body = new FormData();
    body.append('profile', new Blob([await encodeSnapshot(s, sourceOf(s.name)!.sampleTypes)]), 'profile.pprof');
    const config = SAMPLE_TYPE_CONFIG[s.name];
    if (config !== undefined) body.append('sample_type_config', new Blob([JSON.stringify(config)]), 'sample_type_config.json');
    const from = Number(s.timeNanos / 1_000_000_000n);
    const until = Math.ceil(Number(s.timeNanos + BigInt(Math.round(s.durationNanos))) / 1e9);
    const target = new URL(url);
    target.search = new URLSearchParams({ name, from: String(from), until: String(until), spyName: 'nodespy' }).toString();
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) {
        const wait = Math.min(1000 * 2 ** (attempt - 1), deadline - Date.now());
        if (wait <= 0) break;
        await new Promise((r) => setTimeout(r, wait).unref());
      }
      try {
        const res = await post0(target, { method: 'POST', body, headers: { 'User-Agent': `mutexprof/${VERSION}`, ...headers }, signal: AbortSignal.timeout(timeoutMs) });
        await res.arrayBuffer();
        if (res.ok) return true;
        if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) return true; // refused: sending it again would not help
      } catch {
        /* timed out or unreachable: try again */
      }
    }
    return false;
  };

  const push = async (final: boolean): Promise<void> => {
    const deadline = Date.now() + intervalMs;
    await Promise.all(
      sources.map(async (_, i) => {
        let snapshot: ProfileSnapshot;
        try {
          ({ snapshot, next: windows[i] } = await windows[i].roll());
        } catch {
          windows[i] = sources[i].window!(); // the window is gone: start again from now
          return;
        }
        const delta = unsent[i] === null ? snapshot : merged(unsent[i]!, snapshot);
        unsent[i] = null;
        if (delta.samples.length === 0) return;
        if (!(await post(delta, final ? Date.now() + timeoutMs : deadline))) unsent[i] = delta; // kept, sent with the next
      }),
    );
  };

  const schedule = (): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      timer = null;
      void then(() => push(false)).finally(schedule);
    }, intervalMs);
    timer.unref();
  };
  schedule();

  return {
    flush: () => then(() => push(false)),
    stop(): Promise<void> {
      if (stopped) return running;
      stopped = true;
      if (timer !== null) clearTimeout(timer);
      return then(() =>
        push(true).finally(() => {
          for (const w of windows) w.cancel();
        }),
      );
    },
  };
}

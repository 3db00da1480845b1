// /debug/pprof over HTTP, as Go's net/http/pprof serves it, so `go tool pprof http://host:6060/debug/pprof/mutex`,
// Pyroscope/Alloy and Parca work unchanged.
//
// Paths, under the mount point: `/` (HTML index of the registered profiles), `/<profile>` (gzipped pprof;
// `?debug=1` the legacy text; `?seconds=N` a delta profile over the next N seconds, for cumulative profiles),
// `/symbol` (symbolization of the pseudo addresses in debug=1 text, for `go tool pprof …?debug=1`). Which
// profiles exist, what they are called and how they read is the registry's (src/pprof/registry.ts) business.
//
// Serving never stalls the service: builds and encodings yield to the event loop every few milliseconds;
// concurrent requests for one profile share one build; pending deltas share the recorder's undo log instead of
// a copy of the profile each, and end (503) when the standalone server closes. Profiles reveal function names,
// source paths and label values: keep the endpoint on loopback or behind `authorize`.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { profiles, sourceOf, type ProfileSnapshot, type ProfileSource } from '../pprof/registry.js';
import { encodeSnapshot } from '../pprof/proto.js';
import { openThreadHub } from '../cluster/peers.js';
import { clusterProfiles, derived, localProfiles, type IndexFacts, type Profiles } from './profiles.js';
import { serveUi } from './ui.js';
import { escapeLine } from '../pprof/text.js';
import { frameAt } from '../profile/frames.js';
import { Slicer } from '../profile/slice.js';
import { settleAll } from '../profile/drain.js';
import { checkFunction, checkInteger, describeValue, MAX_TIMER_MS } from '../shared/check.js';

/** Options of pprofHandler, pprofRouter and startPprofServer. */
export interface PprofOptions {
  /** Called for every request; return false (or a promise of false) to answer 403. Default: allow. */
  authorize?: (req: IncomingMessage) => boolean | Promise<boolean>;
  /** Largest `?seconds=` accepted for delta profiles. Default 300. */
  maxSeconds?: number;
  /**
   * Serve every profile merged over this process, its node:cluster workers (in a cluster primary) and the worker
   * threads that call shareProfilesWithMainThread(), each sample labelled `pid` and `worker` or `thread`.
   * A peer that does not answer within `timeoutMs` (default 2000; for `?seconds=N`, N s more) is left out and
   * named in the profile's comments. Default false.
   */
  cluster?: boolean | { timeoutMs?: number };
}

/** */
export interface ResolvedOptions {
  authorize: ((req: IncomingMessage) => boolean | Promise<boolean>) | null;
  maxSeconds: number;
  /** this process's, or merged over the cluster's workers and the sharing threads */
  profiles: Profiles;
  /** the standalone server's requests in flight, ended when it closes (pending deltas end with 503) */
  closing: InFlight | null;
}

/**
 * The requests a standalone server has in flight, each by its own AbortController: ended together when the
 * server closes. One set rather than a listener per request on one shared signal (twenty pending deltas would
 * print MaxListenersExceededWarning, and every removal would scan the listeners).
 */
export class InFlight {
  readonly #requests = new Set<AbortController>();
  #closed = false;

  /** `ac` is in flight: aborted with 'closing' when the server closes (at once if it has). */
  add(ac: AbortController): void {
    if (this.#closed) ac.abort('closing');
    else this.#requests.add(ac);
  }

  delete(ac: AbortController): void {
    this.#requests.delete(ac);
  }

  close(): void {
    this.#closed = true;
    for (const ac of this.#requests) ac.abort('closing');
    this.#requests.clear();
  }
}

/** */
export function resolveOptions(options: PprofOptions | undefined, fn: string, closing: InFlight | null = null): ResolvedOptions {
  if (options !== undefined && (options === null || typeof options !== 'object')) {
    throw new TypeError(`mutexprof: ${fn}(options): options must be an object`);
  }
  const authorize = checkFunction<ResolvedOptions['authorize']>(fn, 'authorize', options?.authorize) ?? null;
  const c = options?.cluster ?? false;
  if (typeof c !== 'boolean' && (c === null || typeof c !== 'object')) throw new TypeError(`mutexprof: ${fn}: cluster must be a boolean or { timeoutMs }, got ${describeValue(c)}`);
  const timeoutMs = checkInteger(fn, 'cluster.timeoutMs', typeof c === 'object' ? c.timeoutMs : undefined, 2000, 1, Math.floor(MAX_TIMER_MS / 2));
  // a delta's timers (its seconds, plus timeoutMs for a cluster's peers) must fit Node's timers
  const maxSeconds = checkInteger(fn, 'maxSeconds', options?.maxSeconds, 300, 1, Math.floor((MAX_TIMER_MS - timeoutMs) / 1000));
  if (c !== false) openThreadHub(); // threads that share their profiles say hello from now on
  return { authorize, maxSeconds, closing, profiles: c === false ? localProfiles : clusterProfiles(timeoutMs) };
}

/** Go's serveError: text/plain, X-Go-Pprof so that `go tool pprof` prints the message. */
function serveError(res: ServerResponse, status: number, message: string): void {
  if (res.headersSent || res.destroyed) return void res.destroy();
  const body = message + '\n';
  res.statusCode = status;
  res.removeHeader('Content-Disposition');
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('X-Go-Pprof', '1');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

/** Resolves when `res` can take more, or is gone. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** 200 with `body`, written as the socket takes it (a large body shared by many clients is not copied at once). */
async function send(req: IncomingMessage, res: ServerResponse, type: string, body: string | Buffer | Buffer[], filename?: string): Promise<void> {
  if (res.destroyed) return;
  const chunks = typeof body === 'string' ? [Buffer.from(body)] : Array.isArray(body) ? body : [body];
  res.statusCode = 200;
  res.setHeader('Content-Type', type);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  if (filename) res.setHeader('Content-Disposition', `attachment; filename="${filename}"`);
  res.setHeader(
    'Content-Length',
    chunks.reduce((n, c) => n + c.length, 0),
  );
  if (req.method !== 'HEAD') {
    // A socket that drains synchronously (loopback) re-arms 'drain' within the same turn of the event loop:
    // yield between chunks once a slice is used up, or twenty clients of one body would be written in one go.
    const slice = new Slicer();
    for (const c of chunks) {
      if (res.destroyed) return;
      if (!res.write(c)) await drained(res);
      await slice.check();
    }
  }
  res.end();
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The index: every registered profile, with the counts and notes of `facts`. */
function indexPage(base: string, facts: IndexFacts): string {
  const all = profiles();
  const rows = all.map((p) => `<tr><td>${facts.counts.get(p.name) ?? 0}</td><td><a href='${escapeHtml(p.name)}?debug=1'>${escapeHtml(p.name)}</a></td></tr>`).join('\n');
  const descriptions = all.map((p) => `<li><div class=profile-name>${escapeHtml(p.name)}: </div> ${escapeHtml(p.description)}</li>`).join('\n');
  const notes = facts.notes
    .filter(([, note]) => note !== '')
    .map(([name, note]) => `<li><div class=profile-name>${escapeHtml(name)}: </div> ${escapeHtml(note)}</li>`)
    .join('\n');
  const missing = facts.missing;
  const mergedOver = !facts.merged
    ? ''
    : `<p>Merged over this process and its cluster workers and threads; each sample is labelled pid, and worker or thread.${missing.length === 0 ? '' : `</p>\n<p>Left out:<ul>\n${missing.map((m) => `<li>${escapeHtml(m)}</li>`).join('\n')}\n</ul>`}</p>\n`;
  const title = escapeHtml(base + '/');
  return `<html>
<head>
<title>${title}</title>
<link rel=icon href="data:,">
<style>
.profile-name{
\tdisplay:inline-block;
\twidth:6rem;
}
</style>
</head>
<body>
${title}<br>
<br>
${mergedOver}Types of profiles available:
<table>
<thead><td>Count</td><td>Profile</td></thead>
${rows}
</table>
<br>
<p>
Profile Descriptions:
<ul>
${descriptions}
</ul>
</p>
<p><a href='ui/'>Flame graphs</a> of every profile, in this browser.</p>
${notes === '' ? '' : `<p>\nNotes (each profile carries them in its comments: go tool pprof -comments):\n<ul>\n${notes}\n</ul>\n</p>\n`}<p>Set debug=1 as a query parameter to export in legacy text format. Set seconds=N for a delta profile over the next N seconds.</p>
</body>
</html>
`;
}

/** 301 to `location`, as Go's ServeMux answers a directory asked for without its slash. */
function redirect(req: IncomingMessage, res: ServerResponse, location: string): void {
  const body = `<a href="${escapeHtml(location)}">Moved Permanently</a>.\n\n`;
  res.statusCode = 301;
  res.setHeader('Location', location);
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** Go's strconv.Atoi as net/http/pprof uses it for debug: anything unparsable is 0. */
function atoi(v: string | null): number {
  if (v === null || !/^[+-]?\d{1,15}$/.test(v)) return 0;
  return Number(v);
}

/** A parsed `seconds`: a positive integer no larger than max, or null. */
function parseSeconds(v: string, max: number): number | null {
  if (!/^\+?\d{1,15}$/.test(v)) return null;
  const n = Number(v);
  return n >= 1 && n <= max ? n : null;
}

/**
 * Serves one request whose path below the mount point is `rel` ('' for the mount point itself) and whose mount
 * point, as the client sees it, is `base`.
 * @internal
 */
export async function serve(req: IncomingMessage, res: ServerResponse, rel: string, base: string, query: URLSearchParams, opts: ResolvedOptions): Promise<void> {
  if (opts.authorize !== null) {
    let ok: boolean;
    try {
      ok = (await opts.authorize(req)) === true;
    } catch {
      ok = false;
    }
    if (!ok) return serveError(res, 403, 'Forbidden');
  }
  if (rel === '') {
    // As Go's ServeMux: /debug/pprof → /debug/pprof/
    const search = query.toString();
    return redirect(req, res, base + '/' + (search ? '?' + search : ''));
  }
  const name = rel.slice(1);
  const method = req.method ?? 'GET';
  const allowed = name === 'symbol' ? ['GET', 'HEAD', 'POST'] : ['GET', 'HEAD'];
  if (!allowed.includes(method)) {
    res.setHeader('Allow', allowed.join(', '));
    return serveError(res, 405, 'Method Not Allowed');
  }
  if (name === '') {
    await settleAll(); // the counts: pending events resolved a slice at a time, not in one block
    const facts = await answering(res, opts, (signal) => opts.profiles.index(signal));
    return facts === null ? undefined : send(req, res, 'text/html; charset=utf-8', indexPage(base, facts));
  }
  if (name === 'symbol') return serveSymbol(req, res);
  if (name === 'ui') return redirect(req, res, `${base}/ui/`);
  if (name.startsWith('ui/')) {
    return serveUi(res, name.slice(3), query, {
      send: (type, body) => send(req, res, type, body),
      error: (status, message) => serveError(res, status, message),
      snapshot: (profile) => answering(res, opts, (signal) => opts.profiles.snapshot(sourceOf(profile)!, signal)),
      delta: (profile, seconds) => deltaFor(res, sourceOf(profile)!, seconds, opts),
      maxSeconds: opts.maxSeconds,
      derived,
    });
  }
  const source = sourceOf(name);
  if (source === undefined) return serveError(res, 404, 'Unknown profile');

  const seconds = query.get('seconds');
  const debug = atoi(query.get('debug'));
  if (seconds !== null && seconds !== '') {
    const n = parseSeconds(seconds, opts.maxSeconds);
    if (n === null) {
      return serveError(res, 400, `invalid value for "seconds" - must be a positive integer no larger than ${opts.maxSeconds}`);
    }
    if (debug !== 0) return serveError(res, 400, 'seconds and debug params are incompatible');
    if (source.window === undefined) return serveError(res, 400, `${name} is not a cumulative profile: seconds is not supported`);
    return serveDelta(req, res, source, n, opts);
  }
  if (debug !== 0) {
    const text = await answering(res, opts, (signal) => opts.profiles.text(source, signal));
    return text === null ? undefined : send(req, res, 'text/plain; charset=utf-8', text);
  }
  const proto = await answering(res, opts, (signal) => opts.profiles.proto(source, signal));
  return proto === null ? undefined : send(req, res, 'application/octet-stream', proto, name);
}

/** What `ask` answers, asked with a signal that aborts when the client goes away or the server closes; null if it did. */
async function answering<T>(res: ServerResponse, opts: ResolvedOptions, ask: (signal: AbortSignal) => Promise<T | null>): Promise<T | null> {
  const r = requestSignal(res, opts.closing);
  try {
    return await ask(r.signal);
  } finally {
    r.dispose(); // the server outlives the request: leave nothing of it there
  }
}

/** A signal aborted when the client goes away ('gone') or the server closes ('closing'); dispose() when done. */
function requestSignal(res: ServerResponse, closing: InFlight | null): { signal: AbortSignal; dispose(): void } {
  const ac = new AbortController();
  const gone = (): void => ac.abort('gone');
  res.on('close', gone);
  if (res.destroyed) gone();
  closing?.add(ac);
  return {
    signal: ac.signal,
    dispose() {
      res.off('close', gone);
      closing?.delete(ac);
    },
  };
}

/**
 * The delta of `source` over the next `seconds`, this process's or merged over the cluster; null (the answer sent:
 * 503 or 500) if the server closes or the client goes away first.
 */
async function deltaFor(res: ServerResponse, source: ProfileSource, seconds: number, opts: ResolvedOptions): Promise<ProfileSnapshot | null> {
  let reason: unknown = null;
  const snapshot = await answering(res, opts, async (signal) => {
    const s = await opts.profiles.delta(source, seconds, signal);
    reason = signal.reason;
    return s;
  });
  if (snapshot === null) {
    if (reason === 'closing') serveError(res, 503, 'profile collection cancelled: the server is closing');
    else serveError(res, 500, 'profile collection cancelled: the client went away');
  }
  return snapshot;
}

/** `?seconds=N`: the delta over the next N seconds (ended early if the client goes away or the server closes). */
async function serveDelta(req: IncomingMessage, res: ServerResponse, source: ProfileSource, seconds: number, opts: ResolvedOptions): Promise<void> {
  const snapshot = await deltaFor(res, source, seconds, opts);
  if (snapshot === null || res.destroyed) return;
  send(req, res, 'application/octet-stream', await encodeSnapshot(snapshot, source.sampleTypes), `${source.name}-delta`);
}

/** google/pprof's symbolz protocol over the pseudo addresses of the debug=1 text. */
async function serveSymbol(req: IncomingMessage, res: ServerResponse): Promise<void> {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  if (req.method !== 'POST') return send(req, res, 'text/plain; charset=utf-8', 'num_symbols: 1\n');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 1 << 20) return serveError(res, 413, 'symbol request too large');
    chunks.push(chunk);
  }
  let out = '';
  for (const word of Buffer.concat(chunks).toString('latin1').split('+')) {
    const addr = Number.parseInt(word.trim().replace(/^0x/i, ''), 16);
    if (!Number.isFinite(addr)) continue;
    // the legacy parser asks for (return address − 1); our frames sit at their own address
    const f = frameAt(addr) ?? frameAt(addr + 1);
    if (f) out += `0x${addr.toString(16)} ${escapeLine(f.name)}\n`;
  }
  send(req, res, 'text/plain; charset=utf-8', out);
}

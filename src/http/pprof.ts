// /debug/pprof over HTTP, as Go's net/http/pprof serves it, so `go tool pprof http://host:6060/debug/pprof/mutex`,
// Pyroscope/Alloy and Parca work unchanged.
//
// Usage:
//   app.use('/debug/pprof', pprofRouter());                      // Express 4 or 5
//   http.createServer(pprofHandler()).listen(6060, '127.0.0.1');  // plain node:http (or connect-style, with next)
//   const server = await startPprofServer();                       // like Go's go http.ListenAndServe("localhost:6060", nil)
//
// Paths, under the mount point: `/` (HTML index), `/mutex`, `/block` (gzipped pprof; `?debug=1` Go's legacy
// text; `?seconds=N` a delta profile over N seconds), `/symbol` (symbolization of the pseudo addresses in
// debug=1 text, for `go tool pprof …?debug=1`). Profiles reveal function names and source paths: keep the
// endpoint on loopback or behind `authorize`.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { lookup, allProfiles, deltaSnapshot, type ContentionProfile, type ProfileSnapshot } from '../profile/lookup.js';
import { frameAt } from '../profile/stack.js';

/** Options of pprofHandler, pprofRouter and startPprofServer. */
export interface PprofOptions {
  /** Called for every request; return false (or a promise of false) to answer 403. Default: allow. */
  authorize?: (req: IncomingMessage) => boolean | Promise<boolean>;
  /** Largest `?seconds=` accepted for delta profiles. Default 300. */
  maxSeconds?: number;
}

/** @internal */
export interface ResolvedOptions {
  authorize: ((req: IncomingMessage) => boolean | Promise<boolean>) | null;
  maxSeconds: number;
}

/** @internal */
export function resolveOptions(options: PprofOptions | undefined, fn: string): ResolvedOptions {
  if (options !== undefined && (options === null || typeof options !== 'object')) {
    throw new TypeError(`mutexprof: ${fn}(options): options must be an object`);
  }
  const authorize = options?.authorize ?? null;
  if (authorize !== null && typeof authorize !== 'function') throw new TypeError(`mutexprof: ${fn}: authorize must be a function`);
  const maxSeconds = options?.maxSeconds ?? 300;
  if (!Number.isSafeInteger(maxSeconds) || maxSeconds < 1) throw new RangeError(`mutexprof: ${fn}: maxSeconds must be a positive integer, got ${String(maxSeconds)}`);
  return { authorize, maxSeconds };
}

const DESCRIPTIONS: Record<string, string> = {
  block: 'Stack traces that led to blocking on synchronization primitives (mutexprof: waits in Mutex/RWMutex lock and rLock)',
  mutex: 'Stack traces of holders of contended mutexes (mutexprof: releases of Mutex/RWMutex that ended others’ waits)',
};

/** Go's serveError: text/plain, X-Go-Pprof so that `go tool pprof` prints the message. */
function serveError(res: ServerResponse, status: number, message: string): void {
  const body = message + '\n';
  res.statusCode = status;
  res.removeHeader('Content-Disposition');
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('X-Go-Pprof', '1');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

function send(req: IncomingMessage, res: ServerResponse, type: string, body: string | Buffer, filename?: string): void {
  res.statusCode = 200;
  res.setHeader('Content-Type', type);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  if (filename) res.setHeader('Content-Disposition', `attachment; filename="${filename}"`);
  res.setHeader('Content-Length', typeof body === 'string' ? Buffer.byteLength(body) : body.length);
  res.end(req.method === 'HEAD' ? undefined : body);
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function indexPage(base: string): string {
  const rows = allProfiles()
    .map((p) => `<tr><td>${p.count()}</td><td><a href='${p.name}?debug=1'>${p.name}</a></td></tr>`)
    .join('\n');
  const descriptions = allProfiles()
    .map((p) => `<li><div class=profile-name>${p.name}: </div> ${escapeHtml(DESCRIPTIONS[p.name])}</li>`)
    .join('\n');
  const title = escapeHtml(base + '/');
  return `<html>
<head>
<title>${title}</title>
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
Types of profiles available:
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
<p>Set debug=1 as a query parameter to export in legacy text format. Set seconds=N for a delta profile over N seconds.</p>
</body>
</html>
`;
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
    let ok = false;
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
    const location = base + '/' + (search ? '?' + search : '');
    const body = `<a href="${escapeHtml(location)}">Moved Permanently</a>.\n\n`;
    res.statusCode = 301;
    res.setHeader('Location', location);
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.end(req.method === 'HEAD' ? undefined : body);
    return;
  }
  const name = rel.slice(1);
  const method = req.method ?? 'GET';
  const allowed = name === 'symbol' ? ['GET', 'HEAD', 'POST'] : ['GET', 'HEAD'];
  if (!allowed.includes(method)) {
    res.setHeader('Allow', allowed.join(', '));
    return serveError(res, 405, 'Method Not Allowed');
  }
  if (name === '') return send(req, res, 'text/html; charset=utf-8', indexPage(base));
  if (name === 'symbol') return serveSymbol(req, res);
  const profile = lookup(name);
  if (profile === undefined) return serveError(res, 404, 'Unknown profile');

  const seconds = query.get('seconds');
  const debug = atoi(query.get('debug'));
  if (seconds !== null && seconds !== '') {
    const n = parseSeconds(seconds, opts.maxSeconds);
    if (n === null) {
      return serveError(res, 400, `invalid value for "seconds" - must be a positive integer no larger than ${opts.maxSeconds}`);
    }
    if (debug !== 0) return serveError(res, 400, 'seconds and debug params are incompatible');
    return serveDelta(req, res, profile, n);
  }
  if (debug !== 0) return send(req, res, 'text/plain; charset=utf-8', profile.text());
  return send(req, res, 'application/octet-stream', await profile.encode(), profile.name);
}

/** `?seconds=N`: snapshot, wait N s (cancelled if the client goes away), snapshot, subtract. */
async function serveDelta(req: IncomingMessage, res: ServerResponse, profile: ContentionProfile, seconds: number): Promise<void> {
  const before: ProfileSnapshot | null = profile.snapshot();
  const t0 = process.hrtime.bigint();
  const end = t0 + BigInt(seconds) * 1_000_000_000n;
  const completed = await new Promise<boolean>((resolve) => {
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      res.off('close', gone);
      resolve(ok);
    };
    const gone = (): void => done(false);
    // Timers run on the event loop's cached millisecond clock and can fire up to a millisecond early by the
    // monotonic one; like Go's time.Sleep, the window is never shorter than asked: re-arm for what is left.
    const check = (): void => {
      const left = Number(end - process.hrtime.bigint());
      if (left <= 0) done(true);
      else timer = setTimeout(check, Math.ceil(left / 1e6));
    };
    let timer = setTimeout(check, seconds * 1000);
    res.on('close', gone);
    if (res.destroyed || req.destroyed) done(false);
  });
  if (!completed) {
    if (!res.headersSent && !res.destroyed) serveError(res, 500, 'profile collection cancelled: the client went away');
    return; // nothing kept: the snapshot is garbage once this frame returns
  }
  const after = profile.snapshot();
  const duration = Number(process.hrtime.bigint() - t0);
  const body = await profile.encode(deltaSnapshot(before, after), duration);
  if (res.destroyed) return;
  send(req, res, 'application/octet-stream', body, `${profile.name}-delta`);
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
    if (f) out += `0x${addr.toString(16)} ${f.name}\n`;
  }
  send(req, res, 'text/plain; charset=utf-8', out);
}

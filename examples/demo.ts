// The demo service: real work behind named locks, a built-in load loop, and everything mutexprof serves.
//
//   npm start                      (PORT, HOST from the environment; default 127.0.0.1:6060)
//
// - a user cache refilled under a KeyedMutex: one refill per user at a time, other users' refills run alongside;
// - a pool of 3 database connections (a Semaphore) that the refills and the event flushes share;
// - a settings store behind an RWMutex: read by every request, reloaded now and then (the writer);
// - a write-behind event queue flushed to a file under a Mutex, in order, one flush at a time;
// - POST /admin/stall?ms=3000 holds the settings' write lock that long: the stall watchdog reports it.
//
// Served: /debug/pprof/ (profiles for go tool pprof, and flame graphs at /debug/pprof/ui/), /metrics (Prometheus),
// /locks (queryLocks() as JSON), /traces (the last traces that waited for a lock, as OTLP JSON). The demo has no labels in
// its code: OpenTelemetry (examples/tracing.ts, with mutexprof/opentelemetry) labels every sampled event with its
// request's endpoint (trace_endpoint). With PYROSCOPE_URL set, profiles are also pushed to Pyroscope every 15 s.
import type Express from 'express';
import { createRequire } from 'node:module';
import { appendFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry, collectDefaultMetrics } from 'prom-client';
import {
  Mutex,
  RWMutex,
  Semaphore,
  KeyedMutex,
  setMutexProfileFraction,
  setBlockProfileRate,
  setBlockProfileFraction,
  setLockTracking,
  setHoldProfileFraction,
  configureProfiler,
  watchLocks,
  queryLocks,
  collectLockMetrics,
  startProfilePush,
  pprofRouter,
} from 'mutexprof';
import { startTracing } from './tracing.js';

// tracing first: http and express are loaded after it (below), so that OpenTelemetry's instrumentations patch them
const tracing = startTracing();
const require = createRequire(import.meta.url);
const express = require('express') as typeof Express;
const { createServer } = require('node:http') as typeof import('node:http');

const PORT = Number(process.env.PORT ?? 6060);
const HOST = process.env.HOST ?? '127.0.0.1';
// The built-in load: LOAD_RATE requests a second from LOAD_CONCURRENCY clients, until the demo stops (or for
// LOAD_SECONDS): enough to keep every lock contended, a fraction of a core.
const LOAD_SECONDS = Number(process.env.LOAD_SECONDS ?? Infinity);
const LOAD_RATE = Number(process.env.LOAD_RATE ?? 400);
const CONCURRENCY = Number(process.env.LOAD_CONCURRENCY ?? 24);

// The README's recommended production settings, but for the mutex fraction: waits ≥ 10 ms (shorter ones in
// proportion), 1 in 10 of those; at most 100 sampled events a second per profile, however contended the demo
// gets; lock tracking on (holders and their ages in /debug/pprof/locks, the watchdog's hold reports, the hold
// metrics); the hold profile at 1 in 100 acquisitions. The demo's locks contend about 5 times a second, where a
// service in trouble contends thousands of times: at the production fraction (1 in 100) its mutex profile would
// hold a sample a minute or so, so the demo records 1 in 5 (MUTEX_PROFILE_FRACTION=100 to see production's).
configureProfiler({ maxSampledPerSecond: Number(process.env.MAX_SAMPLED_PER_SECOND ?? 100) });
setMutexProfileFraction(Number(process.env.MUTEX_PROFILE_FRACTION ?? 5));
setBlockProfileRate(Number(process.env.BLOCK_PROFILE_RATE ?? 10_000_000));
setBlockProfileFraction(Number(process.env.BLOCK_PROFILE_FRACTION ?? 10));
setLockTracking('on');
setHoldProfileFraction(Number(process.env.HOLD_PROFILE_FRACTION ?? 100));
// A lock waited for 1 s or held 2 s: one line on stderr per episode (and on the diagnostics channel mutexprof:stall).
watchLocks({ waitMs: 1000, holdMs: 2000, onStall: (r) => console.error(`stall: ${r.message}`) });

const metrics = new Registry();
collectDefaultMetrics({ register: metrics });
collectLockMetrics({ register: metrics });
if (process.env.PYROSCOPE_URL) startProfilePush({ url: process.env.PYROSCOPE_URL, appName: 'mutexprof-demo' });

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Some CPU work standing in for parsing or serialising. */
function burn(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

/** Three database connections; a query holds one for its round trip. */
const db = new Semaphore(3, { name: 'db-pool' });
async function query(ms: number): Promise<void> {
  using _ = await db.acquire();
  await sleep(ms);
}

class UserCache {
  readonly #refill = new KeyedMutex({ name: 'user-cache' });
  #users = new Map<string, { id: string; name: string; loadedAt: number }>();

  async get(id: string): Promise<{ id: string; name: string }> {
    const hit = this.#users.get(id);
    if (hit && Date.now() - hit.loadedAt < 250) return hit;
    using _ = await this.#refill.lock(id); // one refill per user; the others wait for it
    const again = this.#users.get(id); // somebody may have refilled it while we waited
    if (again && Date.now() - again.loadedAt < 250) return again;
    return await this.#load(id); // await: `using` releases when the function returns
  }

  async #load(id: string): Promise<{ id: string; name: string }> {
    await query(4); // the database round trip, holding the user's lock
    const user = { id, name: `user-${id}`, loadedAt: Date.now() };
    this.#users.set(id, user);
    return user;
  }
}

class SettingsStore {
  readonly #rw = new RWMutex({ name: 'settings' });
  #settings: Record<string, string> = { theme: 'dark' };

  async read(): Promise<Record<string, string>> {
    // `return await`: a caller that returns the lock's promise un-awaited drops out of every stack
    return await this.#rw.withRLock(async () => {
      await null; // e.g. a lazy decode
      return { ...this.#settings };
    });
  }

  async reload(holdMs = 15): Promise<void> {
    await this.#rw.lock();
    try {
      burn(2);
      await sleep(holdMs); // fetch the new settings, holding the write lock
      this.#settings = { theme: Math.random() < 0.5 ? 'dark' : 'light' };
    } finally {
      this.#rw.unlock();
    }
  }
}

class EventQueue {
  readonly #mu = new Mutex({ name: 'event-flush' });
  #pending: string[] = [];
  constructor(private readonly file: string) {}

  async push(event: string): Promise<void> {
    this.#pending.push(event);
    if (this.#pending.length >= 20) await this.flush();
  }

  async flush(): Promise<void> {
    // a named function reads better in a profile than V8's inferred name for an inline arrow
    const writeBatch = async (): Promise<void> => {
      const batch = this.#pending;
      this.#pending = [];
      if (batch.length === 0) return;
      burn(1);
      await query(1); // record the batch
      await appendFile(this.file, batch.join('\n') + '\n'); // real I/O, in order, one flush at a time
    };
    await this.#mu.withLock(writeBatch);
  }
}

const dir = await mkdtemp(join(tmpdir(), 'mutexprof-demo-'));
const users = new UserCache();
const settings = new SettingsStore();
const events = new EventQueue(join(dir, 'events.log'));

function route(fn: (req: Express.Request) => Promise<unknown>): Express.RequestHandler {
  return (req, res, next) => {
    fn(req).then((body) => res.json(body), next);
  };
}

const app = express();
app.use('/debug/pprof', pprofRouter());
app.get('/metrics', (_req, res, next) => {
  metrics.metrics().then((text) => res.type(metrics.contentType).send(text), next);
});
app.get('/locks', (_req, res) => void res.json(queryLocks()));
app.get('/traces', (req, res) => void res.type('application/json').send(tracing.traces(Number(req.query.n ?? 3))));
async function getUser(req: Express.Request): Promise<unknown> {
  return { user: await users.get(String(req.params.id)), settings: await settings.read() };
}
async function postEvent(): Promise<unknown> {
  await settings.read();
  await events.push(`event ${Date.now()}`);
  return { ok: true };
}
async function reloadSettings(): Promise<unknown> {
  await settings.reload();
  return { reloaded: true };
}
async function stall(req: Express.Request): Promise<unknown> {
  const ms = Math.max(0, Math.min(Number(req.query.ms ?? 3000) || 3000, 60_000)); // 0…60 s
  await settings.reload(ms);
  return { stalledMs: ms };
}
app.get('/users/:id', route(getUser));
app.post('/events', route(postEvent));
app.post('/admin/reload', route(reloadSettings));
app.post('/admin/stall', route(stall));

const server = createServer(app);
server.on('error', (err: NodeJS.ErrnoException) => {
  const why = err.code === 'EADDRINUSE' ? 'the address is in use (another demo? set PORT=… or PORT=0 for any free port)' : err.message;
  console.error(`mutexprof demo: cannot listen on ${HOST}:${PORT}: ${why}`);
  void rm(dir, { recursive: true, force: true }).then(() => process.exit(1));
});
server.listen(PORT, HOST, () => {
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : PORT;
  const base = `http://${HOST}:${port}`;
  console.log(`mutexprof demo listening on ${base} (load: ${LOAD_RATE} requests a second${Number.isFinite(LOAD_SECONDS) ? ` for ${LOAD_SECONDS} s` : ''}; Ctrl-C to stop)
Profiles: ${base}/debug/pprof/          flame graphs: ${base}/debug/pprof/ui/
Lock metrics: ${base}/metrics            who holds and waits now: ${base}/debug/pprof/locks?debug=1
Make a stall (the watchdog reports it): curl -X POST '${base}/admin/stall?ms=3000'

Next, with Go's pprof (apt-get install golang-go):
  go tool pprof -top ${base}/debug/pprof/mutex             # who held contended locks (holders' view)
  go tool pprof -http=127.0.0.1:8080 ${base}/debug/pprof/mutex   # Go's web UI, on loopback
  go tool pprof -top -tagfocus lock=user-cache ${base}/debug/pprof/mutex
  go tool pprof -traces -seconds 5 ${base}/debug/pprof/mutex   # the next 5 seconds only
  go tool pprof -top ${base}/debug/pprof/block             # who waited (waiters' view)
  go tool pprof -tags ${base}/debug/pprof/mutex            # split by endpoint (trace_endpoint), from OpenTelemetry
Traces that waited for a lock (OTLP JSON): ${base}/traces`);
  void load(base);
});

/** A few users get most of the requests, as in most services: their refills are what callers queue for. */
function popularUser(): number {
  return Math.random() < 0.6 ? Math.floor(Math.random() * 5) : Math.floor(Math.random() * 50);
}

/** The built-in load: CONCURRENCY clients over loopback, LOAD_RATE requests a second in all, for LOAD_SECONDS. */
async function load(base: string): Promise<void> {
  const until = Date.now() + LOAD_SECONDS * 1000;
  const gapMs = (CONCURRENCY * 1000) / LOAD_RATE; // each client's pause between its requests
  let n = 0;
  const client = async (): Promise<void> => {
    while (Date.now() < until && server.listening) {
      await sleep(gapMs * (0.5 + Math.random())); // spread, so that the clients do not move in step
      const i = n++;
      const req = i % 400 === 0 ? fetch(`${base}/admin/reload`, { method: 'POST' }) : i % 3 === 0 ? fetch(`${base}/events`, { method: 'POST' }) : fetch(`${base}/users/${popularUser()}`);
      try {
        await (await req).arrayBuffer();
      } catch {
        if (!server.listening) return;
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, client));
  if (server.listening) console.log(`load finished after ${n} requests; /debug/pprof stays up`);
}

const stop = (): void => {
  server.close();
  server.closeAllConnections();
  void rm(dir, { recursive: true, force: true }).then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

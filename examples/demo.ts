// The demo service: real work behind named locks, a built-in load loop, and /debug/pprof for go tool pprof.
//
//   npm start                      (PORT, HOST from the environment; default 127.0.0.1:6060)
//
// - a user cache refilled under a Mutex (one refill at a time, others wait for it),
// - a settings store behind an RWMutex: read by every request, reloaded now and then (the writer),
// - a write-behind event queue flushed to a file under a Mutex.
import express from 'express';
import { createServer } from 'node:http';
import { appendFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Mutex, RWMutex, withLabels, setMutexProfileFraction, setBlockProfileRate, setBlockProfileFraction, pprofRouter } from 'mutexprof';

const PORT = Number(process.env.PORT ?? 6060);
const HOST = process.env.HOST ?? '127.0.0.1';
const LOAD_SECONDS = Number(process.env.LOAD_SECONDS ?? 600); // the load loop stops by itself
const CONCURRENCY = Number(process.env.LOAD_CONCURRENCY ?? 24);

// The README's recommended production settings: 1 in 100 contention events; waits ≥ 10 ms (shorter ones in
// proportion), 1 in 10 of those.
setMutexProfileFraction(Number(process.env.MUTEX_PROFILE_FRACTION ?? 100));
setBlockProfileRate(Number(process.env.BLOCK_PROFILE_RATE ?? 10_000_000));
setBlockProfileFraction(Number(process.env.BLOCK_PROFILE_FRACTION ?? 10));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Some CPU work standing in for parsing or serialising. */
function burn(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

class UserCache {
  readonly #mu = new Mutex({ name: 'user-cache' });
  #users = new Map<string, { id: string; name: string; loadedAt: number }>();

  async get(id: string): Promise<{ id: string; name: string }> {
    const hit = this.#users.get(id);
    if (hit && Date.now() - hit.loadedAt < 250) return hit;
    using _ = await this.#mu.lock();
    const again = this.#users.get(id); // somebody may have refilled it while we waited
    if (again && Date.now() - again.loadedAt < 250) return again;
    return await this.#refill(id); // await: `using` releases when the function returns
  }

  async #refill(id: string): Promise<{ id: string; name: string }> {
    await sleep(4); // the database round trip, holding the lock
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

  async reload(): Promise<void> {
    await this.#rw.lock();
    try {
      burn(2);
      await sleep(15); // fetch the new settings, holding the write lock
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
    await this.#mu.withLock(async () => {
      const batch = this.#pending;
      this.#pending = [];
      if (batch.length === 0) return;
      burn(1);
      await appendFile(this.file, batch.join('\n') + '\n'); // real I/O, in order, one flush at a time
    });
  }
}

const dir = await mkdtemp(join(tmpdir(), 'mutexprof-demo-'));
const users = new UserCache();
const settings = new SettingsStore();
const events = new EventQueue(join(dir, 'events.log'));

/** Labels every contention sample recorded while the route runs (across awaits) with the route. */
function route(path: string, fn: (req: express.Request) => Promise<unknown>): express.RequestHandler {
  return (req, res, next) => {
    withLabels({ route: path }, () => fn(req)).then((body) => res.json(body), next);
  };
}

async function getUser(req: express.Request): Promise<unknown> {
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

const app = express();
app.use('/debug/pprof', pprofRouter());
app.get('/users/:id', route('/users/:id', getUser));
app.post('/events', route('/events', postEvent));
app.post('/admin/reload', route('/admin/reload', reloadSettings));

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
  console.log(`mutexprof demo listening on ${base} (load for ${LOAD_SECONDS}s, Ctrl-C to stop)
Profiles: ${base}/debug/pprof/

Next, with Go's pprof (apt-get install golang-go):
  go tool pprof -top ${base}/debug/pprof/mutex             # who held contended locks (holders' view)
  go tool pprof -http=:8080 ${base}/debug/pprof/mutex      # flame graph in the browser
  go tool pprof -top -tagfocus lock=user-cache ${base}/debug/pprof/mutex
  go tool pprof -traces -seconds 5 ${base}/debug/pprof/mutex   # the next 5 seconds only
  go tool pprof -top ${base}/debug/pprof/block             # who waited (waiters' view)`);
  void load(base);
});

/** The built-in load: CONCURRENCY clients over loopback for LOAD_SECONDS. */
async function load(base: string): Promise<void> {
  const until = Date.now() + LOAD_SECONDS * 1000;
  let n = 0;
  const client = async (): Promise<void> => {
    while (Date.now() < until && server.listening) {
      const i = n++;
      const req =
        i % 400 === 0
          ? fetch(`${base}/admin/reload`, { method: 'POST' })
          : i % 3 === 0
            ? fetch(`${base}/events`, { method: 'POST' })
            : fetch(`${base}/users/${i % 50}`);
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

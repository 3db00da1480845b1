// The three ways to mount /debug/pprof: a node:http / connect handler, an Express router, a standalone server.

import { Server, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { InFlight, resolveOptions, serve, type PprofOptions, type ResolvedOptions } from './endpoint.js';

/** A `(req, res, next?)` handler: node:http, connect, and anything Express accepts in `app.use`. */
export type PprofRequestHandler = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void;

const PREFIX = '/debug/pprof';

function splitUrl(url: string): { path: string; query: URLSearchParams } {
  const q = url.indexOf('?');
  return q < 0 ? { path: url, query: new URLSearchParams() } : { path: url.slice(0, q), query: new URLSearchParams(url.slice(q + 1)) };
}

function fail(res: ServerResponse, next: ((err?: unknown) => void) | undefined, err: unknown): void {
  if (next) return next(err);
  if (!res.headersSent && !res.destroyed) {
    res.statusCode = 500;
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.setHeader('X-Go-Pprof', '1');
    res.end('internal error\n');
  } else res.destroy();
}

/**
 * A plain handler serving `/debug/pprof/…`: `http.createServer(pprofHandler())`. Other paths go to `next()`
 * when given (connect-style stacks), else get 404.
 */
export function pprofHandler(options?: PprofOptions): PprofRequestHandler {
  return handlerWith(resolveOptions(options, 'pprofHandler'));
}

function handlerWith(opts: ResolvedOptions): PprofRequestHandler {
  return (req, res, next) => {
    const { path, query } = splitUrl(req.url ?? '/');
    if (path !== PREFIX && !path.startsWith(PREFIX + '/')) {
      if (next) return next();
      res.statusCode = 404;
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      res.end('404 page not found\n');
      return;
    }
    serve(req, res, path.slice(PREFIX.length), PREFIX, query, opts).catch((err: unknown) => fail(res, next, err));
  };
}

interface ExpressRequest extends IncomingMessage {
  baseUrl?: string;
  originalUrl?: string;
}
interface ExpressModule {
  Router: () => PprofRequestHandler & { use: (fn: PprofRequestHandler) => unknown };
}

function loadExpress(): ExpressModule {
  // express is an optional peer dependency: loaded only by pprofRouter, from the application's node_modules.
  const req = createRequire(process.cwd() + '/');
  for (const from of [req, createRequire(import.meta.url)]) {
    try {
      return from('express') as ExpressModule;
    } catch {
      /* try the next place */
    }
  }
  throw new Error('mutexprof: pprofRouter() needs express (npm install express); with node:http use pprofHandler()');
}

/** An Express Router (Express 4 and 5) serving the profiles where it is mounted: `app.use('/debug/pprof', pprofRouter())`. */
export function pprofRouter(options?: PprofOptions): PprofRequestHandler {
  const opts = resolveOptions(options, 'pprofRouter');
  const router = loadExpress().Router();
  router.use((req: ExpressRequest, res, next) => {
    const base = req.baseUrl ?? '';
    const { path, query } = splitUrl(req.url ?? '/');
    // Express turns the bare mount point into '/': tell it apart by the URL the client sent.
    const original = splitUrl(req.originalUrl ?? req.url ?? '/').path;
    const rel = path === '/' && !original.endsWith('/') ? '' : path;
    serve(req, res, rel, base, query, opts).catch((err: unknown) => fail(res, next, err));
  });
  return router;
}

/** Options of startPprofServer. */
export interface PprofServerOptions extends PprofOptions {
  /** Default 6060. */
  port?: number;
  /** Default '127.0.0.1': loopback only, unless you say otherwise. */
  host?: string;
}

/** The standalone server: closing it ends its pending deltas (503), so that close() does not wait for them. */
class PprofServer extends Server {
  readonly #inFlight: InFlight;
  constructor(options: PprofOptions | undefined) {
    const inFlight = new InFlight();
    const handler = handlerWith(resolveOptions(options, 'startPprofServer', inFlight));
    super((req, res) => handler(req, res));
    this.#inFlight = inFlight;
  }

  override close(callback?: (err?: Error) => void): this {
    this.#inFlight.close();
    super.close(callback);
    // the connections of the deltas just ended are idle once their 503 is written
    setImmediate(() => this.closeIdleConnections());
    return this;
  }
}

/**
 * Listens on 127.0.0.1:6060 (by default) serving only /debug/pprof, like Go's
 * `go http.ListenAndServe("localhost:6060", nil)`. Resolves once listening. `server.close()` ends pending
 * `?seconds=` deltas (503) rather than waiting for them.
 */
export function startPprofServer(options?: PprofServerOptions): Promise<Server> {
  const port = options?.port ?? 6060;
  const host = options?.host ?? '127.0.0.1';
  if (!Number.isInteger(port) || port < 0 || port > 65535) return Promise.reject(new RangeError(`mutexprof: startPprofServer: port must be an integer in 0..65535, got ${String(port)}`));
  if (typeof host !== 'string' || host === '') return Promise.reject(new TypeError('mutexprof: startPprofServer: host must be a non-empty string'));
  let server: PprofServer;
  try {
    server = new PprofServer(options);
  } catch (e) {
    return Promise.reject(e);
  }
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

// Stack capture and resolution.
//
// The release path only captures (new Error(): V8 records raw frames, formatting is lazy). Resolution into
// frames — CallSites, source maps, names — happens later, off the release path, when the recorder drains.
//
// A resolved stack is what a user can read: leaf first, a synthetic leaf naming the mutexprof method (as Go's
// leaf is always sync.(*Mutex).Unlock) at that method's real source line, then exactly maxDepth of the user's
// frames (fewer only if the stack has fewer). Dropped: the frames of every copy of mutexprof loaded in the
// process, Node's own frames (node:…, e.g. the microtask queue's or process.processTimers, which would split
// identical stacks, or AsyncLocalStorage.run and EventEmitter.emit between two of the user's), and the helpers
// compilers inject for `using` (esbuild's __callDispose, TypeScript's __disposeResources, and their inner
// next/fail). V8 is asked for maxDepth frames, plus room for the frames that will be dropped among them: the
// `spare` its caller knows of, and an allowance learnt from the stacks seen (see resolve()).

import { callSites, leafFrame, newFrame, type Frame } from './frames.js';
import type { Method } from '../locks/seam.js';
import { shared } from '../shared/state.js';

export type { Frame };

/** What a file's frames are: the user's (with their call sites, resolved once each), or dropped. */
interface FileInfo {
  /** mutexprof's own (any loaded copy), Node's internal, or a `using` helper runtime's */
  readonly skip: boolean;
  readonly sites: Map<number | string, Site>;
}

/** A call site, resolved: by position, then by receiver type (an inherited method called on two classes). */
interface Site {
  readonly role: typeof USER | typeof DISPOSE_HELPER | typeof HELPER_INNER;
  readonly type: string | null;
  readonly frame: Frame;
  /** the sites of the other receiver types seen at this position */
  others: Map<string | null, Site> | null;
}

/** The process-wide capture and resolution state (src/shared/state.ts). */
interface Stacks {
  maxDepth: number;
  /**
   * frames of Node or mutexprof seen between two of the user's in a capture that came back full: captures ask V8
   * for that many more, so that such stacks keep maxDepth user frames (at most MAX_ALLOWANCE)
   */
  allowance: number;
  /** the directories of the loaded copies of mutexprof (src/ or dist/), whose frames are dropped */
  readonly roots: string[];
  /** file → whether its frames are dropped, and its call sites */
  readonly files: Map<string, FileInfo>;
}

const tables = shared<Stacks>('stacks', () => ({ maxDepth: 8, allowance: 0, roots: [], files: new Map() }));

/** */
export function setMaxDepth(n: number): void {
  tables.maxDepth = n;
}
/** */
export function getMaxDepth(): number {
  return tables.maxDepth;
}

/** A captured stack, resolved later: what Error.captureStackTrace leaves on an object. */
export interface Captured {
  readonly stack?: unknown;
  /** how many frames V8 was asked for (a capture that came back with as many may have left user frames out) */
  limit?: number;
}

const MAX_ALLOWANCE = 16;

/**
 * Captures the current stack below `skip` cheaply: V8 records raw frames and formats nothing until
 * resolve(). `skip` is the outermost mutexprof function on the stack (the method the user called: unlock, a
 * guard's dispose, withLock's helper), so that every frame captured is one a profile keeps: V8 describes each
 * captured frame, and an optimised frame with inlined callers costs it microseconds (bench: "one sampled mutex
 * event"). `spare`: room for library frames that may still follow `skip` on some path (cheap async frames, or
 * withLock's frame above a lock() whose record captures), dropped by resolve().
 */
export function capture(skip: Method, spare = 0): Captured {
  const limit = Error.stackTraceLimit;
  const want = tables.maxDepth + spare + tables.allowance;
  const c: Captured = { limit: want };
  if (limit === want) Error.captureStackTrace(c, skip);
  else {
    Error.stackTraceLimit = want;
    Error.captureStackTrace(c, skip);
    Error.stackTraceLimit = limit;
  }
  return c;
}

// This copy's own files: everything under the directory holding its modules (src/ or dist/).
const ownFile = callSites(new Error())[0]?.getFileName() ?? '';
const ownDir = ownFile.slice(0, ownFile.lastIndexOf('/'));
const root = (ownDir.endsWith('/profile') ? ownDir.slice(0, -'/profile'.length) : ownDir) + '/';
if (!tables.roots.includes(root)) tables.roots.push(root);

function fileInfo(raw: string): FileInfo {
  let f = tables.files.get(raw);
  if (f === undefined) {
    const skip = tables.roots.some((r) => raw.startsWith(r)) || raw.startsWith('node:') || HELPER_FILE.test(raw);
    tables.files.set(raw, (f = { skip, sites: new Map() }));
  }
  return f;
}

/**
 * The resolved site of `cs` in `file`: two getters and a lookup once the position has been seen. Keyed by V8's
 * source position (a character offset): reading it costs a fraction of reading the line and column, which V8
 * computes from the script's line table. Code with no file (eval, new Function)
 * shares one table, so there the function's name is part of the key.
 */
function siteOf(file: FileInfo, cs: NodeJS.CallSite, raw: string): Site {
  const at = (cs as PositionedSite).getPosition();
  const pos = raw === '' ? `${at}:${cs.getFunctionName() ?? ''}` : at;
  const type = cs.getTypeName();
  const site = file.sites.get(pos);
  if (site !== undefined) {
    if (site.type === type) return site;
    let other = site.others?.get(type);
    if (other === undefined) (site.others ??= new Map()).set(type, (other = { role: site.role, type, frame: newFrame(cs, raw), others: null }));
    return other;
  }
  const fn = cs.getFunctionName() ?? '';
  const role = DISPOSE_HELPERS.has(fn) ? DISPOSE_HELPER : HELPER_INNER_NAMES.has(fn) ? HELPER_INNER : USER;
  const created: Site = { role, type, frame: newFrame(cs, raw), others: null };
  file.sites.set(pos, created);
  return created;
}

/** V8's CallSite has getPosition() (a source position); @types/node does not declare it. */
interface PositionedSite extends NodeJS.CallSite {
  getPosition(): number;
}

// The helpers compilers inject for `using`: esbuild's __callDispose and TypeScript's __disposeResources, emitted
// into the user's file (dropped by name, with their inner next/fail just before them); Babel's, oxc's (vite,
// vitest) and SWC's usingCtx, imported from their runtime packages (dropped by file).
const DISPOSE_HELPERS = new Set(['__callDispose', '__disposeResources']);
const HELPER_INNER_NAMES = new Set(['next', 'fail']);
const USER = 0;
const DISPOSE_HELPER = 1;
const HELPER_INNER = 2;
const HELPER_FILE = /(?:@babel|@oxc-project|@swc)[^/\\]*[/\\].*[uU]sing_?[cC]tx\.[cm]?js$/;

/**
 * Resolves a captured stack to frames, leaf first: the leaf `leaf` (a declared mutexprof method), then
 * at most maxDepth of the user's frames.
 */
export function resolve(e: Captured, leaf: string): Frame[] {
  const out: Frame[] = [leafFrame(leaf)];
  // frames that may be a `using` helper's inner functions, dropped if the helper follows: [index in out, file]
  let inner: Array<[number, FileInfo]> | null = null;
  const max = tables.maxDepth;
  const sites = callSites(e);
  // frames dropped so far, and of those, the ones with a user frame after them (they took a user frame's place)
  let dropped = 0;
  let between = 0;
  for (const cs of sites) {
    const raw = cs.getFileName() ?? '';
    const file = fileInfo(raw);
    if (file.skip) {
      dropped++;
      continue;
    }
    const site = siteOf(file, cs, raw);
    if (site.role === DISPOSE_HELPER) {
      dropped++;
      while (inner !== null && inner.length > 0 && inner[inner.length - 1][0] === out.length - 1 && inner[inner.length - 1][1] === file) {
        inner.pop();
        out.pop();
        dropped++;
      }
      continue;
    }
    if (out.length > max) break;
    between = dropped;
    if (site.role === HELPER_INNER) (inner ??= []).push([out.length, file]);
    out.push(site.frame);
  }
  // A capture that came back full with fewer than maxDepth user frames, and frames dropped between them, lost
  // user frames to those: later captures ask for as many more as it fell short.
  if (e.limit !== undefined && sites.length >= e.limit && out.length <= max && between > 0) tables.allowance = Math.min(MAX_ALLOWANCE, tables.allowance + max + 1 - out.length);
  return out;
}

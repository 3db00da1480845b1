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

import { findSourceMap, type SourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';
import { shared } from '../shared.js';

/** One resolved frame: a function at a source position. Frames are interned: one object per position. */
export interface Frame {
  readonly id: number;
  readonly name: string;
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly startLine: number;
  /** a stable pseudo program counter, shown in debug=1 text and as the pprof Location address */
  readonly addr: number;
}

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

/** The process-wide frame tables (src/shared.ts): every copy interns into them and resolves alike. */
interface Frames {
  maxDepth: number;
  /**
   * frames of Node or mutexprof seen between two of the user's in a capture that came back full: captures ask V8
   * for that many more, so that such stacks keep maxDepth user frames (at most MAX_ALLOWANCE)
   */
  allowance: number;
  /** the directories of the loaded copies of mutexprof (src/ or dist/), whose frames are dropped */
  readonly roots: string[];
  readonly byKey: Map<string, Frame>;
  readonly byId: Frame[];
  /** file → whether its frames are dropped, and its call sites */
  readonly files: Map<string, FileInfo>;
  readonly maps: Map<string, SourceMap | null>;
  /** leaf name → its frame, or the method to find its source line from */
  readonly leaves: Map<string, Frame | ((...args: never[]) => unknown)>;
}

const tables = shared<Frames>('frames', () => ({
  maxDepth: 8,
  allowance: 0,
  roots: [],
  byKey: new Map(),
  byId: [],
  files: new Map(),
  maps: new Map(),
  leaves: new Map(),
}));

/** @internal */
export function setMaxDepth(n: number): void {
  tables.maxDepth = n;
}
/** @internal */
export function getMaxDepth(): number {
  return tables.maxDepth;
}

/** @internal A captured stack, resolved later: what Error.captureStackTrace leaves on an object. */
export interface Captured {
  readonly stack?: unknown;
  /** how many frames V8 was asked for (a capture that came back with as many may have left user frames out) */
  limit?: number;
}

const MAX_ALLOWANCE = 16;

/**
 * @internal Captures the current stack below `skip` cheaply: V8 records raw frames and formats nothing until
 * resolve(). `skip` is the outermost mutexprof function on the stack (the method the user called: unlock, a
 * guard's dispose, withLock's helper), so that every frame captured is one a profile keeps: V8 describes each
 * captured frame, and an optimised frame with inlined callers costs it microseconds (bench: "one sampled mutex
 * event"). `spare`: room for library frames that may still follow `skip` on some path (cheap async frames, or
 * withLock's frame above a lock() whose record captures), dropped by resolve().
 */
export function capture(skip: (...args: never[]) => unknown, spare = 0): Captured {
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

const structured = (_e: Error, cs: NodeJS.CallSite[]): NodeJS.CallSite[] => cs;

function callSites(e: Captured): NodeJS.CallSite[] {
  const prepare = Error.prepareStackTrace;
  Error.prepareStackTrace = structured;
  try {
    const cs = e.stack as unknown;
    return Array.isArray(cs) ? (cs as NodeJS.CallSite[]) : [];
  } finally {
    Error.prepareStackTrace = prepare;
  }
}

function toPath(file: string): string {
  if (file.startsWith('file://')) {
    try {
      return fileURLToPath(file);
    } catch {
      return file;
    }
  }
  return file;
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

const ADDR_BASE = 0x100000;
const ADDR_STEP = 0x10;

function intern(key: string, name: string, file: string, line: number, column: number, startLine: number): Frame {
  let f = tables.byKey.get(key);
  if (f === undefined) {
    const id = tables.byId.length + 1;
    f = Object.freeze({ id, name, file, line, column, startLine, addr: ADDR_BASE + id * ADDR_STEP });
    tables.byKey.set(key, f);
    tables.byId.push(f);
  }
  return f;
}

/** @internal Frames by pseudo address, for symbolization of debug=1 text. */
export function frameAt(addr: number): Frame | undefined {
  if (addr < ADDR_BASE || (addr - ADDR_BASE) % ADDR_STEP !== 0) return undefined;
  return tables.byId[(addr - ADDR_BASE) / ADDR_STEP - 1];
}

/** @internal A synthetic frame, e.g. the overflow sample's. */
export function syntheticFrame(name: string): Frame {
  return intern('synthetic:' + name, name, '', 0, 0, 0);
}

/** @internal A frame for a function at a known position (e.g. read back from another process's profile). */
export function frameOf(name: string, file: string, line: number, column = 0, startLine = 0): Frame {
  return intern(`${name}\0${file}\0${line}\0${column}`, name, file, line, column, startLine);
}

/**
 * @internal Declares the leaf `name` (e.g. 'Mutex.unlock') of the public method `method`. Its frame carries the
 * method's real source position (found when first needed, see leafFrame), so that `go tool pprof -list` and the
 * source view of `-http` show the method.
 */
export function declareLeaf(name: string, method: (...args: never[]) => unknown): void {
  if (!tables.leaves.has(name)) tables.leaves.set(name, method);
}

/** @internal The frame of a declared leaf (or a positionless one for an undeclared name). */
export function leafFrame(name: string): Frame {
  const known = tables.leaves.get(name);
  if (typeof known === 'object') return known;
  const pos = known === undefined ? null : methodPosition(name, known);
  const f = pos === null ? intern(`leaf:${name}`, name, '', 0, 0, 0) : intern(`leaf:${name}`, name, pos.file, pos.line, pos.column, pos.startLine);
  tables.leaves.set(name, f);
  return f;
}

/**
 * Where `method` starts in the source: call it once on a receiver that throws at the first touch (a Proxy, or
 * V8's own TypeError for a private field), and read the method's frame in that error's stack. Every leaf method
 * reads `this` before doing anything, so nothing else happens.
 */
function methodPosition(name: string, method: (...args: never[]) => unknown): Position | null {
  const fail = (): never => {
    throw new Error('mutexprof: leaf probe');
  };
  const receiver = new Proxy({}, { get: fail, set: fail, has: fail, defineProperty: fail, deleteProperty: fail, getPrototypeOf: fail });
  const limit = Error.stackTraceLimit;
  let error: unknown = null;
  Error.stackTraceLimit = 10;
  try {
    const r = (method as (this: unknown) => unknown).call(receiver);
    // an async method rejects instead of throwing: keep that from going unhandled (its position stays unknown)
    if (r instanceof Promise) r.catch(() => {});
  } catch (e) {
    error = e;
  } finally {
    Error.stackTraceLimit = limit;
  }
  if (!(error instanceof Error)) return null;
  const short = name.slice(name.lastIndexOf('.') + 1);
  const cs = callSites(error).find((c) => c.getFunctionName() === short);
  if (cs === undefined) return null;
  // The line of the method's first statement: a compiler's source map places it exactly, where the start of a
  // method's header may map to the comment above it.
  const p = position(cs, cs.getFileName() ?? '');
  return { ...p, startLine: p.startLine > 0 && p.startLine <= p.line ? p.startLine : p.line };
}

function sourceMapFor(file: string): SourceMap | null {
  let m = tables.maps.get(file);
  if (m === undefined) {
    m = null;
    if (process.sourceMapsEnabled !== false) {
      try {
        m = findSourceMap(file) ?? null;
      } catch {
        m = null;
      }
    }
    tables.maps.set(file, m);
  }
  return m;
}

interface Position {
  file: string;
  line: number;
  column: number;
  startLine: number;
}

interface EnclosingSite {
  getEnclosingLineNumber?: () => number | null;
  getEnclosingColumnNumber?: () => number | null;
  isPromiseAll?: () => boolean;
}

function position(cs: NodeJS.CallSite, raw: string): Position {
  let line = cs.getLineNumber() ?? 0;
  let column = cs.getColumnNumber() ?? 0;
  let startLine = (cs as EnclosingSite).getEnclosingLineNumber?.() ?? 0;
  const startColumn = (cs as EnclosingSite).getEnclosingColumnNumber?.() ?? 0;
  let file = raw;
  const map = raw ? sourceMapFor(raw) : null;
  if (map !== null && line > 0) {
    const e = map.findEntry(line - 1, Math.max(column - 1, 0)) as Partial<{ originalSource: string; originalLine: number; originalColumn: number }>;
    if (e.originalSource) {
      file = e.originalSource;
      line = (e.originalLine ?? 0) + 1;
      column = (e.originalColumn ?? 0) + 1;
      if (startLine > 0) {
        const s = map.findEntry(startLine - 1, Math.max(startColumn - 1, 0)) as Partial<{ originalSource: string; originalLine: number }>;
        startLine = s.originalSource === e.originalSource ? (s.originalLine ?? 0) + 1 : 0;
      }
    }
  }
  return { file: toPath(file), line, column, startLine };
}

function functionName(cs: NodeJS.CallSite, startLine: number): string {
  if ((cs as EnclosingSite).isPromiseAll?.()) return 'Promise.all';
  let fn = cs.getFunctionName();
  if (cs.isConstructor()) return `new ${fn || cs.getTypeName() || '<anonymous>'}`;
  if (!fn) {
    const method = cs.getMethodName();
    const startColumn = (cs as EnclosingSite).getEnclosingColumnNumber?.() ?? 0;
    if (method) fn = method;
    else if (cs.isToplevel() && ((cs as EnclosingSite).getEnclosingLineNumber?.() ?? 0) === 1 && startColumn === 1) fn = '(module)';
    else fn = startLine > 0 ? `(anonymous:L${startLine})` : '(anonymous)';
  }
  // The receiver's type names a method (`Cache.get`); a plain call's receiver is the global object or none.
  const type = cs.getTypeName();
  if (type && type !== 'Object' && type !== 'Function' && type !== 'global' && type !== 'Module' && !fn.startsWith(type + '.')) fn = `${type}.${fn}`;
  return fn;
}

/**
 * The resolved site of `cs` in `file`: two getters and a lookup once the position has been seen. Keyed by V8's
 * source position (a character offset): reading it costs a fraction of reading the line and column, which V8
 * computes from the script's line table (bench/stack-resolution.mjs). Code with no file (eval, new Function)
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

function newFrame(cs: NodeJS.CallSite, raw: string): Frame {
  const p = position(cs, raw);
  const name = functionName(cs, p.startLine);
  return intern(`${name}\0${p.file}\0${p.line}\0${p.column}`, name, p.file, p.line, p.column, p.startLine);
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
 * @internal Resolves a captured stack to frames, leaf first: the leaf `leaf` (a declared mutexprof method), then
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

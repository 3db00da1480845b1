// Stack capture and resolution.
//
// The release path only captures (new Error(): V8 records raw frames, formatting is lazy). Resolution into
// frames — CallSites, source maps, names — happens later, off the release path, when the recorder drains.
//
// A resolved stack is what a user can read: leaf first, a synthetic leaf naming the mutexprof method (as Go's
// leaf is always sync.(*Mutex).Unlock) at that method's real source line, then the user's frames. Dropped: the
// frames of every copy of mutexprof loaded in the process, Node's internal frames (node:internal/…, e.g. the
// microtask queue's or process.processTimers, which would split identical stacks), and the helpers compilers
// inject for `using` (esbuild's __callDispose, TypeScript's __disposeResources, and their inner next/fail).

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

interface Site {
  readonly type: string | null;
  readonly frame: Frame;
}

/** The process-wide frame tables (src/shared.ts): every copy interns into them and resolves alike. */
interface Frames {
  maxDepth: number;
  /** the directories of the loaded copies of mutexprof (src/ or dist/), whose frames are dropped */
  readonly roots: string[];
  readonly byKey: Map<string, Frame>;
  readonly byId: Frame[];
  /** file → position → the frames seen there (one per receiver type: an inherited method called on two classes) */
  readonly sites: Map<string, Map<number | string, Site[]>>;
  readonly maps: Map<string, SourceMap | null>;
  /** leaf name → its frame, or the method to find its source line from */
  readonly leaves: Map<string, Frame | ((...args: never[]) => unknown)>;
}

const tables = shared<Frames>('frames', () => ({
  maxDepth: 64,
  roots: [],
  byKey: new Map(),
  byId: [],
  sites: new Map(),
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

/** @internal Captures the current stack, cheaply (no formatting). */
export function capture(): Error {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = tables.maxDepth + 8; // room for the library's own frames, dropped in resolve()
  const e = new Error();
  Error.stackTraceLimit = limit;
  return e;
}

function callSites(e: Error): NodeJS.CallSite[] {
  const prepare = Error.prepareStackTrace;
  Error.prepareStackTrace = (_e, cs) => cs;
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

function isLibrary(raw: string): boolean {
  const roots = tables.roots;
  for (let i = 0; i < roots.length; i++) if (raw.startsWith(roots[i])) return true;
  return raw.startsWith('node:internal/');
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
    (method as (this: unknown) => unknown).call(receiver);
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
  if (!cs.isToplevel()) {
    const type = cs.getTypeName();
    if (type && type !== 'Object' && type !== 'Function' && type !== 'global' && type !== 'Module' && !fn.startsWith(type + '.')) fn = `${type}.${fn}`;
  }
  return fn;
}

function resolveSite(cs: NodeJS.CallSite, raw: string): Frame {
  let byPos = tables.sites.get(raw);
  if (byPos === undefined) tables.sites.set(raw, (byPos = new Map()));
  const line = cs.getLineNumber() ?? 0;
  const column = cs.getColumnNumber() ?? 0;
  // One number while it is exact (a minified one-line bundle has columns far beyond 2^20), else a string.
  const pos = line < 0x200000 ? line * 0x100000000 + column : `${line}:${column}`;
  const type = cs.isToplevel() ? null : cs.getTypeName();
  let seen = byPos.get(pos);
  if (seen !== undefined) {
    for (const s of seen) if (s.type === type) return s.frame;
  } else byPos.set(pos, (seen = []));
  const p = position(cs, raw);
  const name = functionName(cs, p.startLine);
  const frame = intern(`${name}\0${p.file}\0${p.line}\0${p.column}`, name, p.file, p.line, p.column, p.startLine);
  seen.push({ type, frame });
  return frame;
}

// The helpers compilers inject for `using`: esbuild's __callDispose and TypeScript's __disposeResources, emitted
// into the user's file (dropped by name, with their inner next/fail just before them); Babel's, oxc's (vite,
// vitest) and SWC's usingCtx, imported from their runtime packages (dropped by file).
const DISPOSE_HELPERS = new Set(['__callDispose', '__disposeResources']);
const HELPER_INNER = new Set(['next', 'fail']);
const HELPER_FILE = /(?:@babel|@oxc-project|@swc)[^/\\]*[/\\].*[uU]sing_?[cC]tx\.[cm]?js$/;

/**
 * @internal Resolves a captured stack to frames, leaf first: the leaf `leaf` (a declared mutexprof method), then
 * at most maxDepth of the user's frames.
 */
export function resolve(e: Error, leaf: string): Frame[] {
  const out: Frame[] = [leafFrame(leaf)];
  // frames named like a `using` helper's inner functions, dropped if the helper follows: [index in out, raw file]
  let inner: Array<[number, string]> | null = null;
  const max = tables.maxDepth;
  for (const cs of callSites(e)) {
    const raw = cs.getFileName() ?? '';
    if (isLibrary(raw) || HELPER_FILE.test(raw)) continue;
    const fn = cs.getFunctionName();
    if (fn !== null && DISPOSE_HELPERS.has(fn)) {
      while (inner !== null && inner.length > 0 && inner[inner.length - 1][0] === out.length - 1 && inner[inner.length - 1][1] === raw) {
        inner.pop();
        out.pop();
      }
      continue;
    }
    if (out.length > max) break;
    if (fn !== null && HELPER_INNER.has(fn)) (inner ??= []).push([out.length, raw]);
    out.push(resolveSite(cs, raw));
  }
  return out;
}

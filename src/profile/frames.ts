// Frames: a function at a source position, interned (one object per position, shared by every copy of mutexprof),
// read from V8's CallSites through the source maps Node knows, and the leaves: the frame naming the lock method a
// sample was taken in, at that method's real source line.

import { findSourceMap, type SourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';
import { leaves } from '../locks/seam.js';
import { shared } from '../shared/state.js';

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

/** The process-wide frame tables (src/shared/state.ts): every copy interns into them and resolves alike. */
interface Frames {
  readonly byKey: Map<string, Frame>;
  readonly byId: Frame[];
  readonly maps: Map<string, SourceMap | null>;
  /** leaf name → its frame */
  readonly leaves: Map<string, Frame>;
}

const tables = shared<Frames>('frames', () => ({ byKey: new Map(), byId: [], maps: new Map(), leaves: new Map() }));

const structured = (_e: Error, cs: NodeJS.CallSite[]): NodeJS.CallSite[] => cs;

/** The CallSites of a captured stack (V8's structured stack trace). */
export function callSites(e: { readonly stack?: unknown }): NodeJS.CallSite[] {
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

/** Frames by pseudo address, for symbolization of debug=1 text. */
export function frameAt(addr: number): Frame | undefined {
  if (addr < ADDR_BASE || (addr - ADDR_BASE) % ADDR_STEP !== 0) return undefined;
  return tables.byId[(addr - ADDR_BASE) / ADDR_STEP - 1];
}

/** A synthetic frame, e.g. the overflow sample's. */
export function syntheticFrame(name: string): Frame {
  return intern('synthetic:' + name, name, '', 0, 0, 0);
}

/** A frame for a function at a known position (e.g. read back from another process's profile). */
export function frameOf(name: string, file: string, line: number, column = 0, startLine = 0): Frame {
  return intern(`${name}\0${file}\0${line}\0${column}`, name, file, line, column, startLine);
}

/**
 * The frame of the leaf `name` ('Mutex.unlock'). A leaf the locks declared (src/locks/seam.ts) carries its
 * method's real source position, found when first needed, so that `go tool pprof -list` and the source view of
 * `-http` show the method; an undeclared one has none.
 */
export function leafFrame(name: string): Frame {
  const known = tables.leaves.get(name);
  if (known !== undefined) return known;
  const method = leaves.get(name);
  const at = name.indexOf('@');
  const shown = at < 0 ? name : name.slice(0, at);
  const pos = method === undefined ? null : methodPosition(shown, method);
  const f = pos === null ? intern(`leaf:${name}`, shown, '', 0, 0, 0) : intern(`leaf:${name}`, shown, pos.file, pos.line, pos.column, pos.startLine);
  tables.leaves.set(name, f);
  return f;
}

/**
 * Where `method` starts in the source: call it on a receiver that throws at the first touch (a Proxy, or V8's own
 * TypeError for a private field), and read the method's frame in that error's stack: the outermost frame of its
 * name (an override calling `super`'s method of the same name throws in the inner one). Every leaf method reads
 * `this` before doing anything else, or checks its arguments first: without arguments a method that reports bad
 * arguments by rejecting never touches `this`, so it is probed again with a key-like argument.
 */
function methodPosition(name: string, method: (...args: never[]) => unknown): Position | null {
  const error = probe(method, []) ?? probe(method, ['mutexprof-probe']);
  if (error === null) return null;
  // the frame of the method itself: its own name, which may differ from the leaf's ('KeyedMutex.unlock' is KeyMutex._unlock)
  const short = method.name !== '' ? method.name : name.slice(name.lastIndexOf('.') + 1);
  const sites = callSites(error);
  let cs: NodeJS.CallSite | undefined;
  for (const c of sites) if (c.getFunctionName() === short) cs = c;
  if (cs === undefined) return null;
  // The line of the method's first statement: a compiler's source map places it exactly, where the start of a
  // method's header may map to the comment above it.
  const p = position(cs, cs.getFileName() ?? '');
  return { ...p, startLine: p.startLine > 0 && p.startLine <= p.line ? p.startLine : p.line };
}

/** Calls `method` with `args` on a receiver that throws when touched: the error it threw, or null. */
function probe(method: (...args: never[]) => unknown, args: unknown[]): Error | null {
  const fail = (): never => {
    throw new Error('mutexprof: leaf probe');
  };
  const receiver = new Proxy({}, { get: fail, set: fail, has: fail, defineProperty: fail, deleteProperty: fail, getPrototypeOf: fail });
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 10;
  try {
    const r = (method as (this: unknown, ...a: unknown[]) => unknown).apply(receiver, args);
    // an async method rejects instead of throwing: keep that from going unhandled
    if (r instanceof Promise) r.catch(() => {});
    return null;
  } catch (e) {
    return e instanceof Error ? e : null;
  } finally {
    Error.stackTraceLimit = limit;
  }
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

/** The frame of CallSite `cs` in file `raw`. */
export function newFrame(cs: NodeJS.CallSite, raw: string): Frame {
  const p = position(cs, raw);
  const name = functionName(cs, p.startLine);
  return intern(`${name}\0${p.file}\0${p.line}\0${p.column}`, name, p.file, p.line, p.column, p.startLine);
}

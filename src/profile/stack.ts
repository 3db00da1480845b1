// Stack capture and resolution.
//
// The release path only captures (new Error(): V8 records raw frames, formatting is lazy). Resolution into
// frames — CallSites, source maps, names — happens later, off the release path, when the recorder drains.

import { findSourceMap, type SourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';

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

let maxDepth = 64;
/** @internal */
export function setMaxDepth(n: number): void {
  maxDepth = n;
}
export function getMaxDepth(): number {
  return maxDepth;
}

/** Captures the current stack, cheaply (no formatting). */
export function capture(): Error {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = maxDepth + 8; // room for the library's own frames, dropped in resolve()
  const e = new Error();
  Error.stackTraceLimit = limit;
  return e;
}

// The library's own files: everything under the directory holding this module (src/ or dist/).
const ownFile = callSites(new Error())[0]?.getFileName() ?? '';
function ownRoot(): string {
  let dir = ownFile.slice(0, ownFile.lastIndexOf('/'));
  if (dir.endsWith('/profile')) dir = dir.slice(0, -'/profile'.length);
  return dir + '/';
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

const root = ownRoot();
// The file named by leaf frames: the bundle (dist/index.js, dist/index.cjs) or, from sources, src/index.ts.
const leafFile = toPath(ownFile.endsWith('.ts') ? root + 'index.ts' : ownFile);
const frames = new Map<string, Frame>();
const byId = new Map<number, Frame>();
let nextId = 1;
const ADDR_BASE = 0x100000;
const ADDR_STEP = 0x10;

function intern(key: string, name: string, file: string, line: number, column: number, startLine: number): Frame {
  let f = frames.get(key);
  if (f === undefined) {
    const id = nextId++;
    f = Object.freeze({ id, name, file, line, column, startLine, addr: ADDR_BASE + id * ADDR_STEP });
    frames.set(key, f);
    byId.set(id, f);
  }
  return f;
}

/** Frames by pseudo address, for symbolization of debug=1 text. */
export function frameAt(addr: number): Frame | undefined {
  if (addr < ADDR_BASE || (addr - ADDR_BASE) % ADDR_STEP !== 0) return undefined;
  return byId.get((addr - ADDR_BASE) / ADDR_STEP);
}

/** A synthetic frame, e.g. the overflow sample. */
export function syntheticFrame(name: string): Frame {
  return intern('synthetic:' + name, name, '', 0, 0, 0);
}

const maps = new Map<string, SourceMap | null>();

function sourceMapFor(file: string): SourceMap | null {
  let m = maps.get(file);
  if (m === undefined) {
    m = null;
    if (process.sourceMapsEnabled !== false) {
      try {
        m = findSourceMap(file) ?? null;
      } catch {
        m = null;
      }
    }
    maps.set(file, m);
  }
  return m;
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

interface Position {
  file: string;
  line: number;
  column: number;
  startLine: number;
}

function position(cs: NodeJS.CallSite, raw: string): Position {
  let line = cs.getLineNumber() ?? 0;
  let column = cs.getColumnNumber() ?? 0;
  let startLine = (cs as { getEnclosingLineNumber?: () => number | null }).getEnclosingLineNumber?.() ?? 0;
  const startColumn = (cs as { getEnclosingColumnNumber?: () => number | null }).getEnclosingColumnNumber?.() ?? 0;
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
  if ((cs as { isPromiseAll?: () => boolean }).isPromiseAll?.()) return 'Promise.all';
  let fn = cs.getFunctionName();
  if (cs.isConstructor()) return `new ${fn || cs.getTypeName() || '<anonymous>'}`;
  if (!fn) {
    const method = cs.getMethodName();
    const startColumn = (cs as { getEnclosingColumnNumber?: () => number | null }).getEnclosingColumnNumber?.() ?? 0;
    if (method) fn = method;
    else if (cs.isToplevel() && ((cs as { getEnclosingLineNumber?: () => number | null }).getEnclosingLineNumber?.() ?? 0) === 1 && startColumn === 1) fn = '(module)';
    else fn = startLine > 0 ? `(anonymous:L${startLine})` : '(anonymous)';
  }
  if (!cs.isToplevel()) {
    const type = cs.getTypeName();
    if (type && type !== 'Object' && type !== 'Function' && type !== 'global' && !fn.startsWith(type + '.')) fn = `${type}.${fn}`;
  }
  return fn;
}

// Resolution cache: file → (line, column) → the frames seen there (usually one; more if the function or receiver
// type differs, e.g. an inherited method called on two classes).
const resolved = new Map<string, Map<number, { fn: string | null; type: string | null; frame: Frame }[]>>();

function resolveSite(cs: NodeJS.CallSite, raw: string): Frame {
  let byPos = resolved.get(raw);
  if (byPos === undefined) resolved.set(raw, (byPos = new Map()));
  const line = cs.getLineNumber() ?? 0;
  const pos = line * 0x100000 + (cs.getColumnNumber() ?? 0);
  let seen = byPos.get(pos);
  const fn = cs.getFunctionName();
  const type = cs.isToplevel() ? null : cs.getTypeName();
  if (seen !== undefined) {
    for (const s of seen) if (s.fn === fn && s.type === type) return s.frame;
  } else byPos.set(pos, (seen = []));
  const p = position(cs, raw);
  const name = functionName(cs, p.startLine);
  const frame = intern(`${name}\0${p.file}\0${p.line}\0${p.column}`, name, p.file, p.line, p.column, p.startLine);
  seen.push({ fn, type, frame });
  return frame;
}

/**
 * Resolves a captured stack to frames, leaf first: a synthetic leaf named `leaf` (the mutexprof method, as
 * Go's leaf is always sync.(*Mutex).Unlock), then the user's frames. The library's own frames and the
 * microtask-queue frame that separates sync from async frames are dropped.
 */
export function resolve(e: Error, leaf: string): Frame[] {
  const out: Frame[] = [intern(`leaf:${leaf}`, leaf, leafFile, 0, 0, 0)];
  for (const cs of callSites(e)) {
    const raw = cs.getFileName() ?? '';
    if (raw.startsWith(root) || raw === 'node:internal/process/task_queues') continue;
    if (out.length > maxDepth) break;
    out.push(resolveSite(cs, raw));
  }
  return out;
}

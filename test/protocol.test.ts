// Copies of mutexprof share one profiler through the slots of one registry (src/shared/state.ts), and agree on what a slot
// holds by PROTOCOL. A change to a slot's shape without a bump would let two copies misread each other's state: this
// test records each protocol's shapes (test/fixtures/protocol-shapes.json) and fails when the shapes under the current
// PROTOCOL differ from the recorded ones. After a bump, record the new shapes:
//   MUTEXPROF_RECORD_PROTOCOL=1 npx vitest run test/protocol.test.ts
import { AsyncLocalStorage } from 'node:async_hooks';
import { readFileSync, writeFileSync } from 'node:fs';
import { BroadcastChannel } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { describe, test, expect } from 'vitest';
import '../src/index.js';
import '../src/async-mutex/index.js';
import { PROTOCOL } from '../src/shared/state.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/protocol-shapes.json', import.meta.url));

type Shape = string | { [key: string]: Shape };

/** Node's classes: what they hold is Node's business (and differs between releases), their name is the shape. */
const NODE_CLASSES = new Set<unknown>([AsyncLocalStorage, BroadcastChannel, AbortController, Map, Set, WeakMap, WeakSet, Date, RegExp, Promise]);

/** What a value is, as another copy would rely on it: plain objects key by key, instances by class, fields and methods. */
function shapeOf(v: unknown, depth = 0): Shape {
  if (v === null) return 'null';
  if (typeof v !== 'object') return typeof v;
  if (Array.isArray(v)) return 'Array';
  const proto = Object.getPrototypeOf(v) as object | null;
  const name = proto === null ? 'null-prototype' : ((proto as { constructor?: { name?: string } }).constructor?.name ?? '?');
  if (proto !== null && NODE_CLASSES.has((proto as { constructor?: unknown }).constructor)) return name;
  if (depth >= 3) return name;
  const out: { [key: string]: Shape } = {};
  if (proto !== Object.prototype && proto !== null) {
    out['(class)'] = name;
    out['(methods)'] = Object.getOwnPropertyNames(proto)
      .filter((k) => k !== 'constructor')
      .sort()
      .join(',');
  }
  for (const k of Object.keys(v).sort()) out[k] = shapeOf((v as Record<string, unknown>)[k], depth + 1);
  return out;
}

describe('shared state', () => {
  test(`every slot's shape is the one recorded for PROTOCOL ${PROTOCOL}`, () => {
    const registry = (globalThis as Record<symbol, { protocol: number; slots: Map<string, unknown> }>)[Symbol.for('mutexprof')];
    expect(registry.protocol).toBe(PROTOCOL);
    const shapes = Object.fromEntries([...registry.slots.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, shapeOf(v)]));
    const recorded = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Record<string, Record<string, Shape>>;
    if (process.env.MUTEXPROF_RECORD_PROTOCOL === '1') {
      if (recorded[PROTOCOL] !== undefined && JSON.stringify(recorded[PROTOCOL]) !== JSON.stringify(shapes)) {
        throw new Error(`PROTOCOL ${PROTOCOL} is recorded with other shapes: bump PROTOCOL (src/shared/state.ts) rather than rewrite what copies of ${PROTOCOL} rely on`);
      }
      recorded[PROTOCOL] = shapes;
      writeFileSync(FIXTURE, JSON.stringify(recorded, null, 2) + '\n');
    }
    expect(recorded[PROTOCOL], `no shapes recorded for PROTOCOL ${PROTOCOL}: run MUTEXPROF_RECORD_PROTOCOL=1 npx vitest run test/protocol.test.ts`).toBeDefined();
    expect(shapes, `a shared slot changed shape: bump PROTOCOL in src/shared/state.ts, then record the new shapes (see the top of this file)`).toEqual(recorded[PROTOCOL]);
  });
});

// Every test file: a warning that mutexprof (or Node, about what mutexprof does: listeners, timers) prints and no
// test collected fails the test that caused it, so that `npm test` prints nothing that looks like a failure. Tests
// that expect a warning collect it with captureWarnings() (test/helpers.ts), which sets this listener aside.
import { afterEach, expect } from 'vitest';

const ours = (w: Error & { code?: string }): boolean => w.code?.startsWith('MUTEXPROF_') === true || w.name === 'MaxListenersExceededWarning' || w.name === 'TimeoutOverflowWarning';
let unexpected: string[] = [];
process.on('warning', (w: Error & { code?: string }) => {
  if (ours(w)) unexpected.push(`${w.name}${w.code ? ` [${w.code}]` : ''}: ${w.message}`);
});

afterEach(async () => {
  await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
  const seen = unexpected;
  unexpected = [];
  expect(seen, 'warnings printed by this test (collect expected ones with captureWarnings)').toEqual([]);
});

// The flame graph's tree (src/http/ui.ts): built from a snapshot, by sample type and lock.
import { test, expect } from 'vitest';
import { flameData, jsonChunks } from '../src/http/ui.js';
import { frameOf } from '../src/profile/frames.js';
import type { ProfileSnapshot } from '../src/index.js';

const f = (name: string, line = 1): ReturnType<typeof frameOf> => frameOf(name, '/app/x.ts', line);

const snapshot: ProfileSnapshot = {
  name: 'mutex',
  timeNanos: 0n,
  durationNanos: 0,
  comments: ['a note'],
  samples: [
    // leaf first, as profiles keep stacks
    { key: 'a', frames: [f('Mutex.unlock'), f('refill'), f('handler')], labels: [['lock', 'cache']], values: [2, 300] },
    { key: 'b', frames: [f('Mutex.unlock'), f('refill', 9), f('handler')], labels: [['lock', 'cache']], values: [1, 100] },
    { key: 'c', frames: [f('RWMutex.unlock'), f('reload'), f('handler')], labels: [['lock', 'settings']], values: [5, 50] },
    { key: 'd', frames: [f('Mutex.unlock'), f('other')], labels: [], values: [1, 7] },
  ],
};

test('root to leaf, over every lock one level per lock first, functions merged by name and file (lines apart are one frame), values summed', async () => {
  const d = await flameData(snapshot, 1, null);
  expect(d.total).toBe(457);
  expect(d.tree.value).toBe(457);
  expect(d.tree.children.map((c) => [c.name, c.value])).toEqual([
    ['lock cache', 400],
    ['lock settings', 50],
    ['unnamed locks', 7],
  ]);
  // Mutex.unlock of lock cache and of the unnamed lock are apart: the chart says which lock each frame is of
  const cache = d.tree.children[0].children.find((c) => c.name === 'handler')!;
  expect(cache.value).toBe(400);
  expect(cache.children.map((c) => [c.name, c.value])).toEqual([['refill', 400]]);
  expect(cache.children[0].children).toEqual([{ name: 'Mutex.unlock', file: '/app/x.ts', value: 400, children: [] }]);
  expect(d.tree.children[2].children.map((c) => c.name)).toEqual(['other']);
  expect(d.locks).toEqual([
    { name: 'cache', value: 400 },
    { name: 'settings', value: 50 },
    { name: '', value: 7 },
  ]);
  expect(d.comments).toEqual(['a note']);
});

test('one lock, or the unnamed ones; counts instead of delay', async () => {
  const settings = await flameData(snapshot, 0, 'settings');
  expect(settings.total).toBe(5);
  expect(JSON.stringify(settings.tree)).not.toContain('refill');
  expect(settings.locks.map((l) => l.value)).toEqual([5, 3, 1]); // every lock's count, for the filter's list
  const unnamed = await flameData(snapshot, 1, '');
  expect(unnamed.total).toBe(7);
  expect(unnamed.tree.children.map((c) => c.name)).toEqual(['other']);
});

test('data.json is written in chunks, node by node: the same data as JSON.stringify writes', async () => {
  const d = await flameData(snapshot, 1, null);
  const data = { ...d, profiles: ['mutex'], sampleTypes: [{ type: 'delay', unit: 'nanoseconds' }], value: 'delay', comments: ['a "quoted" note'], seconds: 0 };
  const chunks = await jsonChunks(data);
  expect(JSON.parse(Buffer.concat(chunks).toString())).toEqual(JSON.parse(JSON.stringify(data)));
});

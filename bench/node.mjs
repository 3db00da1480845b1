// Another Node release for the service benchmark: node bench/node.mjs <major>, or `npm run bench -- --node=<major>`.
// The newest release of that line, fetched from the npm registry by .ci/node.mjs (which the tests share). Node 20 runs
// AsyncLocalStorage on promise hooks (withLabels and deadlock detection pay one per promise); Node 24 runs it on
// AsyncContextFrame, which costs almost nothing per promise: the service benchmark under each shows what that changes.
import { fileURLToPath } from 'node:url';
import { newest, nodeBinary as exact, pinned, compareVersions } from '../.ci/node.mjs';

/**
 * The flags of a Node whose instructions are counted under valgrind (bench/instructions.mjs, bench/wait-instructions.mjs):
 * the collector and the optimizing compiler on the main thread, in an order that does not depend on other threads'
 * timing, and none of V8's heuristics that go by the clock (a process 30–110× slower would see its allocation rate fall,
 * and the memory reducer collect, bytecode be flushed and compiled again).
 */
export const COUNTED_NODE_FLAGS = ['--single-threaded', '--no-memory-reducer', '--no-flush-bytecode'];

/** The path of a Node binary of release line `major` (e.g. '24'): the pinned one if the tests pin one, else the newest. */
export function nodeBinary(major) {
  if (!/^\d+$/.test(String(major))) throw new Error(`bench: --node=<major>: a release line such as 24, got ${JSON.stringify(major)}`);
  const mine = pinned
    .filter((v) => v.split('.')[0] === String(major))
    .sort(compareVersions)
    .at(-1);
  return exact(mine ?? newest(major));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (!process.argv[2]) {
    console.error('usage: node bench/node.mjs <major>');
    process.exit(2);
  }
  console.log(nodeBinary(process.argv[2]));
}

// npm test's last step: the suites again on every other Node release CI supports (.ci/nodes.json: the newest 22.x
// and 24.x, and the newest major), each fetched once from the npm registry (.ci/node.mjs). The browser test is left
// out there: the page it drives does not depend on the server's Node. Processes the tests start run on the same
// release (process.execPath, and `node` on PATH for npm and npx).
import { spawnSync } from 'node:child_process';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeBinary, pinned } from '../.ci/node.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const failed = [];
for (const version of pinned) {
  const bin = nodeBinary(version);
  console.log(`\nNode ${version}:`);
  const r = spawnSync(bin, ['node_modules/vitest/vitest.mjs', 'run', '--reporter=dot', '--exclude=test/ui.test.ts'], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, PATH: `${dirname(bin)}:${process.env.PATH}`, MUTEXPROF_OTHER_NODE: '1' },
  });
  if (r.status !== 0) failed.push(version);
}
if (failed.length > 0) {
  console.error(`\nthe tests failed on Node ${failed.join(', ')}`);
  process.exit(1);
}
console.log(`\nthe tests passed on Node ${process.versions.node} and ${pinned.join(', ')}`);

// The tests leave nothing behind: no temp dirs (every test's are named mutexprof-*, and the processes they start
// with tsx keep no compile cache in tmpdir), nothing in node_modules.
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const ours = (): string[] => readdirSync(tmpdir()).filter((n) => n.startsWith('mutexprof-') || n.startsWith('tsx-'));

export default function setup(): () => void {
  process.env.TSX_DISABLE_CACHE = '1'; // inherited by the test workers, and by the processes they start
  const before = new Set(ours());
  return () => {
    const left = ours().filter((n) => !before.has(n));
    const problems: string[] = [];
    if (left.length > 0) problems.push(`the tests left temp dirs behind: ${left.map((n) => join(tmpdir(), n)).join(', ')}`);
    if (existsSync(join(root, 'node_modules', 'mutexprof'))) problems.push('the tests left node_modules/mutexprof behind');
    if (problems.length > 0) {
      // vitest reports an error thrown here but still exits 0: fail the run explicitly
      console.error(problems.join('\n'));
      process.exitCode = 1;
    }
  };
}

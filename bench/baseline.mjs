// Builds another revision of mutexprof for side-by-side benchmarks: node bench/baseline.mjs <rev>
// writes bench/.baseline/<rev>/dist (git-ignored); `npm run bench -- --baseline=<rev>` then runs it beside the
// working tree's build, in one process, so that "no slower than before" is a ratio from one run.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const rev = process.argv[2];
if (!rev) {
  console.error('usage: node bench/baseline.mjs <git revision>');
  process.exit(2);
}
const out = join(root, 'bench', '.baseline', rev, 'dist');
if (existsSync(out)) {
  console.log(out);
  process.exit(0);
}
const tree = mkdtempSync(join(tmpdir(), 'mutexprof-baseline-'));
try {
  execFileSync('git', ['worktree', 'add', '--detach', tree, rev], { cwd: root, stdio: 'ignore' });
  symlinkSync(join(root, 'node_modules'), join(tree, 'node_modules'));
  execFileSync(join(root, 'node_modules', '.bin', 'tsup'), ['--silent'], { cwd: tree, stdio: 'inherit' });
  cpSync(join(tree, 'dist'), out, { recursive: true });
  console.log(out);
} finally {
  execFileSync('git', ['worktree', 'remove', '--force', tree], { cwd: root, stdio: 'ignore' });
  rmSync(tree, { recursive: true, force: true });
}

// npm's `prepare`: builds dist/ wherever this package is installed from its sources. npm runs it after
// `npm install` in this repository, before `npm pack` and `npm publish`, for `npm install <git url>` (with the
// devDependencies installed), and for `npm install <path to a clone>`, in the clone, without them: there the
// build tools are installed first, into the clone's own node_modules (nothing is saved to package.json).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const run = (cmd, args) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  if (r.status !== 0) process.exit(r.status ?? 1);
};
if (!existsSync(join(root, 'node_modules', 'tsup'))) run('npm', ['install', '--no-save', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error']);
run(join(root, 'node_modules', '.bin', 'tsup'), ['--silent']);

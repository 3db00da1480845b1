// Another Node release for the service benchmark: node bench/node.mjs <major>, or `npm run bench -- --node=<major>`.
// Fetches the release's binary from the npm registry (the node-<platform>-<arch> packages the `node` package
// installs) into bench/.node/<version>/ (git-ignored) and prints its path. Node 20 runs AsyncLocalStorage on promise
// hooks (withLabels and deadlock detection pay one per promise); Node 24 runs it on AsyncContextFrame, which costs
// almost nothing per promise: the service benchmark under each shows what that changes.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The path of a Node binary of release line `major` (e.g. '24'), fetched once. */
export function nodeBinary(major) {
  if (!/^\d+$/.test(String(major))) throw new Error(`bench: --node=<major>: a release line such as 24, got ${JSON.stringify(major)}`);
  const pkg = `node-${process.platform}-${process.arch}@${major}`;
  const cache = join(root, 'bench', '.node');
  const have = existsSync(cache) ? readdirSync(cache).filter((d) => d.startsWith(`${major}.`)) : [];
  if (have.length > 0) return join(cache, have.sort().at(-1), 'bin', 'node');
  const tmp = mkdtempSync(join(tmpdir(), 'mutexprof-node-'));
  try {
    const tgz = execFileSync('npm', ['pack', pkg, '--silent', '--pack-destination', tmp], { encoding: 'utf8' }).trim().split('\n').at(-1);
    execFileSync('tar', ['xzf', join(tmp, tgz), '-C', tmp]);
    const bin = join(tmp, 'package', 'bin', 'node');
    const version = execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim().slice(1);
    mkdirSync(cache, { recursive: true });
    renameSync(join(tmp, 'package'), join(cache, version));
    return join(cache, version, 'bin', 'node');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (!process.argv[2]) {
    console.error('usage: node bench/node.mjs <major>');
    process.exit(2);
  }
  console.log(nodeBinary(process.argv[2]));
}

// Node releases other than the one running, for the tests (npm test runs them on each release in .ci/nodes.json)
// and the service benchmark (bench --node=<major>). A release is the npm registry's `node-<platform>-<arch>`
// package at an exact version, fetched once into node_modules/.cache/mutexprof-node/<version>/.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const cache = join(root, 'node_modules', '.cache', 'mutexprof-node');
const pkg = `node-${process.platform}-${process.arch}`;

/** The pinned releases the tests also run on (.ci/nodes.json). */
export const pinned = JSON.parse(readFileSync(join(root, '.ci', 'nodes.json'), 'utf8'));

/** Compares two versions as versions ('24.9.0' < '24.22.3'), not as strings. */
export function compareVersions(a, b) {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

/** The newest version of release line `major` the npm registry has (or of all lines, with 'latest'). */
export function newest(major) {
  const all = JSON.parse(execFileSync('npm', ['view', pkg, 'versions', '--json'], { encoding: 'utf8' }));
  const line = major === 'latest' ? all : all.filter((v) => v.split('.')[0] === String(major));
  if (line.length === 0) throw new Error(`no ${pkg} release of Node ${major} on the npm registry`);
  return line.sort(compareVersions).at(-1);
}

/** The path of the Node binary of exact `version` (e.g. '24.22.3'), fetched once. */
export function nodeBinary(version) {
  if (!/^\d+\.\d+\.\d+$/.test(version)) throw new Error(`an exact Node version such as 24.22.3, got ${JSON.stringify(version)}`);
  const bin = join(cache, version, 'bin', 'node');
  if (existsSync(bin)) return bin;
  mkdirSync(cache, { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), 'mutexprof-node-'));
  try {
    const tgz = execFileSync('npm', ['pack', `${pkg}@${version}`, '--silent', '--pack-destination', tmp], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .at(-1);
    execFileSync('tar', ['xzf', join(tmp, tgz), '-C', tmp]);
    const got = execFileSync(join(tmp, 'package', 'bin', 'node'), ['--version'], { encoding: 'utf8' }).trim();
    if (got !== `v${version}`) throw new Error(`${pkg}@${version} runs as ${got}`);
    renameSync(join(tmp, 'package'), join(cache, version));
    return bin;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // node .ci/node.mjs: the pinned releases and the newest of each line, to update .ci/nodes.json by hand
  for (const v of pinned) console.log(`${v}\tnewest of its line: ${newest(v.split('.')[0])}`);
  console.log(`newest release: ${newest('latest')}`);
}

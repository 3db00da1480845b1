// npm run test:profile: this repository's own unit tests, profiled as `go test -mutexprofile` profiles a Go package's:
// the mutex, block and hold profiles of the whole run (every vitest worker, merged) written to profiles/, for
// `go tool pprof -top profiles/mutex.pb.gz`. The tests set rates of their own as they go: the files hold what the
// run recorded under them.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const register = fileURLToPath(new URL('../dist/register.js', import.meta.url));
const child = spawn(process.execPath, [fileURLToPath(new URL('../node_modules/vitest/vitest.mjs', import.meta.url)), 'run', ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  env: {
    ...process.env,
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${register}`.trim(),
    MUTEXPROF_MUTEXPROFILE: 'profiles/mutex.pb.gz',
    MUTEXPROF_BLOCKPROFILE: 'profiles/block.pb.gz',
    MUTEXPROF_HOLDPROFILE: 'profiles/hold.pb.gz',
    MUTEXPROF_DEBUG_RUN: '1',
  },
});
child.on('exit', (code) => {
  console.log('\nprofiles/mutex.pb.gz, profiles/block.pb.gz, profiles/hold.pb.gz: go tool pprof -top profiles/mutex.pb.gz');
  process.exit(code ?? 1);
});

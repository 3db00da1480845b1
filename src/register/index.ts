// mutexprof/register: profiles with no code change. `node --import mutexprof/register app.js` (ES modules) or
// `node --require mutexprof/register app.cjs` (CommonJS), or either in NODE_OPTIONS, and the environment says what to
// do (src/register/env.ts, the README's table): the rates, lock tracking and deadlock detection, a /debug/pprof
// server, a Pyroscope push, the profile files of a run, the substitution of the drop-in for async-mutex.
//
// A bad variable stops the process before the application runs, with a message that names it. The server and the
// pusher keep nothing alive: an application that would exit exits, and the pusher sends its last window first.

import { writeSync } from 'node:fs';
import { start } from '../start.js';
import { configureFromEnv } from './configure.js';
import { ConfigError } from './env.js';

start();
try {
  configureFromEnv(process.env);
} catch (e) {
  if (!(e instanceof ConfigError)) throw e;
  writeSync(2, `${e.message}\n`);
  process.exit(9); // as Node exits for an invalid argument
}

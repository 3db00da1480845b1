// What loading mutexprof does, once per entry point of a copy: its locks' observers installed, the profiles
// registered, a cluster worker's answer to the primary's requests for them, and a test run's profiles joined.

import { answerClusterPrimary } from './cluster/peers.js';
import { installObservers } from './observers.js';
import { registerLocksProfile } from './pprof/locks.js';
import { registerRecordedProfiles } from './pprof/recorded.js';
import { configureFromEnv } from './register/configure.js';

let started = false;

export function start(): void {
  if (started) return;
  started = true;
  installObservers();
  registerRecordedProfiles();
  registerLocksProfile();
  answerClusterPrimary();
  // a thread of a profiled test run (MUTEXPROF_SPOOL, see src/register/testrun.ts) that no preload reached joins it
  if (process.env.MUTEXPROF_SPOOL !== undefined) {
    try {
      configureFromEnv(process.env);
    } catch (e) {
      process.emitWarning(`mutexprof: this thread is not part of the run's profiles: ${e instanceof Error ? e.message : String(e)}`, { code: 'MUTEXPROF_REGISTER' });
    }
  }
}

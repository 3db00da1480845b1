// What loading mutexprof does, once per entry point of a copy: its locks' observers installed, the profiles
// registered, and a cluster worker's answer to the primary's requests for them.

import { answerClusterPrimary } from './cluster/peers.js';
import { installObservers } from './observers.js';
import { registerLocksProfile } from './pprof/locks.js';
import { registerRecordedProfiles } from './pprof/recorded.js';

let started = false;

export function start(): void {
  if (started) return;
  started = true;
  installObservers();
  registerRecordedProfiles();
  registerLocksProfile();
  answerClusterPrimary();
}

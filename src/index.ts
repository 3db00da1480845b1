// mutexprof: async locks whose contention is profiled the way Go profiles sync.Mutex.
//
// Layers, each a folder, each importing only the ones above it in this list (eslint.config.js checks it; see
// docs/design.md):
//   shared/       process-wide state (one profiler however many copies are loaded) and argument checks;
//   locks/        the locks, and their seam (locks/seam.ts): the hooks they call and the views they give;
//   profile/      the recording: sampling, the contention accounting, stacks, labels, the bounded recorders;
//   diagnostics/  the live state: acquisition records, queryLocks, the stall watchdog, deadlock detection;
//   pprof/        the registry of profiles and their encodings (protobuf, legacy text);
//   cluster/      profiles of other processes and threads: asked over IPC / BroadcastChannel, merged;
//   http/         /debug/pprof: the endpoint, the flame-graph page, and the three ways to mount it;
//   exporters/    to the fleet: Prometheus metrics, Pyroscope push.
// observers.ts implements the locks' seam with the profiles and diagnostics; start.ts is what loading does.
// async-mutex/ is the drop-in for async-mutex (its own entry point, mutexprof/async-mutex).
// Events travel the other way: a lock tells its seam, the observers record, the endpoint and exporters read.

import { start } from './start.js';

export { Mutex } from './locks/mutex.js';
export { RWMutex } from './locks/rwmutex.js';
export { Semaphore, type AcquireOptions } from './locks/semaphore.js';
export { KeyedMutex, type KeyedMutexOptions, type LockKey } from './locks/keyed.js';
export type { Guard, LockOptions, MutexOptions } from './locks/options.js';
export type { LockMode } from './locks/seam.js';
export { setMutexProfileFraction, setBlockProfileRate, setBlockProfileFraction } from './profile/sampling.js';
export { configureProfiler, type ProfilerConfig } from './profile/config.js';
export { withLabels, type LabelSet } from './profile/labels.js';
export type { Frame } from './profile/stack.js';
export { queryLocks, setLockTracking, setHoldProfileFraction, type LockState } from './diagnostics/query.js';
export { watchLocks, type StallReport, type WatchOptions } from './diagnostics/watch.js';
export { setDeadlockDetection, detachedTask, DeadlockError, type DeadlockLink, type DeadlockReport } from './diagnostics/deadlock.js';
export { lookup, profiles, allProfiles, deltaSnapshot, type LockProfile, type ContentionProfile, type ProfileSnapshot, type ProfileSample, type SampleType } from './pprof/registry.js';
export { pprofHandler, pprofRouter, startPprofServer, type PprofRequestHandler, type PprofServerOptions } from './http/mount.js';
export { collectLockMetrics, type LockMetricsOptions, type MetricsRegistry } from './exporters/prometheus.js';
export { startProfilePush, type ProfilePush, type ProfilePushOptions, type ProfilePushStopOptions, type PushOutcome } from './exporters/pyroscope.js';
export type { PprofOptions } from './http/endpoint.js';
export { shareProfilesWithMainThread } from './cluster/peers.js';

start();

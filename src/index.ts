// mutexprof: async locks whose contention is profiled the way Go profiles sync.Mutex.
//
// Layers, data flowing one way (each a folder):
//   locks/        the locks: FIFO queue and abort (waitqueue), the contended path and its accounting
//                 (contention), Mutex, RWMutex, Semaphore, KeyedMutex; they report events to →
//   profile/      the recording: sampling decisions, stack capture and resolution, labels, the bounded recorder;
//   diagnostics/  the live state: acquisition records, queryLocks, the stall watchdog, deadlock detection →
//   pprof/        the registry of profiles and their encodings (protobuf, legacy text) →
//   cluster/      profiles of other processes and threads: asked over IPC / BroadcastChannel, merged →
//   http/         /debug/pprof: the endpoint, the flame-graph page, and the three ways to mount it;
//   exporters/    to the fleet: Prometheus metrics, Pyroscope push.
// async-mutex/ is the drop-in for async-mutex (its own entry point, mutexprof/async-mutex).
// Process-wide state lives in src/shared.ts, so that every copy of mutexprof in a process shares one profiler.

import { registerRecordedProfiles } from './pprof/recorded.js';
import { registerLocksProfile } from './pprof/locks.js';
import { answerClusterPrimary } from './cluster/peers.js';

export { Mutex } from './locks/mutex.js';
export { RWMutex } from './locks/rwmutex.js';
export { Semaphore, type AcquireOptions } from './locks/semaphore.js';
export { KeyedMutex, type KeyedMutexOptions, type LockKey } from './locks/keyed.js';
export type { Guard, LockOptions, MutexOptions } from './locks/options.js';
export { setMutexProfileFraction, setBlockProfileRate, setBlockProfileFraction } from './profile/sampling.js';
export { configureProfiler, type ProfilerConfig } from './profile/recorder.js';
export { withLabels, type LabelSet } from './profile/labels.js';
export type { Frame } from './profile/stack.js';
export { queryLocks, setLockTracking, setHoldProfileFraction, type LockState } from './diagnostics/query.js';
export type { LockMode } from './diagnostics/acquisitions.js';
export { watchLocks, type StallReport, type WatchOptions } from './diagnostics/watch.js';
export { setDeadlockDetection, detachedTask, DeadlockError, type DeadlockLink, type DeadlockReport } from './diagnostics/deadlock.js';
export { lookup, profiles, allProfiles, deltaSnapshot, type LockProfile, type ContentionProfile, type ProfileSnapshot, type ProfileSample, type SampleType } from './pprof/registry.js';
export { pprofHandler, pprofRouter, startPprofServer, type PprofRequestHandler, type PprofServerOptions } from './http/mount.js';
export { collectLockMetrics, type LockMetricsOptions, type MetricsRegistry } from './exporters/prometheus.js';
export { startProfilePush, type ProfilePush, type ProfilePushOptions, type ProfilePushStopOptions, type PushOutcome } from './exporters/pyroscope.js';
export type { PprofOptions } from './http/endpoint.js';
export { shareProfilesWithMainThread } from './cluster/peers.js';

registerRecordedProfiles();
registerLocksProfile();
answerClusterPrimary();

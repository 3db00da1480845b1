// mutexprof: async Mutex and RWMutex whose contention is profiled the way Go profiles sync.Mutex.
//
// Layers, data flowing one way: the locks (mutex.ts, rwmutex.ts, waitqueue.ts) report events → the recorder
// (profile/recorder.ts) samples and aggregates → the encoders (profile/pprof.ts, profile/text.ts) read it →
// the HTTP layer (http/) serves them.

export { Mutex } from './mutex.js';
export { RWMutex } from './rwmutex.js';
export type { Guard, LockOptions, MutexOptions } from './waitqueue.js';
export { setMutexProfileFraction, setBlockProfileRate, configureProfiler, type ProfilerConfig, type Entry } from './profile/recorder.js';
export { withLabels, type LabelSet } from './profile/labels.js';
export type { Frame } from './profile/stack.js';
export { lookup, allProfiles, deltaSnapshot, type ContentionProfile, type ProfileSnapshot } from './profile/lookup.js';
export { pprofHandler, pprofRouter, startPprofServer, type PprofRequestHandler, type PprofServerOptions } from './http/handlers.js';
export type { PprofOptions } from './http/pprof.js';

// What mutexprof/register does with its settings, once per process or thread (src/register/index.ts runs it at
// start-up; a worker thread of a profiled test run, which no preload reaches, runs it when it loads mutexprof).

import cluster from 'node:cluster';
import { isMainThread } from 'node:worker_threads';
import { shared } from '../shared/state.js';
import { configureProfiler } from '../profile/config.js';
import { setBlockProfileFraction, setBlockProfileRate, setMutexProfileFraction } from '../profile/sampling.js';
import { setDeadlockDetection } from '../diagnostics/deadlock.js';
import { setHoldProfileFraction, setLockTracking } from '../diagnostics/query.js';
import { startPprofServer } from '../http/mount.js';
import { startProfilePush } from '../exporters/pyroscope.js';
import { readConfig, type RegisterConfig } from './env.js';
import { instrumentAsyncMutex } from './instrument.js';
import { joinRun } from './testrun.js';

function configure(config: RegisterConfig): void {
  const files = config.files;
  const run = files.mutex !== null || files.block !== null || files.hold !== null;
  // a run's profiles record every event, as go test -mutexprofile and -blockprofile do, unless told otherwise
  setMutexProfileFraction(config.mutexFraction ?? (files.mutex !== null ? 1 : 0));
  setBlockProfileRate(config.blockRate ?? (files.block !== null ? 1 : 0));
  if (config.blockFraction !== undefined) setBlockProfileFraction(config.blockFraction);
  setHoldProfileFraction(config.holdFraction ?? (files.hold !== null ? 1 : 0));
  if (config.maxSampledPerSecond !== undefined) configureProfiler({ maxSampledPerSecond: config.maxSampledPerSecond });
  if (config.maxDepth !== undefined) configureProfiler({ maxDepth: config.maxDepth });
  if (config.tracking !== undefined) setLockTracking(config.tracking);
  if (config.deadlock !== undefined) setDeadlockDetection(config.deadlock);
  if (config.instrument) instrumentAsyncMutex();
  if (run) joinRun(files);
  // one server and one pusher per process: its main thread's (a cluster's workers answer their primary instead)
  if (!isMainThread) return;
  if (config.pprof !== null && !cluster.isWorker) {
    startPprofServer({ ...config.pprof, cluster: config.cluster }).then(
      (server) => server.unref(),
      (e: unknown) => warn(`MUTEXPROF_PPROF_ADDR: cannot serve /debug/pprof on ${config.pprof!.host}:${config.pprof!.port}: ${e instanceof Error ? e.message : String(e)}`),
    );
  }
  if (config.pyroscope !== null) {
    const { url, appName, labels, intervalMs } = config.pyroscope;
    const push = startProfilePush({ url, appName, labels: cluster.isWorker ? { ...labels, worker: String(cluster.worker?.id ?? '') } : labels, intervalMs });
    process.once('beforeExit', () => void push.stop());
  }
}

function warn(message: string): void {
  process.emitWarning(`mutexprof/register: ${message}`, { code: 'MUTEXPROF_REGISTER' });
}

const once = shared('register', () => ({ done: false }));

/** Reads the environment and applies it, once per process or thread. Throws a ConfigError naming a bad variable, before anything is set. */
export function configureFromEnv(env: Readonly<Record<string, string | undefined>>): void {
  if (once.done) return;
  const config = readConfig(env);
  once.done = true;
  configure(config);
}

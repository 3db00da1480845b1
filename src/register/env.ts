// mutexprof/register's settings: environment variables, read and checked all at once before anything is set, so
// that a bad value stops the process with a message naming the variable and never leaves it half-configured.

/** The settings register applies (see the README's table: one row per variable). */
export interface RegisterConfig {
  mutexFraction: number | undefined;
  blockRate: number | undefined;
  blockFraction: number | undefined;
  holdFraction: number | undefined;
  maxSampledPerSecond: number | undefined;
  maxDepth: number | undefined;
  tracking: 'off' | 'on' | 'stacks' | undefined;
  deadlock: 'off' | 'warn' | 'throw' | undefined;
  /** where to serve /debug/pprof, or null */
  pprof: { host: string; port: number } | null;
  /** a node:cluster primary serves the merged profile */
  cluster: boolean;
  pyroscope: { url: string; appName: string; labels: Record<string, string>; intervalMs: number | undefined } | null;
  /** the files to write when a run ends, per profile */
  files: { mutex: string | null; block: string | null; hold: string | null };
  /** substitute the drop-in for async-mutex */
  instrument: boolean;
}

/** The variables register reads, in the order the README lists them. */
export const VARIABLES = [
  'MUTEXPROF_MUTEX_FRACTION',
  'MUTEXPROF_BLOCK_RATE',
  'MUTEXPROF_BLOCK_FRACTION',
  'MUTEXPROF_HOLD_FRACTION',
  'MUTEXPROF_MAX_SAMPLED_PER_SECOND',
  'MUTEXPROF_MAX_DEPTH',
  'MUTEXPROF_LOCK_TRACKING',
  'MUTEXPROF_DEADLOCK',
  'MUTEXPROF_PPROF_ADDR',
  'MUTEXPROF_CLUSTER',
  'MUTEXPROF_PYROSCOPE_URL',
  'MUTEXPROF_PYROSCOPE_APP',
  'MUTEXPROF_PYROSCOPE_LABELS',
  'MUTEXPROF_PYROSCOPE_INTERVAL_MS',
  'MUTEXPROF_MUTEXPROFILE',
  'MUTEXPROF_BLOCKPROFILE',
  'MUTEXPROF_HOLDPROFILE',
  'MUTEXPROF_INSTRUMENT',
] as const;

type Env = Readonly<Record<string, string | undefined>>;

/** A bad variable: its name, its value, and what it must be. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    value: string,
    must: string,
  ) {
    super(`mutexprof/register: ${variable}=${JSON.stringify(value)}: ${must}`);
    this.name = 'ConfigError';
  }
}

function get(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function integer(env: Env, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const v = get(env, name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new ConfigError(name, v, `must be an integer in ${min}..${max === Number.MAX_SAFE_INTEGER ? '∞' : max}`);
  return Number(v);
}

function oneOf<T extends string>(env: Env, name: string, values: readonly T[]): T | undefined {
  const v = get(env, name);
  if (v === undefined) return undefined;
  if (!(values as readonly string[]).includes(v)) throw new ConfigError(name, v, `must be one of ${values.join(', ')}`);
  return v as T;
}

function address(env: Env, name: string): { host: string; port: number } | null {
  const v = get(env, name);
  if (v === undefined) return null;
  // "6060", ":6060" (loopback), "127.0.0.1:6060", "[::1]:6060", "0.0.0.0:6060" (every interface: said explicitly)
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[^:[\]]*):)?(\d{1,5})$/.exec(v);
  const port = m === null ? NaN : Number(m[2]);
  if (m === null || port > 65535) throw new ConfigError(name, v, 'must be [host:]port, e.g. 127.0.0.1:6060 (the host defaults to loopback)');
  const host = m[1] === undefined || m[1] === '' ? '127.0.0.1' : m[1].replace(/^\[|\]$/g, '');
  return { host, port };
}

function labels(env: Env, name: string): Record<string, string> {
  const v = get(env, name);
  const out: Record<string, string> = {};
  if (v === undefined) return out;
  for (const pair of v.split(',')) {
    const i = pair.indexOf('=');
    const k = pair.slice(0, i).trim();
    if (i <= 0 || k === '') throw new ConfigError(name, v, 'must be key=value pairs separated by commas, e.g. env=prod,region=eu');
    out[k] = pair.slice(i + 1).trim();
  }
  return out;
}

/** Reads and checks every variable; throws a ConfigError naming the first bad one. */
export function readConfig(env: Env): RegisterConfig {
  const budget = get(env, 'MUTEXPROF_MAX_SAMPLED_PER_SECOND');
  if (budget !== undefined && budget !== 'Infinity' && !(Number(budget) >= 1)) {
    throw new ConfigError('MUTEXPROF_MAX_SAMPLED_PER_SECOND', budget, 'must be a number ≥ 1, or Infinity');
  }
  const url = get(env, 'MUTEXPROF_PYROSCOPE_URL');
  const app = get(env, 'MUTEXPROF_PYROSCOPE_APP');
  if (url !== undefined && !/^https?:\/\/./.test(url)) throw new ConfigError('MUTEXPROF_PYROSCOPE_URL', url, 'must be an http or https URL');
  if (url !== undefined && app === undefined) throw new ConfigError('MUTEXPROF_PYROSCOPE_APP', '', 'must name the application when MUTEXPROF_PYROSCOPE_URL is set');
  const instrument = get(env, 'MUTEXPROF_INSTRUMENT');
  if (instrument !== undefined && instrument !== 'async-mutex') throw new ConfigError('MUTEXPROF_INSTRUMENT', instrument, 'must be async-mutex (the one library mutexprof substitutes)');
  const cluster = get(env, 'MUTEXPROF_CLUSTER');
  if (cluster !== undefined && cluster !== '0' && cluster !== '1') throw new ConfigError('MUTEXPROF_CLUSTER', cluster, 'must be 1 (serve the merged profile) or 0');
  return {
    mutexFraction: integer(env, 'MUTEXPROF_MUTEX_FRACTION', 0),
    blockRate: integer(env, 'MUTEXPROF_BLOCK_RATE', 0),
    blockFraction: integer(env, 'MUTEXPROF_BLOCK_FRACTION', 0),
    holdFraction: integer(env, 'MUTEXPROF_HOLD_FRACTION', 0),
    maxSampledPerSecond: budget === undefined ? undefined : Number(budget),
    maxDepth: integer(env, 'MUTEXPROF_MAX_DEPTH', 1, 1024),
    tracking: oneOf(env, 'MUTEXPROF_LOCK_TRACKING', ['off', 'on', 'stacks']),
    deadlock: oneOf(env, 'MUTEXPROF_DEADLOCK', ['off', 'warn', 'throw']),
    pprof: address(env, 'MUTEXPROF_PPROF_ADDR'),
    cluster: cluster === '1',
    pyroscope: url === undefined ? null : { url, appName: app!, labels: labels(env, 'MUTEXPROF_PYROSCOPE_LABELS'), intervalMs: integer(env, 'MUTEXPROF_PYROSCOPE_INTERVAL_MS', 1000, 2_147_483_647) },
    files: { mutex: get(env, 'MUTEXPROF_MUTEXPROFILE') ?? null, block: get(env, 'MUTEXPROF_BLOCKPROFILE') ?? null, hold: get(env, 'MUTEXPROF_HOLDPROFILE') ?? null },
    instrument: instrument === 'async-mutex',
  };
}

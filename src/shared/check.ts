// The checks of public arguments, shared by every layer: bad input gets mutexprof's error, naming the call and the
// option, and changes nothing. Each check returns the value it accepted (with its default applied).

/** The longest delay Node's timers take (2³¹ − 1 ms); a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2_147_483_647;

/** A value as an error message shows it: short, and never the whole object. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return `${typeof v} ${String(v)}`;
  return typeof v;
}

/** An options object (or undefined: none given). */
export function checkOptionsObject<T extends object>(where: string, options: unknown): T | undefined {
  if (options === undefined) return undefined;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw new TypeError(`mutexprof: ${where}: options must be an object, got ${describeValue(options)}`);
  return options as T;
}

/** An integer in [min, max], or `dflt` when undefined. */
export function checkInteger(where: string, name: string, v: unknown, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new RangeError(`mutexprof: ${where}: ${name} must be an integer in ${min}..${max}, got ${describeValue(v)}`);
  }
  return v;
}

/** A timer's delay in milliseconds: a positive number that Node's timers take as it is (≤ 2³¹ − 1). */
export function checkTimerMs(where: string, name: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > MAX_TIMER_MS) {
    throw new RangeError(`mutexprof: ${where}: ${name} must be a number of milliseconds in (0, ${MAX_TIMER_MS}], got ${describeValue(v)}`);
  }
  return v;
}

/** A function, or undefined. */
export function checkFunction<F>(where: string, name: string, v: unknown): F | undefined {
  if (v !== undefined && typeof v !== 'function') throw new TypeError(`mutexprof: ${where}: ${name} must be a function, got ${describeValue(v)}`);
  return v as F | undefined;
}

/** A plain object whose values are all strings (labels, headers), or `{}` when undefined. */
export function checkStringRecord(where: string, name: string, v: unknown): Record<string, string> {
  if (v === undefined) return {};
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new TypeError(`mutexprof: ${where}: ${name} must be an object of strings, got ${describeValue(v)}`);
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string') throw new TypeError(`mutexprof: ${where}: ${name}.${k} must be a string, got ${describeValue(x)}`);
  }
  return v as Record<string, string>;
}

// Types of bench/profile-of.mjs, for bench/encode-async.ts.
export function profileOf(lib: typeof import('../src/index.js'), n: number, options?: { name?: string; trickle?: boolean }): Promise<() => void>;
export function loopWatch(options?: { spin?: boolean }): { readonly max: number; reset(): void; stop(): void };

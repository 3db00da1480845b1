// Cooperative time slicing: long loops over a profile (snapshots, sorts, encodings, responses) give the event
// loop back every few milliseconds, so that serving a profile of any size never stalls the service for long.
//
// Slices of all such tasks share one queue: a task that used up the slice waits its turn, and each turn of the
// event loop resumes one task. Twenty clients that ask for a profile at once therefore cost the service one
// slice per turn, not twenty (setImmediate callbacks queued together would all run in the same turn).

/** How long a task may run before it waits for its next turn (ms). */
export const SLICE_MS = 4;

/**
 * The clock slices are measured on (ms), and how often a loop looks at it (every `mask + 1` iterations).
 * Tests make every look find the slice used up, so that long tasks yield at every iteration and other work
 * interleaves with them as much as it ever can.
 */
export const sliceClock = { now: (): number => performance.now(), mask: 63 };

const turns: Array<() => void> = [];
let scheduled = false;
let deadline = 0;

function resumeNext(): void {
  scheduled = false;
  const resume = turns.shift();
  deadline = sliceClock.now() + SLICE_MS;
  if (turns.length > 0) schedule();
  resume?.();
}

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  setImmediate(resumeNext);
}

/** Waits for the task's next turn, whatever is left of the slice. */
export function nextTurn(): Promise<void> {
  return new Promise<void>((resolve) => {
    turns.push(resolve);
    schedule();
  });
}

/** One long task's slicing. */
export class Slicer {
  #n = 0;

  /** Call every iteration: a promise to await once the slice is used up (the clock is read every 64 calls), else null. */
  tick(): Promise<void> | null {
    return (++this.#n & sliceClock.mask) !== 0 ? null : this.check();
  }

  /** A promise to await (the task's next turn) if the slice is used up now, else null. */
  check(): Promise<void> | null {
    return sliceClock.now() < deadline ? null : nextTurn();
  }
}

/**
 * A long task written as steps: it yields `undefined` between steps (every iteration of its loops), and returns
 * its result. sliced() runs it in slices; atOnce() runs it to its end where nothing may wait (a process's exit).
 */
export type Steps<T> = Generator<void, T, void>;

/** Runs `steps` to its end, giving the event loop back whenever a slice is used up. */
export async function sliced<T>(steps: Steps<T>): Promise<T> {
  const slice = new Slicer();
  for (;;) {
    const r = steps.next();
    if (r.done === true) return r.value;
    const p = slice.tick();
    if (p !== null) await p;
  }
}

/** Runs `steps` to its end at once. */
export function atOnce<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done === true) return r.value;
  }
}

const RUN = 4096;

/** The indices `idx` ordered by `key[i]`, largest first: sorted in runs, then merged, step by step. */
export function* sortByKeyDescending(idx: Uint32Array, key: Float64Array): Steps<Uint32Array> {
  const n = idx.length;
  const cmp = (x: number, y: number): number => key[y] - key[x];
  for (let lo = 0; lo < n; lo += RUN) {
    idx.subarray(lo, Math.min(lo + RUN, n)).sort(cmp);
    yield;
  }
  let a: Uint32Array = idx;
  let b: Uint32Array = new Uint32Array(n);
  for (let width = RUN; width < n; width *= 2) {
    for (let lo = 0; lo < n; lo += 2 * width) {
      const mid = Math.min(lo + width, n);
      const hi = Math.min(lo + 2 * width, n);
      let i = lo;
      let j = mid;
      for (let k = lo; k < hi; k++) {
        b[k] = j >= hi || (i < mid && key[a[i]] >= key[a[j]]) ? a[i++] : a[j++];
        yield;
      }
    }
    [a, b] = [b, a];
  }
  return a;
}

/**
 * Bounded waiting shared by the rings (private to `queue/`).
 *
 * Every sleep is one slice of at most {@linkcode WAIT_SLICE_MS}: `Atomics.notify`
 * wake-ups are sometimes lost on Deno 2.9.6, so a waiter re-checks its ring
 * after each slice and a lost wake-up costs at most one slice of latency.
 *
 * @module
 */

/** Longest single sleep inside `wait`/`waitAsync`, in milliseconds. */
export const WAIT_SLICE_MS = 5;

/**
 * What a bounded wait ends with: `"ok"` (there is something to do),
 * `"timed-out"` (the time ran out first) or `"closed"` (the ring was closed).
 *
 * @example Wait on an empty ring
 * ```ts
 * import { SpscRing } from "./spsc.ts";
 * import type { WaitResult } from "./_wait.ts";
 *
 * const ring = new SpscRing(SpscRing.allocate(2));
 * const result: WaitResult = ring.wait(1);
 * console.assert(result === "timed-out");
 * ring.close();
 * console.assert(ring.wait(1) === "closed");
 * ```
 */
export type WaitResult = "ok" | "timed-out" | "closed";

/**
 * Turns a caller's timeout into an absolute deadline on `performance.now()`.
 * NaN and negative values mean "check once, don't sleep"; `Infinity` never ends.
 */
export function deadlineOf(timeoutMs: number): number {
  if (!(timeoutMs > 0)) return 0;
  return performance.now() + timeoutMs;
}

/** Milliseconds left until `deadline`, capped at one slice; 0 when it has passed. */
export function sliceUntil(deadline: number): number {
  const left = deadline - performance.now();
  if (!(left > 0)) return 0;
  return left < WAIT_SLICE_MS ? left : WAIT_SLICE_MS;
}

/**
 * Sleeps asynchronously until `i32[index]` is notified or no longer equals
 * `expected`, or `ms` pass. A pending `Atomics.waitAsync` does not keep Deno's
 * event loop alive, so a timer does, and it also bounds the sleep should the
 * wait's own timeout never fire.
 */
export function sleepAsync(
  i32: Int32Array,
  index: number,
  expected: number,
  ms: number,
): Promise<void> | undefined {
  const r = Atomics.waitAsync(i32, index, expected, ms);
  if (!r.async) return undefined;
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms + 5);
    r.value.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Lock-free bounded ring queues over `SharedArrayBuffer`, usable from the main
 * thread and any Worker: {@linkcode SpscRing} (one producer, one consumer,
 * batch publish and drain) and {@linkcode MpmcRing} (many producers and
 * consumers, sequence-numbered slots). Allocate the buffer in one thread, send
 * it, and attach a view in the other; wait with bounded `wait` (blocking) or
 * `waitAsync` (event loop).
 *
 * @example Batch-publish three records and drain them
 * ```ts
 * import { SpscRing } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const ring = new SpscRing(SpscRing.allocate(4, 2));
 * const n = ring.reserve(3);
 * for (let i = 0; i < n; i++) ring.writeRecord(i, [i, i * 10]);
 * ring.publish(n);
 * const seen: number[] = [];
 * ring.drain((rec) => seen.push(rec[1]));
 * assert.deepEqual(seen, [0, 10, 20]);
 * ```
 *
 * @module
 */
export { SpscRing, type SpscRingOptions } from "./spsc.ts";
export { MpmcRing, type MpmcRingOptions } from "./mpmc.ts";
export { ByteRing } from "./byte_ring.ts";
export { WAIT_SLICE_MS, type WaitResult } from "./_wait.ts";

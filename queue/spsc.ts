/**
 * Single-producer single-consumer ring of fixed-size Int32 records over a
 * `SharedArrayBuffer`: the per-worker *bound* queue.
 *
 * ## Contract
 *
 * Layout of the buffer, in Int32 words (byte offset = 4 x word):
 *
 * | word | byte | field            | written by                  |
 * | ---- | ---- | ---------------- | --------------------------- |
 * | 0    | 0    | magic `RSPC`     | `allocate` (never again)    |
 * | 1    | 4    | version (1)      | `allocate`                  |
 * | 2    | 8    | capacity         | `allocate`                  |
 * | 3    | 12   | recordWords      | `allocate`                  |
 * | 4    | 16   | closed (0 / 1)   | `close()` (producer)        |
 * | 32   | 128  | tail             | producer only               |
 * | 64   | 256  | head             | consumer only               |
 * | 96   | 384  | consumer sleeping| consumer; producer reads    |
 * | 128  | 512  | producer sleeping| producer; consumer reads    |
 * | 160  | 640  | records          | slot `i` at word 160 + i x recordWords |
 *
 * - `capacity` is a power of two (1 ... 2^24); the slot of counter value `c` is
 *   `c & (capacity - 1)`. `tail` and `head` are free-running Int32 counters
 *   that wrap at 2^32: every comparison is a difference `(tail - head) | 0`,
 *   so the wrap is invisible. Invariant: `0 <= (tail - head) | 0 <= capacity`.
 * - Publication points: the producer writes records with plain stores, then
 *   publishes them with one `Atomics.store` of `tail`; the consumer reads
 *   records only after `Atomics.load` of `tail`, then frees their slots with
 *   one `Atomics.store` of `head`. Every JS `Atomics` operation is sequentially
 *   consistent, which orders the plain record accesses on both sides of those
 *   points; nothing here relies on anything weaker.
 * - `tail`, `head` and the two sleeping flags sit 128 bytes apart, so each is
 *   alone on its 64-byte cache line and the adjacent-line prefetcher does not
 *   pair them (crossbeam's `CachePadded` uses 128 on x86-64): the producer's
 *   stores never invalidate the line the consumer writes, and vice versa.
 * - Sleeping-flag protocol: a consumer about to sleep stores 1 in its flag,
 *   re-checks `tail`, then `Atomics.wait`s on `tail`; the producer stores
 *   `tail`, then loads the flag and notifies only if it is set. Both sides do
 *   store-then-load with sequentially consistent atomics, so at least one sees
 *   the other: a wake-up cannot be missed by the protocol. Deno 2.9.6 still
 *   loses some `notify`s, so every sleep is at most `WAIT_SLICE_MS` and then
 *   re-checks. Producers waiting for space use the mirror protocol on `head`.
 * - Close: the producer stores `closed = 1` (and always notifies). Pushes
 *   after that are refused; the consumer drains what is left, and then
 *   `wait` answers `"closed"`. Call `close()` from the producer thread (or once
 *   the producer is known to be done), since a push racing a close from
 *   another thread could land after the consumer saw "closed".
 * - Terminating a Worker mid-operation loses nothing that was published: a
 *   producer stopped before its `tail` store published nothing; a consumer
 *   stopped inside `drain` before its `head` store leaves those records for
 *   the next consumer view (delivered again). A consumer terminated asleep (in
 *   `waitAsync`) may leave its flag set, so the producer notifies on each publish until the
 *   next consumer view sleeps once and clears it.
 * - One producer view and one consumer view at a time. A view caches its own
 *   side's counter when it is constructed, and the other side's counter as a
 *   hint that is refreshed whenever it would make the ring look full or empty.
 *
 * Note: `size()` and the cached counters are racy reads of the other side's
 * counter: they may be stale, never wrong (a stale `head` makes the ring look
 * fuller, a stale `tail` emptier, and both are re-read before refusing).
 *
 * @module
 */

import {
  attachHeader,
  checkShape,
  W_CAPACITY,
  W_MAGIC,
  W_RECORD_WORDS,
  W_VERSION,
} from "./_header.ts";
import { deadlineOf, sleepAsync, sliceUntil, type WaitResult } from "./_wait.ts";

export type { WaitResult } from "./_wait.ts";

const MAGIC = 0x52535043; // "RSPC"
const VERSION = 1;
const W_CLOSED = 4;
const W_TAIL = 32;
const W_HEAD = 64;
const W_CONSUMER_SLEEPING = 96;
const W_PRODUCER_SLEEPING = 128;
const W_DATA = 160;

/**
 * Options for {@linkcode SpscRing}'s constructor.
 *
 * @example Attach with the defaults spelled out
 * ```ts
 * import { SpscRing, type SpscRingOptions } from "./spsc.ts";
 *
 * const options: SpscRingOptions = { notify: true };
 * const ring = new SpscRing(SpscRing.allocate(8), options);
 * console.assert(ring.push(1));
 * ```
 */
export interface SpscRingOptions {
  /**
   * Wake a sleeping peer after publishing. Tests set `false` to simulate lost
   * wake-ups; nothing else should.
   * @default {true}
   */
  notify?: boolean;
}

function byteLengthOf(capacity: number, recordWords: number): number {
  return (W_DATA + capacity * recordWords) * 4;
}

const HEADER = {
  name: "SpscRing",
  magic: MAGIC,
  version: VERSION,
  headerBytes: W_DATA * 4,
  byteLengthOf,
};

/**
 * A bounded single-producer single-consumer ring of `recordWords`-word Int32
 * records in a `SharedArrayBuffer`. Allocate the buffer once, send it to the
 * other thread, and attach a view on each side.
 *
 * @example Pass numbers from the main thread to itself
 * ```ts
 * import { SpscRing } from "./spsc.ts";
 * import assert from "node:assert/strict";
 *
 * const ring = new SpscRing(SpscRing.allocate(8));
 * assert.equal(ring.push(42), true);
 * const out = new Int32Array(1);
 * assert.equal(ring.pop(out), true);
 * assert.equal(out[0], 42);
 * ```
 */
export class SpscRing {
  /** Number of records the ring holds (a power of two). */
  readonly capacity: number;
  /** Int32 words per record (1-16). */
  readonly recordWords: number;
  /** The shared memory this view is attached to. */
  readonly buffer: SharedArrayBuffer;

  readonly #i32: Int32Array;
  readonly #mask: number;
  readonly #notify: boolean;
  readonly #rec: Int32Array;
  // Producer side: our tail, and a possibly stale copy of head.
  #tail: number;
  #headCache: number;
  // Consumer side: our head, and a possibly stale copy of tail.
  #head: number;
  #tailCache: number;

  /**
   * Allocates and initialises the shared memory of a ring.
   *
   * @param capacity Records the ring holds: a power of two, 1 to 2^24.
   * @param recordWords Int32 words per record, 1 to 16.
   * @param startAt Initial value of both counters; tests use values near 2^31
   *   to cross the 32-bit wrap.
   * @returns A buffer to pass to `new SpscRing(buffer)` in any thread.
   * @throws {RangeError} when capacity or recordWords is out of range.
   * @example Allocate a ring of 1024 three-word records
   * ```ts
   * import { SpscRing } from "./spsc.ts";
   * const buffer = SpscRing.allocate(1024, 3);
   * const ring = new SpscRing(buffer);
   * ring.push(1, 2, 3);
   * ```
   */
  static allocate(capacity: number, recordWords = 1, startAt = 0): SharedArrayBuffer {
    checkShape(capacity, recordWords);
    const buffer = new SharedArrayBuffer(byteLengthOf(capacity, recordWords));
    const i32 = new Int32Array(buffer);
    i32[W_MAGIC] = MAGIC;
    i32[W_VERSION] = VERSION;
    i32[W_CAPACITY] = capacity;
    i32[W_RECORD_WORDS] = recordWords;
    i32[W_TAIL] = startAt | 0;
    i32[W_HEAD] = startAt | 0;
    return buffer;
  }

  /**
   * Attaches a view to a buffer made by {@linkcode SpscRing.allocate}, in this
   * or another thread.
   *
   * @param buffer The ring's shared memory.
   * @param options Test-only switches.
   * @throws {TypeError} when `buffer` is not a `SharedArrayBuffer`.
   * @throws {Error} when magic, version, capacity, recordWords or byte length
   *   do not describe an SPSC ring.
   * @example Attach in a worker
   * ```ts ignore
   * self.onmessage = (e) => {
   *   const ring = new SpscRing(e.data);
   * };
   * ```
   */
  constructor(buffer: SharedArrayBuffer, options: SpscRingOptions = {}) {
    const { i32, capacity, recordWords } = attachHeader(buffer, HEADER);
    this.buffer = buffer;
    this.capacity = capacity;
    this.recordWords = recordWords;
    this.#i32 = i32;
    this.#mask = capacity - 1;
    this.#notify = options.notify ?? true;
    this.#rec = new Int32Array(recordWords);
    this.#tail = Atomics.load(i32, W_TAIL);
    this.#head = Atomics.load(i32, W_HEAD);
    this.#headCache = this.#head;
    this.#tailCache = this.#tail;
  }

  // ---- producer ----------------------------------------------------------

  /**
   * Appends one record and publishes it. Words past `recordWords` are ignored;
   * record words past the fourth are set to 0.
   *
   * @param w0 Word 0 of the record.
   * @param w1 Word 1 (if `recordWords > 1`).
   * @param w2 Word 2 (if `recordWords > 2`).
   * @param w3 Word 3 (if `recordWords > 3`).
   * @returns `true` once published; `false`, changing nothing, when the ring
   *   is full or closed.
   * @example Push until full
   * ```ts
   * import { SpscRing } from "./spsc.ts";
   * const ring = new SpscRing(SpscRing.allocate(2));
   * ring.push(1);
   * ring.push(2);
   * console.assert(ring.push(3) === false);
   * ```
   */
  push(w0: number, w1 = 0, w2 = 0, w3 = 0): boolean {
    const i32 = this.#i32;
    const t = this.#tail;
    if (((t - this.#headCache) | 0) >= this.capacity) {
      this.#headCache = Atomics.load(i32, W_HEAD);
      if (((t - this.#headCache) | 0) >= this.capacity) return false;
    }
    // A plain read: only the producer thread closes (see the contract), so
    // there is no race to order, and it saves a ~9 ns Atomics call per push.
    if (i32[W_CLOSED] !== 0) return false;
    const rw = this.recordWords;
    const base = W_DATA + (t & this.#mask) * rw;
    i32[base] = w0;
    if (rw > 1) {
      i32[base + 1] = w1;
      if (rw > 2) {
        i32[base + 2] = w2;
        if (rw > 3) {
          i32[base + 3] = w3;
          for (let w = 4; w < rw; w++) i32[base + w] = 0;
        }
      }
    }
    this.#publishTail((t + 1) | 0);
    return true;
  }

  /**
   * Starts a batch: how many records may be written with {@linkcode write} /
   * {@linkcode writeRecord} at indexes `0 ... n-1` before one {@linkcode publish}.
   *
   * @param max Most records wanted.
   * @returns Free slots, at most `max`; 0 when full or closed.
   */
  reserve(max: number): number {
    if (Atomics.load(this.#i32, W_CLOSED) !== 0) return 0;
    let free = this.capacity - ((this.#tail - this.#headCache) | 0);
    if (free < max) {
      this.#headCache = Atomics.load(this.#i32, W_HEAD);
      free = this.capacity - ((this.#tail - this.#headCache) | 0);
    }
    return max < free ? (max > 0 ? max : 0) : free;
  }

  /**
   * Writes word `word` of the `i`-th reserved (unpublished) record.
   * Indexes must lie within the last {@linkcode reserve}; nothing is checked.
   *
   * @param i Record index in the reserved region, from 0.
   * @param word Word index in the record, from 0.
   * @param value Int32 value.
   */
  write(i: number, word: number, value: number): void {
    this.#i32[W_DATA + (((this.#tail + i) | 0) & this.#mask) * this.recordWords + word] = value;
  }

  /**
   * Writes the `i`-th reserved record from `words` (first `recordWords` words;
   * missing ones are 0).
   *
   * @param i Record index in the reserved region, from 0.
   * @param words The record's words.
   */
  writeRecord(i: number, words: ArrayLike<number>): void {
    const rw = this.recordWords;
    const base = W_DATA + (((this.#tail + i) | 0) & this.#mask) * rw;
    const i32 = this.#i32;
    for (let w = 0; w < rw; w++) i32[base + w] = words[w] ?? 0;
  }

  /**
   * Publishes the first `n` reserved records with one `Atomics.store` of
   * `tail`, and notifies only if the consumer sleeps. `n` is clamped to the
   * free space (call {@linkcode reserve} first).
   *
   * @param n Records to publish, an integer.
   * @returns Records published.
   * @example Publish a batch
   * ```ts
   * import { SpscRing } from "./spsc.ts";
   * const ring = new SpscRing(SpscRing.allocate(256));
   * const n = ring.reserve(100);
   * for (let i = 0; i < n; i++) ring.write(i, 0, i);
   * ring.publish(n);
   * ```
   */
  publish(n: number): number {
    const free = this.capacity - ((this.#tail - this.#headCache) | 0);
    if (n > free) n = free;
    if (!(n > 0)) return 0;
    this.#publishTail((this.#tail + n) | 0);
    return n;
  }

  #publishTail(t: number): void {
    const i32 = this.#i32;
    this.#tail = t;
    Atomics.store(i32, W_TAIL, t);
    if (Atomics.load(i32, W_CONSUMER_SLEEPING) !== 0 && this.#notify) {
      Atomics.notify(i32, W_TAIL, 1);
    }
  }

  /**
   * Closes the ring: later pushes are refused, the consumer drains what is
   * left and then sees `"closed"`. Idempotent. Call it from the producer.
   */
  close(): void {
    Atomics.store(this.#i32, W_CLOSED, 1);
    Atomics.notify(this.#i32, W_TAIL);
    Atomics.notify(this.#i32, W_HEAD);
  }

  /** Whether {@linkcode close} was called (records may still be waiting). */
  get closed(): boolean {
    return Atomics.load(this.#i32, W_CLOSED) !== 0;
  }

  /**
   * Producer side: blocks (in bounded slices) until there is space, the ring
   * is closed, or `timeoutMs` pass. Only for threads that may block.
   *
   * @param timeoutMs Longest total wait; 0 checks once; `Infinity` never gives up.
   * @returns `"ok"` when a slot is free, `"closed"`, or `"timed-out"`.
   */
  waitForSpace(timeoutMs: number): WaitResult {
    const i32 = this.#i32;
    const deadline = deadlineOf(timeoutMs);
    for (;;) {
      if (Atomics.load(i32, W_CLOSED) !== 0) return "closed";
      const h = Atomics.load(i32, W_HEAD);
      if (((this.#tail - h) | 0) < this.capacity) return "ok";
      const ms = sliceUntil(deadline);
      if (ms === 0) return "timed-out";
      Atomics.store(i32, W_PRODUCER_SLEEPING, 1);
      if (Atomics.load(i32, W_HEAD) === h && Atomics.load(i32, W_CLOSED) === 0) {
        Atomics.wait(i32, W_HEAD, h, ms);
      }
      Atomics.store(i32, W_PRODUCER_SLEEPING, 0);
    }
  }

  // ---- consumer ----------------------------------------------------------

  /**
   * Consumes up to `max` records: calls `fn` with each (a reused view, valid
   * only during the call), then frees their slots with one store of `head`.
   * If `fn` throws, the records before it and the one it threw on count as
   * consumed.
   *
   * @param fn Called with each record; copy what you keep.
   * @param max Most records to consume.
   * @returns Records consumed (0 when empty).
   * @example Sum what is there
   * ```ts
   * import { SpscRing } from "./spsc.ts";
   * const ring = new SpscRing(SpscRing.allocate(8));
   * ring.push(1);
   * ring.push(2);
   * let sum = 0;
   * ring.drain((rec) => sum += rec[0]);
   * console.assert(sum === 3);
   * ```
   */
  drain(fn: (rec: Int32Array) => void, max: number = this.capacity): number {
    const i32 = this.#i32;
    const h = this.#head;
    const t = Atomics.load(i32, W_TAIL);
    this.#tailCache = t;
    let n = (t - h) | 0;
    if (n > max) n = max;
    if (!(n > 0)) return 0;
    const rec = this.#rec;
    const rw = this.recordWords;
    const mask = this.#mask;
    let k = 0;
    try {
      if (rw === 1) {
        while (k < n) {
          rec[0] = i32[W_DATA + ((h + k) & mask)];
          k++;
          fn(rec);
        }
      } else {
        while (k < n) {
          const base = W_DATA + ((h + k) & mask) * rw;
          for (let w = 0; w < rw; w++) rec[w] = i32[base + w];
          k++;
          fn(rec);
        }
      }
    } finally {
      this.#publishHead((h + k) | 0);
    }
    return n;
  }

  /**
   * Consumes one record into `out`.
   *
   * @param out Receives the record; must hold `recordWords` words.
   * @returns `false` when the ring is empty.
   */
  pop(out: Int32Array): boolean {
    const i32 = this.#i32;
    const h = this.#head;
    if (this.#tailCache === h) {
      this.#tailCache = Atomics.load(i32, W_TAIL);
      if (this.#tailCache === h) return false;
    }
    const rw = this.recordWords;
    const base = W_DATA + (h & this.#mask) * rw;
    for (let w = 0; w < rw; w++) out[w] = i32[base + w];
    this.#publishHead((h + 1) | 0);
    return true;
  }

  /**
   * Consumes up to `max` records into `out` with one store of `head`:
   * record `j` lands at `j x recordWords`. The copying mirror of
   * {@linkcode drain}, without a call per record.
   *
   * @param out Receives the records, packed; `max` is capped at
   *   `out.length / recordWords`.
   * @param max Most records to consume.
   * @returns Records consumed (0 when empty).
   * @example Drain in batches
   * ```ts
   * import { SpscRing } from "./spsc.ts";
   * import assert from "node:assert/strict";
   *
   * const ring = new SpscRing(SpscRing.allocate(8));
   * ring.push(1);
   * ring.push(2);
   * const out = new Int32Array(16);
   * assert.equal(ring.popMany(out, 16), 2);
   * assert.deepEqual([...out.subarray(0, 2)], [1, 2]);
   * ```
   */
  popMany(out: Int32Array, max: number): number {
    const i32 = this.#i32;
    const rw = this.recordWords;
    const room = (out.length / rw) | 0;
    if (max > room) max = room;
    const h = this.#head;
    let n = (this.#tailCache - h) | 0;
    if (n < max) {
      // Records below a tail we loaded before are already visible to us.
      this.#tailCache = Atomics.load(i32, W_TAIL);
      n = (this.#tailCache - h) | 0;
    }
    if (n > max) n = max;
    if (!(n > 0)) return 0;
    const mask = this.#mask;
    if (rw === 1) {
      for (let j = 0; j < n; j++) out[j] = i32[W_DATA + ((h + j) & mask)];
    } else {
      for (let j = 0, o = 0; j < n; j++) {
        const base = W_DATA + ((h + j) & mask) * rw;
        for (let w = 0; w < rw; w++) out[o++] = i32[base + w];
      }
    }
    this.#publishHead((h + n) | 0);
    return n;
  }

  #publishHead(h: number): void {
    const i32 = this.#i32;
    this.#head = h;
    Atomics.store(i32, W_HEAD, h);
    if (Atomics.load(i32, W_PRODUCER_SLEEPING) !== 0 && this.#notify) {
      Atomics.notify(i32, W_HEAD, 1);
    }
  }

  /**
   * Records published and not yet consumed.
   *
   * Note: racy when called while the other side runs; it may be stale, never
   * outside `0 ... capacity`.
   *
   * @returns The number of records waiting, `0 ... capacity`.
   */
  size(): number {
    const n = (Atomics.load(this.#i32, W_TAIL) - Atomics.load(this.#i32, W_HEAD)) | 0;
    return n < 0 ? 0 : n > this.capacity ? this.capacity : n;
  }

  /**
   * Consumer side: blocks (with `Atomics.wait`, in bounded slices) until a
   * record is available, the ring is closed and empty, or `timeoutMs` pass.
   * `Infinity` waits for good, still re-checking every slice.
   *
   * @param timeoutMs Longest total wait; 0 checks once.
   * @returns `"ok"` when records are available, `"closed"` when closed and
   *   empty, `"timed-out"` otherwise.
   */
  wait(timeoutMs: number): WaitResult {
    const i32 = this.#i32;
    const deadline = deadlineOf(timeoutMs);
    for (;;) {
      // Load closed before tail: a producer publishes before it closes.
      const closed = Atomics.load(i32, W_CLOSED) !== 0;
      const t = Atomics.load(i32, W_TAIL);
      if (t !== this.#head) return "ok";
      if (closed) return "closed";
      const ms = sliceUntil(deadline);
      if (ms === 0) return "timed-out";
      Atomics.store(i32, W_CONSUMER_SLEEPING, 1);
      if (Atomics.load(i32, W_TAIL) === t && Atomics.load(i32, W_CLOSED) === 0) {
        Atomics.wait(i32, W_TAIL, t, ms);
      }
      Atomics.store(i32, W_CONSUMER_SLEEPING, 0);
    }
  }

  /**
   * Consumer side, for threads that keep an event loop: like {@linkcode wait}
   * but sleeps with `Atomics.waitAsync` (a timer keeps the event loop alive
   * meanwhile).
   *
   * @param timeoutMs Longest total wait; 0 checks once.
   * @returns `"ok"`, `"closed"` or `"timed-out"`, as {@linkcode wait}.
   */
  async waitAsync(timeoutMs: number): Promise<WaitResult> {
    const i32 = this.#i32;
    const deadline = deadlineOf(timeoutMs);
    for (;;) {
      const closed = Atomics.load(i32, W_CLOSED) !== 0;
      const t = Atomics.load(i32, W_TAIL);
      if (t !== this.#head) return "ok";
      if (closed) return "closed";
      const ms = sliceUntil(deadline);
      if (ms === 0) return "timed-out";
      Atomics.store(i32, W_CONSUMER_SLEEPING, 1);
      if (Atomics.load(i32, W_TAIL) === t && Atomics.load(i32, W_CLOSED) === 0) {
        await sleepAsync(i32, W_TAIL, t, ms);
      }
      Atomics.store(i32, W_CONSUMER_SLEEPING, 0);
    }
  }
}

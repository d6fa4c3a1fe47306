/**
 * Single-producer single-consumer ring of fixed-size *byte* records over a
 * `SharedArrayBuffer`: the per-worker access-log ring. The producer encodes a
 * record in place (no allocation, no copy) and publishes it; the consumer
 * reads records in place in batches. Unlike `SpscRing` it never
 * sleeps or wakes anyone: the consumer polls on a timer, so a producer's
 * publish is one `Atomics.store` and nothing else.
 *
 * ## Contract
 *
 * Layout of the buffer (byte offsets):
 *
 * | byte | field              | written by            |
 * | ---- | ------------------ | --------------------- |
 * | 0    | magic `RBYT`       | `allocate`            |
 * | 4    | capacity (records) | `allocate`            |
 * | 8    | recordBytes        | `allocate`            |
 * | 128  | tail (Int32)       | producer only         |
 * | 256  | head (Int32)       | consumer only         |
 * | 384  | records            | record `c` at 384 + (c & (capacity - 1)) x recordBytes |
 *
 * - `capacity` is a power of two (1 ... 2^20); `recordBytes` a multiple of 8
 *   (8 ... 65536), so a record may hold aligned Float64 fields. `tail` and
 *   `head` are free-running Int32 counters compared by difference, so their
 *   wrap at 2^32 is invisible. Invariant: `0 <= (tail - head) | 0 <= capacity`.
 * - Publication points: the producer fills the slot returned by `claim()`
 *   with plain stores, then `commit()` publishes it with one `Atomics.store`
 *   of `tail`; the consumer reads records only after an `Atomics.load` of
 *   `tail`, then frees them with one `Atomics.store` of `head`. Every JS
 *   `Atomics` operation is sequentially consistent, which orders the plain
 *   record accesses on both sides of those points.
 * - `tail` and `head` sit 128 bytes apart, each alone on its cache line (and
 *   out of the adjacent-line prefetcher's pair), so the two sides' stores
 *   never invalidate each other's line.
 * - Full ring: `claim()` returns -1 and the caller drops the record (the log
 *   ring's policy: a worker never waits for the log writer).
 * - A producer terminated between `claim()` and `commit()` published nothing;
 *   a new producer view attached to the same buffer carries on from `tail`.
 *
 * Note: `size()` reads both counters racily; it may be stale, never outside
 * `0 ... capacity`.
 *
 * @module
 */

const MAGIC = 0x52425954; // "RBYT"
const W_MAGIC = 0;
const W_CAPACITY = 1;
const W_RECORD_BYTES = 2;
const W_TAIL = 32;
const W_HEAD = 64;
const DATA = 384;
const MAX_CAPACITY = 1 << 20;

function checkShape(capacity: number, recordBytes: number): void {
  if (!Number.isInteger(capacity) || capacity < 1 || capacity > MAX_CAPACITY) {
    throw new RangeError(`capacity must be an integer 1-${MAX_CAPACITY}, got ${capacity}`);
  }
  if ((capacity & (capacity - 1)) !== 0) {
    throw new RangeError(`capacity must be a power of two, got ${capacity}`);
  }
  if (
    !Number.isInteger(recordBytes) || recordBytes < 8 || recordBytes > 65536 ||
    recordBytes % 8 !== 0
  ) {
    throw new RangeError(`recordBytes must be a multiple of 8 in 8-65536, got ${recordBytes}`);
  }
}

/**
 * A bounded SPSC ring of `recordBytes`-byte records, encoded in place.
 *
 * @example Publish one record and read it back
 * ```ts
 * import { ByteRing } from "./byte_ring.ts";
 * import assert from "node:assert/strict";
 *
 * const ring = new ByteRing(ByteRing.allocate(4, 16));
 * const at = ring.claim();
 * ring.bytes[at] = 7;
 * ring.commit();
 * let seen = 0;
 * ring.drain((bytes, offset) => seen = bytes[offset]);
 * assert.equal(seen, 7);
 * ```
 */
export class ByteRing {
  /** Records the ring holds (a power of two). */
  readonly capacity: number;
  /** Bytes per record (a multiple of 8). */
  readonly recordBytes: number;
  /** The shared memory. */
  readonly buffer: SharedArrayBuffer;
  /** The whole buffer as bytes; record offsets index into it. */
  readonly bytes: Uint8Array;
  /** The whole buffer as Float64 (index = byte offset / 8). */
  readonly f64: Float64Array;
  readonly #i32: Int32Array;
  readonly #mask: number;
  #tail: number;
  #headCache: number;
  #head: number;

  /**
   * Allocates and initialises a ring's shared memory.
   *
   * @param capacity Records: a power of two, 1 to 2^20.
   * @param recordBytes Bytes per record: a multiple of 8, 8 to 65536.
   * @returns A buffer for `new ByteRing(buffer)` in any thread.
   * @throws {RangeError} when a size is out of range.
   */
  static allocate(capacity: number, recordBytes: number): SharedArrayBuffer {
    checkShape(capacity, recordBytes);
    const buffer = new SharedArrayBuffer(DATA + capacity * recordBytes);
    const i32 = new Int32Array(buffer);
    i32[W_MAGIC] = MAGIC;
    i32[W_CAPACITY] = capacity;
    i32[W_RECORD_BYTES] = recordBytes;
    return buffer;
  }

  /**
   * Attaches a view (producer, consumer, or an observer calling `size()`).
   *
   * @param buffer Made by {@linkcode ByteRing.allocate}.
   * @throws {Error} when the buffer does not hold a byte ring.
   */
  constructor(buffer: SharedArrayBuffer) {
    if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength < DATA) {
      throw new TypeError("ByteRing needs a SharedArrayBuffer from ByteRing.allocate");
    }
    const i32 = new Int32Array(buffer);
    if (i32[W_MAGIC] !== MAGIC) throw new Error("not a ByteRing buffer (bad magic)");
    const capacity = i32[W_CAPACITY];
    const recordBytes = i32[W_RECORD_BYTES];
    checkShape(capacity, recordBytes);
    if (buffer.byteLength !== DATA + capacity * recordBytes) {
      throw new Error(
        `ByteRing buffer is ${buffer.byteLength} bytes, expected ${DATA + capacity * recordBytes}`,
      );
    }
    this.buffer = buffer;
    this.capacity = capacity;
    this.recordBytes = recordBytes;
    this.bytes = new Uint8Array(buffer);
    this.f64 = new Float64Array(buffer);
    this.#i32 = i32;
    this.#mask = capacity - 1;
    this.#tail = Atomics.load(i32, W_TAIL);
    this.#head = Atomics.load(i32, W_HEAD);
    this.#headCache = this.#head;
  }

  /**
   * Producer: the byte offset of the next free record, to fill before
   * {@linkcode commit}; -1 when the ring is full. Calling it again before
   * `commit` returns the same slot.
   *
   * @returns A byte offset into {@linkcode bytes}, or -1.
   */
  claim(): number {
    const t = this.#tail;
    if (((t - this.#headCache) | 0) >= this.capacity) {
      this.#headCache = Atomics.load(this.#i32, W_HEAD);
      if (((t - this.#headCache) | 0) >= this.capacity) return -1;
    }
    return DATA + (t & this.#mask) * this.recordBytes;
  }

  /** Producer: publishes the record last returned by {@linkcode claim}. */
  commit(): void {
    this.#tail = (this.#tail + 1) | 0;
    Atomics.store(this.#i32, W_TAIL, this.#tail);
  }

  /**
   * Consumer: calls `fn` with each published record (its byte offset; the
   * record is only valid during the call), then frees them with one store of
   * `head`.
   *
   * @param fn Reads one record in place.
   * @param max Most records to consume.
   * @returns Records consumed.
   */
  drain(fn: (bytes: Uint8Array, offset: number) => void, max: number = this.capacity): number {
    const h = this.#head;
    let n = (Atomics.load(this.#i32, W_TAIL) - h) | 0;
    if (n > max) n = max;
    if (!(n > 0)) return 0;
    let k = 0;
    try {
      while (k < n) {
        const at = DATA + ((h + k) & this.#mask) * this.recordBytes;
        k++;
        fn(this.bytes, at);
      }
    } finally {
      this.#head = (h + k) | 0;
      Atomics.store(this.#i32, W_HEAD, this.#head);
    }
    return n;
  }

  /**
   * Records published and not yet consumed.
   *
   * Note: racy while both sides run: it may be stale, never outside `0 ... capacity`.
   *
   * @returns The number of records waiting, `0 ... capacity`.
   */
  size(): number {
    const n = (Atomics.load(this.#i32, W_TAIL) - Atomics.load(this.#i32, W_HEAD)) | 0;
    return n < 0 ? 0 : n > this.capacity ? this.capacity : n;
  }
}

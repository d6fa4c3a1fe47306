/**
 * Bounded multi-producer multi-consumer ring of fixed-size Int32 records over
 * a `SharedArrayBuffer`, with sequence-numbered slots in the style of
 * Vyukov's bounded MPMC queue and crossbeam's `ArrayQueue`: the *unbound*
 * queue that several producers and consumers share.
 *
 * ## Contract
 *
 * Layout of the buffer, in Int32 words (byte offset = 4 x word):
 *
 * | word | byte | field                      | written by                 |
 * | ---- | ---- | -------------------------- | -------------------------- |
 * | 0    | 0    | magic `RMPC`               | `allocate` (never again)   |
 * | 1    | 4    | version (1)                | `allocate`                 |
 * | 2    | 8    | capacity                   | `allocate`                 |
 * | 3    | 12   | recordWords                | `allocate`                 |
 * | 32   | 128  | tail (+ closed mark bit 0) | producers (CAS), `close`   |
 * | 64   | 256  | head                       | consumers (CAS)            |
 * | 96   | 384  | consumers sleeping, wake   | consumers set, producers clear + bump wake |
 * | 128  | 512  | producers sleeping, wake   | producers set, consumers clear + bump wake |
 * | 160  | 640  | slots                      | slot `i` at word 160 + i x (1 + recordWords): `[seq, w0 ... ]` |
 *
 * - Counters step by 2 so that bit 0 of `tail` is free for the closed mark.
 *   Position `p` (even) lives in slot `(p >>> 1) & (capacity - 1)`; capacity is
 *   a power of two (1 ... 2^24), so one lap of the ring is `2 x capacity` counter
 *   units. Counters are Int32 and wrap at 2^32; every comparison is a
 *   difference `(a - b) | 0`, so the wrap is invisible.
 * - A slot's `seq` says whose turn it is: `seq == p` - empty, waiting for the
 *   producer of position `p`; `seq == p + 1` - full, waiting for the consumer
 *   of `p`. Having both states apart (the `+ 1`) is what lets capacity 1 work,
 *   where plain Vyukov confuses "full at p" with "empty for p + capacity".
 * - Push: load `tail` = `p`; if `slot.seq == p`, CAS `tail` from `p` to `p + 2`
 *   to own the slot, write the record words with plain stores, then publish
 *   with `Atomics.store(seq, p + 1)`. Pop: load `head` = `p`; if
 *   `slot.seq == p + 1`, CAS `head` to `p + 2`, read the words, then free the
 *   slot with `Atomics.store(seq, p + 2 x capacity)`. The words are written
 *   before the seq store that publishes them and read after the seq load that
 *   observed it (and never touched after the store that hands the slot on).
 *   `popMany` checks the seqs of k consecutive positions from `head`, then
 *   claims them all with one CAS to `head + 2k` (a ready slot stays ready
 *   until its consumer frees it, so the checks still hold after the CAS).
 *   First guesses of `head`/`tail` are plain reads; the CAS validates them.
 *   Every JS `Atomics` operation is sequentially consistent, and that order is
 *   all this relies on.
 * - Invariants: `0 <= ((tail & ~1) - head) | 0 <= 2 x capacity`; a slot's
 *   `seq` only moves forward, by 1 then by `2 x capacity - 1`.
 * - Close: `Atomics.or(tail, 1)`. A producer's CAS expects an even `tail`, so
 *   after the mark every push is refused atomically, while pushes that had
 *   already claimed a position still publish it. Consumers drain, and see
 *   "closed" once `head == tail & ~1` with the mark set.
 * - `tail`, `head` and each sleeper/wake pair sit 128 bytes apart, so each is
 *   alone on its 64-byte cache line and the adjacent-line prefetcher does not
 *   pair them (crossbeam's `CachePadded` uses 128 on x86-64): producers'
 *   CASes on `tail` do not invalidate consumers' `head` line.
 * - Sleeping protocol (an event count): a waiter reads `wake`, stores 1 in
 *   `sleeping`, re-checks the ring, and `Atomics.wait`s on `wake` expecting
 *   the value it read. A publisher stores `seq`, then loads `sleeping`, and
 *   only if it is set swaps it to 0 and, if it won the swap, increments `wake`
 *   and notifies every waiter. Both are store-then-load under sequential
 *   consistency, so a waiter either sees the record or `wake` moves past the
 *   value it read (whoever cleared its mark bumps `wake` after that read).
 *   Only publishers clear the mark, never the waiter itself, so a Worker
 *   terminated in its sleep (`finally` does not run on termination) costs
 *   one spurious wake-up, not a notify on every later push. Deno 2.9.6 still
 *   loses some notifies, so every sleep is at most `WAIT_SLICE_MS` and
 *   re-checks.
 *
 * - Terminating a Worker: `Worker.terminate()` can stop a thread between the
 *   CAS that claims a position and the `seq` store that publishes (or frees)
 *   it. A position claimed and never published stalls every consumer at it
 *   for good; a slot taken and never freed stalls producers one lap later. So
 *   terminate ring users only at a safe point (after `close()` and their
 *   exit, or while they sleep in `wait`), or replace the ring after a crash.
 *
 * Note: `size()`, and the readiness checks inside `wait`, read counters other
 * threads are moving: the answer may be stale, never outside `0 ... capacity`.
 * A `pop` may also answer `false` while a producer has claimed but not yet
 * published the head slot; the consumer waits (`wait`) and tries again.
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

const MAGIC = 0x524d5043; // "RMPC"
const VERSION = 1;
const W_TAIL = 32;
const W_HEAD = 64;
const W_C_SLEEPING = 96;
const W_C_WAKE = 97;
const W_P_SLEEPING = 128;
const W_P_WAKE = 129;
const W_SLOTS = 160;

const READY = 0;
const CLOSED = 1;
const NOTHING = 2;

/**
 * Options for {@linkcode MpmcRing}'s constructor.
 *
 * @example Attach with the defaults spelled out
 * ```ts
 * import { MpmcRing, type MpmcRingOptions } from "./mpmc.ts";
 *
 * const options: MpmcRingOptions = { notify: true };
 * const ring = new MpmcRing(MpmcRing.allocate(8), options);
 * console.assert(ring.push(1));
 * ```
 */
export interface MpmcRingOptions {
  /**
   * Wake sleeping peers after publishing. Tests set `false` to simulate lost
   * wake-ups; nothing else should.
   * @default {true}
   */
  notify?: boolean;
}

function byteLengthOf(capacity: number, recordWords: number): number {
  return (W_SLOTS + capacity * (recordWords + 1)) * 4;
}

const HEADER = {
  name: "MpmcRing",
  magic: MAGIC,
  version: VERSION,
  headerBytes: W_SLOTS * 4,
  byteLengthOf,
};

/**
 * A bounded lock-free multi-producer multi-consumer ring of
 * `recordWords`-word Int32 records in a `SharedArrayBuffer`.
 *
 * @example Share one ring between threads
 * ```ts
 * import { MpmcRing } from "./mpmc.ts";
 * import assert from "node:assert/strict";
 *
 * const ring = new MpmcRing(MpmcRing.allocate(16, 2));
 * assert.equal(ring.push(7, 8), true);
 * const out = new Int32Array(2);
 * assert.equal(ring.pop(out), true);
 * assert.deepEqual([...out], [7, 8]);
 * ```
 */
export class MpmcRing {
  /** Number of records the ring holds (a power of two). */
  readonly capacity: number;
  /** Int32 words per record (1-16). */
  readonly recordWords: number;
  /** The shared memory this view is attached to. */
  readonly buffer: SharedArrayBuffer;

  readonly #i32: Int32Array;
  readonly #mask: number;
  readonly #stride: number;
  readonly #lap: number;
  readonly #notify: boolean;

  /**
   * Allocates and initialises the shared memory of a ring.
   *
   * @param capacity Records the ring holds: a power of two, 1 to 2^24.
   * @param recordWords Int32 words per record, 1 to 16.
   * @param startAt Initial position (both counters count `2 x startAt`);
   *   tests use values near 2^30 to cross the 32-bit wrap.
   * @returns A buffer to pass to `new MpmcRing(buffer)` in any thread.
   * @throws {RangeError} when capacity or recordWords is out of range.
   * @example Allocate a ring of 256 two-word records
   * ```ts
   * import { MpmcRing } from "./mpmc.ts";
   * const ring = new MpmcRing(MpmcRing.allocate(256, 2));
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
    const start = (startAt * 2) | 0;
    i32[W_TAIL] = start;
    i32[W_HEAD] = start;
    const mask = capacity - 1;
    for (let k = 0; k < capacity; k++) {
      const p = (start + 2 * k) | 0;
      i32[W_SLOTS + ((p >>> 1) & mask) * (recordWords + 1)] = p;
    }
    return buffer;
  }

  /**
   * Attaches a view to a buffer made by {@linkcode MpmcRing.allocate}, in this
   * or another thread.
   *
   * @param buffer The ring's shared memory.
   * @param options Test-only switches.
   * @throws {TypeError} when `buffer` is not a `SharedArrayBuffer`.
   * @throws {Error} when magic, version, capacity, recordWords or byte length
   *   do not describe an MPMC ring.
   * @example Attach in a worker
   * ```ts ignore
   * self.onmessage = (e) => {
   *   const ring = new MpmcRing(e.data);
   * };
   * ```
   */
  constructor(buffer: SharedArrayBuffer, options: MpmcRingOptions = {}) {
    const { i32, capacity, recordWords } = attachHeader(buffer, HEADER);
    this.buffer = buffer;
    this.capacity = capacity;
    this.recordWords = recordWords;
    this.#i32 = i32;
    this.#mask = capacity - 1;
    this.#stride = recordWords + 1;
    this.#lap = capacity * 2;
    this.#notify = options.notify ?? true;
  }

  // ---- producers ---------------------------------------------------------

  /**
   * Appends one record. Words past `recordWords` are ignored; record words
   * past the fourth are set to 0.
   *
   * @param w0 Word 0 of the record.
   * @param w1 Word 1 (if `recordWords > 1`).
   * @param w2 Word 2 (if `recordWords > 2`).
   * @param w3 Word 3 (if `recordWords > 3`).
   * @returns `true` once published; `false`, changing nothing, when the ring
   *   is full or closed.
   */
  push(w0: number, w1 = 0, w2 = 0, w3 = 0): boolean {
    const s = this.#claim();
    if (s < 0) return false;
    const i32 = this.#i32;
    const rw = this.recordWords;
    i32[s + 1] = w0;
    if (rw > 1) {
      i32[s + 2] = w1;
      if (rw > 2) {
        i32[s + 3] = w2;
        if (rw > 3) {
          i32[s + 4] = w3;
          for (let w = 4; w < rw; w++) i32[s + 1 + w] = 0;
        }
      }
    }
    this.#publishSlot(s);
    return true;
  }

  /**
   * Appends one record copied from `words` (first `recordWords` words;
   * missing ones are 0).
   *
   * @param words The record's words.
   * @returns `false`, and changes nothing, when the ring is full or closed.
   */
  pushRecord(words: ArrayLike<number>): boolean {
    const s = this.#claim();
    if (s < 0) return false;
    const i32 = this.#i32;
    const rw = this.recordWords;
    for (let w = 0; w < rw; w++) i32[s + 1 + w] = words[w] ?? 0;
    this.#publishSlot(s);
    return true;
  }

  /**
   * Claims the slot of the next tail position.
   * @returns The slot's word index, with `seq` still saying "empty"; -1 when
   *   full or closed.
   */
  #claim(): number {
    const i32 = this.#i32;
    // A plain read is enough for a first guess: the CAS below validates it.
    let t = i32[W_TAIL];
    for (;;) {
      if ((t & 1) !== 0) return -1;
      const s = W_SLOTS + ((t >>> 1) & this.#mask) * this.#stride;
      const dif = (Atomics.load(i32, s) - t) | 0;
      if (dif === 0) {
        const prev = Atomics.compareExchange(i32, W_TAIL, t, (t + 2) | 0);
        if (prev === t) return s;
        t = prev;
      } else if (dif < 0) {
        return -1; // the slot still holds the record of position t - 2 x capacity
      } else {
        t = Atomics.load(i32, W_TAIL); // another producer took t
      }
    }
  }

  #publishSlot(s: number): void {
    const i32 = this.#i32;
    // The owner of slot s reads seq == t, so t + 1 is seq + 1.
    Atomics.store(i32, s, (i32[s] + 1) | 0);
    if (Atomics.load(i32, W_C_SLEEPING) !== 0) this.#wake(W_C_SLEEPING, W_C_WAKE);
  }

  /** Clears a sleeping mark and, if this call cleared it, wakes every waiter. */
  #wake(sleeping: number, wake: number): void {
    const i32 = this.#i32;
    if (this.#notify && Atomics.exchange(i32, sleeping, 0) !== 0) {
      Atomics.add(i32, wake, 1);
      Atomics.notify(i32, wake);
    }
  }

  /**
   * Closes the ring: later pushes are refused (atomically with respect to
   * concurrent pushes), consumers drain what is left and then see `"closed"`.
   * Idempotent; any thread may call it.
   */
  close(): void {
    const i32 = this.#i32;
    Atomics.or(i32, W_TAIL, 1);
    Atomics.add(i32, W_C_WAKE, 1);
    Atomics.notify(i32, W_C_WAKE);
    Atomics.add(i32, W_P_WAKE, 1);
    Atomics.notify(i32, W_P_WAKE);
  }

  /** Whether {@linkcode close} was called (records may still be waiting). */
  get closed(): boolean {
    return (Atomics.load(this.#i32, W_TAIL) & 1) !== 0;
  }

  // ---- consumers ---------------------------------------------------------

  /**
   * Consumes one record into `out`.
   *
   * @param out Receives the record; must hold `recordWords` words.
   * @returns `false` when no record is ready (empty, or the head record's
   *   producer has not published it yet).
   */
  pop(out: Int32Array): boolean {
    const i32 = this.#i32;
    // A plain read is enough for a first guess: the CAS below validates it.
    let h = i32[W_HEAD];
    for (;;) {
      const s = W_SLOTS + ((h >>> 1) & this.#mask) * this.#stride;
      const dif = (Atomics.load(i32, s) - ((h + 1) | 0)) | 0;
      if (dif === 0) {
        const prev = Atomics.compareExchange(i32, W_HEAD, h, (h + 2) | 0);
        if (prev === h) {
          const rw = this.recordWords;
          for (let w = 0; w < rw; w++) out[w] = i32[s + 1 + w];
          Atomics.store(i32, s, (h + this.#lap) | 0);
          if (Atomics.load(i32, W_P_SLEEPING) !== 0) this.#wake(W_P_SLEEPING, W_P_WAKE);
          return true;
        }
        h = prev;
      } else if (dif < 0) {
        return false; // not yet published (seq == h), or the last lap's pop is finishing
      } else {
        h = Atomics.load(i32, W_HEAD); // another consumer took h
      }
    }
  }

  /**
   * Consumes up to `max` consecutive ready records with one CAS of `head`:
   * record `j` lands in `out` at `j x recordWords`. FIFO per producer holds
   * within and across calls, as for {@linkcode pop}.
   *
   * @param out Receives the records, packed; `max` is capped at
   *   `out.length / recordWords` and at `capacity`.
   * @param max Most records to consume.
   * @returns Records consumed; 0 when none is ready (empty, or the head
   *   record's producer has not published it yet).
   * @example Drain in batches
   * ```ts
   * import { MpmcRing } from "./mpmc.ts";
   * import assert from "node:assert/strict";
   *
   * const ring = new MpmcRing(MpmcRing.allocate(8, 2));
   * ring.push(1, 10);
   * ring.push(2, 20);
   * const out = new Int32Array(2 * 16);
   * assert.equal(ring.popMany(out, 16), 2);
   * assert.deepEqual([...out.subarray(0, 4)], [1, 10, 2, 20]);
   * ```
   */
  popMany(out: Int32Array, max: number): number {
    const i32 = this.#i32;
    const mask = this.#mask;
    const stride = this.#stride;
    const rw = this.recordWords;
    const room = (out.length / rw) | 0;
    if (max > room) max = room;
    if (max > this.capacity) max = this.capacity; // one lap: distinct slots
    if (!(max > 0)) return 0;
    // A plain read is enough for a first guess: the CAS below validates it.
    let h = i32[W_HEAD];
    for (;;) {
      // Count the ready records from h on; each seq load pairs with its
      // producer's publishing store, so the words read below are complete.
      let k = 0;
      let p = h;
      for (; k < max; k++, p = (p + 2) | 0) {
        const dif = (Atomics.load(i32, W_SLOTS + ((p >>> 1) & mask) * stride) - ((p + 1) | 0)) | 0;
        if (dif === 0) continue;
        if (k === 0 && dif > 0) k = -1; // another consumer took h
        break;
      }
      if (k < 0) {
        h = Atomics.load(i32, W_HEAD);
        continue;
      }
      if (k === 0) return 0;
      // A ready slot stays ready until the consumer of its position frees it,
      // and the CAS makes us that consumer for all k of them.
      const prev = Atomics.compareExchange(i32, W_HEAD, h, (h + 2 * k) | 0);
      if (prev !== h) {
        h = prev;
        continue;
      }
      const lap = this.#lap;
      p = h;
      for (let j = 0, o = 0; j < k; j++, p = (p + 2) | 0) {
        const s = W_SLOTS + ((p >>> 1) & mask) * stride;
        for (let w = 1; w <= rw; w++) out[o++] = i32[s + w];
        Atomics.store(i32, s, (p + lap) | 0);
      }
      if (Atomics.load(i32, W_P_SLEEPING) !== 0) this.#wake(W_P_SLEEPING, W_P_WAKE);
      return k;
    }
  }

  /**
   * Records claimed by producers and not yet claimed by consumers.
   *
   * Note: racy when other threads run; it may be stale, never outside
   * `0 ... capacity`.
   *
   * @returns The number of records waiting, `0 ... capacity`.
   */
  size(): number {
    const i32 = this.#i32;
    const n = (((Atomics.load(i32, W_TAIL) & ~1) - Atomics.load(i32, W_HEAD)) | 0) >> 1;
    return n < 0 ? 0 : n > this.capacity ? this.capacity : n;
  }

  #consumerState(): number {
    const i32 = this.#i32;
    const h = Atomics.load(i32, W_HEAD);
    const s = W_SLOTS + ((h >>> 1) & this.#mask) * this.#stride;
    if (Atomics.load(i32, s) === ((h + 1) | 0)) return READY;
    const t = Atomics.load(i32, W_TAIL);
    // head only grows, so once it reaches a marked tail nothing more can come.
    if ((t & 1) !== 0 && (t & ~1) === h) return CLOSED;
    return NOTHING;
  }

  #producerState(): number {
    const i32 = this.#i32;
    const t = Atomics.load(i32, W_TAIL);
    if ((t & 1) !== 0) return CLOSED;
    const s = W_SLOTS + ((t >>> 1) & this.#mask) * this.#stride;
    return Atomics.load(i32, s) === t ? READY : NOTHING;
  }

  /**
   * Consumer side: blocks (with `Atomics.wait`, in bounded slices) until a
   * record is ready, the ring is closed and empty, or `timeoutMs` pass.
   * `"ok"` is a hint: another consumer may take the record first.
   *
   * @param timeoutMs Longest total wait; 0 checks once; `Infinity` never gives up.
   * @returns `"ok"`, `"closed"` or `"timed-out"`.
   */
  wait(timeoutMs: number): WaitResult {
    return this.#wait(timeoutMs, W_C_SLEEPING, W_C_WAKE, true);
  }

  /**
   * Producer side: blocks (in bounded slices) until the next slot is free,
   * the ring is closed, or `timeoutMs` pass. `"ok"` is a hint, as for `wait`.
   *
   * @param timeoutMs Longest total wait; 0 checks once; `Infinity` never gives up.
   * @returns `"ok"`, `"closed"` or `"timed-out"`.
   */
  waitForSpace(timeoutMs: number): WaitResult {
    return this.#wait(timeoutMs, W_P_SLEEPING, W_P_WAKE, false);
  }

  /**
   * Consumer side, for threads that keep an event loop: like {@linkcode wait}
   * but sleeps with `Atomics.waitAsync` (a timer keeps the event loop alive
   * meanwhile).
   *
   * @param timeoutMs Longest total wait; 0 checks once.
   * @returns `"ok"`, `"closed"` or `"timed-out"`.
   */
  waitAsync(timeoutMs: number): Promise<WaitResult> {
    return this.#waitAsync(timeoutMs, W_C_SLEEPING, W_C_WAKE, true);
  }

  /**
   * Producer side, like {@linkcode waitForSpace} with `Atomics.waitAsync`.
   *
   * @param timeoutMs Longest total wait; 0 checks once.
   * @returns `"ok"`, `"closed"` or `"timed-out"`.
   */
  waitForSpaceAsync(timeoutMs: number): Promise<WaitResult> {
    return this.#waitAsync(timeoutMs, W_P_SLEEPING, W_P_WAKE, false);
  }

  #state(consumer: boolean): number {
    return consumer ? this.#consumerState() : this.#producerState();
  }

  #wait(timeoutMs: number, sleeping: number, wake: number, consumer: boolean): WaitResult {
    const i32 = this.#i32;
    const deadline = deadlineOf(timeoutMs);
    for (;;) {
      const st = this.#state(consumer);
      if (st === READY) return "ok";
      if (st === CLOSED) return "closed";
      const ms = sliceUntil(deadline);
      if (ms === 0) return "timed-out";
      const w = Atomics.load(i32, wake);
      Atomics.store(i32, sleeping, 1);
      if (this.#state(consumer) === NOTHING) Atomics.wait(i32, wake, w, ms);
    }
  }

  async #waitAsync(
    timeoutMs: number,
    sleeping: number,
    wake: number,
    consumer: boolean,
  ): Promise<WaitResult> {
    const i32 = this.#i32;
    const deadline = deadlineOf(timeoutMs);
    for (;;) {
      const st = this.#state(consumer);
      if (st === READY) return "ok";
      if (st === CLOSED) return "closed";
      const ms = sliceUntil(deadline);
      if (ms === 0) return "timed-out";
      const w = Atomics.load(i32, wake);
      Atomics.store(i32, sleeping, 1);
      if (this.#state(consumer) === NOTHING) await sleepAsync(i32, wake, w, ms);
    }
  }
}

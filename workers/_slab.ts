/**
 * The result slab: a `SharedArrayBuffer` arena of fixed-size chunks that job
 * arguments and job results travel in between threads, without
 * `postMessage` (no structured clone, no copy into a message).
 *
 * Layout:
 *
 * ```text
 * data (SharedArrayBuffer, chunks x chunkBytes):
 *   chunk c at byte c * chunkBytes:
 *     word 0   next chunk of the same value + 1 (0: last chunk)
 *     word 1   payload bytes in this chunk (0 ... chunkBytes - 8)
 *     bytes 8 ...  payload
 * free (an MpmcRing of 1-word records): the indices of the free chunks
 * ```
 *
 * Ownership is the whole protocol: a chunk index is either in the free ring
 * or held by exactly one party (the writer until it publishes the value's
 * first index in a ring record; then whoever pops that record). `take` and
 * `free` move indices between the two through the ring, whose push/pop are
 * sequentially consistent `Atomics` operations: the payload a writer stores
 * before publishing is visible to the thread that pops the record (and a
 * chunk is only reused after its reader pushed it back). Nothing else is
 * shared, so there is no lock and no reference count: the consumer of a
 * value frees it, exactly once. A value's chunks are linked (word 0) so a
 * holder can free a partly written chain after an error.
 *
 * Note: `freeCount()` is racy while other threads run (the ring's size);
 * when everything is quiet it equals `chunks` unless a chunk leaked.
 *
 * @module
 */
import { MpmcRing } from "../queue/mpmc.ts";
import { tryLibc } from "../sys/libc.ts";

/** Bytes of the per-chunk header (next + used). */
const CHUNK_HEADER = 8;
const PAGE = 4096n;
const MADV_DONTNEED = 4;

type Madvise = (addr: bigint, length: bigint) => void;
let madviseFn: Madvise | null | undefined;

/**
 * `madvise(MADV_DONTNEED)` through FFI (Linux, `--allow-ffi`), else null.
 * The free ring is FIFO, so chunks are reused round-robin: without giving
 * the pages of a freed chunk back, every page of the slab ends up resident
 * (measured: +20 MiB of RSS over the first minutes of a soak, then flat).
 */
function madvise(): Madvise | null {
  if (madviseFn !== undefined) return madviseFn;
  madviseFn = null;
  // No FFI here: pages stay resident (bounded by the slab size).
  const lib = tryLibc();
  if (lib === null) return madviseFn;
  madviseFn = (addr, length) =>
    void lib.madvise(Deno.UnsafePointer.create(addr), length, MADV_DONTNEED);
  return madviseFn;
}

/** What a thread needs to attach to a slab (structured-clonable). */
export interface SlabBuffers {
  /** The chunks. */
  data: SharedArrayBuffer;
  /** The MPMC ring of free chunk indices. */
  free: SharedArrayBuffer;
  /** Bytes per chunk, header included. */
  chunkBytes: number;
}

/** A fixed-chunk shared arena (see the module doc for the protocol). */
export class Slab {
  /** Chunks in the arena. */
  readonly chunks: number;
  /** Payload bytes per chunk. */
  readonly payloadBytes: number;
  /** Frees this view could not give back (see `free`); 0 unless something broke. */
  lost = 0;
  readonly #chunkBytes: number;
  readonly #u8: Uint8Array;
  readonly #i32: Int32Array;
  readonly #free: MpmcRing;
  readonly #one = new Int32Array(1);
  /** Address of the chunk data, when freed chunks' pages can be given back. */
  readonly #base: bigint | null = null;

  /**
   * Allocates a slab of `chunks` chunks of `chunkBytes` bytes, all free.
   *
   * @param chunks Number of chunks: a power of two, 1 ... 2^20.
   * @param chunkBytes Bytes per chunk, a multiple of 8, at least 64.
   * @throws {RangeError} on a bad shape.
   */
  static allocate(chunks: number, chunkBytes: number): SlabBuffers {
    if (!Number.isInteger(chunkBytes) || chunkBytes < 64 || chunkBytes % 8 !== 0) {
      throw new RangeError(`chunkBytes must be a multiple of 8, at least 64, got ${chunkBytes}`);
    }
    if (!Number.isInteger(chunks) || chunks < 1 || chunks > 1 << 20 || (chunks & (chunks - 1))) {
      throw new RangeError(`chunks must be a power of two from 1 to 2^20, got ${chunks}`);
    }
    const free = MpmcRing.allocate(chunks, 1);
    const ring = new MpmcRing(free);
    for (let c = 0; c < chunks; c++) ring.push(c);
    return { data: new SharedArrayBuffer(chunks * chunkBytes), free, chunkBytes };
  }

  /** Attaches to buffers made by {@linkcode Slab.allocate}, in any thread. */
  constructor(buffers: SlabBuffers) {
    this.#chunkBytes = buffers.chunkBytes;
    this.chunks = buffers.data.byteLength / buffers.chunkBytes;
    if (!Number.isInteger(this.chunks) || this.chunks < 1) {
      throw new Error(
        `slab data of ${buffers.data.byteLength} bytes is not a whole number of ${buffers.chunkBytes}-byte chunks`,
      );
    }
    this.payloadBytes = buffers.chunkBytes - CHUNK_HEADER;
    this.#u8 = new Uint8Array(buffers.data);
    this.#i32 = new Int32Array(buffers.data);
    this.#free = new MpmcRing(buffers.free);
    if (madvise() !== null) {
      try {
        this.#base = Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.#u8));
      } catch {
        // Not addressable: leave the pages resident.
      }
    }
  }

  /** Gives the whole pages inside chunk `c`'s payload back to the kernel (they read as 0 after). */
  #release(c: number): void {
    const base = this.#base;
    if (base === null) return;
    const size = BigInt(this.#chunkBytes);
    const from = base + BigInt(c) * size + BigInt(CHUNK_HEADER);
    const start = (from + PAGE - 1n) & ~(PAGE - 1n);
    const end = (base + BigInt(c + 1) * size) & ~(PAGE - 1n);
    if (end > start) madvise()!(start, end - start);
  }

  /** Free chunks right now (racy; see the module note). */
  freeCount(): number {
    return this.#free.size();
  }

  /** Chunks a value of `bytes` bytes occupies. */
  chunksFor(bytes: number): number {
    return Math.max(1, Math.ceil(bytes / this.payloadBytes));
  }

  /**
   * Copies `parts` (concatenated) into newly taken chunks.
   *
   * @param parts The value, in pieces.
   * @returns The first chunk's index, or -1 (nothing taken) when not enough
   *   chunks are free.
   */
  write(parts: readonly Uint8Array[]): number {
    let total = 0;
    for (const p of parts) total += p.length;
    const need = this.chunksFor(total);
    if (need > this.chunks) return -1;
    const i32 = this.#i32;
    const words = this.#chunkBytes >> 2;
    const one = this.#one;
    let first = -1;
    let last = -1;
    let got = 0;
    let spins = 0;
    while (got < need) {
      if (!this.#free.pop(one)) {
        // A pop can miss a chunk whose free is mid-publish: retry while the
        // ring says chunks are there, then give back what we took.
        if (this.#free.size() > 0 && spins++ < 64) continue;
        if (first >= 0) this.free(first);
        return -1;
      }
      const c = one[0];
      i32[c * words] = 0;
      i32[c * words + 1] = 0;
      if (last < 0) first = c;
      else i32[last * words] = c + 1;
      last = c;
      got++;
    }
    let c = first;
    let at = 0; // bytes used in chunk c
    const cap = this.payloadBytes;
    for (const p of parts) {
      let off = 0;
      while (off < p.length) {
        if (at === cap) {
          c = i32[c * words] - 1;
          at = 0;
        }
        const n = Math.min(cap - at, p.length - off);
        const base = c * this.#chunkBytes + CHUNK_HEADER + at;
        this.#u8.set(off === 0 && n === p.length ? p : p.subarray(off, off + n), base);
        off += n;
        at += n;
        i32[c * words + 1] = at;
      }
    }
    return first;
  }

  /**
   * Copies the value starting at chunk `first` out into one new array and
   * frees its chunks. The caller held `first`; afterwards it holds nothing.
   *
   * @param first The first chunk, from the writer's record.
   * @param length The value's total length in bytes.
   * @param free Give the chunks back (default); false keeps holding them.
   * @returns The bytes.
   */
  read(first: number, length: number, free = true): Uint8Array {
    const out = new Uint8Array(length);
    const words = this.#chunkBytes >> 2;
    let c = first;
    let at = 0;
    while (c >= 0 && at < length) {
      const used = Math.min(this.#i32[c * words + 1], length - at);
      const base = c * this.#chunkBytes + CHUNK_HEADER;
      out.set(this.#u8.subarray(base, base + used), at);
      at += used;
      c = this.#i32[c * words] - 1;
    }
    if (free) this.free(first);
    return out;
  }

  /**
   * Gives back every chunk of the chain starting at `first` (e.g. a result
   * nobody will read). The caller held `first`.
   *
   * @param first The first chunk of the chain; -1 is ignored.
   */
  free(first: number): void {
    const words = this.#chunkBytes >> 2;
    let c = first;
    let guard = this.chunks;
    while (c >= 0 && c < this.chunks && guard-- > 0) {
      const next = this.#i32[c * words] - 1;
      this.#i32[c * words] = 0;
      // Before the push: once pushed, another thread may take and fill it.
      this.#release(c);
      // Fails only if a thread was killed inside a push or pop of the free
      // ring (the ring's documented hazard): count it rather than throw.
      if (!this.#free.push(c)) this.lost++;
      c = next;
    }
  }
}

/**
 * The unbound job pool's protocol (CMWQ's unbound workqueue): HTTP workers
 * submit jobs that take milliseconds (a directory listing, compressing a
 * text file) to one MPMC job ring; `--pool N` pool threads pull them, at
 * most N running at once (max_active), the rest waiting in the ring; a full
 * ring is answered 503 + Retry-After instead of blocking the worker.
 *
 * Arguments and results travel in the slab (`_slab.ts`); the rings carry
 * only fixed records:
 *
 * ```text
 * job record (MPMC, HTTP workers -> pool threads), 4 words:
 *   w0  kind | worker << 8 | retried << 16
 *   w1  token (the worker's, unique per incarnation of its slot)
 *   w2  first slab chunk of the arguments (UTF-8 JSON)
 *   w3  argument bytes
 * completion record (one MPMC ring per HTTP worker, pool threads and the
 * supervisor -> that worker), 4 words:
 *   w0  token
 *   w1  HTTP status: 200 with a result, else the error to answer
 *   w2  first slab chunk of the result (-1: none)
 *   w3  result bytes
 * result bytes: u32 (little endian) length of a UTF-8 JSON head, the head,
 *   then the body
 * ```
 *
 * Pool slots (an Int32Array, {@linkcode POOL_SLOT_WORDS} words per pool
 * thread, written by that thread, read by the supervisor when it dies):
 *
 * ```text
 * +0 PHASE   IDLE; RUNNING (holds the arguments, and the result chain
 *            named in +5 once written); PUBLISHING (pushing the completion,
 *            then freeing the arguments); RECLAIMED (the supervisor took
 *            the job back: the thread stops before publishing)
 * +1..+4     the job record being run
 * +5 RESULT  first chunk of the result being published, -1 none
 * +6 DONE    jobs finished (stat)
 * ```
 *
 * A pool thread that dies mid-job is replaced. `Worker.terminate()` does
 * not stop a thread at once (it stops at its next interrupt check, seen to
 * take hundreds of ms during synchronous file I/O), so ownership moves by
 * compare-and-swap on PHASE: the supervisor retires the dead thread's slot
 * (any phase -> RECLAIMED) and the replacement gets a fresh slot. Retired
 * while RUNNING, the job is the supervisor's: it pushes the job again once
 * (the retried bit; a job lost twice is answered 503), and whichever side
 * takes RESULT from the slot first (`Atomics.exchange`) frees the result.
 * A thread that finds its slot retired stops without publishing (and
 * pushes back a job it had just popped). Retired while PUBLISHING, the
 * thread finishes publishing itself. A thread that really dies inside a
 * few-instruction window (after popping a job, before marking it RUNNING;
 * while writing its result) leaks that job's chunks, or loses the job,
 * which its worker answers 503 after JOB_TIMEOUT_MS.
 *
 * @module
 */
import { MpmcRing } from "../queue/mpmc.ts";
import { Slab, type SlabBuffers } from "./_slab.ts";
import type { JobKind, JobTypes, SubmitJob } from "../http/job_protocol.ts";

/** Job kinds (SLEEP: a test hook, submitted only by tests). */
export const LISTING = 1, COMPRESS = 2, SLEEP = 3, CRC = 4;
/** The job record's kind code of each typed job kind (`http/job_protocol.ts`). */
export const JOB_CODE: { readonly [K in JobKind]: number } = {
  listing: LISTING,
  compress: COMPRESS,
  crc: CRC,
};

/** Words per pool slot. */
export const POOL_SLOT_WORDS = 16;
/** Pool slot offsets. */
export const PHASE = 0, JOB = 1, RESULT = 5, DONE = 6;
/** PHASE values. */
export const IDLE = 0, RUNNING = 1, PUBLISHING = 2, RECLAIMED = 3;

/** Highest HTTP worker slot a job record can name (8 bits). */
export const MAX_WORKER = 255;
/** Jobs a worker may have outstanding (the completion ring's capacity). */
export const MAX_OUTSTANDING = 256;
/** A job not completed after this long is answered 503 (a stuck pool). */
export const JOB_TIMEOUT_MS = 30_000;

/** Everything the pool shares (structured-clonable, sent to every thread). */
export interface PoolBuffers {
  /** Pool threads (0: no pool). */
  threads: number;
  /** The MPMC job ring. */
  jobs: SharedArrayBuffer;
  /** Per HTTP worker: its completion ring. */
  completions: SharedArrayBuffer[];
  /** The arena arguments and results travel in. */
  slab: SlabBuffers;
  /** Pool slots (see the module doc). */
  slots: SharedArrayBuffer;
  /**
   * Per HTTP worker slot: the last job token it issued. Kept here, outside
   * any one thread, so a replacement never reuses a token its dead
   * predecessor may still get a completion for.
   */
  tokens: SharedArrayBuffer;
}

/** Sizes of the pool's shared memory. */
export interface PoolShape {
  threads: number;
  workers: number;
  /** Job ring capacity (power of two): queued jobs beyond it get 503. */
  queue?: number;
  /** Slab chunks (power of two). */
  chunks?: number;
  /** Bytes per chunk. */
  chunkBytes?: number;
  /** Pool slots (at least `threads`). */
  slots?: number;
}

/** Allocates the pool's rings, slab and slots. */
export function allocatePool(shape: PoolShape): PoolBuffers {
  return {
    threads: shape.threads,
    jobs: MpmcRing.allocate(shape.queue ?? 64, 4),
    completions: Array.from({ length: shape.workers }, () => allocateCompletions()),
    // 1,024 x 32 KiB = 32 MiB of address space; pages are touched only as used.
    slab: Slab.allocate(shape.chunks ?? 1024, shape.chunkBytes ?? 32 * 1024),
    slots: new SharedArrayBuffer(Math.max(1, shape.slots ?? shape.threads) * POOL_SLOT_WORDS * 4),
    tokens: new SharedArrayBuffer(Math.max(1, shape.workers) * 4),
  };
}

/** A fresh completion ring (one per HTTP worker slot). */
export function allocateCompletions(): SharedArrayBuffer {
  return MpmcRing.allocate(MAX_OUTSTANDING, 4);
}

/**
 * Pool figures readable from its shared memory alone (any thread).
 *
 * @example Slab chunks in use
 * ```ts
 * import type { PoolSample } from "../mod.ts";
 *
 * const inUse = (p: PoolSample) => p.chunks - p.slabFree;
 * console.assert(
 *   inUse({ threads: 1, queued: 0, active: 0, done: 0, slabFree: 1000, chunks: 1024 }) === 24,
 * );
 * ```
 */
export interface PoolSample {
  /** Pool threads. */
  threads: number;
  /** Jobs waiting in the ring. */
  queued: number;
  /** Jobs running now (at most `threads`). */
  active: number;
  /** Jobs finished since start. */
  done: number;
  /** Free slab chunks, of `chunks`. */
  slabFree: number;
  /** Slab chunks. */
  chunks: number;
}

/**
 * Reads the pool's figures (racy: each is exact, the set is not a snapshot).
 *
 * @param b the pool's buffers
 * @param views views reused across calls (created on first use)
 */
export function samplePool(
  b: PoolBuffers,
  views: { jobs?: MpmcRing; slab?: Slab; slots?: Int32Array } = {},
): PoolSample {
  const jobs = views.jobs ??= new MpmcRing(b.jobs);
  const slab = views.slab ??= new Slab(b.slab);
  const slots = views.slots ??= new Int32Array(b.slots);
  let active = 0;
  let done = 0;
  for (let k = 0; k < slots.length; k += POOL_SLOT_WORDS) {
    const phase = Atomics.load(slots, k + PHASE);
    if (phase === RUNNING || phase === PUBLISHING) active++;
    done += Atomics.load(slots, k + DONE);
  }
  return {
    threads: b.threads,
    queued: jobs.size(),
    active,
    done,
    slabFree: slab.freeCount(),
    chunks: slab.chunks,
  };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes a result: JSON head + body (see the module doc). */
export function encodeResult(head: unknown, body: Uint8Array): Uint8Array[] {
  const h = encoder.encode(JSON.stringify(head));
  const len = new Uint8Array(4);
  new DataView(len.buffer).setUint32(0, h.length, true);
  return [len, h, body];
}

/** Splits result bytes into the JSON head and the body (a view, no copy). */
export function decodeResult<T>(bytes: Uint8Array): { head: T; body: Uint8Array } {
  const n = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true);
  const head = JSON.parse(decoder.decode(bytes.subarray(4, 4 + n))) as T;
  return { head, body: bytes.subarray(4 + n) };
}

/** A finished job as the submitting worker sees it. */
export interface JobResult {
  /** 200 with `head` and `body`; else the status to answer (503: pool busy or failed). */
  status: number;
  /** The result's JSON head. */
  head?: unknown;
  /** The result's body (copied out of the slab once). */
  body?: Uint8Array;
}

interface Pending {
  resolve: (r: JobResult) => void;
  deadline: number;
}

/**
 * The HTTP worker's side: submits jobs and turns completion records into
 * settled promises. Completions are drained by a loop that runs only while
 * jobs are outstanding (bounded `waitAsync`: wake-ups can be lost on Deno 2.9),
 * or, with `ownWaits: false`, by the owner's loop calling
 * {@linkcode JobClient.turn} (an epoll worker, whose event loop runs
 * `waitAsync` callbacks and timers late).
 */
export class JobClient {
  readonly #jobs: MpmcRing;
  readonly #done: MpmcRing;
  readonly #slab: Slab;
  readonly #worker: number;
  readonly #pending = new Map<number, Pending>();
  readonly #rec = new Int32Array(4);
  readonly #tokens: Int32Array;
  #draining = false;
  readonly #ownWaits: boolean;
  /** Jobs refused because the ring or the slab was full (stat). */
  rejected = 0;

  /**
   * @param buffers The pool's shared memory.
   * @param worker This HTTP worker's slot (0 ... 255: the job record has 8 bits for it).
   * @param options.ownWaits `false`: no wait loop or timer of its own; the
   *   caller calls {@linkcode JobClient.turn} often (every few ms).
   * @default {true}
   */
  constructor(buffers: PoolBuffers, worker: number, options: { ownWaits?: boolean } = {}) {
    if (!(worker >= 0 && worker <= MAX_WORKER)) {
      throw new RangeError(`a pool serves worker slots 0-${MAX_WORKER}, got ${worker}`);
    }
    this.#jobs = new MpmcRing(buffers.jobs);
    this.#done = new MpmcRing(buffers.completions[worker]);
    this.#slab = new Slab(buffers.slab);
    this.#worker = worker;
    this.#tokens = new Int32Array(buffers.tokens);
    this.#ownWaits = options.ownWaits ?? true;
    // Completions nobody waits for any more (timed out, or a dead
    // predecessor's) still hold slab chunks: collect them now and then.
    if (this.#ownWaits) {
      Deno.unrefTimer(setInterval(() => {
        if (!this.#draining && this.#done.size() > 0) this.poll();
      }, 1000));
    }
  }

  /**
   * One turn of the owner's loop (with `ownWaits: false`): takes the
   * completions now in the ring, then answers 503 to jobs past their
   * deadline. One ring-size load when nothing is outstanding or done.
   */
  turn(): void {
    if (this.#done.size() > 0) this.poll();
    if (this.#pending.size > 0) this.#expire(performance.now());
  }

  /** Jobs past their deadline are answered 503 (a pool thread may be stuck). */
  #expire(now: number): void {
    for (const [token, p] of this.#pending) {
      if (now >= p.deadline) {
        this.#pending.delete(token);
        p.resolve({ status: 503 });
      }
    }
  }

  /** Jobs submitted and not yet completed. */
  get outstanding(): number {
    return this.#pending.size;
  }

  /**
   * Queues a typed job (the handler's {@linkcode SubmitJob}): the same as
   * {@linkcode JobClient.submit} with the kind's code.
   */
  readonly job: SubmitJob = (kind, args) => this.submit(JOB_CODE[kind], args);

  /**
   * Queues a job. Never blocks: a full ring or slab, or too many
   * outstanding jobs, answer `{ status: 503 }` at once.
   *
   * @param kind {@linkcode LISTING} or {@linkcode COMPRESS} (or the test hook {@linkcode SLEEP}).
   * @param args The job's arguments (JSON-serialisable).
   * @returns The result, once a pool thread finished it.
   */
  submit(
    kind: number,
    args: JobTypes[JobKind]["args"] | { ms: number },
  ): Promise<JobResult> | JobResult {
    if (this.#pending.size >= MAX_OUTSTANDING) return this.#reject();
    const a = encoder.encode(JSON.stringify(args));
    const first = this.#slab.write([a]);
    if (first < 0) return this.#reject();
    // Unique per slot across restarts (wraps after 2^32 jobs; a job lives 30 s at most).
    const token = (Atomics.add(this.#tokens, this.#worker, 1) + 1) | 0;
    if (!this.#jobs.push(kind | (this.#worker << 8), token, first, a.length)) {
      this.#slab.free(first);
      return this.#reject();
    }
    const p = new Promise<JobResult>((resolve) => {
      this.#pending.set(token, { resolve, deadline: performance.now() + JOB_TIMEOUT_MS });
    });
    if (this.#ownWaits && !this.#draining) this.#drainLoop();
    return p;
  }

  #reject(): JobResult {
    this.rejected++;
    return { status: 503 };
  }

  /** Takes every completion record now in the ring. */
  poll(): void {
    const rec = this.#rec;
    while (this.#done.pop(rec)) {
      const [token, status, first, len] = rec;
      const p = this.#pending.get(token);
      let bytes: Uint8Array | undefined;
      if (first >= 0) {
        if (p === undefined) this.#slab.free(first); // timed out, or a predecessor's
        else bytes = this.#slab.read(first, len);
      }
      if (p !== undefined) {
        this.#pending.delete(token);
        let answer: JobResult = { status: status === 200 ? 503 : status };
        if (status === 200 && bytes !== undefined) {
          try {
            const { head, body } = decodeResult(bytes);
            answer = { status, head, body };
          } catch {
            // A malformed result: answered 503 like a failed job.
          }
        }
        p.resolve(answer);
      }
    }
  }

  async #drainLoop(): Promise<void> {
    this.#draining = true;
    try {
      while (this.#pending.size > 0) {
        this.poll();
        if (this.#pending.size === 0) break;
        this.#expire(performance.now());
        await this.#done.waitAsync(50);
      }
    } finally {
      this.#draining = false;
    }
  }
}

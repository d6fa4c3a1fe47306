/// <reference lib="deno.worker" />
/**
 * A pool thread: runs jobs from the unbound MPMC job ring one at a time
 * (protocol in `_jobs.ts`). It has no event loop work of its own, so it
 * blocks in `Atomics.wait` (bounded slices) between jobs and does its file
 * I/O synchronously: the point of the pool is that a job may take
 * milliseconds without stalling any connection.
 *
 * Jobs (typed and run by `../http/job_protocol.ts`):
 * - listing: collect (sync readdir + lstat), sort, render one page (HTML or
 *   JSON) with the same code an HTTP worker uses inline (`--pool 0`);
 * - compress: gzip or brotli of a whole text file, checked to be one
 *   version of the file (fstat before and after the read), the same code
 *   (`../http/_compress.ts`) an HTTP worker runs inline.
 *
 * Messages: `start` (a {@linkcode PoolThreadConfig}) -> `ready`. It stops
 * when the job ring is closed and empty (graceful shutdown).
 *
 * @module
 */
import { MpmcRing } from "../queue/mpmc.ts";
import { errorStatus } from "../http/_fs_errors.ts";
import { FileChanged } from "../http/_compress.ts";
import {
  jobArgs,
  type JobContext,
  runCompressJob,
  runCrcJob,
  runListingJob,
} from "../http/job_protocol.ts";
import { loadMarkdown } from "../http/_readme.ts";
import { Slab } from "./_slab.ts";
import {
  COMPRESS,
  CRC,
  DONE,
  encodeResult,
  IDLE,
  JOB,
  LISTING,
  PHASE,
  POOL_SLOT_WORDS,
  type PoolBuffers,
  PUBLISHING,
  RESULT,
  RUNNING,
  SLEEP,
} from "./_jobs.ts";

/** What a pool thread is started with. */
export interface PoolThreadConfig extends JobContext {
  /** This thread's pool slot. */
  index: number;
  pool: PoolBuffers;
}

const decoder = new TextDecoder();

self.onmessage = (e: MessageEvent<{ type: "start"; config: PoolThreadConfig }>) => {
  if (e.data.type !== "start") return;
  self.postMessage({ type: "ready" });
  // Blocks this thread for good (until the ring closes): reply first.
  // browse (#17): the README renderer is loaded here, before the synchronous job loop.
  setTimeout(() => loadMarkdown().finally(() => run(e.data.config)), 0);
};

function run(config: PoolThreadConfig): void {
  const jobs = new MpmcRing(config.pool.jobs);
  const done = config.pool.completions.map((b) => new MpmcRing(b));
  const slab = new Slab(config.pool.slab);
  const slot = new Int32Array(
    config.pool.slots,
    config.index * POOL_SLOT_WORDS * 4,
    POOL_SLOT_WORDS,
  );
  const rec = new Int32Array(4);
  for (;;) {
    if (jobs.wait(1000) === "closed") break;
    if (!jobs.pop(rec)) continue;
    const [kindWord, token, argsFirst, argsLen] = rec;
    for (let w = 0; w < 4; w++) Atomics.store(slot, JOB + w, rec[w]);
    if (Atomics.compareExchange(slot, PHASE, IDLE, RUNNING) !== IDLE) {
      // Retired: this thread was declared dead. The job goes back.
      if (!jobs.pushRecord(rec)) {
        complete(done[(kindWord >> 8) & 0xff], token, 503, -1, 0);
        slab.free(argsFirst);
      }
      break;
    }
    const worker = (kindWord >> 8) & 0xff;
    let status = 200;
    let parts: Uint8Array[] | null = null;
    try {
      const args = JSON.parse(decoder.decode(slab.read(argsFirst, argsLen, false)));
      parts = runJob(kindWord & 0xff, args, config);
    } catch (err) {
      status = err instanceof FileChanged ? 409 : errorStatus(err);
      if (status === 500) {
        console.error(`ringhttpd: pool job failed: ${err instanceof Error ? err.message : err}`);
      }
    }
    let first = -1;
    let len = 0;
    if (parts !== null) {
      for (const p of parts) len += p.length;
      first = writeWaiting(slab, parts);
      if (first < 0) status = 503; // larger than the slab, or the slab stayed full
      else Atomics.store(slot, RESULT, first);
    }
    if (Atomics.compareExchange(slot, PHASE, RUNNING, PUBLISHING) !== RUNNING) {
      // Reclaimed: the supervisor runs the job again (it holds the
      // arguments now). The result goes to whichever side takes it first.
      const mine = Atomics.exchange(slot, RESULT, -1);
      if (mine >= 0) slab.free(mine);
      break;
    }
    Atomics.store(slot, RESULT, -1);
    if (!complete(done[worker], token, status, first, len)) {
      slab.free(first); // the worker's ring is gone: nobody will read it
    }
    slab.free(argsFirst);
    Atomics.add(slot, DONE, 1);
    if (Atomics.compareExchange(slot, PHASE, PUBLISHING, IDLE) !== PUBLISHING) break; // retired
  }
  self.close();
}

/** Runs one job (arguments checked against its kind); returns the result's parts. */
function runJob(kind: number, args: unknown, config: PoolThreadConfig): Uint8Array[] {
  if (kind === LISTING) {
    const { head, body } = runListingJob(jobArgs("listing", args), config);
    return encodeResult(head, body);
  }
  if (kind === COMPRESS) {
    const { head, body } = runCompressJob(jobArgs("compress", args));
    return encodeResult(head, body);
  }
  if (kind === CRC) {
    const { head, body } = runCrcJob(jobArgs("crc", args));
    return encodeResult(head, body);
  }
  if (kind === SLEEP) {
    // Test hook (not reachable from HTTP): a job that takes `ms`.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, (args as { ms: number }).ms);
    return encodeResult({ slept: true }, new Uint8Array(0));
  }
  throw new Error(`unknown job kind ${kind}`);
}

/** Writes to the slab, waiting up to 200 ms for chunks to come free. */
function writeWaiting(slab: Slab, parts: Uint8Array[]): number {
  let total = 0;
  for (const p of parts) total += p.length;
  if (slab.chunksFor(total) > slab.chunks) return -1;
  const deadline = performance.now() + 200;
  const nap = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    const first = slab.write(parts);
    if (first >= 0 || performance.now() >= deadline) return first;
    Atomics.wait(nap, 0, 0, 2);
  }
}

/** Pushes a completion, waiting (bounded) for room; false if it cannot. */
function complete(ring: MpmcRing, token: number, status: number, first: number, len: number) {
  const deadline = performance.now() + 5000;
  for (;;) {
    if (ring.push(token, status, first, len)) return true;
    if (ring.waitForSpace(Math.max(1, deadline - performance.now())) !== "ok") return false;
  }
}

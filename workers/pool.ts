/// <reference lib="deno.worker" />
/**
 * A pool thread: runs jobs from the unbound MPMC job ring one at a time
 * (protocol in `_jobs.ts`). It has no event loop work of its own, so it
 * blocks in `Atomics.wait` (bounded slices) between jobs and does its file
 * I/O synchronously: the point of the pool is that a job may take
 * milliseconds without stalling any connection.
 *
 * Jobs:
 * - listing: collect (sync readdir + lstat), sort, render one page (HTML or
 *   JSON) with the same code an HTTP worker uses inline (`--pool 0`);
 * - compress: gzip or brotli of a whole text file, checked to be one
 *   version of the file (fstat before and after the read).
 *
 * Messages: `start` (a {@linkcode PoolThreadConfig}) -> `ready`. It stops
 * when the job ring is closed and empty (graceful shutdown).
 *
 * @module
 */
import { gzipSync } from "node:zlib";
import { brotliCompressSync, constants as zlib } from "node:zlib";
import { MpmcRing } from "../queue/mpmc.ts";
import { collectEntries, parseListingQuery, sortEntries } from "../http/listing.ts";
import { COLLECT_MAX, newestMtime, type PageConfig, renderPage } from "../http/_listing_page.ts";
import type { ServePolicy } from "../http/resolve.ts";
import { errorStatus } from "../http/_fs_errors.ts";
import { Slab } from "./_slab.ts";
import {
  COMPRESS,
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
export interface PoolThreadConfig {
  /** This thread's pool slot. */
  index: number;
  pool: PoolBuffers;
  /** The real root and the serving policy (what listings show). */
  policy: ServePolicy;
  page: PageConfig;
}

/** Arguments of a listing job. */
export interface ListingArgs {
  /** The directory's real path (resolved and checked by the worker). */
  real: string;
  /** Its URL path, ending in `/`. */
  path: string;
  /** The raw query string. */
  query: string;
  /** JSON instead of HTML (by query or Accept). */
  json: boolean;
}

/** Arguments of a compress job: the file as the worker stat'ed it. */
export interface CompressArgs {
  real: string;
  encoding: "gzip" | "br";
  size: number;
  mtimeMs: number;
  ino: number;
}

/** Result head of a compress job: the version that was compressed. */
export interface CompressHead {
  size: number;
  mtimeMs: number;
  ino: number;
}

const decoder = new TextDecoder();

self.onmessage = (e: MessageEvent<{ type: "start"; config: PoolThreadConfig }>) => {
  if (e.data.type !== "start") return;
  self.postMessage({ type: "ready" });
  // Blocks this thread for good (until the ring closes): reply first.
  setTimeout(() => run(e.data.config), 0);
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

/** Runs one job; returns the result's parts (head + body). */
function runJob(kind: number, args: unknown, config: PoolThreadConfig): Uint8Array[] {
  if (kind === LISTING) return listing(args as ListingArgs, config);
  if (kind === COMPRESS) return compress(args as CompressArgs);
  if (kind === SLEEP) {
    // Test hook (not reachable from HTTP): a job that takes `ms`.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, (args as { ms: number }).ms);
    return encodeResult({ slept: true }, new Uint8Array(0));
  }
  throw new Error(`unknown job kind ${kind}`);
}

function listing(a: ListingArgs, config: PoolThreadConfig): Uint8Array[] {
  const q = parseListingQuery(a.query);
  const collectMax = Math.max(COLLECT_MAX, config.page.listingCap);
  const dirInfo = Deno.statSync(a.real);
  const entries = collectEntries(a.real, config.policy, collectMax + 1);
  const truncated = entries.length > collectMax;
  if (truncated) entries.length = collectMax;
  const mtimeMs = newestMtime(dirInfo.mtime?.getTime() ?? 0, entries);
  sortEntries(entries, q.sort, q.order);
  const page = renderPage(entries, truncated, mtimeMs, q, a.json, a.path, config.page);
  const { body, ...head } = page;
  return encodeResult(head, body);
}

/** The file is not (or no longer) the version the job was asked for. */
class FileChanged extends Error {}

function compress(a: CompressArgs): Uint8Array[] {
  const file = Deno.openSync(a.real, { read: true });
  try {
    const before = file.statSync();
    if (
      before.size !== a.size || (before.mtime?.getTime() ?? 0) !== a.mtimeMs ||
      (before.ino ?? 0) !== a.ino
    ) {
      // Another version (maybe a much larger one) than the worker saw: its
      // answer would be thrown away, so do not read it at all.
      throw new FileChanged();
    }
    const bytes = new Uint8Array(before.size);
    let at = 0;
    while (at < bytes.length) {
      const n = file.readSync(bytes.subarray(at));
      if (n === null || n === 0) break;
      at += n;
    }
    const after = file.statSync();
    const mtimeMs = after.mtime?.getTime() ?? 0;
    if (
      at !== before.size || after.size !== before.size ||
      mtimeMs !== (before.mtime?.getTime() ?? 0)
    ) {
      // Changed while read: never hand out bytes of two versions.
      throw new FileChanged();
    }
    const out = a.encoding === "br"
      ? brotliCompressSync(bytes, {
        params: {
          // Quality 5: most of brotli's gain at a fraction of 11's time.
          [zlib.BROTLI_PARAM_QUALITY]: 5,
          [zlib.BROTLI_PARAM_SIZE_HINT]: bytes.length,
        },
      })
      : gzipSync(bytes, { level: 6 });
    const head: CompressHead = { size: after.size, mtimeMs, ino: after.ino ?? 0 };
    return encodeResult(head, new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
  } finally {
    file.close();
  }
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

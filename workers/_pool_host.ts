/**
 * The supervisor's side of the job pool (protocol in `_jobs.ts`): allocates
 * the job ring, the slab and one completion ring per HTTP worker, starts the
 * pool threads lazily (the first on the first job, the next one each time
 * jobs still wait 20 ms after a wake-up: an idle pool costs no thread, ~16 MiB
 * of RSS each, #16), replaces one that dies (its job runs once more, or is
 * answered 503 if it already had), gives back the slab chunks a dead HTTP
 * worker held, and closes the job ring at shutdown.
 *
 * @module
 */
import { MpmcRing } from "../queue/mpmc.ts";
import { Slab } from "./_slab.ts";
import {
  allocatePool,
  IDLE,
  JOB,
  PHASE,
  POOL_SLOT_WORDS,
  type PoolBuffers,
  type PoolSample,
  RECLAIMED,
  RESULT,
  RUNNING,
  samplePool,
} from "./_jobs.ts";
import type { PoolThreadConfig } from "./pool.ts";
import type { WorkerConfig } from "./_shared.ts";

const POOL_URL = new URL("./pool.ts", import.meta.url);
/** Slots beyond one per thread, for replacements. */
const SPARE_SLOTS = 32;

/**
 * Pool figures for `Cluster.stats()`.
 *
 * @example Is the pool keeping up?
 * ```ts
 * import type { PoolStats } from "../mod.ts";
 *
 * function backlog(p: PoolStats): string {
 *   return `${p.active}/${p.threads} busy, ${p.queued} queued, ${p.restarts} restarts`;
 * }
 * console.assert(
 *   backlog({
 *     threads: 1, queued: 0, active: 1, done: 9, slabFree: 8, chunks: 8, restarts: 0, started: 1,
 *   }) ===
 *     "1/1 busy, 0 queued, 0 restarts",
 * );
 * ```
 */
export interface PoolStats extends PoolSample {
  /** Pool threads replaced after dying. */
  restarts: number;
  /** Pool threads started so far (they start on demand, up to `threads`). */
  started: number;
}

/** Starts and supervises the pool threads. */
export class PoolHost {
  /** The shared memory every HTTP worker attaches to. */
  readonly buffers: PoolBuffers;
  readonly #threads: (Worker | undefined)[] = [];
  readonly #slots: Int32Array;
  readonly #jobs: MpmcRing;
  readonly #slab: Slab;
  readonly #config: (i: number) => PoolThreadConfig;
  readonly #log: (line: string) => void;
  #closing = false;
  #restarts = 0;
  /** Told +1 when a thread is ready, -1 when one dies (the health page's count). */
  onLive?: (delta: number) => void;
  /** Each thread's slot; a replacement gets a fresh one (see `#died`). */
  readonly #slotOf: number[] = [];
  /** Slots not in use, least recently retired first. */
  readonly #spare: number[] = [];
  readonly #views = {};
  readonly #retries = new Set<ReturnType<typeof setTimeout>>();
  /** Per thread: when it died lately (crash-loop backoff). */
  readonly #deaths: number[][] = [];
  /** Threads started so far (they start lazily, in index order). */
  #started = 0;

  /**
   * @param threads Pool threads (at least 1).
   * @param workers HTTP worker slots (one completion ring each).
   * @param handler What the HTTP workers serve (the pool lists the same way).
   * @param log Supervisor log lines.
   */
  constructor(
    threads: number,
    workers: number,
    handler: WorkerConfig["handler"],
    log: (line: string) => void,
  ) {
    // Spare slots: a dead thread's slot stays retired while threads that
    // may still be running (terminate() is not immediate) could touch it.
    this.buffers = allocatePool({ threads, workers, slots: threads + SPARE_SLOTS });
    for (let k = 0; k < threads + SPARE_SLOTS; k++) {
      (k < threads ? this.#slotOf : this.#spare).push(k);
    }
    this.#slots = new Int32Array(this.buffers.slots);
    this.#jobs = new MpmcRing(this.buffers.jobs);
    this.#slab = new Slab(this.buffers.slab);
    this.#log = log;
    const root = Deno.realPathSync(handler.root);
    this.#config = (index) => ({
      index,
      pool: this.buffers,
      policy: { root, dotfiles: handler.dotfiles, followSymlinks: handler.followSymlinks },
      page: {
        listingCap: Math.max(1, handler.listingCap ?? 10000),
        dotfiles: handler.dotfiles,
        archives: handler.dirListing && handler.maxArchiveBytes > 0,
      },
    });
  }

  /**
   * Starts watching the job ring: threads start on demand (see the module
   * doc), so a server that never lists or compresses never pays for one.
   * Resolves at once.
   */
  start(): Promise<void> {
    this.#watch().catch((e) => this.#log(`pool: ${e instanceof Error ? e.message : e}`));
    return Promise.resolve();
  }

  /** Starts one more thread whenever jobs wait and no started thread takes them. */
  async #watch(): Promise<void> {
    // terminate() clears the nap's timer (the promise is then left pending).
    const nap = (ms: number) => new Promise<void>((r) => this.#later(ms, r));
    while (!this.#closing && this.#started < this.buffers.threads) {
      // Sleeps on the ring's consumer wake-up word like a pool thread; bounded
      // slices because a notify may be lost (DENO_FACTS).
      const r = await this.#jobs.waitAsync(1000);
      if (r === "closed" || this.#closing) return;
      if (r !== "ok") continue;
      if (this.#started > 0) {
        // A started thread may be idle and about to take it: judge after a nap.
        await nap(20);
        if (this.#closing) return;
        if (this.#jobs.size() === 0 || this.#idle() > 0) continue;
      }
      const i = this.#started++;
      // A thread not started yet counts as alive (it starts on demand): from
      // here it is starting, and counts again once ready.
      this.onLive?.(-1);
      await this.#start(i).catch((e) => this.#restartFailed(i, e, 1000));
    }
  }

  /** Started threads whose slot is idle (racy: a hint). */
  #idle(): number {
    let n = 0;
    for (let i = 0; i < this.#started; i++) {
      if (this.#threads[i] && Atomics.load(this.#slot(this.#slotOf[i]), PHASE) === IDLE) n++;
    }
    return n;
  }

  #start(i: number): Promise<void> {
    const slot = this.#slot(this.#slotOf[i]);
    // DONE keeps counting across the slot's threads.
    Atomics.store(slot, RESULT, -1);
    Atomics.store(slot, PHASE, IDLE);
    let w: Worker;
    try {
      w = new Worker(POOL_URL, { type: "module", name: `pool-${i}` });
    } catch (e) {
      return Promise.reject(e);
    }
    this.#threads[i] = w;
    return new Promise((resolve, reject) => {
      let ready = false;
      w.onmessage = () => {
        ready = true;
        this.onLive?.(1);
        resolve();
      };
      w.onerror = (e) => {
        e.preventDefault();
        if (!ready) {
          w.terminate();
          reject(new Error(`pool thread ${i}: ${e.message}`));
        } else this.#died(i, w, e.message);
      };
      w.postMessage({ type: "start", config: this.#config(this.#slotOf[i]) });
    });
  }

  /**
   * Test hook: stops pool thread `i` wherever it is (mid-job included), as
   * a crash would, and replaces it.
   */
  kill(i: number): void {
    const w = this.#threads[i];
    if (w) this.#died(i, w, "killed (test hook)");
  }

  #died(i: number, dead: Worker, reason: string): void {
    if (this.#threads[i] !== dead) return;
    this.#threads[i] = undefined;
    this.onLive?.(-1);
    // Takes effect at the thread's next interrupt check, not now: until then
    // it may still run. Retiring its slot makes it stop at its next step.
    dead.terminate();
    const old = this.#slotOf[i];
    const slot = this.#slot(old);
    let from: number;
    for (;;) {
      from = Atomics.load(slot, PHASE);
      if (Atomics.compareExchange(slot, PHASE, from, RECLAIMED) === from) break;
    }
    if (from === RUNNING) {
      // The job is ours: the thread will not publish it. Its result chain
      // goes to whichever of us takes it from the slot first.
      const job = [0, 1, 2, 3].map((w) => Atomics.load(slot, JOB + w));
      const result = Atomics.exchange(slot, RESULT, -1);
      if (result >= 0) this.#slab.free(result);
      this.#retryOrFail(job);
    } // PUBLISHING: it completes the job itself; IDLE: nothing was running.
    // A fresh slot for the replacement; the old one is reused last.
    this.#spare.push(old);
    this.#slotOf[i] = this.#spare.shift()!;
    if (this.#closing) return;
    this.#restarts++;
    // At once, unless it is a crash loop (a third death within 10 s): then
    // 100 ms doubling up to 1 s, as for HTTP workers.
    const now = Date.now();
    const recent = (this.#deaths[i] ?? []).filter((t) => now - t < 10_000);
    recent.push(now);
    this.#deaths[i] = recent;
    const wait = recent.length > 2 ? Math.min(1000, 100 * 2 ** (recent.length - 3)) : 0;
    this.#log(`pool thread ${i} died (${reason}); replacing it${wait ? ` in ${wait} ms` : ""}`);
    this.#later(wait, () => this.#start(i).catch((e) => this.#restartFailed(i, e, 1000)));
  }

  /** Runs `fn` after `ms` unless the pool is closing by then. */
  #later(ms: number, fn: () => void): void {
    if (ms === 0) return fn();
    const t = setTimeout(() => {
      this.#retries.delete(t);
      if (!this.#closing) fn();
    }, ms);
    this.#retries.add(t);
  }

  /** Pool slot `k`'s words. */
  #slot(k: number): Int32Array {
    return this.#slots.subarray(k * POOL_SLOT_WORDS, (k + 1) * POOL_SLOT_WORDS);
  }

  #restartFailed(i: number, e: Error, ms: number): void {
    // A pool that shrinks for good would leave its jobs to time out: retry,
    // backing off to once a minute.
    this.#log(`pool thread ${i} restart failed: ${e.message}; retrying in ${ms / 1000} s`);
    const next = Math.min(60_000, ms * 2);
    this.#later(ms, () => this.#start(i).catch((e) => this.#restartFailed(i, e, next)));
  }

  /** The job of a dead thread: once more, or 503 if it had already been retried. */
  #retryOrFail(job: number[]): void {
    const [kindWord, token, argsFirst, argsLen] = job;
    const retried = (kindWord >> 16) & 1;
    if (retried === 0 && this.#jobs.push(kindWord | (1 << 16), token, argsFirst, argsLen)) return;
    this.#slab.free(argsFirst);
    const worker = (kindWord >> 8) & 0xff;
    const ring = this.buffers.completions[worker];
    if (ring) new MpmcRing(ring).push(token, 503, -1, 0);
  }

  /**
   * HTTP worker `i` died: gives back the result chunks queued for it. (Later
   * completions reach its replacement, which frees what it did not ask for.)
   */
  workerDied(i: number): void {
    const ring = new MpmcRing(this.buffers.completions[i]);
    const rec = new Int32Array(4);
    while (ring.pop(rec)) if (rec[2] >= 0) this.#slab.free(rec[2]);
  }

  /**
   * Refuses new jobs: a thread exits once the ring is empty. (The
   * supervisor calls this after the HTTP workers drained, so no request
   * waits for a queued job; `terminate` follows.)
   */
  close(): void {
    this.#closing = true;
    this.#jobs.close();
  }

  /** Stops every thread at once. */
  terminate(): void {
    this.#closing = true;
    // Wakes #watch out of its waitAsync (whose timer would outlive us).
    if (!this.#jobs.closed) this.#jobs.close();
    for (const t of this.#retries) clearTimeout(t);
    for (const w of this.#threads) w?.terminate();
    this.#threads.length = 0;
  }

  /** Current figures (racy reads; each is exact, the set is not a snapshot). */
  stats(): PoolStats {
    return {
      ...samplePool(this.buffers, this.#views),
      restarts: this.#restarts,
      started: this.#started,
    };
  }
}

/**
 * Cross-worker cache invalidation: the supervisor watches the served root
 * (`Deno.watchFs`, recursive) and pushes one record per changed path into
 * every HTTP worker's own invalidation ring; each worker drains its ring and
 * drops the matching file and listing cache entries (`FileHandler.invalidate`).
 *
 * ## Contract
 *
 * Per worker slot `i`: one {@linkcode ByteRing} of {@linkcode RECORD_BYTES}-byte
 * records (supervisor = producer, worker = consumer; a replacement worker
 * attaches to the same ring and carries on), and two words of the shared
 * signal buffer (an `Int32Array`, slot `i` at word 32 x i, 128 bytes apart so
 * no two consumers share a cache line):
 *
 * ```text
 * +0 SEQ   supervisor: +1 (then Atomics.notify) after each batch of records
 * +1 LOST  supervisor: 1 when a record did not fit (ring full, path too long
 *          or outside the root) or the watcher lost events; the worker
 *          swaps it back to 0 and drops its whole cache
 * ```
 *
 * Record layout (bytes): `+0` length of the path in bytes (u16, little
 * endian), `+2` kind (1 = one path), `+8` the path relative to the root, UTF-8.
 * Relative, so the 504 bytes of a record hold most real paths; an absolute
 * path is `root + "/" + relative` on the worker (the root is the real path on
 * both sides). A path that does not fit is sent as LOST (drop everything):
 * slower to recover from, never wrong.
 *
 * Symlinks: inotify reports a change in a directory reachable by two paths
 * (a symlinked directory inside the root) under either of them, while the
 * workers' caches hold real paths, so the supervisor sends both the
 * reported path and its real path (when that differs and lies under the
 * root). A target outside the root (`followSymlinks`) is not watched: the
 * workers' stat revalidation covers it.
 *
 * Why the path and not a hash: a removed or renamed directory must drop
 * everything under it, which is a prefix test on paths; a hash would need the
 * hash of every ancestor of every cached entry.
 *
 * Waking: two paths, both on SEQ. (1) Before each request the worker
 * compares SEQ with the value it last acted on and, if it moved, drains the
 * ring first: one `Atomics.load` per request, and no request is answered from
 * an entry whose record was already published. This is the one that counts:
 * in epoll I/O mode a worker's event-loop turns (every <= 10 ms) ran neither
 * its `waitAsync` resolutions nor its timers promptly; path (2) alone took
 * 1.4 s (p50) there to apply a record, against 3.5 ms in socket and
 * reuseport modes. (2) Between requests a loop loads SEQ, drains, then
 * `Atomics.waitAsync`s on SEQ while it still holds the loaded value, so an
 * idle worker also frees what went stale and counts it. Either way the
 * supervisor publishes records (the ring's `tail` store) before it adds to
 * SEQ; every JS `Atomics` operation is sequentially consistent, so a record
 * published after the worker's load of SEQ moves SEQ past that value, and the
 * next check sees it. `Atomics.notify` wake-ups are sometimes lost on Deno
 * 2.9, so each wait is bounded by {@linkcode WAIT_MS}.
 *
 * Coalescing: a path equal to the last one pushed to a ring is skipped while
 * that record is still queued (`size() > 0`: the worker has not stored the
 * `head` that frees it). The worker then either has not applied it yet, and
 * will after this change, or is applying it in the same synchronous drain, so
 * no request of its runs in between, and a file read that overlapped the drain
 * is not cached (`FileHandler.invalidate`). A write in many chunks costs one
 * record, not one per chunk.
 *
 * @module
 */
import { ByteRing } from "../queue/byte_ring.ts";
import type { Handler, RequestHead } from "../http/types.ts";
import { type TreeWatch, watchTree } from "./_watch_tree.ts";

/** Bytes per invalidation record. */
export const RECORD_BYTES = 512;
/** Records per worker's invalidation ring. */
export const RING_RECORDS = 256;
/** Longest wait between two checks of the ring, ms (a lost wake-up costs at most this). */
export const WAIT_MS = 25;
const HEADER = 8;
const MAX_PATH = RECORD_BYTES - HEADER;
const KIND_PATH = 1;
const SLOT_WORDS = 32;
const SEQ = 0;
const LOST = 1;

/** What one worker gets: its ring, the signal words and its slot. */
export interface InvalidationSlot {
  ring: SharedArrayBuffer;
  signal: SharedArrayBuffer;
  index: number;
  /** The root's real path, which every record is relative to. */
  root: string;
}

/** What a consumer applies records to (`FileHandler` from `http/handler.ts`). */
export interface Invalidatable {
  invalidate(realPath: string): void;
  invalidateAll(): void;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The supervisor's side: one ring per worker slot, the watcher, and `push`.
 *
 * @example Push a path and apply it in a consumer
 * ```ts
 * import { InvalidationConsumer, InvalidationHub } from "./_invalidate.ts";
 * import assert from "node:assert/strict";
 *
 * const hub = new InvalidationHub(1, "/srv");
 * hub.push("/srv/a.txt");
 * const seen: string[] = [];
 * const consumer = new InvalidationConsumer(hub.slot(0));
 * consumer.poll({ invalidate: (p) => seen.push(p), invalidateAll: () => seen.push("*") });
 * assert.deepEqual(seen, ["/srv/a.txt"]);
 * ```
 */
export class InvalidationHub {
  readonly root: string;
  readonly #buffers: SharedArrayBuffer[] = [];
  readonly #rings: ByteRing[] = [];
  readonly #last: (string | undefined)[] = [];
  readonly #signal: Int32Array;
  #watch?: TreeWatch;
  /** Also told each change the watcher reports (null: events lost) (browse: search, --dev). */
  onChange?: (paths: string[] | null) => void;

  /**
   * @param workers number of worker slots
   * @param root the served root's real path (what `Deno.realPath` returns)
   */
  constructor(workers: number, root: string) {
    this.root = root === "/" ? "" : root;
    this.#signal = new Int32Array(new SharedArrayBuffer(SLOT_WORDS * workers * 4));
    for (let i = 0; i < workers; i++) {
      const b = ByteRing.allocate(RING_RECORDS, RECORD_BYTES);
      this.#buffers.push(b);
      this.#rings.push(new ByteRing(b));
      this.#last.push(undefined);
    }
  }

  /**
   * @param i a worker slot
   * @returns what worker `i` needs to consume its ring
   */
  slot(i: number): InvalidationSlot {
    return {
      ring: this.#buffers[i],
      signal: this.#signal.buffer as SharedArrayBuffer,
      index: i,
      root: this.root,
    };
  }

  /**
   * Queues each of `paths` (absolute, under the root) for every worker, then
   * wakes them; `null`: every worker drops its whole cache. A path outside
   * the root, too long for a record, or finding a ring full counts as `null`
   * for that worker.
   *
   * @param paths the changed paths
   */
  push(...paths: (string | null)[]): void {
    for (let i = 0; i < this.#rings.length; i++) {
      for (const p of paths) this.#pushOne(i, p);
      const at = SLOT_WORDS * i;
      Atomics.add(this.#signal, at + SEQ, 1);
      Atomics.notify(this.#signal, at + SEQ);
    }
  }

  #pushOne(i: number, path: string | null): void {
    const ring = this.#rings[i];
    const lost = () => {
      this.#last[i] = undefined;
      Atomics.store(this.#signal, SLOT_WORDS * i + LOST, 1);
    };
    if (path === null) return lost();
    if (path === this.#last[i] && ring.size() > 0) return;
    let rel: string;
    if (path === this.root || path === this.root + "/") rel = "";
    else if (path.startsWith(this.root + "/")) rel = path.slice(this.root.length + 1);
    else return lost(); // not under the root as we spell it: be safe
    const at = ring.claim();
    if (at < 0) return lost();
    const { read, written } = encoder.encodeInto(
      rel,
      ring.bytes.subarray(at + HEADER, at + HEADER + MAX_PATH),
    );
    if (read < rel.length) return lost();
    ring.bytes[at] = written & 0xff;
    ring.bytes[at + 1] = written >> 8;
    ring.bytes[at + 2] = KIND_PATH;
    ring.commit();
    this.#last[i] = path;
  }

  /**
   * Starts watching the root ({@linkcode watchTree}): everything it can
   * read, also when some folders below the root cannot be read; those are
   * named in one notice. On failure (inotify limits, an unsupported
   * filesystem, an unreadable root) it logs one notice and returns false: the
   * workers' stat revalidation (at most once per second per entry) remains.
   *
   * @param log where the notices go
   * @returns whether the watcher runs
   */
  watch(log: (line: string) => void): boolean {
    const where = this.root === "" ? "/" : this.root;
    const why = (e: unknown) => e instanceof Error ? e.message : String(e);
    try {
      this.#watch = watchTree(
        where,
        (ev) => {
          // Rescan (inotify queue overflow) or an event without paths: we
          // cannot tell what changed, so everything goes.
          if (ev.flag === "rescan" || ev.paths.length === 0) this.push(null);
          else this.push(...ev.paths.flatMap((p) => this.#spellings(p)));
          // browse (#17): the search index and --dev live reload follow the same events.
          this.onChange?.(ev.flag === "rescan" || ev.paths.length === 0 ? null : ev.paths);
        },
        (e) => {
          log(`stopped watching ${where} (${why(e)}); changes on disk show within 1 s`);
          this.push(null);
        },
        log,
      );
    } catch (e) {
      log(`cannot watch ${where} (${why(e)}); changes on disk show within 1 s`);
      return false;
    }
    const skipped = this.#watch.unreadable;
    if (skipped.length > 0) {
      const shown = skipped.slice(0, 5).join(", ") +
        (skipped.length > 5 ? ` and ${skipped.length - 5} more` : "");
      log(
        `watching ${where} except ${skipped.length} unreadable folder` +
          `${skipped.length === 1 ? "" : "s"} (${shown}): changes there show within 1 s`,
      );
    }
    return true;
  }

  /**
   * The reported path, and its real path when that differs and lies under
   * the root. The cache holds real paths, and inotify reports a change under
   * whichever path reached the directory first: `root/link/a.txt` for a
   * file of `root/target` when `link -> target`. One `realpath` per path,
   * on this thread; a removed path resolves through its parent.
   */
  #spellings(path: string): string[] {
    let real: string;
    try {
      real = Deno.realPathSync(path);
    } catch {
      const slash = path.lastIndexOf("/");
      try {
        const dir = Deno.realPathSync(path.slice(0, slash) || "/");
        real = (dir === "/" ? "" : dir) + path.slice(slash);
      } catch {
        return [path];
      }
    }
    // Outside the root (a followed symlink): left to the stat revalidation.
    if (real === path || !(real === this.root || real.startsWith(this.root + "/"))) return [path];
    return [path, real];
  }

  /** Stops the watcher (the rings stay readable). */
  close(): void {
    this.#watch?.close();
    this.#watch = undefined;
  }
}

/**
 * The worker's side: drains its slot's ring into an {@linkcode Invalidatable}.
 *
 * @example Nothing queued: nothing applied
 * ```ts
 * import { InvalidationConsumer, InvalidationHub } from "./_invalidate.ts";
 *
 * const hub = new InvalidationHub(2, "/srv");
 * const c = new InvalidationConsumer(hub.slot(1));
 * console.assert(c.poll({ invalidate() {}, invalidateAll() {} }) === 0);
 * ```
 */
export class InvalidationConsumer {
  readonly #ring: ByteRing;
  readonly #signal: Int32Array;
  readonly #seq: number;
  readonly #lost: number;
  readonly #prefix: string;
  /** SEQ when this view last drained; starts unequal so the first check drains. */
  #seen = -1;
  #stopped = false;
  #wake?: () => void;

  /** @param slot from {@linkcode InvalidationHub.slot} */
  constructor(slot: InvalidationSlot) {
    this.#ring = new ByteRing(slot.ring);
    this.#signal = new Int32Array(slot.signal);
    this.#seq = SLOT_WORDS * slot.index + SEQ;
    this.#lost = SLOT_WORDS * slot.index + LOST;
    this.#prefix = slot.root + "/";
  }

  /**
   * Applies everything queued now.
   *
   * @param target the cache to drop entries from
   * @returns records applied (a "drop everything" counts as one)
   */
  poll(target: Invalidatable): number {
    let n = 0;
    if (Atomics.exchange(this.#signal, this.#lost, 0) === 1) {
      target.invalidateAll();
      n++;
    }
    n += this.#ring.drain((bytes, at) => {
      const len = bytes[at] | (bytes[at + 1] << 8);
      // Copied out: decode() refuses views of shared memory.
      const rel = decoder.decode(bytes.slice(at + HEADER, at + HEADER + len));
      const path = this.#prefix + rel;
      target.invalidate(rel === "" ? path.slice(0, -1) || "/" : path);
    });
    return n;
  }

  /**
   * Applies what is queued if SEQ moved since the last drain: one
   * `Atomics.load` when nothing changed.
   *
   * @param target the cache to drop entries from
   * @returns records applied
   */
  check(target: Invalidatable): number {
    const seq = Atomics.load(this.#signal, this.#seq);
    if (seq === this.#seen) return 0;
    // Loaded before the drain: a record published after it moves SEQ again.
    this.#seen = seq;
    return this.poll(target);
  }

  /**
   * Wraps `handler` so every request first applies what is queued
   * ({@linkcode check}), and starts {@linkcode run} for idle times.
   *
   * @param handler the file handler, also the cache to drop entries from
   * @param onApplied told how many records each batch applied
   * @param options.idleWaits `false`: no {@linkcode run} loop; the owner's
   *   loop calls {@linkcode check} itself between requests (an epoll
   *   worker's turn hook).
   * @default {true}
   * @returns the guarded handler
   */
  guard(
    handler: Handler & Invalidatable,
    onApplied?: (n: number) => void,
    options: { idleWaits?: boolean } = {},
  ): Handler {
    if (options.idleWaits ?? true) this.run(handler, onApplied);
    return (req: RequestHead) => {
      const n = this.check(handler);
      if (n > 0) onApplied?.(n);
      return handler(req);
    };
  }

  /**
   * Applies records as they come until {@linkcode stop}.
   *
   * @param target the cache to drop entries from
   * @param onApplied told how many records each batch applied
   * @returns a promise that resolves after `stop()`
   */
  async run(target: Invalidatable, onApplied?: (n: number) => void): Promise<void> {
    const sig = this.#signal;
    while (!this.#stopped) {
      const n = this.check(target);
      if (n > 0) onApplied?.(n);
      const r = Atomics.waitAsync(sig, this.#seq, this.#seen, WAIT_MS);
      if (!r.async) continue;
      // A pending waitAsync keeps no event loop alive; the timer does, and
      // bounds the sleep should the wait's own timeout not fire.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, WAIT_MS + 5);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
        r.value.then(this.#wake);
      });
      this.#wake = undefined;
    }
  }

  /** Ends {@linkcode run} now (its timer is cleared). */
  stop(): void {
    this.#stopped = true;
    this.#wake?.();
  }
}

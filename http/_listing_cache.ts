/**
 * The listing cache: directories as collected (snapshots), the pages
 * rendered from them, and routes from a request (path, query, format) to a
 * cached page, so a warm listing costs one map lookup. Per-directory epochs
 * keep work that raced with an invalidation out of the cache.
 *
 * Listings take at most their own budget (a quarter of the cache's), and
 * evict files through `makeRoom` to fit beside them.
 *
 * @module
 */
import type { Reply } from "./types.ts";
import { type Entry, sortEntries, type SortKey, type SortOrder } from "./listing.ts";
import { newestMtime } from "./_listing_page.ts";
import type { Readme } from "./_readme.ts";

/** Largest rendered listing page kept, bytes. */
export const LISTING_CACHE_MAX_BYTES = 4 * 1024 * 1024;
/** Most routes (path, query, format) to cached pages remembered. */
export const LISTING_ROUTES_MAX = 4096;
/** Most per-directory epochs remembered; beyond, one global bump forgets them. */
const EPOCHS_MAX = 10_000;

/** One rendered listing page: body and head bytes, frozen and shared. */
export interface Rendered {
  etag: string;
  mtimeMs: number;
  /** The 200 reply, with `rawHead`. */
  ok: Reply;
  /** The 304 reply, with `rawHead`. */
  notModified: Reply;
  bytes: number;
}

/**
 * One directory as collected, shared by every sort, format and page rendered
 * from it: the entries are read once, each variant is sorted and rendered
 * the first time it is asked for.
 */
export interface DirSnap {
  real: string;
  /** Collection (readdir) order; sorted copies live in `sorted`. */
  entries: Entry[];
  truncated: boolean;
  dirMtimeMs: number;
  /** The newest of the directory and its entries: Last-Modified. */
  mtimeMs: number;
  /** When collected, or last re-collected and found unchanged. */
  checked: number;
  /** A request is re-checking it: hits keep serving these bytes meanwhile. */
  claimed: boolean;
  /** In the listing cache (false: too big, evicted or replaced). */
  live: boolean;
  sorted: Map<string, Entry[]>;
  variants: Map<string, Rendered>;
  /** Route keys that point here, dropped with it. */
  routes: Set<string>;
  bytes: number;
  /** The folder's README, rendered once per snapshot (browse, `_readme.ts`). */
  readme?: Readme;
}

/** A request (path, query, format) known to answer with a cached listing page. */
export interface Route {
  snap: DirSnap;
  page: Rendered;
}

/** What a {@linkcode ListingCache} is made with. */
export interface ListingCacheOptions {
  /** Bytes the listings may hold. */
  maxBytes: number;
  /** How long a snapshot is trusted before a new collect re-checks it, ms. */
  revalidateMs: number;
  /** Evicts files until `n` more bytes fit in the shared budget. */
  makeRoom(n: number): void;
}

/** Same entries in the same order: nothing the listing shows has changed. */
export function sameEntries(a: readonly Entry[], b: readonly Entry[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (
      x.name !== y.name || x.type !== y.type || x.isDir !== y.isDir || x.size !== y.size ||
      x.mtimeMs !== y.mtimeMs || x.lossy !== y.lossy || x.href !== y.href
    ) return false;
  }
  return true;
}

/**
 * A fresh snapshot record, not yet in the cache.
 *
 * @param real the directory's real path
 * @param entries its entries, collection order
 * @param truncated more entries exist than were collected
 * @param dirMtimeMs the directory's own mtime
 * @param checked when collected
 * @returns the snapshot
 */
export function newSnap(
  real: string,
  entries: Entry[],
  truncated: boolean,
  dirMtimeMs: number,
  checked: number,
): DirSnap {
  return {
    real,
    entries,
    truncated,
    dirMtimeMs,
    mtimeMs: newestMtime(dirMtimeMs, entries),
    checked,
    claimed: false,
    live: false,
    sorted: new Map(),
    variants: new Map(),
    routes: new Set(),
    bytes: 0,
  };
}

/**
 * The listing cache.
 *
 * @example Keep a snapshot, route a page to it, invalidate its directory
 * ```ts
 * import { ListingCache, newSnap } from "./_listing_cache.ts";
 * import assert from "node:assert/strict";
 *
 * const c = new ListingCache({ maxBytes: 1 << 20, revalidateMs: 1000, makeRoom() {} });
 * const s = newSnap("/srv/d", [], false, 0, Date.now());
 * c.keep(s, 256);
 * const ok = { status: 200, headers: [], body: [], length: 0 };
 * c.remember("/d/?\0h", s, "v", { etag: '"e"', mtimeMs: 0, ok, notModified: ok, bytes: 10 });
 * assert.equal(c.route("/d/?\0h")?.snap, s);
 * c.invalidate("/srv/d/new.txt", []);
 * assert.equal(c.route("/d/?\0h"), undefined);
 * ```
 */
export class ListingCache {
  readonly #o: ListingCacheOptions;
  readonly #dirs = new Map<string, DirSnap>();
  readonly #routes = new Map<string, Route>();
  #bytes = 0;
  /**
   * Per directory: invalidations seen (plus those of everything, `#allEpoch`).
   * A listing begun before its directory's epoch moved is answered but not
   * cached, and later requests do not join it; changes elsewhere do not
   * matter to it.
   */
  readonly #epochs = new Map<string, number>();
  #allEpoch = 0;

  /** @param options budget, revalidation window and the file cache's eviction */
  constructor(options: ListingCacheOptions) {
    this.#o = options;
  }

  /** Bytes the listings hold. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Routes remembered (0: no request can be a warm listing). */
  get routeCount(): number {
    return this.#routes.size;
  }

  /**
   * The route of a request key (hot path: one map lookup).
   *
   * @param key path + "?" + query + format
   * @returns the route, fresh or not
   */
  route(key: string): Route | undefined {
    return this.#routes.get(key);
  }

  /**
   * Whether `s` may be answered without a new collect.
   *
   * @param s a snapshot
   * @param now the time, ms
   * @returns true while younger than revalidateMs
   */
  fresh(s: DirSnap, now: number): boolean {
    return now - s.checked < this.#o.revalidateMs;
  }

  /**
   * The cached snapshot of a directory.
   *
   * @param real the directory's real path
   * @returns the snapshot, fresh or not
   */
  dir(real: string): DirSnap | undefined {
    return this.#dirs.get(real);
  }

  /**
   * The directory's epoch: work that began in another epoch is not cached.
   *
   * @param real the directory's real path
   * @returns a number that changes with every invalidation touching it
   */
  epoch(real: string): number {
    return this.#allEpoch + (this.#epochs.get(real) ?? 0);
  }

  /**
   * Routes `key` to `page` of `snap`.
   *
   * @param key the request key
   * @param snap the snapshot the page was rendered from
   * @param page the page
   */
  setRoute(key: string, snap: DirSnap, page: Rendered): void {
    this.dropRoute(key);
    if (this.#routes.size >= LISTING_ROUTES_MAX) this.dropRoute(this.#routes.keys().next().value!);
    this.#routes.set(key, { snap, page });
    snap.routes.add(key);
  }

  /**
   * Forgets the route of `key` (only if it is still `only`, when given).
   *
   * @param key the request key
   * @param only the route expected there
   */
  dropRoute(key: string, only?: Route): void {
    const r = this.#routes.get(key);
    if (r === undefined || (only !== undefined && r !== only)) return;
    this.#routes.delete(key);
    r.snap.routes.delete(key);
  }

  /**
   * Puts `s` in the cache, charged `n` bytes (replacing any snapshot of its directory).
   *
   * @param s a new snapshot
   * @param n its bytes (entries, names)
   */
  keep(s: DirSnap, n: number): void {
    const old = this.#dirs.get(s.real);
    if (old !== undefined) this.drop(old);
    s.live = true;
    this.#dirs.set(s.real, s);
    if (!this.#charge(s, n)) this.drop(s);
  }

  /**
   * Takes `s` out of the cache, with its pages and routes.
   *
   * @param s a snapshot
   */
  drop(s: DirSnap): void {
    if (!s.live) return;
    s.live = false;
    this.#dirs.delete(s.real);
    this.#bytes -= s.bytes;
    for (const k of s.routes) this.#routes.delete(k);
    s.routes.clear();
  }

  /**
   * `s`'s entries sorted as asked, sorted once per order while cached.
   *
   * @param s a snapshot
   * @param sort the sort key
   * @param order the order
   * @returns the sorted entries (shared: do not modify)
   */
  sorted(s: DirSnap, sort: SortKey, order: SortOrder): Entry[] {
    const key = sort + order;
    let list = s.sorted.get(key);
    if (list === undefined) {
      list = sortEntries(s.entries.slice(), sort, order);
      if (this.#charge(s, 8 * list.length)) s.sorted.set(key, list);
    }
    return list;
  }

  /**
   * Caches `page` as variant `vkey` of `snap` (unless a concurrent request
   * already did: charged once) and routes `key` to the cached one.
   *
   * @param key the request key
   * @param snap the snapshot the page was rendered from
   * @param vkey the variant (format, sort, order, page)
   * @param page the page
   */
  remember(key: string, snap: DirSnap, vkey: string, page: Rendered): void {
    const have = snap.variants.get(vkey);
    if (have !== undefined) return this.setRoute(key, snap, have);
    if (page.bytes <= LISTING_CACHE_MAX_BYTES && this.#charge(snap, page.bytes)) {
      snap.variants.set(vkey, page);
      this.setRoute(key, snap, page);
    }
  }

  /**
   * Forgets the listings of `path` and of its parent directory, and of every
   * directory under `path`; moves their epochs, and those of running work
   * under `path`, so nothing begun before is cached.
   *
   * @param path the real path that changed
   * @param busy the real paths running work reads
   */
  invalidate(path: string, busy: readonly string[]): void {
    const under = path.endsWith("/") ? path : path + "/";
    const parent = path.slice(0, path.lastIndexOf("/")) || "/";
    this.#bump(path);
    this.#bump(parent);
    // Directories under a removed or renamed one: their running work too.
    for (const d of [...this.#epochs.keys(), ...busy]) if (d.startsWith(under)) this.#bump(d);
    for (const s of this.#dirs.values()) {
      if (s.real === path || s.real === parent || s.real.startsWith(under)) this.drop(s);
    }
  }

  /** Forgets every listing; nothing running now is cached. */
  clear(): void {
    this.#allEpoch++;
    for (const s of this.#dirs.values()) this.drop(s);
  }

  #bump(real: string): void {
    if (this.#epochs.size >= EPOCHS_MAX) {
      // Bounded: forgetting them all is one global bump.
      this.#epochs.clear();
      this.#allEpoch++;
    }
    this.#epochs.set(real, (this.#epochs.get(real) ?? 0) + 1);
  }

  /** Counts `n` more bytes against a cached directory; false (and nothing kept) if over budget. */
  #charge(s: DirSnap, n: number): boolean {
    const max = this.#o.maxBytes;
    if (!s.live || s.bytes + n > max) return false;
    // Oldest-collected directories out first, then files, until it fits.
    for (const o of this.#dirs.values()) {
      if (this.#bytes + n <= max) break;
      if (o !== s) this.drop(o);
    }
    if (this.#bytes + n > max) return false;
    this.#o.makeRoom(n);
    s.bytes += n;
    this.#bytes += n;
    return true;
  }
}

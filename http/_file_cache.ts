/**
 * The in-memory cache of small files (h2o's `filecache.c` in spirit: an
 * object with a handful of operations, not variables of a closure). Entries
 * are keyed by URL path (or `real + "\0" + coding` for compressed variants)
 * and indexed by real path, directory by directory, so an invalidation of a
 * file or a directory touches only what lies there, never the whole cache.
 *
 * It shares one byte budget with the listing cache: `reserved()` says what
 * the listings hold, and {@linkcode FileCache.makeRoom} evicts files for them.
 *
 * @module
 */
import type { Reply } from "./types.ts";
import type { FileMeta } from "./_file_reply.ts";

/** One cached file (or compressed variant of one). */
export interface CacheEntry {
  key: string;
  real: string;
  meta: FileMeta;
  ino: number;
  bytes: Uint8Array;
  /** Shared, frozen reply for an unconditional GET/HEAD. */
  reply: Reply;
  /** When last found (or claimed to be re-checked) current, ms. */
  checked: number;
  /** A compressed variant: the size of the file it was made from. */
  srcSize?: number;
}

/** What a {@linkcode FileCache} is made with. */
export interface FileCacheOptions {
  /** Total bytes of cached bodies, listings' included. */
  maxBytes: number;
  /** Largest file cached. */
  maxFileBytes: number;
  /** How long an entry is trusted before a stat re-checks it, ms. */
  revalidateMs: number;
  /** The frozen 200 of a file version. */
  reply(meta: FileMeta, bytes: Uint8Array): Reply;
  /** Bytes of the budget held by others (the listing cache). */
  reserved(): number;
}

const parentOf = (p: string) => p.slice(0, p.lastIndexOf("/")) || "/";

/**
 * The file cache.
 *
 * @example Insert, hit, invalidate the directory
 * ```ts
 * import { FileCache } from "./_file_cache.ts";
 * import assert from "node:assert/strict";
 *
 * const reply = () => ({ status: 200, headers: [], body: [], length: 0 });
 * const cache = new FileCache({
 *   maxBytes: 1024, maxFileBytes: 512, revalidateMs: 1000, reply, reserved: () => 0,
 * });
 * const meta = { type: "text/plain", size: 2, mtimeMs: 0, etag: '"x"', lastModified: "", vary: false };
 * cache.insert("/d/a.txt", "/srv/d/a.txt", meta, 1, new Uint8Array(2));
 * assert.equal(cache.get("/d/a.txt")?.real, "/srv/d/a.txt");
 * cache.invalidate("/srv/d");
 * assert.equal(cache.get("/d/a.txt"), undefined);
 * ```
 */
export class FileCache {
  readonly #o: FileCacheOptions;
  readonly #revalidateMs: number;
  /** By key, in insertion order (eviction order). */
  readonly #entries = new Map<string, CacheEntry>();
  /** By real path: a file is cached under several keys (`/d/`, `/d/index.html`, variants). */
  readonly #byReal = new Map<string, Set<CacheEntry>>();
  /** Directory -> the paths directly inside it that hold entries (files or directories). */
  readonly #children = new Map<string, Set<string>>();
  #bytes = 0;
  /** Bumped by every invalidation: a read that overlapped one is not cached. */
  generation = 0;

  /** @param options budget, limits and how to build an entry's reply */
  constructor(options: FileCacheOptions) {
    this.#o = options;
    this.#revalidateMs = options.revalidateMs;
  }

  /** Bytes of cached bodies. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Entries cached. */
  get size(): number {
    return this.#entries.size;
  }

  /** The whole budget, listings' included (0: nothing is cached). */
  get maxBytes(): number {
    return this.#o.maxBytes;
  }

  /** The largest file cached (bytes). */
  get maxFileBytes(): number {
    return this.#o.maxFileBytes;
  }

  /**
   * The entry under `key` (hot path: one map lookup).
   *
   * @param key a URL path, or a variant key
   * @returns the entry, fresh or not
   */
  get(key: string): CacheEntry | undefined {
    return this.#entries.get(key);
  }

  /**
   * Whether `e` is younger than revalidateMs.
   *
   * @param e a cached entry
   * @param now the time, ms
   * @returns true while it may be answered without a stat
   */
  fresh(e: CacheEntry, now: number): boolean {
    return now - e.checked < this.#revalidateMs;
  }

  /**
   * Whether a stat of `e.real` shows the version cached.
   *
   * @param e a cached entry
   * @param s a fresh stat of its real path
   * @returns true if size, inode and mtime are the same
   */
  matches(e: CacheEntry, s: Deno.FileInfo): boolean {
    return s.isFile && s.size === e.meta.size && (s.ino ?? 0) === e.ino &&
      (s.mtime?.getTime() ?? 0) === e.meta.mtimeMs;
  }

  /**
   * Caches `bytes` (the file `real` as `meta` describes it) under `key`, if
   * it fits: at most `limit` bytes, within the budget beside the listings.
   *
   * @param key the URL path, or a variant key
   * @param real the real path of the file the bytes come from
   * @param meta their metadata
   * @param ino the file's inode
   * @param bytes the body
   * @param limit the largest body accepted (default: maxFileBytes)
   * @param srcSize for a compressed variant, the size of the file it was made from
   * @returns the entry, or undefined when it was not cached
   */
  insert(
    key: string,
    real: string,
    meta: FileMeta,
    ino: number,
    bytes: Uint8Array,
    limit: number = this.#o.maxFileBytes,
    srcSize?: number,
  ): CacheEntry | undefined {
    const o = this.#o;
    if (bytes.length > limit || bytes.length + o.reserved() > o.maxBytes) return undefined;
    const old = this.#entries.get(key);
    if (old) this.#remove(old);
    this.makeRoom(bytes.length);
    const reply = o.reply(meta, bytes);
    const e: CacheEntry = { key, real, meta, ino, bytes, reply, checked: Date.now(), srcSize };
    this.#entries.set(key, e);
    this.#bytes += bytes.length;
    let set = this.#byReal.get(real);
    if (set === undefined) {
      this.#byReal.set(real, set = new Set());
      this.#link(real);
    }
    set.add(e);
    return e;
  }

  /**
   * The cached compressed variant `key` of the file version (`m`, `ino`), if any.
   *
   * @param key the variant key (`real + "\0" + coding`)
   * @param m the metadata of the identity version
   * @param ino its inode
   * @returns the variant made from exactly that version, or undefined
   */
  variant(key: string, m: FileMeta, ino: number): CacheEntry | undefined {
    const e = this.#entries.get(key);
    return e !== undefined && e.ino === ino && e.srcSize === m.size &&
        e.meta.mtimeMs === m.mtimeMs
      ? e
      : undefined;
  }

  /**
   * Forgets `e`, if it is still the entry under its key.
   *
   * @param e a cached entry
   */
  delete(e: CacheEntry): void {
    if (this.#entries.get(e.key) === e) this.#remove(e);
  }

  /**
   * Evicts files, oldest-inserted first, until `n` more bytes fit beside the listings.
   *
   * @param n bytes about to be added (by either cache)
   */
  makeRoom(n: number): void {
    const o = this.#o;
    for (const e of this.#entries.values()) {
      if (this.#bytes + o.reserved() + n <= o.maxBytes) break;
      this.#remove(e);
    }
  }

  /**
   * Forgets the entries of the file `realPath`, of everything under it (a
   * removed or renamed directory), and of the file whose precompressed
   * sibling (`.gz`, `.br`) it is. Cost: the entries dropped, not the cache.
   *
   * @param realPath an absolute path as the root's real path spells it
   */
  invalidate(realPath: string): void {
    this.generation++;
    const path = realPath.length > 1 && realPath.endsWith("/") ? realPath.slice(0, -1) : realPath;
    // A new or removed sibling changes whether the file itself is cacheable.
    if (/\.(gz|br)$/.test(path)) this.#dropReal(path.slice(0, -3));
    this.#dropTree(path);
  }

  /** Forgets every entry. */
  clear(): void {
    this.generation++;
    this.#entries.clear();
    this.#byReal.clear();
    this.#children.clear();
    this.#bytes = 0;
  }

  #dropTree(path: string): void {
    this.#dropReal(path);
    const kids = this.#children.get(path);
    if (kids === undefined) return;
    for (const k of [...kids]) this.#dropTree(k);
  }

  #dropReal(real: string): void {
    const set = this.#byReal.get(real);
    if (set !== undefined) { for (const e of [...set]) this.#remove(e); }
  }

  #remove(e: CacheEntry): void {
    this.#entries.delete(e.key);
    this.#bytes -= e.bytes.length;
    const set = this.#byReal.get(e.real);
    if (set === undefined || !set.delete(e) || set.size > 0) return;
    this.#byReal.delete(e.real);
    this.#unlink(e.real);
  }

  /** Records `path` in its parent's children, and so on up while new. */
  #link(path: string): void {
    for (let child = path, parent = parentOf(child); child !== parent;) {
      let kids = this.#children.get(parent);
      const known = kids !== undefined;
      if (!known) this.#children.set(parent, kids = new Set());
      kids!.add(child);
      if (known) return;
      child = parent;
      parent = parentOf(child);
    }
  }

  /** Removes `path` from its parent's children, and so on up while they empty. */
  #unlink(path: string): void {
    for (let child = path, parent = parentOf(child); child !== parent;) {
      if (this.#children.has(child) || this.#byReal.has(child)) return;
      const kids = this.#children.get(parent);
      if (kids === undefined) return;
      kids.delete(child);
      if (kids.size > 0) return;
      this.#children.delete(parent);
      child = parent;
      parent = parentOf(child);
    }
  }
}

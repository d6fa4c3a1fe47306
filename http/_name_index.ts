/**
 * The name index for search: every name under the root, in shared memory,
 * written by one thread (the supervisor's index thread) and read by every
 * HTTP worker without a copy.
 *
 * Layout of one {@linkcode IndexBuffers} (all SharedArrayBuffers):
 *
 * ```text
 * head  Int32Array  [0] COUNT   records published (the writer's one publish point)
 *                   [1] BYTES   bytes used in `names` and `lower` (written before COUNT)
 *                   [2] READY   1 once the first full walk is done
 *                   [3] DEAD    records tombstoned (the writer rebuilds past half)
 * recs  Int32Array  4 words per record: parent record (-1: a child of the root),
 *                   start in `names`, length in `names`, flags (DIR, LINK, GONE)
 *                   then lower start and lower length in `low` (2 words)
 * names Uint8Array  the names, UTF-8, back to back
 * lower Uint8Array  the names lower-cased (`toLowerCase`), UTF-8, back to back
 * ```
 *
 * The writer appends a record's bytes and words, then `Atomics.store`s
 * COUNT; every JS `Atomics` operation is sequentially consistent, so a
 * reader that loads COUNT sees every record below it whole. A removal sets
 * GONE with `Atomics.or`; a reader that misses it for one query shows a
 * name that was just deleted (a GET of it answers 404). A query is one pass
 * over the records, comparing each lower-cased name in place (~40-50 ms for
 * 1,000,000 names on a loaded 2-core machine). The buffers are growable SharedArrayBuffers (address
 * space reserved up to {@linkcode MAX_RECORDS} / {@linkcode MAX_NAME_BYTES},
 * memory committed as they grow) and the views track their length, so the
 * writer grows them in place (`grow()`) and every reader sees the new size
 * without a message. Tombstones stay until the next start (a rename costs
 * one record); a query skips them.
 *
 * Only names the listings would show go in (dotfiles by policy, symlinks
 * whose target leaves the root or is hidden are left out, and symlinked
 * folders are not descended: a loop cannot fill it); queries re-check each
 * hit against the serving policy and the access filter anyway.
 *
 * @module
 */
import type { ServePolicy } from "./resolve.ts";
import { collectEntries, type Entry } from "./_collect.ts";

/** The index's shared memory (structured-clonable: shared, not copied). */
export interface IndexBuffers {
  /** Counters: records published, name bytes used, the ready flag, records tombstoned. */
  head: SharedArrayBuffer;
  /** Fixed-size records (parent, name offset and length, flags, lower-case name offset and length), growable. */
  recs: SharedArrayBuffer;
  /** The names' UTF-8 bytes, growable. */
  names: SharedArrayBuffer;
  /** The same names lower-cased, for case-insensitive search, growable. */
  lower: SharedArrayBuffer;
}

const COUNT = 0, BYTES = 1, READY = 2, DEAD = 3;
/** Words per record. */
const REC = 6;
/** Record flags. */
export const DIR = 1, LINK = 2, GONE = 4;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Most records an index can grow to. */
export const MAX_RECORDS = 32 * 1024 * 1024;
/** Most bytes each of its name arenas can grow to. */
export const MAX_NAME_BYTES = 1024 * 1024 * 1024;

/**
 * Allocates an empty index (growable buffers).
 *
 * @param records Records it holds before it grows.
 * @param bytes Name bytes it holds before it grows (each of `names` and `lower`).
 * @returns The buffers.
 */
export function allocateIndex(records: number, bytes: number): IndexBuffers {
  const grow = (n: number, max: number) => new SharedArrayBuffer(n, { maxByteLength: max });
  return {
    head: new SharedArrayBuffer(16),
    recs: grow(records * REC * 4, MAX_RECORDS * REC * 4),
    names: grow(bytes, MAX_NAME_BYTES),
    lower: grow(bytes, MAX_NAME_BYTES),
  };
}

/**
 * Grows an index's buffers in place (the writer; readers' views follow).
 *
 * @param b The buffers.
 * @param records Records to hold.
 * @param bytes Name bytes to hold.
 * @returns false when past the maximum.
 */
function growIndex(b: IndexBuffers, records: number, bytes: number): boolean {
  const r = records * REC * 4;
  if (r > b.recs.maxByteLength || bytes > b.names.maxByteLength) return false;
  if (r > b.recs.byteLength) b.recs.grow(r);
  if (bytes > b.names.byteLength) {
    b.names.grow(bytes);
    b.lower.grow(bytes);
  }
  return true;
}

/** One hit of a query: its path under the searched folder and what it is. */
export interface Hit {
  /** `/`-joined path relative to the root. */
  path: string;
  isDir: boolean;
  isLink: boolean;
}

/** What a query answers. */
export interface QueryResult {
  hits: Hit[];
  /** More hits exist than `max`. */
  more: boolean;
}

/** A compiled `?q=`: a literal to find with `indexOf`, and a whole-name test for globs. */
export interface Matcher {
  /** Lower-cased UTF-8 bytes every matching name contains (may be empty). */
  needle: Uint8Array;
  /** Tests a lower-cased name (undefined: containing `needle` is enough). */
  test?: RegExp;
}

/**
 * Compiles a search: a plain text matches names containing it (any case);
 * with `*` (any run) or `?` (one character) it is a glob over the whole name.
 *
 * @param q The `?q=` text.
 * @returns The matcher.
 * @example
 * ```ts
 * import { compileQuery } from "./_name_index.ts";
 * compileQuery("*.TXT").test?.test("a.txt"); // true
 * ```
 */
export function compileQuery(q: string): Matcher {
  const lower = q.toLowerCase();
  if (!/[*?]/.test(lower)) return { needle: enc.encode(lower) };
  const parts = lower.split(/[*?]+/);
  let longest = "";
  for (const p of parts) if (p.length > longest.length) longest = p;
  const re = "^" +
    [...lower].map((c) =>
      c === "*" ? ".*" : c === "?" ? "." : c.replace(/[.+^${}()|[\]\\]/g, "\\$&")
    ).join("") + "$";
  return { needle: enc.encode(longest), test: new RegExp(re, "su") };
}

/** A reader's (or the writer's) view of the index. */
export class NameIndex {
  #b!: IndexBuffers;
  #head!: Int32Array;
  #recs!: Int32Array;
  #names!: Uint8Array;
  #lower!: Uint8Array;

  /** @param buffers The shared buffers (from {@linkcode allocateIndex} or a message). */
  constructor(buffers: IndexBuffers) {
    this.attach(buffers);
  }

  /**
   * Switches to other buffers (the writer outgrew the old ones).
   *
   * @param buffers The new buffers.
   */
  attach(buffers: IndexBuffers): void {
    this.#b = buffers;
    this.#head = new Int32Array(buffers.head);
    this.#recs = new Int32Array(buffers.recs);
    this.#names = new Uint8Array(buffers.names);
    this.#lower = new Uint8Array(buffers.lower);
  }

  /** The buffers (to send to another thread). */
  get buffers(): IndexBuffers {
    return this.#b;
  }

  /** Whether the first full walk has finished. */
  get ready(): boolean {
    return Atomics.load(this.#head, READY) === 1;
  }

  /** Records published, tombstones included. */
  get count(): number {
    return Atomics.load(this.#head, COUNT);
  }

  /** Records tombstoned. */
  get dead(): number {
    return Atomics.load(this.#head, DEAD);
  }

  // ---- writer side (one thread) ----

  /**
   * Appends a record. Returns its number, or -1 when a buffer is full.
   *
   * @param parent Parent record (-1: in the root).
   * @param name The name.
   * @param flags DIR / LINK.
   * @returns The record number, or -1.
   */
  add(parent: number, name: string, flags: number): number {
    const n = this.#head[COUNT];
    const at = this.#head[BYTES];
    if ((n + 1) * REC > this.#recs.length) return -1;
    const a = enc.encodeInto(name, this.#names.subarray(at));
    const lowAt = at;
    const low = name.toLowerCase();
    const b = enc.encodeInto(low, this.#lower.subarray(lowAt));
    if (a.read < name.length || b.read < low.length) return -1;
    // `lower` and `names` share BYTES as their fill mark: the larger of the two.
    Atomics.store(this.#head, BYTES, at + Math.max(a.written, b.written));
    const r = n * REC;
    this.#recs[r] = parent;
    this.#recs[r + 1] = at;
    this.#recs[r + 2] = a.written;
    this.#recs[r + 3] = flags;
    this.#recs[r + 4] = lowAt;
    this.#recs[r + 5] = b.written;
    Atomics.store(this.#head, COUNT, n + 1); // publish
    return n;
  }

  /**
   * Tombstones a record (and so everything under it).
   *
   * @param id The record.
   */
  remove(id: number): void {
    if ((Atomics.or(this.#recs, id * REC + 3, GONE) & GONE) === 0) {
      Atomics.add(this.#head, DEAD, 1);
    }
  }

  /** Marks the first walk done. */
  markReady(): void {
    Atomics.store(this.#head, READY, 1);
  }

  /**
   * The live children of a record (a linear scan: the writer's rescan of one
   * changed folder).
   *
   * @param parent The record, -1 for the root.
   * @returns name -> record.
   */
  children(parent: number): Map<string, number> {
    const out = new Map<string, number>();
    const n = this.count;
    // A fixed-length view: see query().
    const recs = new Int32Array(this.#b.recs, 0, n * REC);
    for (let i = 0, r = 0; i < n; i++, r += REC) {
      if (recs[r] === parent && (recs[r + 3] & GONE) === 0) out.set(this.name(i), i);
    }
    return out;
  }

  // ---- reader side ----

  /**
   * A record's name.
   *
   * @param id The record.
   * @returns The name.
   */
  name(id: number): string {
    const r = id * REC;
    const s = this.#recs[r + 1];
    return dec.decode(this.#names.subarray(s, s + this.#recs[r + 2]));
  }

  /**
   * A record's path from the root, or null if it or a folder above it is gone.
   *
   * @param id The record.
   * @returns The `/`-joined path, or null.
   */
  path(id: number): string | null {
    let p = "";
    for (let i = id; i >= 0; i = this.#recs[i * REC]) {
      if ((Atomics.load(this.#recs, i * REC + 3) & GONE) !== 0) return null;
      p = p === "" ? this.name(i) : this.name(i) + "/" + p;
    }
    return p;
  }

  /**
   * Names under `prefix` (a `/`-joined path from the root, "" for the root)
   * that match `m`, in index order, at most `max` (then `more`).
   *
   * Fixed-length views of the published part are made per query: element
   * access through a length-tracking view of a growable buffer measured ~6x
   * slower in V8 (Deno 2.9.6) than through a fixed-length one.
   *
   * @param m The compiled query.
   * @param prefix The searched folder relative to the root.
   * @param max Most hits.
   * @param keep Re-checks a hit (policy, access filter); false drops it.
   * @returns The hits.
   */
  query(m: Matcher, prefix: string, max: number, keep?: (h: Hit) => boolean): QueryResult {
    const n = this.count;
    const hits: Hit[] = [];
    if (n === 0) return { hits, more: false };
    const recs = new Int32Array(this.#b.recs, 0, n * REC);
    const end = recs[(n - 1) * REC + 4] + recs[(n - 1) * REC + 5];
    const low = new Uint8Array(this.#b.lower, 0, end);
    const under = prefix === "" ? "" : prefix + "/";
    const consider = (id: number): boolean => {
      const r = id * REC;
      const flags = Atomics.load(recs, r + 3);
      if ((flags & GONE) !== 0) return true;
      if (m.test !== undefined) {
        const s = recs[r + 4];
        if (!m.test.test(dec.decode(low.subarray(s, s + recs[r + 5])))) return true;
      }
      const path = this.path(id);
      if (path === null || !path.startsWith(under) || path === prefix) return true;
      const h: Hit = { path, isDir: (flags & DIR) !== 0, isLink: (flags & LINK) !== 0 };
      if (keep !== undefined && !keep(h)) return true;
      if (hits.length >= max) return false;
      hits.push(h);
      return true;
    };
    const needle = m.needle;
    if (needle.length === 0) {
      for (let id = 0; id < n; id++) {
        if (!consider(id)) return { hits, more: true };
      }
      return { hits, more: false };
    }
    // One pass over the records, each name compared in place (no call per candidate).
    const first = needle[0], len = needle.length;
    for (let id = 0, r = 0; id < n; id++, r += REC) {
      const s = recs[r + 4];
      const last = s + recs[r + 5] - len;
      for (let pos = s; pos <= last; pos++) {
        if (low[pos] !== first) continue;
        let k = 1;
        while (k < len && low[pos + k] === needle[k]) k++;
        if (k === len) {
          if (!consider(id)) return { hits, more: true };
          break; // one hit per name
        }
      }
    }
    return { hits, more: false };
  }
}

/** What the writer tells its owner while building. */
export type Progress = (names: number, done: boolean) => void;

/**
 * The writer: walks the root into an index (with the listings' own
 * collector, so exactly what a listing shows), then applies changes by
 * rescanning the folders they name. A name that does not fit (past the
 * maxima) is left out. It keeps a map of folder paths to
 * records (folders only: a tenth of the names, typically).
 */
export class IndexWriter {
  index: NameIndex;
  #policy: ServePolicy;
  #dirs = new Map<string, number>();
  #records: number;
  #bytes: number;

  /**
   * @param policy What the listings show.
   * @param records Initial record capacity. @default 65536
   * @param bytes Initial name bytes. @default 1 MiB
   */
  constructor(policy: ServePolicy, records = 65536, bytes = 1 << 20) {
    this.#policy = policy;
    this.#records = records;
    this.#bytes = bytes;
    this.index = new NameIndex(allocateIndex(records, bytes));
  }

  /**
   * Walks the whole tree (synchronously: an index thread), then marks it ready.
   *
   * @param progress Told every 100,000 names and at the end.
   */
  build(progress?: Progress): void {
    let next = 100_000;
    this.#walk("", -1, () => {
      if (this.index.count >= next) {
        progress?.(this.index.count, false);
        next += 100_000;
      }
    });
    this.index.markReady();
    progress?.(this.index.count, true);
  }

  #entries(rel: string): Entry[] {
    const dir = rel === "" ? this.#policy.root : this.#policy.root + "/" + rel;
    try {
      return collectEntries(dir, this.#policy);
    } catch {
      return []; // unreadable or gone: nothing to index
    }
  }

  #add(parent: number, e: Entry): number {
    const flags = (e.isDir ? DIR : 0) | (e.type === "symlink" ? LINK : 0);
    let id = this.index.add(parent, e.name, flags);
    // A long name may need more than one doubling of the arenas.
    while (id < 0 && this.#grow()) id = this.index.add(parent, e.name, flags);
    return id;
  }

  #walk(rel: string, parent: number, tick: () => void): void {
    for (const e of this.#entries(rel)) {
      if (e.lossy) continue; // its name does not open: search could not link it
      const id = this.#add(parent, e);
      tick();
      if (e.isDir && e.type !== "symlink") {
        const p = rel === "" ? e.name : rel + "/" + e.name;
        this.#dirs.set(p, id);
        this.#walk(p, id, tick);
      }
    }
  }

  /** Twice the room, in place (record numbers stay). */
  #grow(): boolean {
    this.#records *= 2;
    this.#bytes *= 2;
    return growIndex(this.index.buffers, this.#records, this.#bytes);
  }

  /**
   * Applies a change on disk: rescans the folder that holds `absPath` (and
   * `absPath` itself if it is a folder), adding new names and tombstoning
   * vanished ones; a new folder is walked whole.
   *
   * @param absPath A changed path (absolute, under the root).
   */
  changed(absPath: string): void {
    const root = this.#policy.root;
    if (absPath !== root && !absPath.startsWith(root + "/")) return;
    const rel = absPath === root ? "" : absPath.slice(root.length + 1);
    const slash = rel.lastIndexOf("/");
    this.#rescan(slash < 0 ? "" : rel.slice(0, slash));
    if (this.#dirs.has(rel)) this.#rescan(rel);
  }

  #rescan(rel: string): void {
    const parent = rel === "" ? -1 : this.#dirs.get(rel);
    if (parent === undefined) return; // not indexed (hidden, or under a gone folder)
    const had = this.index.children(parent);
    const now = new Map<string, Entry>();
    for (const e of this.#entries(rel)) if (!e.lossy) now.set(e.name, e);
    for (const [name, id] of had) {
      const e = now.get(name);
      const isDir = this.#dirs.get(rel === "" ? name : rel + "/" + name) === id;
      if (e === undefined || e.isDir !== isDir) {
        this.index.remove(id);
        this.#forget(rel === "" ? name : rel + "/" + name);
        had.delete(name);
      }
    }
    for (const [name, e] of now) {
      if (had.has(name)) continue;
      const id = this.#add(parent === -1 ? -1 : this.#dirs.get(rel)!, e);
      if (e.isDir && e.type !== "symlink") {
        const p = rel === "" ? name : rel + "/" + name;
        this.#dirs.set(p, id);
        this.#walk(p, id, () => {});
      }
    }
  }

  #forget(path: string): void {
    for (const k of this.#dirs.keys()) {
      if (k === path || k.startsWith(path + "/")) this.#dirs.delete(k);
    }
  }
}

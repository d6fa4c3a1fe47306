/**
 * The file handler: request head -> reply. A thin layer wiring the pure rules
 * (`resolve`, `conditional`, `range`, `mime`, `listing`, `encoding`) to the
 * filesystem, with one catch at the boundary that maps errors to statuses.
 *
 * @module
 */
import { getHeader, type Handler, type Reply, type RequestHead } from "./types.ts";
import { decodePath, decodeRawPath, INVALID_UTF8, servable, type ServePolicy } from "./resolve.ts";
import { rawAvailable, rawClose, rawOpenSame, rawReadFile, rawRealPath } from "./_rawfs.ts";
import {
  evaluatePreconditions,
  lastModifiedDate,
  makeETag,
  type Preconditions,
} from "./conditional.ts";
import { ifRangeHolds, multipartLayout, parseRange } from "./range.ts";
import { contentType } from "./mime.ts";
import {
  type Entry,
  parseListingQuery,
  sortEntries,
  type SortKey,
  type SortOrder,
} from "./listing.ts";
import { acceptsCoding } from "./encoding.ts";
import { errorStatus } from "./_fs_errors.ts";
import {
  COLLECT_MAX,
  collectEntriesAsync,
  newestMtime,
  type Page,
  type PageConfig,
  renderPage,
  variantKey,
} from "./_listing_page.ts";
import { brotliCompress, constants as zlib, gzip } from "node:zlib";
import { archivePreflight, contentDisposition, tarStream } from "./archive.ts";
import { resolveHandlerOptions } from "../options/resolve.ts";

export { errorStatus } from "./_fs_errors.ts";
export { COLLECT_MAX } from "./_listing_page.ts";

/**
 * Options of {@link createHandler}. Every field but `root` is optional.
 *
 * @example Files only: no listings, no folder downloads
 * ```ts
 * import type { HandlerOptions } from "./handler.ts";
 *
 * const options: HandlerOptions = { root: ".", dirListing: false, maxArchiveBytes: 0 };
 * console.assert(options.dirListing === false);
 * ```
 */
export interface HandlerOptions {
  /** The directory to serve. */
  root: string;
  /** Answer a directory without `index.html` with a listing. @default true */
  dirListing?: boolean;
  /** Serve and list names starting with `.`. @default false */
  dotfiles?: boolean;
  /** Serve files whose real path leaves the root through a symlink. @default false */
  followSymlinks?: boolean;
  /** Add `Access-Control-Allow-Origin: *`. @default false */
  cors?: boolean;
  /** Extra headers added to every reply. @default [] */
  headers?: Array<[string, string]>;
  /** Most entries per listing page: the cap of `?per_page=` (pages of 1,000 by default, or of this if smaller). @default 10000 */
  listingCap?: number;
  /** Largest file kept in the in-memory cache, bytes. @default 65536 */
  cacheMaxFileBytes?: number;
  /**
   * Total bytes of cached file bodies and rendered listings (listings take at
   * most a quarter). @default 67108864 (64 MiB)
   */
  cacheMaxBytes?: number;
  /**
   * How long a cache entry (file or listing) is trusted before a stat, or for
   * a listing a new collect, re-checks it, ms. @default 1000
   */
  revalidateMs?: number;
  /**
   * Largest folder download (`?download=tar`, only offered with listings), in
   * bytes of tar: a larger folder is refused with 403 before anything is sent.
   * 0 turns folder downloads off. @default Infinity
   */
  maxArchiveBytes?: number;
  /**
   * Compress text files of 1 KiB or more with gzip or brotli when the
   * client accepts it and no precompressed sibling exists. @default true
   */
  compress?: boolean;
  /**
   * Where listings are rendered and files compressed: the server's job pool
   * (an HTTP worker passes its `JobClient`). Undefined: in this thread, with
   * asynchronous I/O. @default undefined
   */
  jobs?: SubmitJob;
}

/**
 * Runs a job elsewhere (the job pool) and answers with its result: status
 * 200 with the result's JSON head and body, or the status to answer.
 *
 * @example A stand-in that has no pool behind it
 * ```ts
 * import type { JobAnswer, SubmitJob } from "./handler.ts";
 * const busy: SubmitJob = () => ({ status: 503 });
 * const answer = busy("listing", {}) as JobAnswer;
 * console.assert(answer.status === 503);
 * ```
 */
export type SubmitJob = (
  kind: "listing" | "compress",
  args: Record<string, unknown>,
) => Promise<JobAnswer> | JobAnswer;

/**
 * What {@linkcode SubmitJob} answers.
 *
 * @example A listing job's answer
 * ```ts
 * import type { JobAnswer } from "./handler.ts";
 * const a: JobAnswer = { status: 200, head: { status: 200 }, body: new Uint8Array(0) };
 * console.assert(a.status === 200);
 * ```
 */
export interface JobAnswer {
  /** 200 with `head` and `body`, else the status to answer (503: busy). */
  status: number;
  /** The job's result head (JSON). */
  head?: unknown;
  /** The job's result body. */
  body?: Uint8Array;
}

/**
 * The handler {@linkcode createHandler} returns: a {@linkcode Handler} plus
 * the entry points a filesystem watcher calls to drop stale cache entries
 * before the per-entry stat revalidation (every `revalidateMs`) would.
 *
 * @example Drop what a changed file left in the cache
 * ```ts
 * import { createHandler } from "./handler.ts";
 *
 * const root = await Deno.realPath(await Deno.makeTempDir());
 * const handle = await createHandler({ root });
 * handle.invalidate(`${root}/a.txt`);
 * handle.invalidateAll();
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export type FileHandler = Handler & {
  /**
   * Forgets cached files whose real path is `realPath` or lies under it (a
   * removed or renamed directory), a cached file whose precompressed sibling
   * (`.gz`, `.br`) this is, and the cached listings of `realPath` and of its
   * parent directory. Requests reading a file meanwhile do not cache it.
   *
   * @param realPath an absolute path as the root's real path spells it
   */
  invalidate(realPath: string): void;
  /** Forgets every cached file and listing (the watcher lost events). */
  invalidateAll(): void;
};

const REASONS: Record<number, string> = {
  200: "OK",
  206: "Partial Content",
  301: "Moved Permanently",
  304: "Not Modified",
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  412: "Precondition Failed",
  416: "Range Not Satisfiable",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

const encoder = new TextEncoder();
/** Files up to this size go out with their head in one write: no raw fd. */
const RAW_FD_MIN = 16384;

/**
 * A lazily opened raw descriptor of an open file, checked to be the same
 * inode (so `sendfile(2)` sends the bytes that were stat'ed); closed once.
 */
class RawFd {
  #fd = -2;
  #path: string;
  #dev: number;
  #ino: number;
  constructor(path: string, dev: number, ino: number) {
    this.#path = path;
    this.#dev = dev;
    this.#ino = ino;
  }
  readonly get = (): number => {
    if (this.#fd === -2) this.#fd = rawOpenSame(this.#path, this.#dev, this.#ino);
    return this.#fd;
  };
  close(): void {
    rawClose(this.#fd);
    this.#fd = -1;
  }
}
/** Largest non-UTF-8-named file served (it is read into memory). */
export const RAW_MAX_BYTES = 16 * 1024 * 1024;
/** Largest rendered listing page kept in the listing cache, bytes. */
const LISTING_CACHE_MAX_BYTES = 4 * 1024 * 1024;
/** Most (path, query, format) routes to cached listings remembered per worker. */
const LISTING_ROUTES_MAX = 4096;
const TEXT = "text/plain; charset=utf-8";
/** Smallest and largest file compressed on the fly. */
const COMPRESS_MIN = 1024, COMPRESS_MAX = 8 * 1024 * 1024;
/** Largest compressed variant kept in the cache (it cost a job to make). */
const COMPRESSED_CACHE_MAX = 1024 * 1024;
/** Types worth compressing: text, and the text formats that are not `text/`. */
const TEXTY =
  /^(?:text\/|application\/(?:json|javascript|xml|[a-z.+-]*\+(?:json|xml))|image\/svg\+xml)/;
// One boundary per process is enough: it only has to be absent from the
// part headers we write, and the file bytes are framed by length anyway.
const BOUNDARY = "ringhttpd-" + crypto.randomUUID().replaceAll("-", "");

/** The file metadata a reply is built from (taken from the open file). */
interface FileMeta {
  type: string;
  size: number;
  mtimeMs: number;
  etag: string;
  lastModified: string;
  /** Content-Encoding of a precompressed sibling, if one is served. */
  coding?: string;
  /** A precompressed sibling exists: the answer depends on Accept-Encoding. */
  vary: boolean;
}

interface CacheEntry {
  key: string;
  real: string;
  meta: FileMeta;
  ino: number;
  bytes: Uint8Array;
  /** Shared, frozen reply for an unconditional GET/HEAD. */
  reply: Reply;
  checked: number;
  /** A compressed variant (keyed `real + "\0" + coding`): the size of the file it was made from. */
  srcSize?: number;
}

/** One rendered listing page: body and head bytes, frozen and shared. */
interface Rendered {
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
interface DirSnap {
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
}

/** A request (path, query, format) known to answer with a cached listing page. */
interface Route {
  snap: DirSnap;
  page: Rendered;
}

/** Whether the client asked for JSON by header (`?format=json` is in the query). */
function wantsJson(req: RequestHead): boolean {
  const accept = getHeader(req, "accept");
  return accept !== undefined && accept.includes("application/json");
}

/** Same entries in the same order: nothing the listing shows has changed. */
function sameEntries(a: readonly Entry[], b: readonly Entry[]): boolean {
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

/** The request headers the file logic reads, picked in one pass. */
interface Picked extends Preconditions {
  range?: string;
  ifRange?: string;
}

function pick(req: RequestHead): Picked {
  const p: Picked = {};
  const h = req.headers;
  for (let i = 0; i < h.length; i += 2) {
    const v = h[i + 1];
    switch (h[i]) {
      case "if-match":
        p.ifMatch ??= v;
        break;
      case "if-none-match":
        p.ifNoneMatch ??= v;
        break;
      case "if-modified-since":
        p.ifModifiedSince ??= v;
        break;
      case "if-unmodified-since":
        p.ifUnmodifiedSince ??= v;
        break;
      case "range":
        p.range ??= v;
        break;
      case "if-range":
        p.ifRange ??= v;
        break;
    }
  }
  return p;
}

/** Whether any header could change a cached 200 (cheap scan, no allocation). */
function hasConditional(h: string[]): boolean {
  for (let i = 0; i < h.length; i += 2) {
    const n = h[i];
    const c = n.charCodeAt(0);
    if (c === 105 /* i */ && n.startsWith("if-")) return true;
    if (c === 114 /* r */ && n === "range") return true;
  }
  return false;
}

/**
 * Reads the whole open file as one version: fstat after the read must match
 * the fstat before it (size and mtime), else the read is repeated (`tries`
 * in all). A response never mixes bytes of two versions of a file.
 *
 * @param file the open file
 * @param info its fstat
 * @param maxBytes give up (null) if the file grows past this
 * @param tries reads at most
 * @returns the bytes and the fstat of the version read (`info` itself if
 *   unchanged); null if every try saw a change or the file outgrew `maxBytes`
 */
async function readOneVersion(
  file: Deno.FsFile,
  info: Deno.FileInfo,
  maxBytes: number,
  tries = 3,
): Promise<{ bytes: Uint8Array; info: Deno.FileInfo } | null> {
  let before = info;
  for (let attempt = 0; attempt < tries; attempt++) {
    if (before.size > maxBytes) return null;
    if (attempt > 0) await file.seek(0, Deno.SeekMode.Start);
    const bytes = new Uint8Array(before.size);
    let got = 0;
    while (got < bytes.length) {
      const n = await file.read(bytes.subarray(got));
      if (n === null) break;
      got += n;
    }
    const after = await file.stat();
    if (
      got === before.size && after.size === before.size &&
      (after.mtime?.getTime() ?? 0) === (before.mtime?.getTime() ?? 0)
    ) return { bytes, info: before };
    before = after;
  }
  return null;
}

/**
 * Compresses a file in this thread (no job pool): checks it is still the
 * version the caller stat'ed, reads it as one version ({@linkcode
 * readOneVersion}), then gzip or brotli (quality 5) through node:zlib's
 * asynchronous API.
 *
 * @returns status 200 with the version compressed as head, else the failure
 */
async function compressHere(
  real: string,
  z: "br" | "gzip",
  want: { size: number; mtimeMs: number; ino: number },
): Promise<JobAnswer> {
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(real, { read: true });
    const info = await file.stat();
    const mtimeMs = info.mtime?.getTime() ?? 0;
    if (info.size !== want.size || mtimeMs !== want.mtimeMs || (info.ino ?? 0) !== want.ino) {
      return { status: 409 }; // another version than the one being answered: not read at all
    }
    // One try: any change means the caller's version is gone anyway.
    const whole = await readOneVersion(file, info, info.size, 1);
    if (whole === null) {
      return { status: 409 }; // changed while read: never mix two versions
    }
    const bytes = whole.bytes;
    const out = await new Promise<Uint8Array>((resolve, reject) => {
      const done = (err: Error | null, res: Uint8Array) => err ? reject(err) : resolve(res);
      if (z === "br") {
        const params = {
          [zlib.BROTLI_PARAM_QUALITY]: 5,
          [zlib.BROTLI_PARAM_SIZE_HINT]: bytes.length,
        };
        brotliCompress(bytes, { params }, done);
      } else gzip(bytes, { level: 6 }, done);
    });
    return {
      status: 200,
      head: { size: info.size, mtimeMs, ino: info.ino ?? 0 },
      body: new Uint8Array(out.buffer, out.byteOffset, out.byteLength),
    };
  } catch {
    return { status: 503 };
  } finally {
    file?.close();
  }
}

/**
 * Creates the request handler for a root directory. The real root is
 * resolved once here; every served file's real path must lie under it.
 *
 * @param options Root and behaviour switches.
 * @returns A handler that never throws (errors become 4xx/5xx replies).
 * @throws {Error} If the root is not a readable directory.
 * @example Serving a directory
 * ```ts
 * import { createHandler } from "./handler.ts";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${root}/a.txt`, "hello");
 * const handle = await createHandler({ root });
 * const reply = await handle({
 *   method: "GET", target: "/a.txt", path: "/a.txt", query: "", minor: 1, headers: ["host", "x"],
 * });
 * try {
 *   assert.equal(reply.status, 200);
 *   assert.equal(reply.length, 5);
 * } finally {
 *   reply.release?.();
 *   await Deno.remove(root, { recursive: true });
 * }
 * ```
 */
export async function createHandler(options: HandlerOptions): Promise<FileHandler> {
  options = resolveHandlerOptions(options);
  let root: string;
  try {
    root = await Deno.realPath(options.root);
    const st = await Deno.stat(root);
    if (!st.isDirectory) throw new Error("not a directory");
    for await (const _ of Deno.readDir(root)) break; // readable?
  } catch (e) {
    throw new Error(
      `root must be a readable directory, got "${options.root}": ${(e as Error).message}`,
    );
  }
  const dirListing = options.dirListing ?? true;
  const dotfiles = options.dotfiles ?? false;
  const follow = options.followSymlinks ?? false;
  /** What GET serves, listings show and folder downloads hold: one rule ({@linkcode servable}). */
  const policy: ServePolicy = { root, dotfiles, followSymlinks: follow };
  const listingCap = Math.max(1, options.listingCap ?? 10000);
  const cacheMaxFileBytes = options.cacheMaxFileBytes ?? 65536;
  const cacheMaxBytes = options.cacheMaxBytes ?? 64 * 1024 * 1024;
  const revalidateMs = options.revalidateMs ?? 1000;
  const maxArchiveBytes = options.maxArchiveBytes ?? Infinity;
  if (!(maxArchiveBytes >= 0)) {
    throw new Error(`maxArchiveBytes must be >= 0, got ${options.maxArchiveBytes}`);
  }
  const archives = dirListing && maxArchiveBytes > 0;
  const pageConfig: PageConfig = { listingCap, dotfiles, archives };
  const jobs = options.jobs;
  const compressOn = options.compress ?? true;
  const common: Array<[string, string]> = [];
  for (const [k, v] of options.headers ?? []) {
    // Checked once here so no reply can carry a broken or injected header.
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k)) {
      throw new Error(`header name must be an HTTP token, got ${JSON.stringify(k)}`);
    }
    if (/[\0\r\n]/.test(v)) {
      throw new Error(`header value must not contain CR, LF or NUL, got ${JSON.stringify(v)}`);
    }
    common.push([k, v]);
  }
  if (options.cors) common.push(["Access-Control-Allow-Origin", "*"]);

  const cache = new Map<string, CacheEntry>();
  let cacheBytes = 0;
  // Listings share cacheMaxBytes with files, at most a quarter of it.
  const listingBudget = Math.floor(cacheMaxBytes / 4);
  const dirs = new Map<string, DirSnap>();
  const routes = new Map<string, Route>();
  let listingBytes = 0;
  /** Bumped by every invalidation: a file read that overlapped one is not cached. */
  let generation = 0;

  function reply(
    status: number,
    headers: Array<[string, string]>,
    body: Reply["body"] = [],
    length = 0,
    release?: () => void,
  ): Reply {
    for (const h of common) headers.push(h);
    return release ? { status, headers, body, length, release } : { status, headers, body, length };
  }

  function errorReply(status: number, extra: Array<[string, string]> = []): Reply {
    const body = encoder.encode(`${status} ${REASONS[status] ?? "Error"}\n`);
    return reply(status, [["Content-Type", TEXT], ...extra], [body], body.length);
  }

  function mapError(e: unknown): Reply {
    const status = errorStatus(e);
    // Out of descriptors is temporary: tell the client to come back.
    if (status === 503) return errorReply(503, [["Retry-After", "1"]]);
    if (status === 500) {
      console.error(`ringhttpd: 500: ${e instanceof Error ? `${e.name}: ${e.message}` : e}`);
    }
    return errorReply(status);
  }

  /** The real path, or null when it must look absent (outside root, hidden). */
  async function realInRoot(path: string): Promise<string | null> {
    const real = await Deno.realPath(path);
    return servable(policy, real) ? real : null;
  }

  function baseHeaders(m: FileMeta): Array<[string, string]> {
    const h: Array<[string, string]> = [
      ["Content-Type", m.type],
      ["Last-Modified", m.lastModified],
      ["ETag", m.etag],
      ["Accept-Ranges", "bytes"],
    ];
    if (m.coding) h.push(["Content-Encoding", m.coding]);
    if (m.vary) h.push(["Vary", "Accept-Encoding"]);
    return h;
  }

  /** Preconditions, then Range, then the full body; from a file or bytes. */
  function fileReply(
    p: Picked,
    m: FileMeta,
    file: Deno.FsFile | null,
    bytes: Uint8Array | null,
    raw?: RawFd,
  ): Reply {
    const release = file
      ? raw
        ? () => {
          raw.close();
          file.close();
        }
        : () => file.close()
      : undefined;
    const pre = evaluatePreconditions(p, m.etag, m.mtimeMs);
    if (pre === 304) {
      const h: Array<[string, string]> = [["ETag", m.etag], ["Last-Modified", m.lastModified]];
      if (m.vary) h.push(["Vary", "Accept-Encoding"]);
      return reply(304, h, [], 0, release);
    }
    if (pre === 412) {
      const r = errorReply(412);
      if (release) r.release = release;
      return r;
    }
    const slice = (start: number, end: number) =>
      file
        ? (raw ? { file, start, end, rawFd: raw.get } : { file, start, end })
        : bytes!.subarray(start, end);
    const size = m.size;
    if (
      p.range !== undefined &&
      (p.ifRange === undefined || ifRangeHolds(p.ifRange, m.etag, m.mtimeMs))
    ) {
      const r = parseRange(p.range, size);
      if (r.kind === "unsatisfiable") {
        const h = baseHeaders(m);
        h.push(["Content-Range", `bytes */${size}`]);
        return reply(416, h, [], 0, release);
      }
      if (r.kind === "ranges" && r.ranges.length === 1) {
        const [start, end] = r.ranges[0];
        const h = baseHeaders(m);
        h.push(["Content-Range", `bytes ${start}-${end - 1}/${size}`]);
        return reply(206, h, [slice(start, end)], end - start, release);
      }
      if (r.kind === "ranges") {
        const { pieces, length } = multipartLayout(r.ranges, size, m.type, BOUNDARY);
        const h = baseHeaders(m);
        h[0] = ["Content-Type", `multipart/byteranges; boundary=${BOUNDARY}`];
        const body = pieces.map((x) => x instanceof Uint8Array ? x : slice(x[0], x[1]));
        return reply(206, h, body, length, release);
      }
    }
    return reply(
      200,
      baseHeaders(m),
      [size === 0 ? new Uint8Array(0) : slice(0, size)],
      size,
      release,
    );
  }

  function metaOf(info: Deno.FileInfo, type: string, coding: string | undefined, vary: boolean) {
    const mtimeMs = info.mtime?.getTime() ?? 0;
    const m: FileMeta = {
      type,
      size: info.size,
      mtimeMs,
      etag: makeETag(info.size, mtimeMs, info.ino ?? 0),
      lastModified: lastModifiedDate(mtimeMs),
      vary,
    };
    if (coding) m.coding = coding;
    return m;
  }

  /** A shared, frozen reply with its head pre-serialised (no body: no Content-Length). */
  function frozenReply(
    status: number,
    headers: Array<[string, string]>,
    bytes: Uint8Array | null,
  ): Reply {
    for (const h of common) headers.push(h);
    let head = `HTTP/1.1 ${status} ${REASONS[status]}\r\n`;
    for (const [k, v] of headers) head += `${k}: ${v}\r\n`;
    if (bytes !== null) head += `Content-Length: ${bytes.length}\r\n`;
    return Object.freeze({
      status,
      headers: Object.freeze(headers) as Array<[string, string]>,
      body: Object.freeze(bytes === null ? [] : [bytes]) as Reply["body"],
      length: bytes === null ? 0 : bytes.length,
      rawHead: encoder.encode(head),
    });
  }

  /** Evicts files, oldest-inserted first, until `n` more bytes fit beside the listings. */
  function makeRoom(n: number) {
    // A Map iterates in insertion order.
    for (const [k, e] of cache) {
      if (cacheBytes + listingBytes + n <= cacheMaxBytes) break;
      cache.delete(k);
      cacheBytes -= e.bytes.length;
    }
  }

  /**
   * Caches `bytes` (the file `real` as `m` describes it) under `key`, if it
   * fits: at most `limit` bytes, within the budget beside the listings.
   * `srcSize`: for a compressed variant, the size of the file it was made from.
   *
   * @returns the entry, or undefined when it was not cached
   */
  function cacheInsert(
    key: string,
    real: string,
    m: FileMeta,
    ino: number,
    bytes: Uint8Array,
    limit = cacheMaxFileBytes,
    srcSize?: number,
  ): CacheEntry | undefined {
    if (bytes.length > limit || bytes.length + listingBytes > cacheMaxBytes) return undefined;
    const old = cache.get(key);
    if (old) {
      cache.delete(key);
      cacheBytes -= old.bytes.length;
    }
    makeRoom(bytes.length);
    const reply = frozenReply(200, baseHeaders(m), bytes);
    const e: CacheEntry = { key, real, meta: m, ino, bytes, reply, checked: Date.now(), srcSize };
    cache.set(key, e);
    cacheBytes += bytes.length;
    return e;
  }

  /** The cached compressed variant `key` of the file version (`m`, `ino`), if any. */
  function variant(key: string, m: FileMeta, ino: number): CacheEntry | undefined {
    const e = cache.get(key);
    return e !== undefined && e.ino === ino && e.srcSize === m.size &&
        e.meta.mtimeMs === m.mtimeMs
      ? e
      : undefined;
  }

  async function exists(path: string): Promise<string | null> {
    try {
      const real = await realInRoot(path);
      if (real === null) return null;
      return (await Deno.stat(real)).isFile ? real : null;
    } catch {
      return null;
    }
  }

  function compressible(m: FileMeta): boolean {
    return compressOn && m.size >= COMPRESS_MIN && m.size <= COMPRESS_MAX && TEXTY.test(m.type);
  }

  /** The coding to compress with for `req`, or null (none accepted, or a Range request). */
  function zCoding(req: RequestHead): "br" | "gzip" | null {
    const ae = getHeader(req, "accept-encoding");
    if (ae === undefined || getHeader(req, "range") !== undefined) return null;
    return acceptsCoding(ae, "br") ? "br" : acceptsCoding(ae, "gzip") ? "gzip" : null;
  }

  /** A cached file answered: its compressed variant if the client takes one. */
  function fromEntry(req: RequestHead, e: CacheEntry): Reply | Promise<Reply> {
    if (e.meta.vary) {
      const z = zCoding(req);
      if (z !== null) {
        return compressed(req, e.real, e.meta, e.ino, z, (changed) => {
          if (changed) e.checked = 0; // the file changed: look again next time
          return plain(req, e);
        });
      }
    }
    return plain(req, e);
  }

  function plain(req: RequestHead, e: CacheEntry): Reply {
    // Hot path: no I/O; no allocation unless the request is conditional.
    return hasConditional(req.headers) ? fileReply(pick(req), e.meta, null, e.bytes) : e.reply;
  }

  /**
   * The file `real` (described by `m`) compressed with `z`: from the cache,
   * else made by the job pool (or here, without one). Falls back to
   * `identity` when that fails or the file changed meanwhile.
   */
  async function compressed(
    req: RequestHead,
    real: string,
    m: FileMeta,
    ino: number,
    z: "br" | "gzip",
    identity: (changed: boolean) => Reply | Promise<Reply>,
  ): Promise<Reply> {
    const key = real + "\0" + z;
    const hit = variant(key, m, ino);
    if (hit !== undefined) return plain(req, hit);
    const gen = generation;
    // Concurrent misses of one version share one job. The job checks the
    // version itself: no need to key by invalidations.
    const args = { real, encoding: z, size: m.size, mtimeMs: m.mtimeMs, ino };
    const r = await shared(
      `${key}\0${m.size}\0${m.mtimeMs}\0${ino}`,
      () => jobs !== undefined ? jobs("compress", args) : compressHere(real, z, args),
    );
    const head = r.head as { size: number; mtimeMs: number; ino: number } | undefined;
    if (r.status !== 200 || r.body === undefined || head === undefined) {
      return identity(r.status === 409); // failed, busy, or another version: send it as is
    }
    if (head.size !== m.size || head.mtimeMs !== m.mtimeMs || head.ino !== ino) {
      return identity(true);
    }
    const zm: FileMeta = {
      ...m,
      size: r.body.length,
      // A different representation: a different strong validator.
      etag: m.etag.slice(0, -1) + "-" + z + '"',
      coding: z,
    };
    // A concurrent waiter of the same job may have cached it already.
    const have = variant(key, m, ino);
    if (have !== undefined) return plain(req, have);
    const limit = cacheMaxFileBytes > 0 ? COMPRESSED_CACHE_MAX : 0;
    const e = gen === generation
      ? cacheInsert(key, real, zm, ino, r.body, limit, m.size)
      : undefined;
    if (e !== undefined) return plain(req, e);
    return fileReply(pick(req), zm, null, r.body);
  }

  async function serveFile(
    req: RequestHead,
    p: Picked,
    real: string,
    cacheKey: string | null,
    gen: number,
    plainOnly = false,
  ) {
    const type = contentType(real);
    const br = await exists(real + ".br");
    const gz = await exists(real + ".gz");
    const ae = getHeader(req, "accept-encoding");
    let path = real;
    let coding: string | undefined;
    if (br !== null && acceptsCoding(ae, "br")) [path, coding] = [br, "br"];
    else if (gz !== null && acceptsCoding(ae, "gzip")) [path, coding] = [gz, "gzip"];
    const vary = br !== null || gz !== null;
    // Open first, then stat the open file: the validators and length then
    // describe exactly the bytes we send, even if the path is replaced now.
    const file = await Deno.open(path, { read: true });
    let info: Deno.FileInfo;
    try {
      info = await file.stat();
    } catch (e) {
      file.close();
      throw e;
    }
    if (!info.isFile) {
      file.close();
      return errorReply(404);
    }
    let m = metaOf(info, type, coding, vary);
    let z: "br" | "gzip" | null = null;
    if (!vary && compressible(m)) {
      // Identity and compressed answers now differ by Accept-Encoding.
      m.vary = true;
      z = plainOnly ? null : zCoding(req);
    }
    const ino = info.ino ?? 0;
    if (cacheKey !== null && !vary && info.size <= cacheMaxFileBytes && cacheMaxBytes > 0) {
      let whole;
      try {
        whole = await readOneVersion(file, info, cacheMaxFileBytes);
      } catch (e) {
        file.close();
        throw e;
      }
      if (whole !== null) {
        file.close();
        const bytes = whole.bytes;
        // Rewritten before we read it: these bytes are a newer version.
        if (whole.info !== info) m = metaOf(whole.info, type, coding, m.vary);
        const ino = whole.info.ino ?? 0;
        // Changed on disk while we read: these bytes may be the old version.
        if (gen === generation) cacheInsert(cacheKey, real, m, ino, bytes);
        // The identity bytes are cached first, so the next request finds the
        // compressed variant without touching the disk.
        if (z !== null) return compressed(req, real, m, ino, z, () => fileReply(p, m, null, bytes));
        return fileReply(p, m, null, bytes);
      }
      // Rewritten on every try, or grown past the cache's limit: stream it
      // from the open file like a large one (truncation ends it early).
    }
    if (z !== null) {
      file.close();
      return compressed(req, real, m, ino, z, () => slow(req, true));
    }
    // Bodies past the engine's single-write size may go out by sendfile(2):
    // offer a descriptor of this very inode, opened only if asked for.
    const raw = info.size > RAW_FD_MIN && rawAvailable()
      ? new RawFd(path, info.dev, info.ino ?? 0)
      : undefined;
    return fileReply(p, m, file, null, raw);
  }

  function dropRoute(key: string) {
    const r = routes.get(key);
    if (r === undefined) return;
    routes.delete(key);
    r.snap.routes.delete(key);
  }

  function setRoute(key: string, snap: DirSnap, page: Rendered) {
    dropRoute(key);
    if (routes.size >= LISTING_ROUTES_MAX) dropRoute(routes.keys().next().value!);
    routes.set(key, { snap, page });
    snap.routes.add(key);
  }

  function dropDir(s: DirSnap) {
    if (!s.live) return;
    s.live = false;
    dirs.delete(s.real);
    listingBytes -= s.bytes;
    for (const k of s.routes) routes.delete(k);
    s.routes.clear();
  }

  /** Counts `n` more bytes against a cached directory; false (and nothing kept) if over budget. */
  function charge(s: DirSnap, n: number): boolean {
    if (!s.live || s.bytes + n > listingBudget) return false;
    // Oldest-collected directories out first, then files, until it fits.
    for (const o of dirs.values()) {
      if (listingBytes + n <= listingBudget) break;
      if (o !== s) dropDir(o);
    }
    if (listingBytes + n > listingBudget) return false;
    makeRoom(n);
    s.bytes += n;
    listingBytes += n;
    return true;
  }

  /**
   * Per directory: invalidations seen (plus those of everything, `allEpoch`).
   * A listing begun before its directory's epoch moved is answered but not
   * cached, and later requests do not join it; changes elsewhere do not
   * matter to it (the global `generation` is for file reads).
   */
  const dirEpochs = new Map<string, number>();
  let allEpoch = 0;
  const epochOf = (real: string) => allEpoch + (dirEpochs.get(real) ?? 0);
  function bumpDir(real: string) {
    if (dirEpochs.size >= 10_000) {
      // Bounded: forgetting them all is one global bump.
      dirEpochs.clear();
      allEpoch++;
    }
    dirEpochs.set(real, (dirEpochs.get(real) ?? 0) + 1);
  }

  /**
   * Work running now (directory collects, pool jobs for listing pages and
   * compressed variants), keyed by what it produces; every key starts with
   * the real path it reads, then `\0`.
   */
  const running = new Map<string, Promise<unknown>>();

  /** `start()`, unless work of the same key is running: then that one's result. */
  function shared<T>(key: string, start: () => T | Promise<T>): Promise<T> {
    let p = running.get(key) as Promise<T> | undefined;
    if (p === undefined) {
      p = Promise.resolve(start()).finally(() => running.delete(key));
      running.set(key, p);
    }
    return p;
  }

  /**
   * The collected entries of `real`: from the cache while younger than
   * revalidateMs, else collected again (asynchronously, one collect per
   * directory at a time). Unchanged entries keep the old snapshot, its
   * rendered bytes and so its ETags.
   */
  function snapshot(real: string, dirInfo: Deno.FileInfo): DirSnap | Promise<DirSnap> {
    const old = dirs.get(real);
    if (old !== undefined && Date.now() - old.checked < revalidateMs) return old;
    // One begun before this directory changed may miss the change: not joined.
    return shared(`${real}\0collect\0${epochOf(real)}`, () => collect(real, dirInfo, old));
  }

  async function collect(real: string, dirInfo: Deno.FileInfo, old?: DirSnap): Promise<DirSnap> {
    const started = epochOf(real);
    // Bounded: a huge directory costs at most COLLECT_MAX entries of time and memory.
    const collectMax = Math.max(COLLECT_MAX, listingCap);
    const entries = await collectEntriesAsync(real, policy, collectMax + 1);
    const now = Date.now();
    const truncated = entries.length > collectMax;
    if (truncated) entries.length = collectMax;
    const dirMtimeMs = dirInfo.mtime?.getTime() ?? 0;
    if (old !== undefined && old.live) {
      if (old.dirMtimeMs === dirMtimeMs && sameEntries(old.entries, entries)) {
        old.checked = now;
        return old;
      }
      dropDir(old);
    }
    const s = newSnap(real, entries, truncated, dirMtimeMs, now);
    // Paginated directories too (within the listing budget, which charge()
    // enforces); not a collect that raced with an invalidation.
    if (started === epochOf(real)) {
      let n = 256;
      for (const e of entries) n += 64 + 2 * e.name.length;
      keepSnap(s, n);
    }
    return s;
  }

  function newSnap(
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

  /** Puts `s` in the listing cache, charged `n` bytes (replacing any snapshot of its dir). */
  function keepSnap(s: DirSnap, n: number) {
    const old = dirs.get(s.real);
    if (old !== undefined) dropDir(old);
    s.live = true;
    dirs.set(s.real, s);
    if (!charge(s, n)) dropDir(s);
  }

  function sortedOf(s: DirSnap, sort: SortKey, order: SortOrder): Entry[] {
    const key = sort + order;
    let list = s.sorted.get(key);
    if (list === undefined) {
      list = sortEntries(s.entries.slice(), sort, order);
      if (charge(s, 8 * list.length)) s.sorted.set(key, list);
    }
    return list;
  }

  /** A cached listing page answered: preconditions only when the request has any. */
  function listed(req: RequestHead, page: Rendered): Reply {
    if (!hasConditional(req.headers)) return page.ok;
    const pre = evaluatePreconditions(pick(req), page.etag, page.mtimeMs);
    return pre === 304 ? page.notModified : pre === 412 ? errorReply(412) : page.ok;
  }

  function routeKey(req: RequestHead): string {
    return req.path + "?" + req.query + (wantsJson(req) ? "\0j" : "\0h");
  }

  /** A page as cached: frozen 200 and 304 replies with their heads serialised. */
  function rendered(p: Omit<Page, "body">, body: Uint8Array): Rendered {
    const ok = frozenReply(200, p.headers, body);
    const notModified = frozenReply(304, p.notModifiedHeaders, null);
    const bytes = body.length + ok.rawHead!.length + notModified.rawHead!.length;
    return { etag: p.etag, mtimeMs: p.mtimeMs, ok, notModified, bytes };
  }

  /**
   * Caches `page` as variant `vkey` of `snap` (unless a concurrent request
   * already did: charged once) and routes `req` to the cached one.
   */
  function remember(req: RequestHead, snap: DirSnap, vkey: string, page: Rendered) {
    const have = snap.variants.get(vkey);
    if (have !== undefined) return setRoute(routeKey(req), snap, have);
    if (page.bytes <= LISTING_CACHE_MAX_BYTES && charge(snap, page.bytes)) {
      snap.variants.set(vkey, page);
      setRoute(routeKey(req), snap, page);
    }
  }

  async function listing(
    req: RequestHead,
    real: string,
    segments: string[],
    dirInfo: Deno.FileInfo,
  ): Promise<Reply> {
    const q = parseListingQuery(req.query, listingCap);
    if (q.error !== undefined) {
      const body = encoder.encode(`400 Bad Request\n${q.error}\n`);
      return reply(400, [["Content-Type", TEXT]], [body], body.length);
    }
    const json = q.json || wantsJson(req);
    const path = segments.length === 0 ? "/" : "/" + segments.join("/") + "/";
    const vkey = variantKey(q, json, path);
    if (jobs !== undefined) return pooledListing(req, real, path, json, vkey);
    const snap = await snapshot(real, dirInfo);
    let page = snap.variants.get(vkey);
    if (page === undefined) {
      const sorted = sortedOf(snap, q.sort, q.order);
      const p = renderPage(sorted, snap.truncated, snap.mtimeMs, q, json, path, pageConfig);
      if (p.status === 404) return errorReply(404);
      page = rendered(p, p.body);
      remember(req, snap, vkey, page);
    } else setRoute(routeKey(req), snap, page);
    return listed(req, page);
  }

  /**
   * A listing rendered by the job pool. The pool keeps nothing: each job
   * collects, sorts and renders. Here the pages of one directory share a
   * snapshot record (entries unknown) that expires as a whole, like an
   * inline one; a result that raced with an invalidation is answered but
   * not kept.
   */
  async function pooledListing(
    req: RequestHead,
    real: string,
    path: string,
    json: boolean,
    vkey: string,
  ): Promise<Reply> {
    const fresh = dirs.get(real);
    if (fresh !== undefined && Date.now() - fresh.checked < revalidateMs) {
      const page = fresh.variants.get(vkey);
      if (page !== undefined) {
        setRoute(routeKey(req), fresh, page);
        return listed(req, page);
      }
    }
    const started = epochOf(real);
    const submitted = Date.now();
    const r = await shared(
      `${real}\0${vkey}\0${started}`,
      () => jobs!("listing", { real, path, query: req.query, json }),
    );
    if (r.status !== 200 || r.body === undefined) return jobError(r.status);
    const head = r.head as Omit<Page, "body">;
    if (head.status === 404) return errorReply(404);
    const page = rendered(head, r.body);
    if (started !== epochOf(real)) return listed(req, page);
    let snap = dirs.get(real);
    if (snap === undefined || submitted - snap.checked >= revalidateMs) {
      snap = newSnap(real, [], false, 0, submitted);
      keepSnap(snap, 256);
    }
    remember(req, snap, vkey, page);
    return listed(req, page);
  }

  /** A job that did not produce a result: 503 (pool busy or failed) comes with Retry-After. */
  function jobError(status: number): Reply {
    if (status === 503) return errorReply(503, [["Retry-After", "1"]]);
    return errorReply(status === 200 ? 500 : status);
  }

  /**
   * A cached listing past revalidateMs: resolve the path again (it may now
   * have an index.html, be gone, or lead elsewhere) and re-collect. Requests
   * arriving meanwhile keep the old bytes (whole and consistent, only as
   * stale as the window allows) instead of each starting the same I/O.
   */
  async function relist(req: RequestHead, key: string, r: Route): Promise<Reply> {
    r.snap.claimed = true;
    try {
      return await slow(req);
    } finally {
      r.snap.claimed = false;
      // Not answered with a cached listing this time: forget the route.
      if (routes.get(key) === r) dropRoute(key);
    }
  }

  /**
   * `?download=tar`: the folder as a tar stream of unknown length. With a
   * bound, the exact archive size is counted first (stopping at the bound),
   * so a folder that is too large is refused before a byte is sent rather
   * than cut off mid-download.
   */
  async function download(real: string, segments: string[]): Promise<Reply> {
    const base = segments.length > 0
      ? segments[segments.length - 1]
      : root.slice(root.lastIndexOf("/") + 1) || "root";
    // Unreadable: throws, 403 like its listing. Bounded: the size first.
    const size = await archivePreflight(real, base, policy, maxArchiveBytes);
    if (size > maxArchiveBytes) {
      const body = encoder.encode(
        `403 Forbidden\nThis folder is more than ${maxArchiveBytes} bytes as a tar archive, ` +
          `the largest download this server allows.\n`,
      );
      return reply(403, [["Content-Type", TEXT]], [body], body.length);
    }
    const r = reply(
      200,
      [
        ["Content-Type", "application/x-tar"],
        ["Content-Disposition", contentDisposition(base + ".tar")],
      ],
      [],
      -1,
    );
    // A generator: nothing is opened until the engine pulls (never for HEAD).
    r.stream = tarStream(real, base, policy, maxArchiveBytes);
    return r;
  }

  const rootBytes = encoder.encode(root === "/" ? "/" : root + "/");
  const lossy = new TextDecoder();

  /**
   * A file whose name is not UTF-8 (linked from listings by its raw bytes):
   * the same checks on bytes, through libc; read into memory because Deno
   * cannot adopt the descriptor (see `_rawfs.ts`), so bounded by
   * RAW_MAX_BYTES (larger: 403). Files only, never cached.
   */
  function rawFile(req: RequestHead): Reply {
    const r = decodeRawPath(req.path, dotfiles);
    if (!r.ok) return errorReply(r.status);
    if (r.trailingSlash) return errorReply(404);
    const full = new Uint8Array(rootBytes.length + r.bytes.length);
    full.set(rootBytes);
    full.set(r.bytes, rootBytes.length);
    const real = rawRealPath(full);
    if (real === null) return errorReply(404);
    // Lossy decoding keeps the root prefix and every "/." intact.
    const realName = lossy.decode(real);
    if (!servable(policy, realName)) return errorReply(404);
    const r2 = rawReadFile(real, RAW_MAX_BYTES);
    if (r2 === null) return errorReply(404);
    if (r2 === "too large") return errorReply(403);
    const { info, bytes } = r2;
    const m: FileMeta = {
      type: contentType(realName),
      size: info.size,
      mtimeMs: info.mtimeMs,
      etag: makeETag(info.size, info.mtimeMs, info.ino),
      lastModified: lastModifiedDate(info.mtimeMs),
      vary: false,
    };
    return fileReply(pick(req), m, null, bytes);
  }

  /** The full path: resolve, stat, then file or directory. `plainOnly`: never compress. */
  async function slow(req: RequestHead, plainOnly = false): Promise<Reply> {
    // Taken before the first await: an invalidation during this request's
    // path resolution or read keeps what it found out of the cache.
    const gen = generation;
    const d = decodePath(req.path, dotfiles);
    if (!d.ok) {
      // Not UTF-8: may name a file Deno cannot spell; try the exact bytes.
      if (d.reason === INVALID_UTF8 && rawAvailable()) return rawFile(req);
      return errorReply(d.status);
    }
    const p = pick(req);
    const fsPath = d.segments.length === 0 ? root : root + "/" + d.segments.join("/");
    const real = await realInRoot(fsPath);
    if (real === null) return errorReply(404);
    const st = await Deno.stat(real);
    if (st.isDirectory) {
      if (!d.trailingSlash) {
        // Relative links inside the listing resolve against the URL, so the
        // directory URL must end in `/`. Relative Location: never from Host.
        const raw = req.path.slice(req.path.lastIndexOf("/") + 1);
        const loc = "./" + raw + "/" + (req.query === "" ? "" : "?" + req.query);
        return reply(301, [["Location", loc], ["Content-Type", TEXT]]);
      }
      if (archives && req.query.includes("download=tar")) {
        if (parseListingQuery(req.query).download === "tar") return download(real, d.segments);
      }
      const index = await exists(real + "/index.html");
      if (index !== null) return serveFile(req, p, index, req.path, gen, plainOnly);
      if (!dirListing) return errorReply(404);
      return listing(req, real, d.segments, st);
    }
    // `file/` asks for a directory; opening a FIFO or device would block.
    if (d.trailingSlash || !st.isFile) return errorReply(404);
    return serveFile(req, p, real, req.path, gen, plainOnly);
  }

  async function revalidate(req: RequestHead, e: CacheEntry): Promise<Reply> {
    // Claim the check: requests arriving while this stat runs keep using the
    // entry instead of each starting their own stat (one check per window).
    e.checked = Date.now();
    try {
      const d = decodePath(req.path, dotfiles);
      if (d.ok) {
        const fsPath = d.segments.length === 0 ? root : root + "/" + d.segments.join("/");
        const real = await realInRoot(fsPath);
        let target = real;
        if (real !== null && (await Deno.stat(real)).isDirectory) {
          target = await exists(real + "/index.html");
        }
        if (target === e.real) {
          const s = await Deno.stat(target);
          if (
            s.isFile && s.size === e.meta.size && (s.ino ?? 0) === e.ino &&
            (s.mtime?.getTime() ?? 0) === e.meta.mtimeMs
          ) {
            e.checked = Date.now();
            return fromEntry(req, e);
          }
        }
      }
    } catch {
      // fall through: the slow path maps the error
    }
    if (cache.get(e.key) === e) {
      cache.delete(e.key);
      cacheBytes -= e.bytes.length;
    }
    return slow(req);
  }

  function invalidate(path: string): void {
    generation++;
    const under = path.endsWith("/") ? path : path + "/";
    // A new or removed sibling changes whether the file itself is cacheable.
    const plain = /\.(gz|br)$/.test(path) ? path.slice(0, -3) : path;
    for (const [k, e] of cache) {
      if (e.real === path || e.real === plain || e.real.startsWith(under)) {
        cache.delete(k);
        cacheBytes -= e.bytes.length;
      }
    }
    const parent = path.slice(0, path.lastIndexOf("/")) || "/";
    bumpDir(path);
    bumpDir(parent);
    // Directories under a removed or renamed one: their running work too.
    const busy = [...running.keys()].map((k) => k.slice(0, k.indexOf("\0")));
    for (const d of [...dirEpochs.keys(), ...busy]) {
      if (d.startsWith(under)) bumpDir(d);
    }
    for (const s of dirs.values()) {
      if (s.real === path || s.real === parent || s.real.startsWith(under)) dropDir(s);
    }
  }

  function invalidateAll(): void {
    generation++;
    allEpoch++;
    cache.clear();
    cacheBytes = 0;
    for (const s of dirs.values()) dropDir(s);
  }

  function handle(req: RequestHead): Reply | Promise<Reply> {
    try {
      const method = req.method;
      if (method !== "GET" && method !== "HEAD") {
        return errorReply(405, [["Allow", "GET, HEAD"]]);
      }
      const hit = cache.get(req.path);
      if (hit !== undefined) {
        if (Date.now() - hit.checked < revalidateMs) return fromEntry(req, hit);
        return revalidate(req, hit).catch(mapError);
      }
      if (routes.size !== 0 && req.path.charCodeAt(req.path.length - 1) === 47 /* / */) {
        const key = routeKey(req);
        const r = routes.get(key);
        if (r !== undefined) {
          // Hot path: no I/O; the key is the only allocation unless the
          // request is conditional.
          if (r.snap.claimed || Date.now() - r.snap.checked < revalidateMs) {
            return listed(req, r.page);
          }
          return relist(req, key, r).catch(mapError);
        }
      }
      return slow(req).catch(mapError);
    } catch (e) {
      return mapError(e);
    }
  }

  return Object.assign(handle, { invalidate, invalidateAll });
}

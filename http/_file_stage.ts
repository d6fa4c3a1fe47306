/**
 * The file view: a file (or a directory's index.html) as a reply, through
 * the file cache: cached bodies answered without I/O, re-checked by a stat
 * every revalidateMs; precompressed siblings (`.br`, `.gz`) preferred;
 * compressed variants of text files made once (by the job pool, or inline)
 * and cached; files with names that are not UTF-8 served by their raw bytes.
 *
 * @module
 */
import { getHeader, type Reply, type RequestHead } from "./types.ts";
import { decodeRawPath, servable } from "./resolve.ts";
import { rawAvailable, rawReadFile, rawRealPath } from "./_rawfs.ts";
import { contentType } from "./mime.ts";
import { acceptsCoding } from "./encoding.ts";
import {
  chooseCoding,
  type Coding,
  compressFile,
  compressible,
  FileChanged,
  type FileVersion,
} from "./_compress.ts";
import { type JobAnswer, resultHead } from "./job_protocol.ts";
import type { CacheEntry } from "./_file_cache.ts";
import {
  type FileMeta,
  fileReply,
  hasConditional,
  metaOf,
  pick,
  RawFd,
  readOneVersion,
  versionOf,
} from "./_file_reply.ts";
import { existingFile, type Site } from "./_site.ts";
import { resolveTarget } from "./_resolve_target.ts";

/** Files up to this size go out with their head in one write: no raw fd. */
const RAW_FD_MIN = 16384;
/** Largest non-UTF-8-named file served (it is read into memory). */
export const RAW_MAX_BYTES = 16 * 1024 * 1024;
/** Largest compressed variant kept in the cache (it cost a job to make). */
const COMPRESSED_CACHE_MAX = 1024 * 1024;

/** The coding to compress with for `req`, or null (none accepted, or a Range request). */
function zCoding(req: RequestHead): Coding | null {
  // Accept-Encoding first: without it (most hits), one header scan only.
  const ae = getHeader(req, "accept-encoding");
  if (ae === undefined || getHeader(req, "range") !== undefined) return null;
  return chooseCoding(ae);
}

/** Compresses in this thread (no job pool), answering like a pool job would. */
async function compressInline(real: string, z: Coding, want: FileVersion): Promise<JobAnswer> {
  try {
    const { version, body } = await compressFile(real, z, want);
    return { status: 200, head: version, body };
  } catch (e) {
    // Another version than the one being answered; else failed: send it as is.
    return { status: e instanceof FileChanged ? 409 : 503 };
  }
}

/** The file view of one handler. */
export class FileStage {
  readonly #site: Site;
  readonly #rootBytes: Uint8Array;
  readonly #lossy = new TextDecoder();

  /** @param site the handler's shared state */
  constructor(site: Site) {
    this.#site = site;
    const root = site.root;
    this.#rootBytes = new TextEncoder().encode(root === "/" ? "/" : root + "/");
  }

  /**
   * A fresh cached file answered: its compressed variant if the client takes one.
   *
   * @param req the request
   * @param e the cache entry of its path
   * @returns the reply (synchronous unless a variant must be made)
   */
  hit(req: RequestHead, e: CacheEntry): Reply | Promise<Reply> {
    if (e.meta.vary) {
      const z = zCoding(req);
      if (z !== null) {
        return this.#compressed(req, e.real, e.meta, e.ino, z, (changed) => {
          if (changed) e.checked = 0; // the file changed: look again next time
          return this.#plain(req, e);
        });
      }
    }
    return this.#plain(req, e);
  }

  #plain(req: RequestHead, e: CacheEntry): Reply {
    // Hot path: no I/O; no allocation unless the request is conditional.
    return hasConditional(req.headers)
      ? fileReply(this.#site.replies, pick(req), e.meta, null, e.bytes)
      : e.reply;
  }

  /**
   * A cached file past revalidateMs: one stat decides whether the entry is
   * still the file the path names; else the entry goes and the slow path runs.
   *
   * @param req the request
   * @param e the stale entry
   * @returns the reply
   */
  async revalidate(req: RequestHead, e: CacheEntry): Promise<Reply> {
    const site = this.#site;
    // Claim the check: requests arriving while this stat runs keep using the
    // entry instead of each starting their own stat (one check per window).
    e.checked = Date.now();
    try {
      const t = await resolveTarget(site, req);
      const target = t.kind === "file"
        ? t.real
        : t.kind === "dir"
        ? await existingFile(site, t.real + "/index.html")
        : null;
      if (target === e.real && site.files.matches(e, await Deno.stat(target))) {
        e.checked = Date.now();
        return this.hit(req, e);
      }
    } catch {
      // fall through: the slow path maps the error
    }
    site.files.delete(e);
    return site.slow(req);
  }

  /**
   * The file `real` (compressed with `z`): from the cache, else made by the
   * job pool (or here, without one). Falls back to `identity` when that
   * fails or the file changed meanwhile.
   */
  async #compressed(
    req: RequestHead,
    real: string,
    m: FileMeta,
    ino: number,
    z: Coding,
    identity: (changed: boolean) => Reply | Promise<Reply>,
  ): Promise<Reply> {
    const { files, jobs, running, replies } = this.#site;
    const key = real + "\0" + z;
    const hit = files.variant(key, m, ino);
    if (hit !== undefined) return this.#plain(req, hit);
    const gen = files.generation;
    // Concurrent misses of one version share one job. The job checks the
    // version itself: no need to key by invalidations.
    const want = { size: m.size, mtimeMs: m.mtimeMs, ino };
    const a = await running.shared(
      `${key}\0${m.size}\0${m.mtimeMs}\0${ino}`,
      () =>
        jobs !== undefined
          ? jobs("compress", { real, encoding: z, ...want })
          : compressInline(real, z, want),
    );
    const r = resultHead("compress", a);
    if (r === undefined) return identity(a.status === 409); // failed, busy, or another version
    const { head, body } = r;
    if (head.size !== m.size || head.mtimeMs !== m.mtimeMs || head.ino !== ino) {
      return identity(true);
    }
    const zm: FileMeta = {
      ...m,
      size: body.length,
      // A different representation: a different strong validator.
      etag: m.etag.slice(0, -1) + "-" + z + '"',
      coding: z,
    };
    // A concurrent waiter of the same job may have cached it already.
    const have = files.variant(key, m, ino);
    if (have !== undefined) return this.#plain(req, have);
    const limit = files.maxFileBytes > 0 ? COMPRESSED_CACHE_MAX : 0;
    const e = gen === files.generation
      ? files.insert(key, real, zm, ino, body, limit, m.size)
      : undefined;
    if (e !== undefined) return this.#plain(req, e);
    return fileReply(replies, pick(req), zm, null, body);
  }

  /**
   * Serves the file `real` (a precompressed sibling if the client takes
   * one), caching it under `cacheKey` when small enough.
   *
   * @param req the request
   * @param real the file's real path
   * @param cacheKey the cache key (the URL path)
   * @param gen the file cache's generation when the request began
   * @param plainOnly never compress
   * @returns the reply
   */
  async serve(
    req: RequestHead,
    real: string,
    cacheKey: string,
    gen: number,
    plainOnly = false,
  ): Promise<Reply> {
    const site = this.#site;
    const type = contentType(real);
    const br = await existingFile(site, real + ".br");
    const gz = await existingFile(site, real + ".gz");
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
      return site.replies.error(404);
    }
    const m = metaOf(versionOf(info), type, coding, vary);
    if (site.cacheControl !== undefined) m.cacheControl = site.cacheControl(real, type);
    let z: Coding | null = null;
    if (!vary && site.compress && compressible(m.type, m.size)) {
      // Identity and compressed answers now differ by Accept-Encoding.
      m.vary = true;
      z = plainOnly ? null : zCoding(req);
    }
    const files = site.files;
    if (!vary && info.size <= files.maxFileBytes && files.maxBytes > 0) {
      const r = await this.#readAndCache(req, file, info, m, real, cacheKey, gen, z);
      if (r !== null) return r;
      // Rewritten on every try, or grown past the cache's limit: stream it
      // from the open file like a large one (truncation ends it early).
    }
    if (z !== null) {
      file.close();
      return this.#compressed(req, real, m, info.ino ?? 0, z, () => site.slow(req, true));
    }
    // Bodies past the engine's single-write size may go out by sendfile(2):
    // offer a descriptor of this very inode, opened only if asked for.
    const raw = info.size > RAW_FD_MIN && rawAvailable()
      ? new RawFd(path, info.dev, info.ino ?? 0)
      : undefined;
    return fileReply(site.replies, pick(req), m, file, null, raw);
  }

  /** A small file read whole (one version), cached, answered; null if it would not read. */
  async #readAndCache(
    req: RequestHead,
    file: Deno.FsFile,
    info: Deno.FileInfo,
    m: FileMeta,
    real: string,
    cacheKey: string,
    gen: number,
    z: Coding | null,
  ): Promise<Reply | null> {
    const { files, replies } = this.#site;
    let whole;
    try {
      whole = await readOneVersion(file, info, files.maxFileBytes);
    } catch (e) {
      file.close();
      throw e;
    }
    if (whole === null) return null;
    file.close();
    const bytes = whole.bytes;
    // Rewritten before we read it: these bytes are a newer version.
    if (whole.info !== info) {
      m = {
        ...metaOf(versionOf(whole.info), m.type, m.coding, m.vary),
        cacheControl: m.cacheControl,
      };
    }
    const ino = whole.info.ino ?? 0;
    // Changed on disk while we read: these bytes may be the old version.
    if (gen === files.generation) files.insert(cacheKey, real, m, ino, bytes);
    const p = pick(req);
    // The identity bytes are cached first, so the next request finds the
    // compressed variant without touching the disk.
    const identity = () => fileReply(replies, p, m, null, bytes);
    if (z !== null) return this.#compressed(req, real, m, ino, z, identity);
    return identity();
  }

  /**
   * A file whose name is not UTF-8 (linked from listings by its raw bytes):
   * the same checks on bytes, through libc; read into memory because Deno
   * cannot adopt the descriptor (see `_rawfs.ts`), so bounded by
   * RAW_MAX_BYTES (larger: 403). Files only, never cached.
   *
   * @param req the request
   * @returns the reply
   */
  raw(req: RequestHead): Reply {
    const { policy, replies } = this.#site;
    const r = decodeRawPath(req.path, policy.dotfiles);
    if (!r.ok) return replies.error(r.status);
    if (r.trailingSlash) return replies.error(404);
    const rootBytes = this.#rootBytes;
    const full = new Uint8Array(rootBytes.length + r.bytes.length);
    full.set(rootBytes);
    full.set(r.bytes, rootBytes.length);
    const real = rawRealPath(full);
    if (real === null) return replies.error(404);
    // Lossy decoding keeps the root prefix and every "/." intact.
    const realName = this.#lossy.decode(real);
    if (!servable(policy, realName)) return replies.error(404);
    const r2 = rawReadFile(real, RAW_MAX_BYTES);
    if (r2 === null) return replies.error(404);
    if (r2 === "too large") return replies.error(403);
    const m = metaOf(r2.info, contentType(realName), undefined, false);
    const cc = this.#site.cacheControl;
    if (cc !== undefined) m.cacheControl = cc(realName, m.type);
    return fileReply(replies, pick(req), m, null, r2.bytes);
  }
}

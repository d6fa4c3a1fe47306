/**
 * The write stage: PUT, DELETE, MKCOL, MOVE and COPY, each allowed only where
 * a {@linkcode WriteGrant} says so for the authenticated user or token.
 * It runs after the route rules (authentication, access rules), so nothing it
 * writes is reachable around them, and it resolves paths by the same rules
 * GET does (decode once then reject; real path inside the root; dotfiles and
 * symlinks per the serving policy), so a write can name nothing GET could not.
 *
 * ```text
 * PUT:    decode -> grant -> framing/size/coding checks -> parent (mkdir when granted)
 *         -> target (not a dir; a symlink only when followed) -> preconditions
 *         -> temp file <- body (digest hashed as it streams) -> digest check
 *         -> fsync, rename (or link for If-None-Match: *) -> invalidate -> 201/204 + ETag
 * DELETE: decode -> grant -> lstat (a link is removed, never its target) -> preconditions
 *         -> unlink / rmdir (a non-empty directory: 409, never recursive) -> 204
 * MKCOL:  no body (415) -> decode -> grant -> parent exists (409) -> mkdir (405 if taken) -> 201
 * MOVE/COPY: Destination (same host, decoded like a path) -> grants on both ends
 *         -> Overwrite (F: 412 if taken) -> rename / atomic copy -> 201/204
 * ```
 *
 * File system calls are synchronous (except the flushes): on the epoll
 * workers an async op's result waits for a loop turn, and these calls take
 * microseconds on a local disk.
 *
 * Statuses: 400 bad Destination, bad digest field, digest mismatch,
 * Content-Range on PUT (RFC 9110 sec. 14.5); 403 no grant; 405 PUT or MKCOL on a
 * directory / existing name; 409 missing parent, non-empty directory; 412
 * failed precondition or `Overwrite: F`; 413 over `--max-upload-mb`; 415
 * Content-Encoding on PUT or a MKCOL body; 502 Destination on another host
 * (RFC 4918 sec. 9.8.5); 507 disk full or over quota (RFC 4918 sec. 11.5).
 * Whatever fails, the temporary file is removed and the target is untouched.
 *
 * @module
 */
import { getHeader, type Reply, type RequestHead } from "../http/types.ts";
import { decodePath, servable } from "../http/resolve.ts";
import { makeETag } from "../http/conditional.ts";
import { collectGuards, type Site, underRoot } from "../http/_site.ts";
import { collectEntries } from "../http/_collect.ts";
import { errorStatus } from "../http/_fs_errors.ts";
import { AtomicFile, InsufficientStorage, isNoSpace, isTempName } from "./atomic.ts";
import { BodyError, bytesBody, type RequestBody } from "./body.ts";
import { DigestCheck, DigestError, digestsOf } from "./digest.ts";
import { createOnly, type Current, writePrecondition } from "./preconditions.ts";
import { parseDestination } from "./destination.ts";

/** What a write does, as a grant sees it. */
export type WriteOp = "put" | "mkdir" | "delete" | "mkcol" | "move" | "copy";

/**
 * Whether `user` may do `op` at `path`.
 *
 * @param user the authenticated user or token name (undefined: anonymous)
 * @param path the decoded URL path (`/a/b.txt`; a directory ends in `/`)
 * @param op what is asked
 * @returns true to allow
 */
export type WriteGrant = (user: string | undefined, path: string, op: WriteOp) => boolean;

/** Settings of the write stage. */
export interface WriteOptions {
  /** Who may write where. */
  grant: WriteGrant;
  /** Largest upload, bytes. @default Infinity */
  maxUploadBytes?: number;
  /** Also fsync the directory after each rename. @default false */
  durable?: boolean;
}

/**
 * A request as the write stage reads it: the head, plus what the engine and
 * the authentication stage add.
 */
export interface WriteRequest extends RequestHead {
  /** The authenticated user or token (set by the authentication stage). */
  user?: string;
  /** The request body, when the transport streams it (absent: none was sent). */
  body?: RequestBody;
}

/** The write methods this stage answers. */
export const WRITE_METHODS = ["PUT", "DELETE", "MKCOL", "COPY", "MOVE"] as const;

/** A status answered from deep inside an operation. */
class Status extends Error {
  readonly status: number;
  constructor(status: number, why = "") {
    super(why || String(status));
    this.status = status;
  }
}

function declaredBody(req: RequestHead): number {
  const cl = getHeader(req, "content-length");
  if (cl !== undefined) return Number(cl);
  return getHeader(req, "transfer-encoding") !== undefined ? -1 : 0;
}

/** The write stage of one handler. */
export class WriteStage {
  readonly #site: Site;
  readonly #grant: WriteGrant;
  readonly #max: number;
  readonly #durable: boolean;
  readonly #invalidate: (realPath: string) => void;

  /**
   * @param site the handler's shared state (root, policy, replies)
   * @param options grants and limits
   * @param invalidate drops this handler's cache entries for a changed real path
   */
  constructor(site: Site, options: WriteOptions, invalidate: (realPath: string) => void) {
    this.#site = site;
    this.#grant = options.grant;
    this.#max = options.maxUploadBytes ?? Infinity;
    this.#durable = options.durable ?? false;
    this.#invalidate = invalidate;
  }

  /** The largest upload, bytes (the engine refuses a larger Content-Length before reading). */
  get maxUploadBytes(): number {
    return this.#max;
  }

  /**
   * Answers a write request. Never throws.
   *
   * @param req the request (with `user` and `body` when present)
   * @returns the reply
   */
  async handle(req: WriteRequest): Promise<Reply> {
    try {
      switch (req.method) {
        case "PUT":
          return await this.#put(req);
        case "DELETE":
          return await this.#delete(req);
        case "MKCOL":
          return await this.#mkcol(req);
        case "MOVE":
        case "COPY":
          return await this.#moveOrCopy(req, req.method === "MOVE");
        default:
          return this.#site.replies.error(405);
      }
    } catch (e) {
      return this.#mapError(e);
    }
  }

  #mapError(e: unknown): Reply {
    const replies = this.#site.replies;
    if (e instanceof Status) return replies.error(e.status);
    // The engine closes the connection after a body it could not read to the end.
    if (e instanceof BodyError) return replies.error(e.status);
    if (e instanceof DigestError) return replies.error(400);
    if (e instanceof InsufficientStorage || isNoSpace(e)) return replies.error(507);
    return replies.mapError(e);
  }

  /** Decoded segments of a request path, or a status. */
  #segments(path: string): string[] {
    const d = decodePath(path, this.#site.policy.dotfiles);
    if (!d.ok) throw new Status(d.status, d.reason);
    if (d.segments.some(isTempName)) throw new Status(404, "reserved name");
    return d.segments;
  }

  #check(req: WriteRequest, segments: string[], op: WriteOp, dir = false): void {
    const path = "/" + segments.join("/") + (dir && segments.length > 0 ? "/" : "");
    // Nothing is written where the requester may not read (path rules): a
    // hidden path looks missing, a denied one is refused.
    const paths = this.#site.paths;
    if (paths !== undefined && !paths.mayRead(path, req.user)) {
      throw new Status(paths.rulesFor(path).hidden ? 404 : 403, `no read access to ${path}`);
    }
    if (!this.#grant(req.user, path, op)) throw new Status(403, `no ${op} grant for ${path}`);
  }

  /**
   * The real directory that holds `segments`' last name, checked like GET
   * checks a path (inside the root, not hidden, symlinks per policy).
   * Missing directories are made when `mkdir` is granted, else 409.
   */
  // deno-lint-ignore require-await -- synchronous file calls; async so failures are rejections
  async #parent(req: WriteRequest, segments: string[], mkdir: boolean): Promise<string> {
    const site = this.#site;
    let dir = site.root;
    for (let i = 0; i < segments.length - 1; i++) {
      const next = dir + "/" + segments[i];
      let info: Deno.FileInfo;
      try {
        info = Deno.lstatSync(next);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
        if (!mkdir) throw new Status(409, "parent missing");
        this.#check(req, segments.slice(0, i + 1), "mkdir", true);
        try {
          Deno.mkdirSync(next);
        } catch (e2) {
          if (!(e2 instanceof Deno.errors.AlreadyExists)) throw e2;
        }
        this.#invalidate(next);
        dir = next;
        continue;
      }
      if (info.isSymlink) {
        const real = Deno.realPathSync(next);
        if (!servable(site.policy, real)) throw new Status(404, "outside the root");
        info = Deno.statSync(real);
        dir = real;
      } else {
        dir = next;
      }
      if (!info.isDirectory) throw new Status(409, "parent is not a directory");
    }
    return dir;
  }

  /** The real target path in `dir` and its current version (null: absent). */
  // deno-lint-ignore require-await -- synchronous file calls; async so failures are rejections
  async #target(dir: string, name: string): Promise<{ path: string; info: Deno.FileInfo | null }> {
    const path = dir + "/" + name;
    let info: Deno.FileInfo;
    try {
      info = Deno.lstatSync(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return { path, info: null };
      throw e;
    }
    if (!info.isSymlink) return { path, info };
    // Writing "through" a link replaces what it points at, so the link must
    // point where GET would serve; replacing the link itself would surprise.
    if (!this.#site.policy.followSymlinks) throw new Status(403, "symlink");
    let real: string;
    try {
      real = Deno.realPathSync(path);
    } catch {
      throw new Status(403, "dangling symlink");
    }
    if (!servable(this.#site.policy, real)) throw new Status(404, "outside the root");
    return { path: real, info: Deno.statSync(real) };
  }

  async #put(req: WriteRequest): Promise<Reply> {
    const segments = this.#segments(req.path);
    if (segments.length === 0 || req.path.endsWith("/")) {
      throw new Status(405, "PUT on a collection");
    }
    this.#check(req, segments, "put");
    const coding = getHeader(req, "content-encoding");
    if (coding !== undefined && coding.trim().toLowerCase() !== "identity") {
      throw new Status(415, "Content-Encoding on PUT");
    }
    // A partial PUT would be applied as a whole replacement (RFC 9110 sec. 14.5).
    if (getHeader(req, "content-range") !== undefined) throw new Status(400, "Content-Range");
    const declared = declaredBody(req);
    if (declared > this.#max) throw new Status(413, "Content-Length over the limit");
    const body = req.body ?? (declared === 0 ? bytesBody([]) : undefined);
    if (body === undefined) throw new Status(501, "this transport does not stream bodies");
    const check = new DigestCheck(digestsOf(req.headers), body.length < 0);
    const dir = await this.#parent(req, segments, true);
    const t = await this.#target(dir, segments[segments.length - 1]);
    if (t.info !== null && !t.info.isFile) throw new Status(405, "not a file");
    const failed = writePrecondition(req, currentOf(t.info));
    if (failed !== 0) throw new Status(failed);
    const targetDir = t.path.slice(0, t.path.lastIndexOf("/"));
    const file = await AtomicFile.create(
      targetDir,
      this.#durable,
      (t.info?.mode ?? 0o644) & 0o7777,
    );
    try {
      for await (const chunk of body.chunks()) {
        if (file.size + chunk.length > this.#max) throw new BodyError(413, "body over the limit");
        if (check.active) check.update(chunk);
        await file.write(chunk);
      }
      if (body.length >= 0 && file.size !== body.length) {
        throw new BodyError(400, "body shorter than Content-Length");
      }
      const bad = check.verify(body.trailers);
      if (bad !== null) throw new Status(400, bad);
      try {
        await file.commit(t.path, { noReplace: createOnly(req) });
      } catch (e) {
        if (e instanceof Deno.errors.AlreadyExists) throw new Status(412, "created meanwhile");
        throw e;
      }
    } finally {
      await file.abort();
    }
    this.#invalidate(t.path);
    const info = Deno.statSync(t.path);
    const headers: Array<[string, string]> = [
      ["ETag", makeETag(info.size, info.mtime?.getTime() ?? 0, info.ino ?? 0)],
    ];
    if (t.info === null) {
      headers.push(["Location", req.path], ["Content-Type", "text/plain; charset=utf-8"]);
      const msg = new TextEncoder().encode("201 Created\n");
      return this.#site.replies.reply(201, headers, [msg], msg.length);
    }
    return this.#site.replies.reply(204, headers);
  }

  async #delete(req: WriteRequest): Promise<Reply> {
    const segments = this.#segments(req.path);
    if (segments.length === 0) throw new Status(403, "the root");
    this.#check(req, segments, "delete", req.path.endsWith("/"));
    const dir = await this.#parent(req, segments, false);
    const path = dir + "/" + segments[segments.length - 1];
    const info = Deno.lstatSync(path);
    if (info.isSymlink) {
      // What GET cannot see, DELETE cannot touch; a visible link is removed, not its target.
      let real: string | null = null;
      try {
        real = Deno.realPathSync(path);
      } catch { /* dangling */ }
      if (real === null || !servable(this.#site.policy, real)) throw new Status(404);
    } else if (info.isFile) {
      const failed = writePrecondition(req, currentOf(info));
      if (failed !== 0) throw new Status(failed);
    }
    try {
      Deno.removeSync(path);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === "ENOTEMPTY" || code === "EEXIST" || /not empty/i.test(String(e))) {
        throw new Status(409, "directory not empty");
      }
      throw e;
    }
    this.#invalidate(path);
    if (this.#durable) await syncQuiet(dir);
    return this.#site.replies.reply(204, []);
  }

  async #mkcol(req: WriteRequest): Promise<Reply> {
    // A MKCOL body would describe the collection; we understand none (RFC 4918 sec. 9.3).
    if (declaredBody(req) !== 0) throw new Status(415, "MKCOL body");
    const segments = this.#segments(req.path);
    if (segments.length === 0) throw new Status(405);
    this.#check(req, segments, "mkcol", true);
    const dir = await this.#parent(req, segments, false);
    const path = dir + "/" + segments[segments.length - 1];
    try {
      Deno.mkdirSync(path);
    } catch (e) {
      if (e instanceof Deno.errors.AlreadyExists) throw new Status(405, "exists");
      throw e;
    }
    this.#invalidate(path);
    if (this.#durable) await syncQuiet(dir);
    return this.#site.replies.reply(201, [["Location", req.path]]);
  }

  async #moveOrCopy(req: WriteRequest, move: boolean): Promise<Reply> {
    const site = this.#site;
    const from = this.#segments(req.path);
    if (from.length === 0) throw new Status(403, "the root");
    const dest = parseDestination(
      getHeader(req, "destination"),
      getHeader(req, "host"),
      site.policy.dotfiles,
    );
    if (!dest.ok) throw new Status(dest.status, dest.reason);
    const to = dest.segments;
    if (to.length === 0) throw new Status(403, "the root");
    const overwrite = (getHeader(req, "overwrite") ?? "T").trim().toUpperCase();
    if (overwrite !== "T" && overwrite !== "F") throw new Status(400, "Overwrite must be T or F");
    const depth = getHeader(req, "depth")?.trim().toLowerCase() ?? "infinity";
    if (depth !== "infinity" && (move || depth !== "0")) throw new Status(400, "bad Depth");
    // Source: visible like GET; MOVE takes it away, so it needs a delete grant there.
    const srcDir = await this.#parent(req, from, false);
    const src = await this.#target(srcDir, from[from.length - 1]);
    if (src.info === null) throw new Status(404);
    const isDir = src.info.isDirectory;
    if (move) this.#check(req, from, "delete", isDir);
    this.#check(req, to, "put", isDir);
    const failed = writePrecondition(req, src.info.isFile ? currentOf(src.info) : null);
    if (failed !== 0 && src.info.isFile) throw new Status(failed);
    const dstDir = await this.#parent(req, to, false);
    const dst = await this.#target(dstDir, to[to.length - 1]);
    if (dst.path === src.path) throw new Status(403, "source and destination are the same");
    if (isDir && (dst.path + "/").startsWith(src.path + "/")) {
      throw new Status(409, "destination inside the source");
    }
    if (dst.info !== null) {
      if (overwrite === "F") throw new Status(412, "destination exists");
      if (dst.info.isDirectory) {
        // Overwrite: T means DELETE first; we never delete recursively.
        try {
          Deno.removeSync(dst.path);
        } catch {
          throw new Status(409, "destination is a non-empty directory");
        }
        this.#invalidate(dst.path);
      }
    }
    if (move) {
      if (dst.info === null && !isDir) {
        // A link, then the old name removed: atomic no-clobber, so a name created
        // meanwhile is never replaced by a MOVE that found none.
        try {
          Deno.linkSync(src.path, dst.path);
        } catch (e) {
          if (e instanceof Deno.errors.AlreadyExists) throw new Status(412, "created meanwhile");
          Deno.renameSync(src.path, dst.path);
        }
        try {
          Deno.removeSync(src.path);
        } catch { /* renamed above */ }
      } else {
        Deno.renameSync(src.path, dst.path);
      }
      this.#invalidate(src.path);
    } else if (isDir) {
      await this.#copyTree(req, src.path, dst.path, to, depth === "0");
    } else {
      await this.#copyFile(src.path, dst.path, src.info.mode ?? 0o644, dst.info === null);
    }
    this.#invalidate(dst.path);
    if (this.#durable) {
      await syncQuiet(dstDir);
      if (move) await syncQuiet(srcDir);
    }
    if (dst.info === null) return site.replies.reply(201, [["Location", dest.path]]);
    return site.replies.reply(204, []);
  }

  /** Copies one file through a temporary file: the destination is whole or untouched. */
  async #copyFile(src: string, dst: string, mode: number, create: boolean): Promise<void> {
    const file = await AtomicFile.create(
      dst.slice(0, dst.lastIndexOf("/")),
      this.#durable,
      mode & 0o7777,
    );
    try {
      const input = Deno.openSync(src, { read: true });
      try {
        const buf = new Uint8Array(256 * 1024);
        for (;;) {
          const n = input.readSync(buf);
          if (n === null) break;
          await file.write(buf.subarray(0, n));
        }
      } finally {
        input.close();
      }
      try {
        await file.commit(dst, { noReplace: create });
      } catch (e) {
        if (e instanceof Deno.errors.AlreadyExists) throw new Status(412, "created meanwhile");
        throw e;
      }
    } finally {
      await file.abort();
    }
  }

  /**
   * Copies a directory: what a listing shows of it (the entry collector's
   * rule: hidden names, links out of the root and temporary files stay
   * behind), each file atomically. `shallow`: Depth 0, the directory only.
   */
  async #copyTree(
    req: WriteRequest,
    src: string,
    dst: string,
    to: string[],
    shallow: boolean,
  ): Promise<void> {
    Deno.mkdirSync(dst);
    if (shallow) return;
    const policy = this.#site.policy;
    const srcUrl = "/" + (underRoot(this.#site, src) ?? "/").slice(1).split("/").filter(Boolean)
      .map((s) => s + "/").join("");
    const guards = collectGuards(this.#site, srcUrl, src, req.user);
    for (const e of collectEntries(src, policy, { raw: false, detail: true, ...guards })) {
      if (e.lossy) continue;
      const from = e.target ?? src + "/" + e.name;
      const segs = [...to, e.name];
      this.#check(req, segs, "put", e.isDir);
      if (e.isDir) await this.#copyTree(req, from, dst + "/" + e.name, segs, false);
      else {
        const info = Deno.statSync(from);
        if (info.isFile) await this.#copyFile(from, dst + "/" + e.name, info.mode ?? 0o644, true);
      }
    }
  }
}

function currentOf(info: Deno.FileInfo | null): Current | null {
  if (info === null || !info.isFile) return null;
  const mtimeMs = info.mtime?.getTime() ?? 0;
  return { etag: makeETag(info.size, mtimeMs, info.ino ?? 0), mtimeMs };
}

async function syncQuiet(dir: string): Promise<void> {
  try {
    const d = Deno.openSync(dir, { read: true });
    try {
      await d.sync();
    } finally {
      d.close();
    }
  } catch (e) {
    if (errorStatus(e) !== 404) throw e;
  }
}

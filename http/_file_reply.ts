/**
 * A file's reply, from its metadata and either an open file or its bytes:
 * preconditions (RFC 9110 section 13), then Range (section 14), then the
 * whole body. Pure but for the open file it is handed; the caches and the
 * file stage build on it.
 *
 * @module
 */
import type { Reply, RequestHead } from "./types.ts";
import {
  evaluatePreconditions,
  lastModifiedDate,
  makeETag,
  type Preconditions,
} from "./conditional.ts";
import { ifRangeHolds, multipartLayout, parseRange } from "./range.ts";
import { rawClose, rawOpenSame } from "./_rawfs.ts";
import type { Replies } from "./_reply.ts";

// One boundary per process is enough: it only has to be absent from the
// part headers we write, and the file bytes are framed by length anyway.
const BOUNDARY = "ringhttpd-" + crypto.randomUUID().replaceAll("-", "");

/** The file metadata a reply is built from (taken from the open file). */
export interface FileMeta {
  type: string;
  size: number;
  mtimeMs: number;
  etag: string;
  lastModified: string;
  /** Content-Encoding of a precompressed sibling, if one is served. */
  coding?: string;
  /** A precompressed sibling exists: the answer depends on Accept-Encoding. */
  vary: boolean;
  /** Cache-Control of this file (site rules: `cacheControl`), sent on 200/206/304/416. */
  cacheControl?: string;
}

/**
 * The metadata of a file version.
 *
 * @param info the open file's fstat
 * @param type its Content-Type
 * @param coding the Content-Encoding of a precompressed sibling served instead
 * @param vary the answer depends on Accept-Encoding
 * @returns the metadata
 */
export function metaOf(
  info: { size: number; mtimeMs: number; ino: number },
  type: string,
  coding: string | undefined,
  vary: boolean,
): FileMeta {
  const m: FileMeta = {
    type,
    size: info.size,
    mtimeMs: info.mtimeMs,
    etag: makeETag(info.size, info.mtimeMs, info.ino),
    lastModified: lastModifiedDate(info.mtimeMs),
    vary,
  };
  if (coding) m.coding = coding;
  return m;
}

/**
 * size, mtime and inode of a Deno fstat, the way {@linkcode metaOf} takes them.
 *
 * @param info a stat result
 * @returns the three numbers
 */
export function versionOf(info: Deno.FileInfo): { size: number; mtimeMs: number; ino: number } {
  return { size: info.size, mtimeMs: info.mtime?.getTime() ?? 0, ino: info.ino ?? 0 };
}

/**
 * The headers of a 200/206/416 for `m`.
 *
 * @param m the file's metadata
 * @returns a fresh array (the caller may add to it)
 */
export function baseHeaders(m: FileMeta): Array<[string, string]> {
  const h: Array<[string, string]> = [
    ["Content-Type", m.type],
    ["Last-Modified", m.lastModified],
    ["ETag", m.etag],
    ["Accept-Ranges", "bytes"],
  ];
  if (m.coding) h.push(["Content-Encoding", m.coding]);
  if (m.vary) h.push(["Vary", "Accept-Encoding"]);
  if (m.cacheControl !== undefined) h.push(["Cache-Control", m.cacheControl]);
  return h;
}

/** The request headers the file logic reads, picked in one pass. */
export interface Picked extends Preconditions {
  range?: string;
  ifRange?: string;
}

/**
 * Picks the conditional and Range headers (the first of each).
 *
 * @param req the request
 * @returns what it asks for
 */
export function pick(req: RequestHead): Picked {
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

/**
 * Whether any header could change a cached 200 (cheap scan, no allocation).
 *
 * @param h the request's flat header list
 * @returns true if an `if-*` or `range` header is present
 */
export function hasConditional(h: string[]): boolean {
  for (let i = 0; i < h.length; i += 2) {
    const n = h[i];
    const c = n.charCodeAt(0);
    if (c === 105 /* i */ && n.startsWith("if-")) return true;
    if (c === 114 /* r */ && n === "range") return true;
  }
  return false;
}

/**
 * A lazily opened raw descriptor of an open file, checked to be the same
 * inode (so `sendfile(2)` sends the bytes that were stat'ed); closed once.
 */
export class RawFd {
  #fd = -2;
  #path: string;
  #dev: number;
  #ino: number;
  /**
   * @param path the file's path
   * @param dev the device of the open file
   * @param ino the inode of the open file
   */
  constructor(path: string, dev: number, ino: number) {
    this.#path = path;
    this.#dev = dev;
    this.#ino = ino;
  }
  /** The descriptor, opened on first call; -1 when none can be had. */
  readonly get = (): number => {
    if (this.#fd === -2) this.#fd = rawOpenSame(this.#path, this.#dev, this.#ino);
    return this.#fd;
  };
  /** Closes it (if opened). */
  close(): void {
    rawClose(this.#fd);
    this.#fd = -1;
  }
}

/**
 * Preconditions, then Range, then the full body; from an open file (whose
 * release the reply takes over) or from bytes.
 *
 * @param replies the reply builder
 * @param p the request's conditional and Range headers
 * @param m the file's metadata
 * @param file the open file, or null to answer from `bytes`
 * @param bytes the whole file, when `file` is null
 * @param raw a raw descriptor of `file` for sendfile(2)
 * @returns the reply (304, 412, 416, 206 or 200)
 */
export function fileReply(
  replies: Replies,
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
    // RFC 9110 15.4.5: a 304 carries the Cache-Control a 200 would.
    if (m.cacheControl !== undefined) h.push(["Cache-Control", m.cacheControl]);
    return replies.reply(304, h, [], 0, release);
  }
  if (pre === 412) {
    const r = replies.error(412);
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
      return replies.reply(416, h, [], 0, release);
    }
    if (r.kind === "ranges" && r.ranges.length === 1) {
      const [start, end] = r.ranges[0];
      const h = baseHeaders(m);
      h.push(["Content-Range", `bytes ${start}-${end - 1}/${size}`]);
      return replies.reply(206, h, [slice(start, end)], end - start, release);
    }
    if (r.kind === "ranges") {
      const { pieces, length } = multipartLayout(r.ranges, size, m.type, BOUNDARY);
      const h = baseHeaders(m);
      h[0] = ["Content-Type", `multipart/byteranges; boundary=${BOUNDARY}`];
      const body = pieces.map((x) => x instanceof Uint8Array ? x : slice(x[0], x[1]));
      return replies.reply(206, h, body, length, release);
    }
  }
  const body = size === 0 ? new Uint8Array(0) : slice(0, size);
  return replies.reply(200, baseHeaders(m), [body], size, release);
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
export async function readOneVersion(
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

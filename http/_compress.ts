/**
 * On-the-fly compression of text files, the same rules whether it runs in a
 * pool thread (synchronous I/O: the thread has nothing else to do) or inline
 * in an HTTP worker without a pool (`--pool 0`: asynchronous I/O and
 * node:zlib's thread-pool API, so connections keep being served). Both read
 * the file as one version, checked against the version the caller answers
 * about, and compress with the same parameters.
 *
 * @module
 */
import {
  brotliCompress,
  brotliCompressSync,
  constants as zlib,
  gzip,
  gzipSync,
  type ZlibOptions,
} from "node:zlib";
import type { BrotliOptions } from "node:zlib";
import { acceptsCoding } from "./encoding.ts";

/** The codings made on the fly. */
export type Coding = "br" | "gzip";

/** Smallest and largest file compressed on the fly. */
export const COMPRESS_MIN = 1024, COMPRESS_MAX = 8 * 1024 * 1024;
/** Types worth compressing: text, and the text formats that are not `text/`. */
const TEXTY =
  /^(?:text\/|application\/(?:json|javascript|xml|[a-z.+-]*\+(?:json|xml))|image\/svg\+xml)/;

/**
 * Whether a file of this type and size is worth compressing on the fly.
 *
 * @param type its Content-Type
 * @param size its length in bytes
 * @returns true for text of 1 KiB to 8 MiB
 * @example
 * ```ts
 * import { compressible } from "./_compress.ts";
 * console.assert(compressible("text/css", 4096) && !compressible("image/png", 4096));
 * ```
 */
export function compressible(type: string, size: number): boolean {
  return size >= COMPRESS_MIN && size <= COMPRESS_MAX && TEXTY.test(type);
}

/**
 * The coding to compress with, brotli first.
 *
 * @param acceptEncoding the request's Accept-Encoding (undefined: none)
 * @returns `br`, `gzip`, or null when the client takes neither
 * @example
 * ```ts
 * import { chooseCoding } from "./_compress.ts";
 * console.assert(chooseCoding("gzip, deflate") === "gzip");
 * ```
 */
export function chooseCoding(acceptEncoding: string | undefined): Coding | null {
  if (acceptEncoding === undefined) return null;
  return acceptsCoding(acceptEncoding, "br")
    ? "br"
    : acceptsCoding(acceptEncoding, "gzip")
    ? "gzip"
    : null;
}

/** One version of a file: what a compressed variant is checked against. */
export interface FileVersion {
  /** Size in bytes. */
  size: number;
  /** Modification time, ms since the epoch. */
  mtimeMs: number;
  /** Inode number (0 where the platform has none). */
  ino: number;
}

/** A compressed file: the version it was made from, and the bytes. */
export interface Compressed {
  version: FileVersion;
  body: Uint8Array;
}

/** The file is not (or no longer) the version asked for: nothing to answer with. */
export class FileChanged extends Error {
  constructor() {
    super("the file changed");
    this.name = "FileChanged";
  }
}

function versionOf(info: Deno.FileInfo): FileVersion {
  return { size: info.size, mtimeMs: info.mtime?.getTime() ?? 0, ino: info.ino ?? 0 };
}

function same(a: FileVersion, b: FileVersion): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino;
}

// Quality 5: most of brotli's gain at a fraction of 11's time.
const brotliOptions = (size: number): BrotliOptions => ({
  params: { [zlib.BROTLI_PARAM_QUALITY]: 5, [zlib.BROTLI_PARAM_SIZE_HINT]: size },
});
const gzipOptions: ZlibOptions = { level: 6 };

const view = (b: Uint8Array) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

/**
 * Compresses the file `real` with `coding`, synchronously (a pool thread).
 *
 * @param real the file's real path
 * @param coding gzip or brotli
 * @param want the version the caller answers about
 * @returns the version compressed (always `want`) and the bytes
 * @throws {FileChanged} when the file is another version, or changed while read
 * @throws filesystem errors as Deno raises them
 */
export function compressFileSync(real: string, coding: Coding, want: FileVersion): Compressed {
  const file = Deno.openSync(real, { read: true });
  try {
    const before = versionOf(file.statSync());
    // Another version (maybe a much larger one): its answer would be thrown
    // away, so do not read it at all.
    if (!same(before, want)) throw new FileChanged();
    const bytes = new Uint8Array(before.size);
    let at = 0;
    while (at < bytes.length) {
      const n = file.readSync(bytes.subarray(at));
      if (n === null || n === 0) break;
      at += n;
    }
    // Changed while read: never hand out bytes of two versions.
    if (at !== before.size || !same(versionOf(file.statSync()), before)) throw new FileChanged();
    const out = coding === "br"
      ? brotliCompressSync(bytes, brotliOptions(bytes.length))
      : gzipSync(bytes, gzipOptions);
    return { version: before, body: view(out) };
  } finally {
    file.close();
  }
}

/**
 * Compresses the file `real` with `coding`, asynchronously (an HTTP worker
 * without a pool): the same checks and parameters as
 * {@linkcode compressFileSync}.
 *
 * @param real the file's real path
 * @param coding gzip or brotli
 * @param want the version the caller answers about
 * @returns the version compressed (always `want`) and the bytes
 * @throws {FileChanged} when the file is another version, or changed while read
 * @throws filesystem and zlib errors
 */
export async function compressFile(
  real: string,
  coding: Coding,
  want: FileVersion,
): Promise<Compressed> {
  const file = await Deno.open(real, { read: true });
  try {
    const before = versionOf(await file.stat());
    if (!same(before, want)) throw new FileChanged();
    const bytes = new Uint8Array(before.size);
    let at = 0;
    while (at < bytes.length) {
      const n = await file.read(bytes.subarray(at));
      if (n === null || n === 0) break;
      at += n;
    }
    if (at !== before.size || !same(versionOf(await file.stat()), before)) {
      throw new FileChanged();
    }
    const out = await new Promise<Uint8Array>((resolve, reject) => {
      const done = (err: Error | null, res: Uint8Array) => err ? reject(err) : resolve(res);
      if (coding === "br") brotliCompress(bytes, brotliOptions(bytes.length), done);
      else gzip(bytes, gzipOptions, done);
    });
    return { version: before, body: view(out) };
  } finally {
    file.close();
  }
}

/**
 * The atomic writer: a new file's bytes go to a temporary file in the target's
 * own directory (a rename is atomic only within one file system), are flushed
 * (`fsync`), and the temporary file is renamed over the target, so a reader
 * opens the old file or the new one, never a mix, and a crash leaves the old
 * file whole. With `durable`, the directory is flushed too after the rename,
 * so the new name survives a power cut.
 *
 * Temporary names start with {@linkcode TEMP_PREFIX}: path resolution
 * refuses such a segment (404, dotfiles shown or not) and the entry collector
 * leaves such names out, so a half-written upload is never listed, served,
 * archived, or reachable as a PUT/MOVE/COPY target. Any failure (a write
 * error, a full disk, the client going away) removes the temporary file;
 * {@linkcode sweepTemps} removes those a crash left behind, at start.
 *
 * @module
 */

/** The start of every temporary upload name (reserved: never listed, never served). */
export const TEMP_PREFIX = ".ringhttpd-part-";

/**
 * Whether a file name is one of our temporary upload names.
 *
 * @param name a single path segment
 * @returns true for a reserved temporary name
 * @example
 * ```ts
 * import { isTempName } from "./atomic.ts";
 * console.assert(isTempName(".ringhttpd-part-1a2b"));
 * console.assert(!isTempName("a.txt"));
 * ```
 */
export function isTempName(name: string): boolean {
  return name.startsWith(TEMP_PREFIX);
}

/** A disk-full or over-quota error: the client gets 507 (RFC 4918 sec. 11.5). */
export class InsufficientStorage extends Error {
  /**
   * @param cause the file system's error
   */
  constructor(cause: unknown) {
    super(`no space left: ${(cause as Error)?.message ?? cause}`, { cause });
    this.name = "InsufficientStorage";
  }
}

/**
 * Whether a file system error says the disk or the quota is full.
 *
 * @param e a thrown value
 * @returns true for ENOSPC or EDQUOT
 */
export function isNoSpace(e: unknown): boolean {
  if (e instanceof InsufficientStorage) return true;
  const code = (e as { code?: unknown } | null)?.code;
  if (code === "ENOSPC" || code === "EDQUOT") return true;
  const msg = (e as Error | null)?.message ?? "";
  return /os error (28|122)\b/.test(msg);
}

function randomHex(): string {
  const b = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** How {@linkcode AtomicFile.commit} places the file. */
export interface CommitOptions {
  /**
   * Fail with `Deno.errors.AlreadyExists` instead of replacing an existing
   * target (a hard link, then the temporary name removed: atomic, so two
   * creators cannot both win).
   * @default false
   */
  noReplace?: boolean;
}

/**
 * One file being written. Create it with {@linkcode AtomicFile.create};
 * then `write`, then `commit` or `abort` (both idempotent; `abort` after
 * `commit` does nothing).
 *
 * @example Replace a file atomically
 * ```ts
 * import { AtomicFile } from "./atomic.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const f = await AtomicFile.create(dir);
 * try {
 *   await f.write(new TextEncoder().encode("new bytes"));
 *   await f.commit(`${dir}/a.txt`);
 * } finally {
 *   await f.abort(); // no-op after commit; removes the temporary file otherwise
 * }
 * assert.equal(await Deno.readTextFile(`${dir}/a.txt`), "new bytes");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class AtomicFile {
  /** The temporary file's path. */
  readonly tempPath: string;
  readonly #dir: string;
  readonly #durable: boolean;
  #file: Deno.FsFile | null;
  #settled = false;
  #size = 0;

  private constructor(dir: string, tempPath: string, file: Deno.FsFile, durable: boolean) {
    this.#dir = dir;
    this.tempPath = tempPath;
    this.#file = file;
    this.#durable = durable;
  }

  /**
   * Creates a temporary file in `dir` (which must exist).
   *
   * @param dir the target's directory
   * @param durable also flush the directory after the rename
   * @param mode permission bits of the new file (before the umask)
   * @returns the open temporary file
   * @throws {InsufficientStorage} on ENOSPC/EDQUOT; other file system errors as they are
   */
  // deno-lint-ignore require-await -- synchronous file calls; async so failures are rejections
  static async create(dir: string, durable = false, mode = 0o644): Promise<AtomicFile> {
    for (let attempt = 0;; attempt++) {
      const path = `${dir}/${TEMP_PREFIX}${randomHex()}`;
      try {
        const file = Deno.openSync(path, { write: true, createNew: true, mode });
        return new AtomicFile(dir, path, file, durable);
      } catch (e) {
        if (e instanceof Deno.errors.AlreadyExists && attempt < 4) continue;
        if (isNoSpace(e)) throw new InsufficientStorage(e);
        throw e;
      }
    }
  }

  /** Bytes written so far. */
  get size(): number {
    return this.#size;
  }

  /**
   * Appends `data` (all of it).
   *
   * @param data the bytes
   * @throws {InsufficientStorage} on ENOSPC/EDQUOT
   */
  // deno-lint-ignore require-await -- async so that a failure is a rejection for every caller
  async write(data: Uint8Array): Promise<void> {
    const f = this.#file;
    if (f === null || this.#settled) throw new Error("write after commit or abort");
    try {
      let n = 0;
      // Synchronous: a page-cache write of a 256 KiB buffer takes ~0.1 ms, and the async op
      // would copy the bytes to a thread-pool thread and grow its malloc arena.
      while (n < data.length) n += f.writeSync(data.subarray(n));
      this.#size += data.length;
    } catch (e) {
      if (isNoSpace(e)) throw new InsufficientStorage(e);
      throw e;
    }
  }

  /**
   * Flushes the file, closes it and renames it to `target` (same directory).
   *
   * @param target the final path
   * @param options `noReplace`: refuse to replace an existing target
   * @throws {InsufficientStorage} when the flush finds the disk full;
   *   `Deno.errors.AlreadyExists` with `noReplace`; the temporary file is
   *   removed on any failure
   */
  async commit(target: string, options: CommitOptions = {}): Promise<void> {
    const f = this.#file;
    if (f === null || this.#settled) throw new Error("commit after commit or abort");
    try {
      // Delayed allocation can report a full disk only here.
      // Off this thread: a flush can take milliseconds on a real disk.
      await f.syncData();
      f.close();
      this.#file = null;
      if (options.noReplace) {
        Deno.linkSync(this.tempPath, target);
        Deno.removeSync(this.tempPath);
      } else {
        Deno.renameSync(this.tempPath, target);
      }
      this.#settled = true;
    } catch (e) {
      await this.abort();
      if (isNoSpace(e)) throw new InsufficientStorage(e);
      throw e;
    }
    if (this.#durable) await syncDir(this.#dir);
  }

  /** Closes and removes the temporary file, unless committed. Never throws. */
  // deno-lint-ignore require-await -- synchronous file calls; async so failures are rejections
  async abort(): Promise<void> {
    if (this.#settled) return;
    this.#settled = true;
    try {
      this.#file?.close();
    } catch { /* already closed */ }
    this.#file = null;
    try {
      Deno.removeSync(this.tempPath);
    } catch { /* gone already */ }
  }
}

/**
 * Flushes a directory's entries (a rename, a new name) to disk.
 *
 * @param dir the directory
 */
export async function syncDir(dir: string): Promise<void> {
  const d = Deno.openSync(dir, { read: true });
  try {
    await d.sync();
  } finally {
    d.close();
  }
}

/**
 * Removes temporary upload files under `dir` (what a crash left), without
 * following symlinks; unreadable directories are skipped.
 *
 * @param dir a real directory path
 * @param maxDepth how deep to look (0: `dir` only)
 * @returns how many were removed
 * @example
 * ```ts
 * import { sweepTemps, TEMP_PREFIX } from "./atomic.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/${TEMP_PREFIX}x`, "partial");
 * assert.equal(sweepTemps(dir), 1);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function sweepTemps(dir: string, maxDepth = 64): number {
  let removed = 0;
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return 0;
  }
  for (const e of entries) {
    const path = `${dir}/${e.name}`;
    if (isTempName(e.name) && e.isFile) {
      try {
        Deno.removeSync(path);
        removed++;
      } catch { /* raced, or not ours to remove */ }
    } else if (e.isDirectory && maxDepth > 0) {
      removed += sweepTemps(path, maxDepth - 1);
    }
  }
  return removed;
}

/**
 * Folder download: a directory streamed as a tar archive (`?download=tar`),
 * written with the npm `tar-stream` package, file by file, never holding more
 * than a few chunks in memory.
 *
 * The archive holds exactly what GET would serve under the directory URL,
 * found by the entry collector (`_collect.ts`), the same per-entry rule as
 * the listing's:
 * - names starting with `.` are left out unless dotfiles are enabled (also
 *   when a symlink points at one);
 * - a symlink is archived as what it points to (a file or a directory), and
 *   only when its target is inside the root (or `followSymlinks` is set);
 *   dangling and looping links are left out;
 * - a directory is never entered from inside itself (device and inode are
 *   checked against the directories being walked), so a symlink loop or a
 *   bind-mount cycle is never followed; a directory reached by two paths is
 *   archived under both, like its files would be served under both;
 * - only regular files and directories: FIFOs, sockets and devices are left out;
 * - names that are not valid UTF-8 are left out: Deno hands them out with
 *   U+FFFD in place of the bad bytes, and that name opens nothing;
 * - what the server cannot read is never dropped silently. The rule, the
 *   same for both views of a folder: a folder that cannot be read answers
 *   403 to its listing and to its download alike
 *   ({@linkcode archivePreflight}, before any byte is sent); inside a
 *   readable folder, the listing shows every entry it can `lstat` (a GET of
 *   an unreadable one answers 403), and the archive goes on without what it
 *   cannot read (a subfolder it cannot list, a file it cannot open) and names
 *   each such path in a last member, `<dir>/_unreadable.txt`
 *   ({@linkcode leftOutNote}), so the archive and the listing always account
 *   for the same entries.
 *
 * Members are named `<dir>/<path>` (directories end in `/`), with mode 0755
 * for directories and executables, else 0644, owner 0:0 and the file's
 * mtime: no owner names or permission bits of the server leak. Entries are in
 * code-unit order of their names, depth first, so the bytes are repeatable.
 *
 * Size bound: {@linkcode archiveSize} computes the exact length the archive
 * will have (tar-stream's ustar/pax layout), stopping as soon as a limit is
 * passed, so the handler can refuse before sending anything. If the tree grows
 * between that count and the stream, {@linkcode tarStream} throws once the
 * bound is passed; the engine then closes the connection without the last
 * chunk, and the archive also lacks tar's end blocks, so neither an HTTP/1.1
 * client nor `tar` takes it for complete.
 *
 * @module
 */
import { pack as tarPack } from "tar-stream";
import { addMember, entry, modeOf, pad512, tarHeaderBytes } from "./_tar.ts";
import type { ServePolicy } from "./resolve.ts";
import { collectEntriesAsync, type CollectOptions, type Entry } from "./_collect.ts";

export { tarHeaderBytes } from "./_tar.ts";

/**
 * Which entries may be archived: the handler's own policy ({@linkcode
 * servable}), and under path rules what each folder may hold for the
 * requester (`guards`, by the folder's path below the top one, `""` or
 * ending in `/`, and its real path).
 */
export type ArchivePolicy = ServePolicy & {
  guards?: (rel: string, dir: string) => Pick<CollectOptions, "filter" | "linkOk">;
};

/** One member of the archive, as found by {@linkcode walkTree}. */
export interface ArchiveItem {
  /** A directory (no body) or a regular file. */
  kind: "dir" | "file";
  /** The member name: `<base>/<path>`, directories ending in `/`. */
  name: string;
  /** Where to read it (a real path for symlinked entries). */
  path: string;
  /** Bytes (0 for directories); the open file's size is what is sent. */
  size: number;
  /** Modification time, ms since the epoch. */
  mtimeMs: number;
  /** 0o755 or 0o644. */
  mode: number;
}

/** Small tar pieces (headers, padding) are joined into blocks of this size. */
const BLOCK = 65536;
const utf8 = new TextEncoder();

/**
 * What a walk could not read, as member names below the top directory
 * (directories end in `/`), in the order met. Filled by {@linkcode walkTree}
 * and the archive writer.
 */
export type LeftOut = string[];

/**
 * Walks `dir` depth first in name order and yields every member the policy
 * allows (the directory itself first). Each directory is read through the
 * entry collector's asynchronous front-end ({@linkcode collectEntriesAsync}:
 * the same per-entry rule as the listing). What exists but cannot be read (a
 * directory that cannot be listed, an entry that cannot be stat'ed) is added
 * to `leftOut` instead.
 *
 * @param dir The real path of the directory to archive (already checked).
 * @param base The top-level member name, e.g. `photos`.
 * @param policy Dotfile and symlink policy.
 * @param leftOut Where to note what could not be read.
 * @returns The members, in archive order.
 * @example List what a folder download would contain
 * ```ts ignore
 * import { walkTree } from "./archive.ts";
 * const policy = { root: "/srv", dotfiles: false, followSymlinks: false };
 * for await (const item of walkTree("/srv/photos", "photos", policy)) console.log(item.name);
 * ```
 */
export async function* walkTree(
  dir: string,
  base: string,
  policy: ArchivePolicy,
  leftOut: LeftOut = [],
): AsyncGenerator<ArchiveItem> {
  yield* walkDir(dir, base, "", policy, new Set<string>(), leftOut);
}

async function* walkDir(
  dir: string,
  name: string,
  /** The path below the top directory, `""` or ending in `/`. */
  rel: string,
  policy: ArchivePolicy,
  /** The directories being walked (this one's ancestors). */
  visited: Set<string>,
  leftOut: LeftOut,
): AsyncGenerator<ArchiveItem> {
  // Vanished: nothing to say. Unreadable: said in the archive's last member.
  const unreadable = (e: unknown) => {
    if (!(e instanceof Deno.errors.NotFound)) leftOut.push(rel);
  };
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dir);
  } catch (e) {
    return unreadable(e);
  }
  // Device + inode, not the path: also catches bind-mount cycles.
  const key = info.ino === null ? dir : `${info.dev}:${info.ino}`;
  if (visited.has(key)) return; // an ancestor: a loop
  visited.add(key);
  try {
    let entries: Entry[];
    try {
      entries = await collectEntriesAsync(dir, policy, {
        ...policy.guards?.(rel, dir),
        detail: true,
        onUnreadable: (n) => leftOut.push(rel + n),
      });
    } catch (e) {
      return unreadable(e);
    }
    yield {
      kind: "dir",
      name: name + "/",
      path: dir,
      size: 0,
      mtimeMs: info.mtime?.getTime() ?? 0,
      mode: 0o755,
    };
    // Code-unit order: repeatable bytes, whatever the locale.
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const prefix = dir.endsWith("/") ? dir : dir + "/";
    for (const e of entries) {
      // Non-UTF-8 names: their lossy spelling names no file. FIFOs, sockets,
      // devices: not files a download can hold.
      if (e.lossy || e.special) continue;
      const path = e.target ?? prefix + e.name;
      const member = name + "/" + e.name;
      if (e.isDir) {
        yield* walkDir(path, member, rel + e.name + "/", policy, visited, leftOut);
        continue;
      }
      yield {
        kind: "file",
        name: member,
        path,
        size: e.size,
        mtimeMs: e.mtimeMs,
        mode: modeOf(e.mode),
      };
    }
  } finally {
    visited.delete(key);
  }
}

/**
 * The length of the archive of `dir`, or the first running total past
 * `limit` (the count stops there, so checking a bound costs at most
 * `limit / 512` entries). Exact, unless a file that can be listed cannot be
 * opened when the archive is written: it is then left out and named in the
 * note (see {@linkcode leftOutNote}), which the bound does not count.
 *
 * @param dir The real path of the directory.
 * @param base The top-level member name.
 * @param policy Dotfile and symlink policy.
 * @param limit Stop counting once the total passes this.
 * @returns The archive length in bytes (> `limit` means "too large").
 * @example
 * ```ts ignore
 * import { archiveSize } from "./archive.ts";
 * const policy = { root: "/srv", dotfiles: false, followSymlinks: false };
 * const tooBig = await archiveSize("/srv/photos", "photos", policy, 1 << 30) > 1 << 30;
 * ```
 */
export async function archiveSize(
  dir: string,
  base: string,
  policy: ArchivePolicy,
  limit = Infinity,
): Promise<number> {
  let total = 1024; // two zero blocks end the archive
  const leftOut: LeftOut = [];
  const taken = new Set<string>();
  for await (const item of walkTree(dir, base, policy, leftOut)) {
    total += tarHeaderBytes(item.name) + pad512(item.size);
    if (total > limit) return total;
    taken.add(item.name.slice(base.length + 1).split("/")[0]);
  }
  if (leftOut.length > 0) {
    const note = leftOutNote(base, leftOut, taken);
    total += tarHeaderBytes(note.name) + pad512(note.body.length);
  }
  return total;
}

/** The note's name below the top directory (underscores are added while a real entry has it). */
export const NOTE_NAME = "_unreadable.txt";

/**
 * The archive's last member when something was left out because the server
 * could not read it: `<base>/_unreadable.txt` (or with more leading `_` when
 * the folder holds that name), one path below the folder per line,
 * directories ending in `/`.
 *
 * @param base The top-level member name.
 * @param leftOut What was left out.
 * @param taken Top-level names in the archive.
 * @returns The member's name and body.
 * @example
 * ```ts
 * import { leftOutNote } from "./archive.ts";
 * leftOutNote("docs", ["locked/"], new Set()).name; // "docs/_unreadable.txt"
 * ```
 */
export function leftOutNote(
  base: string,
  leftOut: readonly string[],
  taken: ReadonlySet<string>,
): { name: string; body: Uint8Array } {
  let name = NOTE_NAME;
  while (taken.has(name)) name = "_" + name;
  // deno-lint-ignore no-control-regex
  const line = (n: string) => /[\x00-\x1f\x7f]/.test(n) ? JSON.stringify(n) : n;
  const text = `The server could not read these, so this archive of ${base}/ leaves them out:\n` +
    leftOut.map((n) => line(n === "" ? "./" : n) + "\n").join("");
  return { name: `${base}/${name}`, body: utf8.encode(text) };
}

/**
 * What the handler checks before it answers a folder download with 200:
 * the folder itself can be read (else the error, PermissionDenied -> 403,
 * the status its listing gets: one rule for both views), and with a bound,
 * the archive's size ({@linkcode archiveSize}).
 *
 * @param dir The real path of the directory.
 * @param base The top-level member name.
 * @param policy Dotfile and symlink policy.
 * @param limit The largest archive allowed.
 * @returns The archive's size (> `limit`: too large), or 0 when unbounded.
 * @throws What reading the directory throws (Deno.errors.PermissionDenied).
 * @example
 * ```ts ignore
 * import { archivePreflight } from "./archive.ts";
 * const policy = { root: "/srv", dotfiles: false, followSymlinks: false };
 * const size = await archivePreflight("/srv/photos", "photos", policy, 1 << 30);
 * ```
 */
export async function archivePreflight(
  dir: string,
  base: string,
  policy: ArchivePolicy,
  limit = Infinity,
): Promise<number> {
  const it = Deno.readDir(dir)[Symbol.asyncIterator]();
  await it.next();
  await it.return?.();
  return limit === Infinity ? 0 : await archiveSize(dir, base, policy, limit);
}

/**
 * Streams the tar archive of `dir`: members are read one file at a time and
 * pulled by the consumer (tar-stream's buffers stay at their 16 KiB high-water
 * marks), small pieces joined into blocks of up to 64 KiB. A yielded block is
 * reused once the next one is asked for. Stopping the iteration closes the
 * open file.
 *
 * @param dir The real path of the directory.
 * @param base The top-level member name.
 * @param policy Dotfile and symlink policy.
 * @param maxBytes Throw once more than this many bytes were produced.
 * @returns The archive bytes.
 * @throws {RangeError} Past `maxBytes`; `Error` when a file shrinks while read.
 * @example Write a folder to a tar file
 * ```ts ignore
 * import { tarStream } from "./archive.ts";
 * const policy = { root: "/srv", dotfiles: false, followSymlinks: false };
 * using out = await Deno.open("photos.tar", { write: true, create: true });
 * for await (const block of tarStream("/srv/photos", "photos", policy)) await out.write(block);
 * ```
 */
export async function* tarStream(
  dir: string,
  base: string,
  policy: ArchivePolicy,
  maxBytes = Infinity,
): AsyncGenerator<Uint8Array> {
  const p = tarPack();
  const leftOut: LeftOut = [];
  /** Top-level names taken (the note must not replace one). */
  const taken = new Set<string>();
  /** Bytes of the note, which the bound does not count. */
  let noteBytes = 0;
  const producer = (async () => {
    try {
      for await (const item of walkTree(dir, base, policy, leftOut)) {
        if (p.destroying) return;
        taken.add(item.name.slice(base.length + 1).split("/")[0]);
        await addMember(p, item, leftOut, base);
      }
      if (leftOut.length > 0 && !p.destroying) {
        const note = leftOutNote(base, leftOut, taken);
        noteBytes = tarHeaderBytes(note.name) + pad512(note.body.length);
        const header = { name: note.name, mode: 0o644, mtime: new Date(), uid: 0, gid: 0 };
        await entry(p, { ...header, type: "file", size: note.body.length }, note.body).done;
      }
      p.finalize();
    } catch (err) {
      p.destroy(err as Error);
    }
  })();
  let total = 0;
  const block = new Uint8Array(BLOCK);
  let n = 0;
  try {
    for await (const chunk of p as AsyncIterable<Uint8Array>) {
      total += chunk.length;
      if (total > maxBytes + noteBytes) {
        throw new RangeError(`the archive of ${base} grew past ${maxBytes} bytes`);
      }
      if (n > 0 && n + chunk.length > BLOCK) {
        yield block.subarray(0, n);
        n = 0;
      }
      if (chunk.length >= BLOCK) {
        yield chunk;
        continue;
      }
      block.set(chunk, n);
      n += chunk.length;
    }
    if (n > 0) yield block.subarray(0, n);
  } finally {
    p.destroy(); // nothing when it ended; else stops the producer
    await producer; // and its open file is closed
  }
}

/**
 * A `Content-Disposition: attachment` value for `filename` (RFC 6266): a
 * quoted ASCII fallback (other characters, `"`, `\` and `%` become `_`), plus
 * `filename*=UTF-8''...` (RFC 8187) when the name is not plain ASCII.
 *
 * @param filename The suggested file name.
 * @returns The header value.
 * @example
 * ```ts
 * import { contentDisposition } from "./archive.ts";
 * contentDisposition("photos.tar"); // 'attachment; filename="photos.tar"'
 * contentDisposition("\u00e9t\u00e9.tar"); // `attachment; filename="_t_.tar"; filename*=UTF-8''%C3%A9t%C3%A9.tar`
 * ```
 */
export function contentDisposition(filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\%]/gu, "_");
  if (ascii === filename) return `attachment; filename="${filename}"`;
  // attr-char (RFC 8187) excludes ' ( ) * that encodeURIComponent keeps.
  const ext = encodeURIComponent(filename.toWellFormed()).replace(
    /['()*]/g,
    (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase(),
  );
  return `attachment; filename="${ascii}"; filename*=UTF-8''${ext}`;
}

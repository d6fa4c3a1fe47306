/**
 * Folder download: a directory as a zip (`?download=zip`, STORE), a tar
 * (`?download=tar`) or a gzipped tar (`?download=tar.gz`), streamed file by
 * file, never holding more than one block in memory.
 *
 * Three steps. {@linkcode collectMembers} walks the folder (or a selection of
 * its names) into the list of members; `_archive_layout.ts` turns that list
 * into the exact byte layout of the archive (its length, ETag, and where each
 * header and each file's bytes go); {@linkcode archiveBytes} produces any
 * byte range of it, opening only the files the range touches.
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
 * A file that changes between the walk and the moment it is sent (its size
 * or mtime differs from the layout's) makes {@linkcode archiveBytes} throw
 * {@linkcode ArchiveChanged}: the engine then closes the connection before
 * the promised length, without the archive's final records, so no client
 * takes a corrupt archive for a complete one.
 *
 * @module
 */
import { crc32 } from "node:zlib";
import type { ServePolicy } from "./resolve.ts";
import { collectEntriesAsync, type CollectOptions, type Entry, newestMtime } from "./_collect.ts";
import { type ArchiveLayout, type Member, segmentAt } from "./_archive_layout.ts";

/**
 * Which entries may be archived: the handler's own policy ({@linkcode
 * servable}), and under path rules what each folder may hold for the
 * requester (`guards`, by the folder's path below the top one, `""` or
 * ending in `/`, and its real path): the collector's per-requester filter,
 * so the rules that shape a listing shape every archive format.
 */
export type ArchivePolicy = ServePolicy & {
  /** The collector's per-requester options for one folder (path rules: `filter`, `linkOk`). */
  guards?: (rel: string, dir: string) => Omit<CollectOptions, "detail" | "onUnreadable" | "max">;
};

/** One member of the archive, as found by {@linkcode walkTree}. */
export type ArchiveItem = Member;

/**
 * What a walk could not read, as member names below the top directory
 * (directories end in `/`), in the order met.
 */
export type LeftOut = string[];

/** 0o755 for executables (any x bit), else 0o644: no other permission bits leak. */
export function modeOf(mode: number | null | undefined): number {
  return ((mode ?? 0) & 0o111) !== 0 ? 0o755 : 0o644;
}

/** Whether a file the collector listed can be opened (only tried when "other" may not read it). */
function readable(path: string, mode: number | undefined): boolean {
  if (mode !== undefined && (mode & 0o004) !== 0) return true;
  try {
    Deno.openSync(path, { read: true }).close();
    return true;
  } catch (e) {
    return e instanceof Deno.errors.NotFound; // gone: the stream will say so
  }
}

/**
 * Walks `dir` depth first in name order and yields every member the policy
 * allows (the directory itself first). Each directory is read through the
 * entry collector's asynchronous front-end ({@linkcode collectEntriesAsync}:
 * the same per-entry rule as the listing). What exists but cannot be read (a
 * directory that cannot be listed, an entry that cannot be stat'ed, a file
 * that cannot be opened) is added to `leftOut` instead.
 *
 * @param dir The real path of the directory to archive (already checked).
 * @param base The top-level member name, e.g. `photos`.
 * @param policy Dotfile and symlink policy.
 * @param leftOut Where to note what could not be read.
 * @param only Top-level names to take (a selection); all when undefined.
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
  only?: ReadonlySet<string>,
): AsyncGenerator<ArchiveItem> {
  const out: Member[] = [];
  await walkDir(
    out,
    { bytes: 0, limit: Infinity },
    dir,
    base,
    "",
    policy,
    new Set<string>(),
    leftOut,
    only,
  );
  yield* out;
}

/** The data bytes a walk pushed so far, and where it stops. */
interface Budget {
  bytes: number;
  limit: number;
}

/**
 * Pushes the members under `dir` to `out`, one array for the whole walk (an
 * async generator per level cost ~1/3 of the walk's time on 70,000 files).
 * Stops once the data pushed passes `limit`.
 */
async function walkDir(
  out: Member[],
  budget: Budget,
  dir: string,
  name: string,
  /** The path below the top directory, `""` or ending in `/`. */
  rel: string,
  policy: ArchivePolicy,
  /** The directories being walked (this one's ancestors). */
  visited: Set<string>,
  leftOut: LeftOut,
  only: ReadonlySet<string> | undefined,
): Promise<void> {
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
        onUnreadable: (n) => {
          if (only === undefined || only.has(n)) leftOut.push(rel + n);
        },
      });
    } catch (e) {
      return unreadable(e);
    }
    out.push({
      kind: "dir",
      name: name + "/",
      path: dir,
      size: 0,
      // Under path rules not the folder's own mtime (a hidden entry's
      // creation moves it): the newest of what this requester sees.
      mtimeMs: policy.guards === undefined ? info.mtime?.getTime() ?? 0 : newestMtime(0, entries),
      mode: 0o755,
    });
    // Code-unit order: repeatable bytes, whatever the locale.
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const prefix = dir.endsWith("/") ? dir : dir + "/";
    for (const e of entries) {
      if (only !== undefined && !only.has(e.name)) continue;
      // Non-UTF-8 names: their lossy spelling names no file. FIFOs, sockets,
      // devices: not files a download can hold.
      if (e.lossy || e.special) continue;
      const path = e.target ?? prefix + e.name;
      const member = name + "/" + e.name;
      if (e.isDir) {
        if (budget.bytes > budget.limit) return;
        await walkDir(
          out,
          budget,
          path,
          member,
          rel + e.name + "/",
          policy,
          visited,
          leftOut,
          undefined,
        );
        continue;
      }
      if (!readable(path, e.mode)) {
        leftOut.push(rel + e.name);
        continue;
      }
      out.push({
        kind: "file",
        name: member,
        path,
        size: e.size,
        mtimeMs: e.mtimeMs,
        mode: modeOf(e.mode),
      });
      budget.bytes += e.size;
      if (budget.bytes > budget.limit) return;
    }
  } finally {
    visited.delete(key);
  }
}

/** What {@linkcode collectMembers} found. */
export interface Collected {
  /** The members in archive order, the left-out note last if any. */
  members: Member[];
  /** Bytes of file data (a lower bound of the archive's length). */
  dataBytes: number;
  /** The walk stopped early: the data alone passed the limit. */
  tooLarge: boolean;
}

/**
 * Walks `dir` into the members of its archive, the left-out note
 * ({@linkcode leftOutNote}) last when something could not be read. Stops
 * once the file data alone passes `limit` (`tooLarge`), so checking a bound
 * costs at most what the bound lets through.
 *
 * @param dir The real path of the directory.
 * @param base The top-level member name.
 * @param policy Dotfile and symlink policy.
 * @param limit Stop once the data passes this.
 * @param only Top-level names to take (a selection).
 * @returns The members.
 * @example
 * ```ts ignore
 * import { collectMembers } from "./archive.ts";
 * const policy = { root: "/srv", dotfiles: false, followSymlinks: false };
 * const { members } = await collectMembers("/srv/photos", "photos", policy);
 * ```
 */
export async function collectMembers(
  dir: string,
  base: string,
  policy: ArchivePolicy,
  limit = Infinity,
  only?: ReadonlySet<string>,
): Promise<Collected> {
  const members: Member[] = [];
  const leftOut: LeftOut = [];
  const budget = { bytes: 0, limit };
  await walkDir(members, budget, dir, base, "", policy, new Set<string>(), leftOut, only);
  if (budget.bytes > limit) return { members, dataBytes: budget.bytes, tooLarge: true };
  let dataBytes = budget.bytes;
  if (leftOut.length > 0 && members.length > 0) {
    let newest = 0;
    const taken = new Set<string>();
    for (const item of members) {
      if (item.mtimeMs > newest) newest = item.mtimeMs;
      const rest = item.name.slice(base.length + 1);
      const slash = rest.indexOf("/");
      taken.add(slash < 0 ? rest : rest.slice(0, slash));
    }
    const note = leftOutNote(base, leftOut, taken);
    // The note's mtime is the newest member's: the same bytes for the same tree.
    members.push({
      kind: "file",
      name: note.name,
      path: "",
      size: note.body.length,
      mtimeMs: newest,
      mode: 0o644,
      body: note.body,
    });
    dataBytes += note.body.length;
  }
  return { members, dataBytes, tooLarge: dataBytes > limit };
}

/** The note's name below the top directory (underscores are added while a real entry has it). */
export const NOTE_NAME = "_unreadable.txt";
const utf8 = new TextEncoder();

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
 * What the handler checks before it answers a folder download: the folder
 * itself can be read (else the error, PermissionDenied -> 403, the status
 * its listing gets: one rule for both views).
 *
 * @param dir The real path of the directory.
 * @returns When the folder can be listed.
 * @throws What reading the directory throws (Deno.errors.PermissionDenied).
 * @example
 * ```ts ignore
 * import { archivePreflight } from "./archive.ts";
 * await archivePreflight("/srv/photos");
 * ```
 */
export async function archivePreflight(dir: string): Promise<void> {
  const it = Deno.readDir(dir)[Symbol.asyncIterator]();
  await it.next();
  await it.return?.();
}

/** A file changed between the layout and its sending: the archive cannot be completed. */
export class ArchiveChanged extends Error {
  override name = "ArchiveChanged";
}

/** Small pieces (headers, small files) are joined into blocks of this size. */
const BLOCK = 65536;
/** Reads of large files. */
const READ = 262144;
/** Files up to this size are read with sync calls (one async op costs ~10x a sync one). */
const SMALL = 65536;

/** Told the CRC-32 of member `i` once its bytes were sent whole. */
export type OnCrc = (i: number, crc: number) => void;

function changed(m: Member, info: Deno.FileInfo): boolean {
  return !info.isFile || info.size !== m.size || (info.mtime?.getTime() ?? 0) !== m.mtimeMs;
}

function changedError(m: Member): ArchiveChanged {
  return new ArchiveChanged(`${m.name} changed after the archive's length was computed`);
}

/**
 * The bytes `[start, end)` of the archive laid out by `l`, in blocks of up
 * to 256 KiB; a yielded block may be reused once the next one is asked for.
 * Opens only the files whose bytes the range holds, each checked against
 * the layout (size and mtime, when opened and after its last byte): a
 * difference throws {@linkcode ArchiveChanged}. A file sent whole is
 * checksummed on the way (`onCrc`, and into `crcs`, where the zip's data
 * descriptor and central record read it); the CRC of any other file whose
 * descriptor or record falls in the range must already be in `crcs`
 * ({@linkcode crcsNeeded}). Stopping the iteration closes the open file.
 *
 * @param l The layout.
 * @param start First byte.
 * @param end Exclusive.
 * @param crcs Member index -> CRC-32, read and filled.
 * @param onCrc Told each CRC computed.
 * @returns The bytes.
 * @throws {ArchiveChanged} When a file no longer matches the layout.
 * @example Write a folder's zip to a file
 * ```ts ignore
 * import { archiveBytes, collectMembers } from "./archive.ts";
 * import { zipLayout } from "./_archive_layout.ts";
 * const policy = { root: "/srv", dotfiles: false, followSymlinks: false };
 * const l = zipLayout((await collectMembers("/srv/photos", "photos", policy)).members);
 * using out = await Deno.open("photos.zip", { write: true, create: true });
 * for await (const b of archiveBytes(l, 0, l.size, new Map())) await out.write(b);
 * ```
 */
export async function* archiveBytes(
  l: ArchiveLayout,
  start: number,
  end: number,
  crcs: Map<number, number>,
  onCrc?: OnCrc,
): AsyncGenerator<Uint8Array> {
  if (start >= end) return;
  const block = new Uint8Array(BLOCK);
  let n = 0;
  const segs = l.segments;
  let pos = start;
  let read: Uint8Array | undefined;
  for (let s = segmentAt(l, start); s < segs.length && pos < end; s++) {
    const seg = segs[s];
    const a = pos - seg.at;
    const b = Math.min(end, seg.at + seg.len) - seg.at;
    pos = seg.at + b;
    if (seg.kind !== "data") {
      let crc = 0;
      if (l.needsCrc(seg)) {
        const c = crcs.get(seg.i);
        if (c === undefined) throw new Error(`no CRC-32 for ${l.members[seg.i].name}`);
        crc = c;
      }
      let bytes = l.bytes(seg, crc).subarray(a, b);
      while (bytes.length > 0) {
        const k = Math.min(bytes.length, BLOCK - n);
        block.set(bytes.subarray(0, k), n);
        n += k;
        bytes = bytes.subarray(k);
        if (n === BLOCK) {
          yield block;
          n = 0;
        }
      }
      continue;
    }
    const m = l.members[seg.i];
    const whole = a === 0 && b === seg.len;
    if (m.body !== undefined) {
      if (n + b - a > BLOCK) {
        if (n > 0) yield block.subarray(0, n);
        n = 0;
      }
      if (b - a > BLOCK) yield m.body.subarray(a, b);
      else {
        block.set(m.body.subarray(a, b), n);
        n += b - a;
      }
      continue;
    }
    if (m.size <= SMALL) {
      // Sync calls, straight into the block (flushed first when it would not fit).
      if (n + (b - a) > BLOCK) {
        yield block.subarray(0, n);
        n = 0;
      }
      const dst = block.subarray(n, n + (b - a));
      readSmall(m, a, dst);
      n += dst.length;
      if (whole && m.kind === "file") {
        const crc = crc32(dst);
        crcs.set(seg.i, crc);
        onCrc?.(seg.i, crc);
      }
      continue;
    }
    if (n > 0) {
      yield block.subarray(0, n);
      n = 0;
    }
    read ??= new Uint8Array(READ);
    const file = await Deno.open(m.path, { read: true });
    try {
      if (changed(m, await file.stat())) throw changedError(m);
      if (a > 0) await file.seek(a, Deno.SeekMode.Start);
      let left = b - a;
      let crc = 0;
      while (left > 0) {
        const got = await file.read(read.subarray(0, Math.min(READ, left)));
        if (got === null) throw changedError(m); // shrank: zeros would pass for content
        const chunk = read.subarray(0, got);
        if (whole) crc = crc32(chunk, crc);
        left -= got;
        yield chunk;
      }
      if (b === m.size && changed(m, await file.stat())) throw changedError(m);
      if (whole) {
        crcs.set(seg.i, crc);
        onCrc?.(seg.i, crc);
      }
    } finally {
      file.close();
    }
  }
  if (n > 0) yield block.subarray(0, n);
}

/** Reads `dst.length` bytes of a small member from offset `a`, checking it against the layout. */
function readSmall(m: Member, a: number, dst: Uint8Array): void {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(m.path, { read: true });
  } catch {
    throw changedError(m); // gone or locked since the walk
  }
  try {
    if (changed(m, file.statSync())) throw changedError(m);
    if (a > 0) file.seekSync(a, Deno.SeekMode.Start);
    let got = 0;
    while (got < dst.length) {
      const k = file.readSync(dst.subarray(got));
      if (k === null || k === 0) throw changedError(m);
      got += k;
    }
    if (changed(m, file.statSync())) throw changedError(m);
  } finally {
    file.close();
  }
}

/**
 * The CRC-32 of a file as the layout describes it, read whole; throws
 * {@linkcode ArchiveChanged} when it no longer matches (size, mtime).
 *
 * @param m The member.
 * @returns The CRC-32.
 * @example
 * ```ts ignore
 * import { fileCrc } from "./archive.ts";
 * await fileCrc({ kind: "file", name: "d/a", path: "/srv/d/a", size: 3, mtimeMs: 0, mode: 0o644 });
 * ```
 */
export async function fileCrc(m: Member): Promise<number> {
  if (m.body !== undefined) return crc32(m.body);
  using file = await Deno.open(m.path, { read: true });
  if (changed(m, await file.stat())) throw changedError(m);
  const buf = new Uint8Array(Math.min(READ * 4, Math.max(m.size, 1)));
  let crc = 0;
  let left = m.size;
  while (left > 0) {
    const got = await file.read(buf.subarray(0, Math.min(buf.length, left)));
    if (got === null) throw changedError(m);
    crc = crc32(buf.subarray(0, got), crc);
    left -= got;
  }
  if (changed(m, await file.stat())) throw changedError(m);
  return crc;
}

/**
 * The whole archive through gzip (`CompressionStream`): for `tar.gz`, whose
 * length is not known ahead (no Content-Length, no Range).
 *
 * @param l The (tar) layout.
 * @returns The gzipped bytes.
 * @example
 * ```ts ignore
 * import { gzipped } from "./archive.ts";
 * for await (const b of gzipped(layout)) console.log(b.length);
 * ```
 */
export async function* gzipped(l: ArchiveLayout): AsyncGenerator<Uint8Array> {
  const src = archiveBytes(l, 0, l.size, new Map());
  const input = new ReadableStream<Uint8Array<ArrayBuffer>>({
    async pull(c) {
      const r = await src.next();
      // Copy: the block is reused once the next is asked for, and the
      // compressor may still hold it.
      if (r.done) c.close();
      else c.enqueue(r.value.slice());
    },
    async cancel() {
      await src.return(undefined);
    },
  }, { highWaterMark: 0 });
  const out = input.pipeThrough(new CompressionStream("gzip"));
  const reader = out.getReader();
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) return;
      yield r.value;
    }
  } finally {
    await reader.cancel().catch(() => {});
    await src.return(undefined);
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

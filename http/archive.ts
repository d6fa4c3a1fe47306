/**
 * Folder download: a directory streamed as a tar archive (`?download=tar`),
 * written with the npm `tar-stream` package, file by file, never holding more
 * than a few chunks in memory.
 *
 * The archive holds exactly what GET would serve under the directory URL:
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
 * - one unreadable file or directory is left out; the archive goes on.
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
import { Buffer } from "node:buffer";
import { pack as tarPack } from "tar-stream";
import { servable, type ServePolicy } from "./resolve.ts";

/** Which entries may be archived: the handler's own policy ({@linkcode servable}). */
export type ArchivePolicy = ServePolicy;

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

const FILE_CHUNK = 65536;
/** Entries stat'ed synchronously between two event-loop turns. */
const TURN_EVERY = 512;
const turns = { n: 0 };
/** Small tar pieces (headers, padding) are joined into blocks of this size. */
const BLOCK = 65536;
const utf8 = new TextEncoder();

function modeOf(info: Deno.FileInfo): number {
  return info.isDirectory || ((info.mode ?? 0) & 0o111) !== 0 ? 0o755 : 0o644;
}

/**
 * Walks `dir` depth first in name order and yields every member the policy
 * allows (the directory itself first). Directories are read with async I/O;
 * entries are stat'ed synchronously, one at a time between yields.
 *
 * @param dir The real path of the directory to archive (already checked).
 * @param base The top-level member name, e.g. `photos`.
 * @param policy Dotfile and symlink policy.
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
): AsyncGenerator<ArchiveItem> {
  yield* walkDir(dir, base, policy, new Set<string>());
}

async function* walkDir(
  dir: string,
  name: string,
  policy: ArchivePolicy,
  /** The directories being walked (this one's ancestors). */
  visited: Set<string>,
): AsyncGenerator<ArchiveItem> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dir);
  } catch {
    return; // vanished or unreadable: leave it out
  }
  // Device + inode, not the path: also catches bind-mount cycles.
  const key = info.ino === null ? dir : `${info.dev}:${info.ino}`;
  if (visited.has(key)) return; // an ancestor: a loop
  visited.add(key);
  try {
    yield* walkEntries(dir, name, info, policy, visited);
  } finally {
    visited.delete(key);
  }
}

async function* walkEntries(
  dir: string,
  name: string,
  info: Deno.FileInfo,
  policy: ArchivePolicy,
  visited: Set<string>,
): AsyncGenerator<ArchiveItem> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (!policy.dotfiles && e.name.charCodeAt(0) === 46) continue;
      names.push(e.name);
    }
  } catch {
    return; // unreadable directory: leave it out
  }
  yield {
    kind: "dir",
    name: name + "/",
    path: dir,
    size: 0,
    mtimeMs: info.mtime?.getTime() ?? 0,
    mode: 0o755,
  };
  names.sort();
  const prefix = dir.endsWith("/") ? dir : dir + "/";
  for (const entry of names) {
    const path = prefix + entry;
    let st: Deno.FileInfo;
    let real = path;
    try {
      // Sync: ~5 us per entry instead of ~50 (DENO_FACTS). Output goes to
      // the socket every 64 KiB (an event-loop turn); entries that add no
      // bytes get a turn of their own every TURN_EVERY entries.
      if (++turns.n % TURN_EVERY === 0) await new Promise((r) => setTimeout(r, 0));
      st = Deno.lstatSync(path);
      if (st.isSymlink) {
        // Archived as its target, under the same rules as serving it.
        real = Deno.realPathSync(path);
        if (!servable(policy, real)) continue;
        st = Deno.statSync(real);
      }
    } catch {
      // Gone, a dangling or looping link, or a non-UTF-8 name (its lossy
      // spelling names no file): leave it out.
      continue;
    }
    const member = name + "/" + entry;
    if (st.isDirectory) {
      yield* walkDir(real, member, policy, visited);
    } else if (st.isFile) {
      yield {
        kind: "file",
        name: member,
        path: real,
        size: st.size,
        mtimeMs: st.mtime?.getTime() ?? 0,
        mode: modeOf(st),
      };
    }
  }
}

/**
 * Bytes of the header(s) tar-stream writes for a member name: one 512-byte
 * ustar header when the name is ASCII and fits ustar's name/prefix split,
 * else a pax header (512 + its records padded to 512) before it.
 *
 * @param name The member name.
 * @returns 512, or 1024 plus the padded pax records.
 * @example
 * ```ts
 * import { tarHeaderBytes } from "./archive.ts";
 * tarHeaderBytes("a/b.txt"); // 512
 * tarHeaderBytes("caf\u00e9.txt"); // 1536
 * ```
 */
export function tarHeaderBytes(name: string): number {
  if (fitsUstar(name)) return 512;
  const record = " path=" + name + "\n";
  const len = utf8.encode(record).length;
  let digits = Math.floor(Math.log10(len)) + 1;
  if (len + digits >= 10 ** digits) digits++;
  return 1024 + pad512(len + digits);
}

/** Mirrors tar-stream's `headers.encode`: ASCII only, split at `/` into prefix <= 155 and name <= 100. */
function fitsUstar(full: string): boolean {
  // deno-lint-ignore no-control-regex
  if (!/^[\x00-\x7f]*$/.test(full)) return false;
  let name = full;
  let prefix = "";
  while (name.length > 100) {
    const i = name.indexOf("/");
    if (i === -1) return false;
    prefix += prefix ? "/" + name.slice(0, i) : name.slice(0, i);
    name = name.slice(i + 1);
  }
  return name.length <= 100 && prefix.length <= 155;
}

function pad512(n: number): number {
  return Math.ceil(n / 512) * 512;
}

/**
 * The exact length of the archive of `dir`, or the first running total past
 * `limit` (the count stops there, so checking a bound costs at most
 * `limit / 512` entries).
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
  for await (const item of walkTree(dir, base, policy)) {
    total += tarHeaderBytes(item.name) + pad512(item.size);
    if (total > limit) break;
  }
  return total;
}

/** The bits of a streamx Writable we use. */
interface Sink {
  write(data: Uint8Array): boolean;
  end(): void;
  destroy(err?: Error): void;
  readonly destroying: boolean;
  on(event: string, fn: (err?: Error) => void): void;
  off(event: string, fn: () => void): void;
}

/** Resolves when `sink` can take more, or when it is being destroyed. */
function drained(sink: Sink): Promise<void> {
  if (sink.destroying) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      sink.off("drain", done);
      sink.off("close", done);
      resolve();
    };
    sink.on("drain", done);
    sink.on("close", done);
  });
}

type Pack = ReturnType<typeof tarPack>;
type EntryHeader = Parameters<Pack["entry"]>[0];

/**
 * Starts one member; `done` settles when tar-stream has taken all of it (so
 * awaiting it is the backpressure). The member's own `error` event is
 * swallowed: every failure also reaches the pack, whose consumer throws it
 * (an unheard `error` event would crash the process).
 */
function entry(
  p: Pack,
  header: EntryHeader,
  body?: Uint8Array,
): { sink: Sink; done: Promise<void> } {
  let sink!: Sink;
  const done = new Promise<void>((resolve, reject) => {
    const cb = (err?: Error | null) => err ? reject(err) : resolve();
    sink =
      (body === undefined ? p.entry(header, cb) : p.entry(header, body, cb)) as unknown as Sink;
  });
  sink.on("error", () => {});
  done.catch(() => {}); // awaited by the caller unless it fails first
  return { sink, done };
}

/** Adds one member; resolves once tar-stream has taken all of it. */
async function addMember(p: Pack, item: ArchiveItem): Promise<void> {
  const header = {
    name: item.name,
    mode: item.mode,
    mtime: new Date(item.mtimeMs),
    uid: 0,
    gid: 0,
  };
  if (item.kind === "dir") {
    await entry(p, { ...header, type: "directory" }).done;
    return;
  }
  let file: Deno.FsFile;
  try {
    // Sync open/stat/read for small files: one async op costs ~10x a sync
    // one (DENO_FACTS), and a page-cache read of <= 64 KiB blocks for
    // microseconds, so a folder of many small files goes ~3x faster.
    file = Deno.openSync(item.path, { read: true });
  } catch {
    return; // unreadable or gone since the walk: leave it out
  }
  try {
    // The header must describe exactly the bytes we send: take the size
    // from the open file, and send no more than that if it grows.
    const info = file.statSync();
    if (!info.isFile) return;
    const fileHeader = { ...header, type: "file" as const, mode: modeOf(info) };
    if (info.size <= FILE_CHUNK) {
      const buf = Buffer.allocUnsafe(info.size);
      let got = 0;
      while (got < buf.length) {
        const n = file.readSync(buf.subarray(got));
        if (n === null || n === 0) break;
        got += n;
      }
      // Shrunk under us: what we read is the member, header and all.
      await entry(p, { ...fileHeader, size: got }, buf.subarray(0, got)).done;
      return;
    }
    const { sink, done } = entry(p, { ...fileHeader, size: info.size });
    let left = info.size;
    while (left > 0) {
      // A fresh buffer per read: tar-stream keeps it until it is sent.
      const buf = Buffer.allocUnsafe(Math.min(FILE_CHUNK, left));
      const n = await file.read(buf);
      if (sink.destroying) throw new Error("archive stream closed");
      if (n === null) {
        // Padding would pass off zeros as the file's content.
        const err = new Error(`${item.name} shrank while being archived`);
        sink.destroy(err);
        throw err;
      }
      left -= n;
      if (!sink.write(n === buf.length ? buf : buf.subarray(0, n))) await drained(sink);
    }
    sink.end();
    await done;
  } finally {
    file.close();
  }
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
  const producer = (async () => {
    try {
      for await (const item of walkTree(dir, base, policy)) {
        if (p.destroying) return;
        await addMember(p, item);
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
      if (total > maxBytes) {
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

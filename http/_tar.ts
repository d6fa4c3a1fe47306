/**
 * Tar-level pieces of the folder download (`archive.ts`): the exact header
 * bytes tar-stream writes for a member name, and adding one member to a
 * tar-stream pack with backpressure. Private to `http/`.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { pack as tarPack } from "tar-stream";
import type { ArchiveItem, LeftOut } from "./archive.ts";

const FILE_CHUNK = 65536;
const utf8 = new TextEncoder();

/** 0o755 for executables (any x bit), else 0o644: no other permission bits leak. */
export function modeOf(mode: number | null | undefined): number {
  return ((mode ?? 0) & 0o111) !== 0 ? 0o755 : 0o644;
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

export function pad512(n: number): number {
  return Math.ceil(n / 512) * 512;
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

export type Pack = ReturnType<typeof tarPack>;
type EntryHeader = Parameters<Pack["entry"]>[0];

/**
 * Starts one member; `done` settles when tar-stream has taken all of it (so
 * awaiting it is the backpressure). The member's own `error` event is
 * swallowed: every failure also reaches the pack, whose consumer throws it
 * (an unheard `error` event would crash the process).
 */
export function entry(
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
export async function addMember(
  p: Pack,
  item: ArchiveItem,
  leftOut: LeftOut,
  base: string,
): Promise<void> {
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
  } catch (e) {
    // Gone since the walk: nothing to say. Unreadable: said in the last member.
    if (!(e instanceof Deno.errors.NotFound)) leftOut.push(item.name.slice(base.length + 1));
    return;
  }
  try {
    // The header must describe exactly the bytes we send: take the size
    // from the open file, and send no more than that if it grows.
    const info = file.statSync();
    if (!info.isFile) return;
    const fileHeader = { ...header, type: "file" as const, mode: modeOf(info.mode) };
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

/**
 * The exact byte layout of a folder download, before any file is read: a
 * STORE zip or a tar of the members the walker found (`archive.ts`). Pure:
 * no I/O. The bytes of an archive are a function of its members' names,
 * kinds, sizes, modes, mtimes and contents; every byte that is not a file's
 * content is computed here from the metadata (plus, for zip, each file's
 * CRC-32), so the length is known ahead (Content-Length), any byte range can
 * be produced without producing the bytes before it (Range), and the
 * listing's digest is a validator (ETag).
 *
 * The layout is a list of segments in archive order, each `[at, at + len)`:
 *
 * | kind   | zip                                   | tar                            |
 * | ------ | ------------------------------------- | ------------------------------ |
 * | `head` | local file header                     | (pax header +) ustar header    |
 * | `data` | the file's bytes                      | the file's bytes               |
 * | `tail` | data descriptor (needs the CRC)       | zero padding to 512            |
 * | `dir`  | central directory record (needs CRC)  | -                              |
 * | `end`  | zip64 end record + locator, end record | two zero blocks               |
 *
 * Zip (APPNOTE 6.3.10): method 0 (STORE); general purpose flags bit 11 (names
 * are UTF-8) and, for files, bit 3 (CRC and sizes follow the data in a data
 * descriptor, so the CRC is computed while the file is sent); DOS date/time
 * (UTC, clamped to 1980-2107) and the extended timestamp extra field 0x5455
 * (the mtime in Unix seconds, local and central); "made by" Unix, with the
 * Unix mode in the external attributes. Zip64 (4.3.14, 4.5.3) whenever a
 * value does not fit: a file of 0xFFFFFFFF bytes or more gets the zip64 extra
 * field in its local header (sizes 0xFFFFFFFF there) and an 8-byte-size data
 * descriptor; a central record carries in its zip64 extra the sizes and/or
 * the offset that do not fit in 32 bits; 65,535 entries or more, or a
 * central directory past or over 4 GiB, add the zip64 end record and locator.
 *
 * Tar: node-tar's `Header` and `Pax` encoders (npm `tar`): a 512-byte ustar
 * header, preceded by a pax extended header when the name or a number does
 * not fit (non-ASCII or long names, files of 8 GiB and more); the encoders are
 * called here, never mirrored, so the length cannot drift from the bytes.
 *
 * @module
 */
import { crc32 } from "node:zlib";
import { createHash } from "node:crypto";
import { Buffer } from "node:buffer";
import { Header } from "tar/header";
import { Pax } from "tar/pax";

/** One member of an archive: what the walker found, in archive order. */
export interface Member {
  /** A directory (no data) or a regular file. */
  kind: "dir" | "file";
  /** The member name: `<base>/<path>`, directories ending in `/`. */
  name: string;
  /** Where to read it (a real path); `""` for an in-memory member. */
  path: string;
  /** Bytes (0 for directories). */
  size: number;
  /** Modification time, ms since the epoch. */
  mtimeMs: number;
  /** 0o755 or 0o644. */
  mode: number;
  /** The content, for a member made in memory (the "left out" note). */
  body?: Uint8Array;
}

/** What a segment is (see the module table). */
export type SegKind = "head" | "data" | "tail" | "dir" | "end";

/** One run of bytes of the archive: `[at, at + len)`, of member `i` (-1 for `end`). */
export interface Segment {
  kind: SegKind;
  at: number;
  len: number;
  i: number;
}

/** The formats with a computable layout. */
export type LayoutFormat = "zip" | "tar";

/** An archive's layout: its segments, length and validator. */
export interface ArchiveLayout {
  format: LayoutFormat;
  members: readonly Member[];
  /** In archive order, contiguous from 0 to `size`. */
  segments: Segment[];
  /** The archive's length in bytes. */
  size: number;
  /** Offset of each member's `data` segment, -1 for a directory. */
  dataAt: number[];
  /**
   * The bytes of a segment that is not `data`. `crc` is the member's CRC-32,
   * read only for a zip `tail` or `dir` of a file without `body`.
   */
  bytes(seg: Segment, crc: number): Uint8Array;
  /** Whether {@linkcode ArchiveLayout.bytes} of `seg` reads `crc`. */
  needsCrc(seg: Segment): boolean;
}

const utf8 = new TextEncoder();
const U32 = 0xffffffff;
const U16 = 0xffff;

/**
 * MS-DOS date and time of `ms` (UTC, 2-second resolution, clamped to the
 * years 1980-2107 the format can hold).
 *
 * @param ms ms since the epoch
 * @returns `[time, date]` as the zip headers store them
 * @example
 * ```ts
 * import { dosDateTime } from "./_archive_layout.ts";
 * dosDateTime(Date.UTC(1980, 0, 1)); // [0, 33]
 * ```
 */
export function dosDateTime(ms: number): [time: number, date: number] {
  // Files of one tree often share their second: the last answer is kept.
  if (Math.floor(ms / 1000) === lastSecond) return lastDos;
  lastSecond = Math.floor(ms / 1000);
  lastDos = dosOf(ms);
  return lastDos;
}

let lastSecond = NaN;
let lastDos: [number, number] = [0, 0];

function dosOf(ms: number): [time: number, date: number] {
  const d = new Date(
    Math.min(Math.max(ms, Date.UTC(1980, 0, 1)), Date.UTC(2107, 11, 31, 23, 59, 58)),
  );
  const time = (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | (d.getUTCSeconds() >> 1);
  const date = ((d.getUTCFullYear() - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate();
  return [time, date];
}

/** Unix seconds for the extended timestamp field (unsigned 32-bit, clamped). */
function unixSeconds(ms: number): number {
  return Math.min(Math.max(Math.floor(ms / 1000), 0), U32);
}

/** Little-endian writer over a fresh buffer. */
class Out {
  readonly buf: Uint8Array;
  readonly #v: DataView;
  #n = 0;
  constructor(len: number) {
    this.buf = new Uint8Array(len);
    this.#v = new DataView(this.buf.buffer);
  }
  u16(x: number): this {
    this.#v.setUint16(this.#n, x, true);
    this.#n += 2;
    return this;
  }
  u32(x: number): this {
    this.#v.setUint32(this.#n, x >>> 0, true);
    this.#n += 4;
    return this;
  }
  u64(x: number): this {
    this.#v.setUint32(this.#n, x % 0x100000000, true);
    this.#v.setUint32(this.#n + 4, Math.floor(x / 0x100000000), true);
    this.#n += 8;
    return this;
  }
  raw(b: Uint8Array): this {
    this.buf.set(b, this.#n);
    this.#n += b.length;
    return this;
  }
}

/** Per-member zip facts the headers need. */
interface ZipEntry {
  name: Uint8Array;
  /** Offset of its local header. */
  off: number;
  /** Its size needs zip64 (local extra field, 8-byte descriptor sizes). */
  big: boolean;
  time: number;
  date: number;
  secs: number;
}

const EXT_TIME = 9; // 0x5455: tag, length, flags, mtime
const LOCAL_FIXED = 30;
const CENTRAL_FIXED = 46;

function localLen(e: ZipEntry): number {
  return LOCAL_FIXED + e.name.length + (e.big ? 20 : 0) + EXT_TIME;
}

/** Bytes of a central record's zip64 extra field payload (0: none). */
function zip64Payload(e: ZipEntry): number {
  return (e.big ? 16 : 0) + (e.off >= U32 ? 8 : 0);
}

function centralLen(e: ZipEntry): number {
  const z = zip64Payload(e);
  return CENTRAL_FIXED + e.name.length + (z > 0 ? 4 + z : 0) + EXT_TIME;
}

/**
 * The layout of a STORE zip of `members` (see the module doc for the records).
 *
 * @param members the members, in archive order
 * @returns the layout
 * @example
 * ```ts
 * import { zipLayout } from "./_archive_layout.ts";
 * const l = zipLayout([{ kind: "dir", name: "a/", path: "/a", size: 0, mtimeMs: 0, mode: 0o755 }]);
 * l.size; // 30 + 2 + 9 + 46 + 2 + 9 + 22
 * ```
 */
export function zipLayout(members: readonly Member[]): ArchiveLayout {
  const entries: ZipEntry[] = [];
  const segments: Segment[] = [];
  const dataAt: number[] = [];
  const bodyCrc = new Map<number, number>();
  let at = 0;
  const push = (kind: SegKind, len: number, i: number) => {
    segments.push({ kind, at, len, i });
    at += len;
  };
  for (let i = 0; i < members.length; i++) {
    const m = members[i];
    const [time, date] = dosDateTime(m.mtimeMs);
    const e: ZipEntry = {
      name: utf8.encode(m.name),
      off: at,
      big: m.kind === "file" && m.size >= U32,
      time,
      date,
      secs: unixSeconds(m.mtimeMs),
    };
    entries.push(e);
    if (m.body !== undefined) bodyCrc.set(i, crc32(m.body));
    push("head", localLen(e), i);
    if (m.kind === "dir") {
      dataAt.push(-1);
      continue;
    }
    dataAt.push(at);
    push("data", m.size, i);
    push("tail", e.big ? 24 : 16, i);
  }
  const cdOff = at;
  for (let i = 0; i < members.length; i++) push("dir", centralLen(entries[i]), i);
  const cdSize = at - cdOff;
  const n = members.length;
  const z64End = n >= U16 || cdSize >= U32 || cdOff >= U32;
  push("end", (z64End ? 56 + 20 : 0) + 22, -1);
  const size = at;

  const flags = (m: Member) => m.kind === "file" ? 0x0808 : 0x0800;
  const extTime = (o: Out, e: ZipEntry) =>
    o.u16(0x5455).u16(5).raw(new Uint8Array([1])).u32(e.secs);
  const crcOf = (i: number, crc: number) => members[i].kind === "dir" ? 0 : bodyCrc.get(i) ?? crc;

  const bytes = (seg: Segment, crc: number): Uint8Array => {
    const i = seg.i;
    if (seg.kind === "end") {
      const o = new Out(seg.len);
      if (z64End) {
        o.u32(0x06064b50).u64(44).u16(0x032d).u16(45).u32(0).u32(0)
          .u64(n).u64(n).u64(cdSize).u64(cdOff);
        o.u32(0x07064b50).u32(0).u64(seg.at).u32(1);
      }
      o.u32(0x06054b50).u16(0).u16(0).u16(Math.min(n, U16)).u16(Math.min(n, U16))
        .u32(Math.min(cdSize, U32)).u32(Math.min(cdOff, U32)).u16(0);
      return o.buf;
    }
    const m = members[i];
    const e = entries[i];
    const o = new Out(seg.len);
    if (seg.kind === "head") {
      o.u32(0x04034b50).u16(e.big ? 45 : 20).u16(flags(m)).u16(0).u16(e.time).u16(e.date)
        .u32(0).u32(e.big ? U32 : 0).u32(e.big ? U32 : 0)
        .u16(e.name.length).u16((e.big ? 20 : 0) + EXT_TIME).raw(e.name);
      if (e.big) o.u16(0x0001).u16(16).u64(0).u64(0);
      extTime(o, e);
      return o.buf;
    }
    if (seg.kind === "tail") {
      o.u32(0x08074b50).u32(crcOf(i, crc));
      if (e.big) o.u64(m.size).u64(m.size);
      else o.u32(m.size).u32(m.size);
      return o.buf;
    }
    // dir: the central directory record
    const bigOff = e.off >= U32;
    const z64 = e.big || bigOff;
    const zlen = zip64Payload(e);
    const unixMode = (m.kind === "dir" ? 0o040000 : 0o100000) | m.mode;
    o.u32(0x02014b50).u16(0x0300 | (z64 ? 45 : 20)).u16(z64 ? 45 : 20).u16(flags(m)).u16(0)
      .u16(e.time).u16(e.date).u32(crcOf(i, crc))
      .u32(e.big ? U32 : m.size).u32(e.big ? U32 : m.size)
      .u16(e.name.length).u16((z64 ? 4 + zlen : 0) + EXT_TIME).u16(0).u16(0).u16(0)
      .u32(((unixMode << 16) | (m.kind === "dir" ? 0x10 : 0)) >>> 0)
      .u32(bigOff ? U32 : e.off).raw(e.name);
    if (z64) {
      o.u16(0x0001).u16(zlen);
      if (e.big) o.u64(m.size).u64(m.size);
      if (bigOff) o.u64(e.off);
    }
    extTime(o, e);
    return o.buf;
  };
  const needsCrc = (seg: Segment) =>
    (seg.kind === "tail" || seg.kind === "dir") && members[seg.i].kind === "file" &&
    members[seg.i].body === undefined;
  return { format: "zip", members, segments, size, dataAt, bytes, needsCrc };
}

/**
 * The tar header block(s) of a member: node-tar's ustar header, after a pax
 * extended header when the header alone cannot hold the name or a number.
 *
 * @param m the member
 * @returns 512 bytes, or the pax header and records (a multiple of 512) + 512
 * @example
 * ```ts
 * import { tarHead } from "./_archive_layout.ts";
 * tarHead({ kind: "file", name: "a/b.txt", path: "", size: 1, mtimeMs: 0, mode: 0o644 }).length; // 512
 * ```
 */
export function tarHead(m: Member): Uint8Array {
  const size = m.kind === "file" ? m.size : 0;
  const mtime = new Date(m.mtimeMs);
  const block = Buffer.alloc(512);
  const header = new Header({
    path: m.name,
    mode: m.mode,
    uid: 0,
    gid: 0,
    size,
    mtime,
    type: m.kind === "dir" ? "Directory" : "File",
    uname: "",
    gname: "",
  });
  if (!header.encode(block, 0)) return block;
  const pax = new Pax({ path: m.name, size, mtime }).encode();
  const out = new Uint8Array(pax.length + 512);
  out.set(pax, 0);
  out.set(block, pax.length);
  return out;
}

const ZEROS = new Uint8Array(1024);
/** 8^11: the first value an 11-digit octal field (size, mtime) cannot hold. */
const OCTAL_11 = 8 ** 11;
// deno-lint-ignore no-control-regex
const ASCII = /^[\x00-\x7f]*$/;

/**
 * A sufficient condition for {@linkcode tarHead} to be one 512-byte block,
 * checked without encoding (node-tar's encoder costs ~15 us a header, 1 s
 * for 70,000 members): an ASCII name of at most 100 characters fits the name
 * field unsplit, and a size and mtime below 8^11 fit their octal fields, so
 * no field overflows into a pax header. Anything else is measured by
 * encoding it; a test checks this against the encoder.
 */
export function oneBlock(m: Member): boolean {
  const secs = m.mtimeMs / 1000;
  return m.name.length <= 100 && m.size < OCTAL_11 && secs >= 0 && secs < OCTAL_11 &&
    ASCII.test(m.name);
}

/**
 * The layout of the tar of `members`: each member's header(s), its bytes,
 * zeros to the next 512-byte boundary; then two zero blocks.
 *
 * @param members the members, in archive order
 * @returns the layout
 * @example
 * ```ts
 * import { tarLayout } from "./_archive_layout.ts";
 * tarLayout([{ kind: "dir", name: "a/", path: "/a", size: 0, mtimeMs: 0, mode: 0o755 }]).size; // 1536
 * ```
 */
export function tarLayout(members: readonly Member[]): ArchiveLayout {
  const segments: Segment[] = [];
  const dataAt: number[] = [];
  let at = 0;
  const push = (kind: SegKind, len: number, i: number) => {
    if (len > 0) segments.push({ kind, at, len, i });
    at += len;
  };
  for (let i = 0; i < members.length; i++) {
    const m = members[i];
    push("head", oneBlock(m) ? 512 : tarHead(m).length, i);
    if (m.kind === "dir") {
      dataAt.push(-1);
      continue;
    }
    dataAt.push(at);
    push("data", m.size, i);
    push("tail", (512 - (m.size % 512)) % 512, i);
  }
  push("end", 1024, -1);
  const bytes = (seg: Segment): Uint8Array =>
    seg.kind === "head" ? tarHead(members[seg.i]) : ZEROS.subarray(0, seg.len);
  return { format: "tar", members, segments, size: at, dataAt, bytes, needsCrc: () => false };
}

/**
 * The index of the segment holding byte `pos` (binary search).
 *
 * @param l the layout
 * @param pos a byte offset, `0 <= pos < l.size`
 * @returns the segment index
 * @example
 * ```ts
 * import { segmentAt, tarLayout } from "./_archive_layout.ts";
 * segmentAt(tarLayout([]), 10); // 0: the end blocks
 * ```
 */
export function segmentAt(l: ArchiveLayout, pos: number): number {
  const s = l.segments;
  let lo = 0;
  let hi = s.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (s[mid].at <= pos) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * The members whose CRC-32 a zip range needs from outside: those with a
 * descriptor or central record in a range whose data the same range does not
 * hold whole (data sent whole is checksummed on the way, before its
 * descriptor and the central directory that follow it).
 *
 * @param l the layout
 * @param ranges `[start, end)` ranges
 * @returns member indexes, ascending, each once
 * @example
 * ```ts
 * import { crcsNeeded, zipLayout } from "./_archive_layout.ts";
 * const m = { kind: "file" as const, name: "d/f", path: "/f", size: 5, mtimeMs: 0, mode: 0o644 };
 * const l = zipLayout([m]);
 * crcsNeeded(l, [[0, l.size]]); // []: the whole archive checksums as it goes
 * crcsNeeded(l, [[50, l.size]]); // [0]
 * ```
 */
export function crcsNeeded(l: ArchiveLayout, ranges: ReadonlyArray<[number, number]>): number[] {
  const need = new Set<number>();
  for (const [start, end] of ranges) {
    if (start >= end) continue;
    for (let s = segmentAt(l, start); s < l.segments.length; s++) {
      const seg = l.segments[s];
      if (seg.at >= end) break;
      if (!l.needsCrc(seg)) continue;
      const d = l.dataAt[seg.i];
      const whole = d >= start && d + l.members[seg.i].size <= end;
      if (!whole) need.add(seg.i);
    }
  }
  return [...need].sort((a, b) => a - b);
}

/**
 * A strong ETag for an archive: a digest of its format, its members' names,
 * kinds, sizes, modes and mtimes, and in-memory contents, so the same listing
 * gives the same tag on every worker and any change to it a new one.
 *
 * @param format `zip`, `tar`, or a format with no layout (`tar.gz`)
 * @param members the members
 * @returns the quoted tag
 * @example
 * ```ts
 * import { archiveETag } from "./_archive_layout.ts";
 * archiveETag("zip", []).startsWith('"zip-'); // true
 * ```
 */
export function archiveETag(format: string, members: readonly Member[]): string {
  const h = createHash("sha256");
  // Joined into ~64 KiB strings: one update per member costs 5x more.
  let text = format + "\n";
  for (const m of members) {
    text += `${m.kind}\0${m.name}\0${m.size}\0${m.mtimeMs}\0${m.mode}\n`;
    if (m.body !== undefined) {
      h.update(text);
      h.update(m.body);
      text = "";
    } else if (text.length > 65536) {
      h.update(text);
      text = "";
    }
  }
  h.update(text);
  return `"${format.replace(/[^a-z]/g, "")}-${h.digest("base64url").slice(0, 27)}"`;
}

import assert from "node:assert/strict";
import { crc32 } from "node:zlib";
import {
  archiveETag,
  crcsNeeded,
  dosDateTime,
  type Member,
  segmentAt,
  tarHead,
  tarLayout,
  zipLayout,
} from "./_archive_layout.ts";

const T = Date.UTC(2024, 5, 7, 8, 9, 10);
const file = (name: string, size: number, mtimeMs = T): Member => ({
  kind: "file",
  name,
  path: `/srv/${name}`,
  size,
  mtimeMs,
  mode: 0o644,
});
const dir = (name: string): Member => ({
  kind: "dir",
  name,
  path: "/srv",
  size: 0,
  mtimeMs: T,
  mode: 0o755,
});

/** Reads the zip records the layout produced (no data), as a reader following the spec would. */
function records(members: Member[]) {
  const l = zipLayout(members);
  const bytes = (kind: string) =>
    l.segments.filter((s) => s.kind === kind).map((s) =>
      new DataView(l.bytes(s, 0x12345678).buffer)
    );
  return {
    l,
    heads: bytes("head"),
    tails: bytes("tail"),
    dirs: bytes("dir"),
    end: bytes("end")[0],
  };
}

Deno.test("zipLayout(): segments are contiguous from 0 to size, in archive order", () => {
  const l = zipLayout([dir("d/"), file("d/a", 3), file("d/b", 0)]);
  let at = 0;
  for (const s of l.segments) {
    assert.equal(s.at, at);
    assert.equal(l.bytes.length, 2);
    if (s.kind !== "data") assert.equal(l.bytes(s, 0).length, s.len, s.kind);
    at += s.len;
  }
  assert.equal(at, l.size);
  assert.deepEqual(l.segments.map((s) => s.kind), [
    "head",
    "head",
    "data",
    "tail",
    "head",
    "data",
    "tail",
    "dir",
    "dir",
    "dir",
    "end",
  ]);
  assert.equal(segmentAt(l, 0), 0);
  assert.equal(segmentAt(l, l.size - 1), l.segments.length - 1);
});

Deno.test("zipLayout(): local headers flag UTF-8 and data descriptors, and carry DOS and Unix times", () => {
  const { heads, tails, dirs } = records([dir("d/"), file("d/caf\u00e9", 5)]);
  assert.equal(heads[0].getUint32(0, true), 0x04034b50);
  assert.equal(heads[0].getUint16(6, true), 0x0800, "a directory: UTF-8, no descriptor");
  assert.equal(heads[1].getUint16(6, true), 0x0808, "a file: UTF-8 + data descriptor");
  assert.equal(heads[1].getUint16(8, true), 0, "STORE");
  const [time, date] = dosDateTime(T);
  assert.equal(heads[1].getUint16(10, true), time);
  assert.equal(heads[1].getUint16(12, true), date);
  assert.equal(heads[1].getUint32(14, true), 0, "CRC in the descriptor");
  const nameLen = heads[1].getUint16(26, true);
  assert.equal(nameLen, 7);
  // Extended timestamp: tag 0x5455, 5 bytes, flags 1, mtime.
  assert.equal(heads[1].getUint16(30 + nameLen, true), 0x5455);
  assert.equal(heads[1].getUint32(30 + nameLen + 5, true), T / 1000 | 0);
  assert.equal(tails[0].getUint32(0, true), 0x08074b50);
  assert.equal(tails[0].getUint32(4, true), 0x12345678);
  assert.equal(tails[0].getUint32(8, true), 5);
  assert.equal(dirs[1].getUint32(16, true), 0x12345678);
  assert.equal(
    dirs[1].getUint32(38, true) >>> 16,
    0o100644,
    "Unix mode in the external attributes",
  );
  assert.equal(dirs[0].getUint32(38, true) & 0x10, 0x10, "MS-DOS directory bit");
});

Deno.test("dosDateTime() clamps to the years 1980-2107", () => {
  assert.deepEqual(dosDateTime(0), dosDateTime(Date.UTC(1980, 0, 1)));
  assert.deepEqual(dosDateTime(Date.UTC(1980, 0, 1)), [0, 33]);
  assert.equal(dosDateTime(Date.UTC(3000, 0, 1))[1] >> 9, 127);
});

Deno.test("zipLayout(): a file of 4 GiB or more gets zip64 sizes, and the entries after it zip64 offsets", () => {
  const big = 5 * 1024 ** 3;
  const { l, heads, tails, dirs } = records([dir("d/"), file("d/big", big), file("d/z", 1)]);
  assert.equal(heads[1].getUint16(4, true), 45, "version needed 4.5");
  assert.equal(heads[1].getUint32(18, true), 0xffffffff);
  assert.equal(heads[1].getUint16(30 + 5, true), 0x0001, "zip64 extra in the local header");
  assert.equal(tails[0].byteLength, 24, "8-byte sizes in the descriptor");
  assert.equal(Number(tails[0].getBigUint64(8, true)), big);
  // Central record of the big file: both sizes in the zip64 extra.
  assert.equal(dirs[1].getUint32(20, true), 0xffffffff);
  assert.equal(dirs[1].getUint16(46 + 5, true), 0x0001);
  assert.equal(dirs[1].getUint16(46 + 5 + 2, true), 16);
  assert.equal(Number(dirs[1].getBigUint64(46 + 5 + 4, true)), big);
  // The file after it: its offset is past 4 GiB.
  assert.equal(dirs[2].getUint32(42, true), 0xffffffff);
  assert.equal(dirs[2].getUint16(46 + 3 + 2, true), 8);
  assert.equal(Number(dirs[2].getBigUint64(46 + 3 + 4, true)), l.segments[4].at);
  // The central directory starts past 4 GiB: zip64 end record and locator.
  const end = new DataView(l.bytes(l.segments.at(-1)!, 0).buffer);
  assert.equal(end.getUint32(0, true), 0x06064b50);
  assert.equal(end.getUint32(56, true), 0x07064b50);
  assert.equal(end.getUint32(76, true), 0x06054b50);
  assert.equal(end.getUint32(76 + 16, true), 0xffffffff);
});

Deno.test("zipLayout(): 65,535 entries or more get the zip64 end record; fewer do not", () => {
  const many = (n: number) => Array.from({ length: n }, (_, i) => file(`d/${i}`, 0));
  assert.equal(zipLayout(many(65534)).segments.at(-1)!.len, 22);
  const l = zipLayout(many(65535));
  const end = new DataView(l.bytes(l.segments.at(-1)!, 0).buffer);
  assert.equal(l.segments.at(-1)!.len, 98);
  assert.equal(Number(end.getBigUint64(24, true)), 65535);
  assert.equal(end.getUint16(76 + 10, true), 0xffff);
});

Deno.test("zipLayout(): a member with a body has its own CRC; others read the one given", () => {
  const body = new TextEncoder().encode("note\n");
  const l = zipLayout([{ ...file("d/n", body.length), path: "", body }]);
  const tail = l.segments.find((s) => s.kind === "tail")!;
  assert.equal(l.needsCrc(tail), false);
  assert.equal(new DataView(l.bytes(tail, 0).buffer).getUint32(4, true), crc32(body));
});

Deno.test("crcsNeeded(): the descriptors and records a range holds, less the files it holds whole", () => {
  const l = zipLayout([dir("d/"), file("d/a", 100), file("d/b", 100)]);
  assert.deepEqual(crcsNeeded(l, [[0, l.size]]), []);
  const dataB = l.dataAt[2];
  assert.deepEqual(
    crcsNeeded(l, [[dataB, l.size]]),
    [1],
    "a's record is in the range, a's data not",
  );
  assert.deepEqual(crcsNeeded(l, [[dataB + 1, l.size]]), [1, 2]);
  assert.deepEqual(crcsNeeded(l, [[0, 10]]), [], "a local header needs no CRC");
  assert.deepEqual(crcsNeeded(tarLayout(l.members), [[1, 2000]]), []);
});

Deno.test("tarLayout(): headers, data, padding to 512, two zero blocks", () => {
  const l = tarLayout([dir("d/"), file("d/a", 1), file("d/b", 512)]);
  assert.equal(l.size, 512 + 512 + 512 + 512 + 512 + 1024);
  assert.deepEqual(l.segments.map((s) => s.kind), [
    "head",
    "head",
    "data",
    "tail",
    "head",
    "data",
    "end",
  ]);
});

Deno.test("archiveETag() changes with any name, size, mtime or format, and only then", () => {
  const a = [dir("d/"), file("d/a", 1)];
  const tag = archiveETag("zip", a);
  assert.match(tag, /^"zip-[A-Za-z0-9_-]{27}"$/);
  assert.equal(archiveETag("zip", [dir("d/"), file("d/a", 1)]), tag);
  assert.notEqual(archiveETag("tar", a), tag);
  assert.notEqual(archiveETag("zip", [dir("d/"), file("d/a", 2)]), tag);
  assert.notEqual(archiveETag("zip", [dir("d/"), file("d/a", 1, T + 1)]), tag);
  assert.notEqual(archiveETag("zip", [dir("d/"), file("d/b", 1)]), tag);
});

Deno.test("tarLayout()'s one-block shortcut agrees with node-tar's encoder", async () => {
  const { prng } = await import("../tests/_prng.ts");
  const r = prng(7);
  const alphabet = ["a", "/", "\u00e9", "\u65e5", "-", "x", ".", " "];
  for (let n = 0; n < 2000; n++) {
    let name = "";
    const len = Math.floor(r() * 130);
    for (let i = 0; i < len; i++) name += alphabet[Math.floor(r() * (r() < 0.9 ? 2 : 8))];
    const size = r() < 0.05 ? 8 ** 11 + Math.floor(r() * 10) : Math.floor(r() * 1e6);
    const mtimeMs = r() < 0.05 ? -1000 : Math.floor(r() * 4e12);
    const m = { ...file(name, size, mtimeMs) };
    const fast = tarLayout([m]).segments[0].len;
    assert.equal(fast, tarHead(m).length, JSON.stringify({ name, size, mtimeMs }));
  }
});

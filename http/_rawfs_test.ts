import assert from "node:assert/strict";
import {
  percentEncodeBytes,
  rawAvailable,
  rawClose,
  rawInvalidNames,
  rawOpenSame,
  rawReadFile,
  rawRealPath,
  rawStat,
} from "./_rawfs.ts";

const enc = new TextEncoder();

Deno.test("percentEncodeBytes() keeps unreserved bytes and encodes the rest", () => {
  assert.equal(
    percentEncodeBytes(new Uint8Array([0x61, 0xff, 0x20, 0x2e, 0x7e, 0x25])),
    "a%FF%20.~%25",
  );
  assert.equal(percentEncodeBytes(enc.encode("\u00e9")), encodeURIComponent("\u00e9"));
});

Deno.test("raw libc access lists, stats and opens a non-UTF-8 name, and refuses a FIFO", async () => {
  if (!rawAvailable()) return; // needs --allow-ffi on Linux
  const dir = await Deno.makeTempDir();
  try {
    const sh = (c: string) => new Deno.Command("sh", { args: ["-c", c] }).outputSync().success;
    if (
      !sh(`printf 'xyz' > "${dir}/n-$(printf '\\377').bin" && mkfifo "${dir}/p-$(printf '\\376')"`)
    ) return;
    await Deno.writeTextFile(`${dir}/valid.txt`, "v");
    const names = rawInvalidNames(dir).map((n) => [...n]).sort();
    assert.deepEqual(names, [[0x6e, 0x2d, 0xff, 0x2e, 0x62, 0x69, 0x6e], [0x70, 0x2d, 0xfe]]);
    const file = new Uint8Array([...enc.encode(dir + "/n-"), 0xff, ...enc.encode(".bin")]);
    assert.deepEqual(rawRealPath(file), file);
    assert.equal(rawStat(file)?.size, 3);
    const r = rawReadFile(file, 100);
    assert.ok(r !== null && r !== "too large");
    assert.equal(new TextDecoder().decode(r.bytes), "xyz");
    assert.equal(r.info.size, 3);
    const st = new Deno.Command("sh", { args: ["-c", `stat -c '%i %Y' "${dir}"/n-*`] })
      .outputSync();
    const [ino, mtime] = new TextDecoder().decode(st.stdout).trim().split(" ").map(Number);
    assert.equal(r.info.ino, ino);
    assert.equal(Math.floor(r.info.mtimeMs / 1000), mtime);
    assert.equal(rawReadFile(file, 2), "too large");
    assert.equal(rawReadFile(new Uint8Array([...enc.encode(dir + "/p-"), 0xfe]), 100), null);
    assert.equal(rawReadFile(enc.encode(dir + "/missing"), 100), null);
    assert.equal(rawStat(enc.encode(dir))?.isDirectory, true);
    assert.equal(rawRealPath(enc.encode(dir + "/missing")), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rawOpenSame() gives a descriptor only for the very inode that was opened", async () => {
  if (!rawAvailable() || Deno.build.arch !== "x86_64") return;
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/f.bin`;
    await Deno.writeTextFile(path, "first");
    using file = await Deno.open(path);
    const info = await file.stat();
    const fd = rawOpenSame(path, info.dev, info.ino!);
    assert.ok(fd >= 0);
    rawClose(fd);
    // Replaced by rename: same path, another inode -> none (the caller streams the FsFile).
    await Deno.writeTextFile(`${dir}/g.bin`, "other");
    await Deno.rename(`${dir}/g.bin`, path);
    assert.equal(rawOpenSame(path, info.dev, info.ino!), -1);
    // Unlinked: none either.
    await Deno.remove(path);
    assert.equal(rawOpenSame(path, info.dev, info.ino!), -1);
    assert.equal(rawOpenSame(`${dir}`, info.dev, info.ino!), -1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

import assert from "node:assert/strict";
import { FileCache } from "./_file_cache.ts";
import type { FileMeta } from "./_file_reply.ts";

const meta = (size: number, mtimeMs = 1): FileMeta => ({
  type: "text/plain",
  size,
  mtimeMs,
  etag: `"${size}-${mtimeMs}"`,
  lastModified: "",
  vary: false,
});

function cache(maxBytes = 1000, maxFileBytes = 500, reserved = () => 0) {
  let replies = 0;
  const c = new FileCache({
    maxBytes,
    maxFileBytes,
    revalidateMs: 1000,
    reply: (m, bytes) => {
      replies++;
      return { status: 200, headers: [["ETag", m.etag]], body: [bytes], length: bytes.length };
    },
    reserved,
  });
  return { c, replies: () => replies };
}

const put = (c: FileCache, key: string, real: string, size = 10) =>
  c.insert(key, real, meta(size), 7, new Uint8Array(size));

Deno.test("FileCache: insert then get returns the entry and its frozen reply, built once", () => {
  const { c, replies } = cache();
  const e = put(c, "/a.txt", "/srv/a.txt")!;
  assert.equal(c.get("/a.txt"), e);
  assert.equal(e.reply.length, 10);
  assert.equal(replies(), 1);
  assert.equal(c.bytes, 10);
  assert.equal(c.size, 1);
  // Re-inserting a key replaces it and keeps the byte count right.
  put(c, "/a.txt", "/srv/a.txt", 20);
  assert.equal(c.bytes, 20);
  assert.equal(c.size, 1);
});

Deno.test("FileCache: refuses bodies over the file limit or the budget beside the listings", () => {
  let listings = 0;
  const { c } = cache(1000, 500, () => listings);
  assert.equal(put(c, "/big", "/srv/big", 501), undefined);
  assert.ok(put(c, "/ok", "/srv/ok", 500));
  // An explicit limit (compressed variants) replaces maxFileBytes; /ok makes room.
  assert.ok(c.insert("/v", "/srv/v", meta(600), 1, new Uint8Array(600), 2000));
  assert.equal(c.get("/ok"), undefined);
  assert.equal(c.insert("/w", "/srv/w", meta(1001), 1, new Uint8Array(1001), 2000), undefined);
  listings = 600;
  assert.equal(put(c, "/x", "/srv/x", 450), undefined, "450 + 600 listings > 1000");
  assert.equal(c.size, 1);
});

Deno.test("FileCache: evicts oldest-inserted first to make room (makeRoom for the listings too)", () => {
  let listings = 0;
  const { c } = cache(100, 100, () => listings);
  put(c, "/1", "/srv/1", 40);
  put(c, "/2", "/srv/2", 40);
  put(c, "/3", "/srv/3", 40); // evicts /1
  assert.equal(c.get("/1"), undefined);
  assert.ok(c.get("/2") && c.get("/3"));
  assert.equal(c.bytes, 80);
  c.makeRoom(30); // a listing of 30 bytes wants in: /2 goes
  listings = 30;
  assert.equal(c.get("/2"), undefined);
  assert.equal(c.bytes, 40);
});

Deno.test("FileCache: invalidate(file) drops every key of that real path, nothing else", () => {
  const { c } = cache();
  put(c, "/d/", "/srv/d/index.html");
  put(c, "/d/index.html", "/srv/d/index.html");
  c.insert("/srv/d/index.html\0br", "/srv/d/index.html", meta(5), 7, new Uint8Array(5), 500, 10);
  put(c, "/d/other.html", "/srv/d/other.html");
  const gen = c.generation;
  c.invalidate("/srv/d/index.html");
  assert.equal(c.generation, gen + 1);
  assert.equal(c.get("/d/"), undefined);
  assert.equal(c.get("/d/index.html"), undefined);
  assert.equal(c.get("/srv/d/index.html\0br"), undefined);
  assert.ok(c.get("/d/other.html"));
  assert.equal(c.bytes, 10);
});

Deno.test("FileCache: invalidate(dir) drops the whole subtree, not prefix look-alikes", () => {
  const { c } = cache(10_000);
  put(c, "/a/1", "/srv/a/1");
  put(c, "/a/b/2", "/srv/a/b/2");
  put(c, "/a/b/c/3", "/srv/a/b/c/3");
  put(c, "/ab/4", "/srv/ab/4");
  put(c, "/a.txt", "/srv/a.txt");
  c.invalidate("/srv/a/");
  assert.equal(c.size, 2);
  assert.ok(c.get("/ab/4") && c.get("/a.txt"));
  c.invalidate("/srv/a/b"); // nothing left there: a no-op
  assert.equal(c.size, 2);
  // The directory index emptied itself: a new file there is found again.
  put(c, "/a/b/5", "/srv/a/b/5");
  c.invalidate("/srv/a");
  assert.equal(c.get("/a/b/5"), undefined);
  c.invalidate("/");
  assert.equal(c.size, 0);
  assert.equal(c.bytes, 0);
});

Deno.test("FileCache: invalidate(x.gz or x.br) drops x (its Vary changes)", () => {
  const { c } = cache();
  put(c, "/x.js", "/srv/x.js");
  c.invalidate("/srv/x.js.gz");
  assert.equal(c.get("/x.js"), undefined);
  put(c, "/x.js", "/srv/x.js");
  c.invalidate("/srv/x.js.br");
  assert.equal(c.get("/x.js"), undefined);
});

Deno.test("FileCache: variant() matches only the exact source version; delete() only the same entry", () => {
  const { c } = cache();
  const src = meta(100, 5);
  const key = "/srv/a.css\0gzip";
  c.insert(key, "/srv/a.css", meta(30, 5), 9, new Uint8Array(30), 500, 100);
  assert.ok(c.variant(key, src, 9));
  assert.equal(c.variant(key, src, 8), undefined, "another inode");
  assert.equal(c.variant(key, meta(101, 5), 9), undefined, "another size");
  assert.equal(c.variant(key, meta(100, 6), 9), undefined, "another mtime");
  const old = c.get(key)!;
  c.insert(key, "/srv/a.css", meta(31, 5), 9, new Uint8Array(31), 500, 100);
  c.delete(old); // stale handle: the new entry stays
  assert.ok(c.get(key));
  c.delete(c.get(key)!);
  assert.equal(c.get(key), undefined);
});

Deno.test("FileCache: fresh() and matches() decide revalidation", () => {
  const { c } = cache();
  const e = put(c, "/a", "/srv/a", 10)!;
  assert.ok(c.fresh(e, e.checked + 999));
  assert.ok(!c.fresh(e, e.checked + 1000));
  const st = (size: number, ino: number, mtime: number, isFile = true) =>
    ({ isFile, size, ino, mtime: new Date(mtime) }) as Deno.FileInfo;
  assert.ok(c.matches(e, st(10, 7, 1)));
  assert.ok(!c.matches(e, st(11, 7, 1)));
  assert.ok(!c.matches(e, st(10, 8, 1)));
  assert.ok(!c.matches(e, st(10, 7, 2)));
  assert.ok(!c.matches(e, st(10, 7, 1, false)));
});

Deno.test("FileCache: clear() forgets everything and bumps the generation", () => {
  const { c } = cache();
  put(c, "/a", "/srv/a");
  const gen = c.generation;
  c.clear();
  assert.equal(c.size, 0);
  assert.equal(c.bytes, 0);
  assert.equal(c.generation, gen + 1);
  put(c, "/a", "/srv/a");
  c.invalidate("/srv");
  assert.equal(c.size, 0);
});

Deno.test("FileCache: invalidating one file among many costs only that file", () => {
  const { c } = cache(1 << 30, 1 << 20);
  for (let d = 0; d < 100; d++) {
    for (let f = 0; f < 100; f++) put(c, `/${d}/${f}`, `/srv/${d}/${f}`, 1);
  }
  assert.equal(c.size, 10_000);
  // Measured by effect, not time: the index finds exactly the file and the subtree.
  c.invalidate("/srv/5/5");
  assert.equal(c.size, 9_999);
  c.invalidate("/srv/7");
  assert.equal(c.size, 9_899);
  assert.ok(c.get("/70/1"), "a look-alike prefix survives");
});

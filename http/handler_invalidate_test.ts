/**
 * `FileHandler.invalidate` / `invalidateAll`: what a watcher's record drops
 * from the file and listing caches. The stat revalidation window is set to a
 * minute here, so only an invalidation can explain a fresh answer.
 */
import assert from "node:assert/strict";
import { createHandler, type FileHandler } from "./handler.ts";
import type { RequestHead } from "./types.ts";
import { replyBytes } from "./_test_reply.ts";

const dec = new TextDecoder();

function req(path: string): RequestHead {
  return { method: "GET", target: path, path, query: "", minor: 1, headers: ["host", "x"] };
}

/** Status and body text; file-backed parts are read like the engine would. */
async function get(h: FileHandler, path: string): Promise<{ status: number; text: string }> {
  const reply = await h(req(path));
  const text = dec.decode(await replyBytes(reply));
  return { status: reply.status, text };
}

async function withRoot(fn: (root: string, h: FileHandler) => Promise<void>): Promise<void> {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "ringhttpd_inval_" }));
  try {
    await Deno.writeTextFile(`${root}/a.txt`, "version-1");
    await Deno.mkdir(`${root}/d/deep`, { recursive: true });
    await Deno.writeTextFile(`${root}/d/deep/c.txt`, "c-1");
    await Deno.writeTextFile(`${root}/d/index.html`, "<p>index-1</p>");
    await Deno.mkdir(`${root}/list`);
    await Deno.writeTextFile(`${root}/list/one.txt`, "1");
    await fn(root, await createHandler({ root, revalidateMs: 60_000 }));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("invalidate(file) drops that file's cache entry: the next GET reads the new bytes", async () => {
  await withRoot(async (root, h) => {
    assert.equal((await get(h, "/a.txt")).text, "version-1");
    await Deno.writeTextFile(`${root}/a.txt`, "version-2"); // same size
    assert.equal((await get(h, "/a.txt")).text, "version-1", "cached, window not over");
    h.invalidate(`${root}/other.txt`);
    assert.equal((await get(h, "/a.txt")).text, "version-1", "another path drops nothing");
    h.invalidate(`${root}/a.txt`);
    assert.equal((await get(h, "/a.txt")).text, "version-2");
    await Deno.writeTextFile(`${root}/a.txt`, "v3");
    h.invalidate(`${root}/a.txt`);
    assert.equal((await get(h, "/a.txt")).text, "v3", "truncated: the shorter body");
    await Deno.remove(`${root}/a.txt`);
    h.invalidate(`${root}/a.txt`);
    assert.equal((await get(h, "/a.txt")).status, 404);
  });
});

Deno.test("invalidate(dir) drops every file under a renamed directory, index.html included", async () => {
  await withRoot(async (root, h) => {
    assert.equal((await get(h, "/d/deep/c.txt")).text, "c-1");
    assert.equal((await get(h, "/d/")).text, "<p>index-1</p>");
    await Deno.rename(`${root}/d`, `${root}/e`);
    assert.equal((await get(h, "/d/deep/c.txt")).status, 200, "cached, window not over");
    h.invalidate(`${root}/d`);
    assert.equal((await get(h, "/d/deep/c.txt")).status, 404);
    assert.equal((await get(h, "/d/")).status, 404);
    assert.equal((await get(h, "/e/deep/c.txt")).text, "c-1");
  });
});

Deno.test("invalidate(entry) drops the listing of its directory: a new file appears", async () => {
  await withRoot(async (root, h) => {
    assert.ok((await get(h, "/list/")).text.includes("one.txt"));
    await Deno.writeTextFile(`${root}/list/two.txt`, "2");
    assert.ok(!(await get(h, "/list/")).text.includes("two.txt"), "cached, window not over");
    h.invalidate(`${root}/list/two.txt`);
    assert.ok((await get(h, "/list/")).text.includes("two.txt"));
    // And the directory itself (e.g. removed): its own listing goes too.
    await Deno.remove(`${root}/list`, { recursive: true });
    h.invalidate(`${root}/list`);
    assert.equal((await get(h, "/list/")).status, 404);
  });
});

Deno.test("invalidate(sibling.gz) drops the plain file, which must now answer with Vary", async () => {
  await withRoot(async (root, h) => {
    await get(h, "/a.txt");
    await Deno.writeTextFile(`${root}/a.txt.gz`, "GZ");
    h.invalidate(`${root}/a.txt.gz`);
    const reply = await h(req("/a.txt"));
    reply.release?.();
    assert.ok(reply.headers.some(([k, v]) => k === "Vary" && v === "Accept-Encoding"));
  });
});

Deno.test("invalidateAll() drops files and listings", async () => {
  await withRoot(async (root, h) => {
    await get(h, "/a.txt");
    await get(h, "/list/");
    await Deno.writeTextFile(`${root}/a.txt`, "version-2");
    await Deno.writeTextFile(`${root}/list/two.txt`, "2");
    h.invalidateAll();
    assert.equal((await get(h, "/a.txt")).text, "version-2");
    assert.ok((await get(h, "/list/")).text.includes("two.txt"));
  });
});

Deno.test("a file read that overlapped an invalidation is served but not cached", async () => {
  await withRoot(async (root, h) => {
    const pending = get(h, "/a.txt"); // suspended in its first await
    h.invalidate(`${root}/a.txt`);
    assert.equal((await pending).text, "version-1");
    await Deno.writeTextFile(`${root}/a.txt`, "version-2");
    // Had the overlapping read been cached, this would still say version-1.
    assert.equal((await get(h, "/a.txt")).text, "version-2");
  });
});

import assert from "node:assert/strict";
import { jobArgs, resultHead, runCompressJob, runCrcJob, runListingJob } from "./job_protocol.ts";

Deno.test("jobArgs() accepts each kind's shape and refuses anything else", () => {
  const listing = { real: "/srv/d", path: "/d/", query: "sort=size", json: false };
  assert.deepEqual(jobArgs("listing", listing), listing);
  const compress = { real: "/srv/a.css", encoding: "br", size: 1, mtimeMs: 2, ino: 3 };
  assert.deepEqual(jobArgs("compress", compress), compress);
  for (const bad of [null, 1, "x", {}, { ...listing, json: "no" }, { ...listing, real: 5 }]) {
    assert.throws(() => jobArgs("listing", bad), /malformed listing job arguments/);
  }
  assert.throws(() => jobArgs("compress", { ...compress, encoding: "zstd" }), TypeError);
  assert.throws(() => jobArgs("compress", listing), TypeError);
});

Deno.test("resultHead() types a well-formed result and refuses the rest", () => {
  const body = new Uint8Array(2);
  const head = { size: 1, mtimeMs: 2, ino: 3 };
  assert.deepEqual(resultHead("compress", { status: 200, head, body }), { head, body });
  assert.equal(resultHead("compress", { status: 503 }), undefined);
  assert.equal(resultHead("compress", { status: 200, head }), undefined, "no body");
  assert.equal(resultHead("compress", { status: 200, head: { size: 1 }, body }), undefined);
  const page = { status: 200, headers: [["ETag", '"e"']], notModifiedHeaders: [], etag: '"e"' };
  assert.ok(resultHead("listing", { status: 200, head: { ...page, mtimeMs: 1 }, body }));
  assert.equal(resultHead("listing", { status: 200, head: page, body }), undefined);
  assert.equal(
    resultHead("listing", { status: 200, head: { ...page, mtimeMs: 1, headers: [[1, 2]] }, body }),
    undefined,
  );
});

Deno.test("runListingJob() and runCompressJob() results survive the JSON crossing, typed", async () => {
  const root = await Deno.realPath(await Deno.makeTempDir());
  try {
    await Deno.mkdir(`${root}/d`);
    await Deno.writeTextFile(`${root}/d/b.txt`, "bb");
    await Deno.writeTextFile(`${root}/d/a.txt`, "a".repeat(4000));
    const ctx = {
      policy: { root, dotfiles: false, followSymlinks: false },
      page: { listingCap: 100, dotfiles: false, archives: false },
    };
    const out = runListingJob(
      jobArgs("listing", { real: `${root}/d`, path: "/d/", query: "format=json", json: true }),
      ctx,
    );
    // Heads cross the thread boundary as JSON.
    const head: unknown = JSON.parse(JSON.stringify(out.head));
    const r = resultHead("listing", { status: 200, head, body: out.body })!;
    assert.equal(r.head.status, 200);
    const names = JSON.parse(new TextDecoder().decode(r.body)).map((e: { name: string }) => e.name);
    assert.deepEqual(names, ["a.txt", "b.txt"]);
    const info = await Deno.stat(`${root}/d/a.txt`);
    const want = { size: info.size, mtimeMs: info.mtime!.getTime(), ino: info.ino ?? 0 };
    const z = runCompressJob({ real: `${root}/d/a.txt`, encoding: "gzip", ...want });
    assert.deepEqual(z.head, want);
    assert.ok(z.body.length < 100);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("runCrcJob() is the file's CRC-32 for the version asked, and FileChanged for another", async () => {
  const { crc32 } = await import("node:zlib");
  const { FileChanged } = await import("./_compress.ts");
  const dir = await Deno.makeTempDir();
  try {
    const bytes = new Uint8Array(3 * 1024 * 1024 + 5).map((_, i) => i * 7);
    await Deno.writeFile(`${dir}/f`, bytes);
    const info = await Deno.stat(`${dir}/f`);
    const args = jobArgs("crc", {
      real: `${dir}/f`,
      size: info.size,
      mtimeMs: info.mtime!.getTime(),
    });
    assert.equal(runCrcJob(args).head.crc, crc32(bytes));
    assert.throws(() => runCrcJob({ ...args, size: args.size + 1 }), FileChanged);
    assert.throws(() => runCrcJob({ ...args, mtimeMs: 1 }), FileChanged);
    assert.throws(() => jobArgs("crc", { real: "/x", size: "1", mtimeMs: 0 }), TypeError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

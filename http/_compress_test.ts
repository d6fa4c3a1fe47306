import assert from "node:assert/strict";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import {
  chooseCoding,
  compressFile,
  compressFileSync,
  compressible,
  FileChanged,
} from "./_compress.ts";

async function withFile(fn: (path: string, info: Deno.FileInfo) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/a.css`;
  try {
    await Deno.writeTextFile(path, "body { color: red }\n".repeat(500));
    await fn(path, await Deno.stat(path));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const version = (i: Deno.FileInfo) => ({
  size: i.size,
  mtimeMs: i.mtime!.getTime(),
  ino: i.ino ?? 0,
});

Deno.test("compressFile() and compressFileSync() give the same bytes for the same version", async () => {
  await withFile(async (path, info) => {
    const want = version(info);
    const original = await Deno.readFile(path);
    for (const coding of ["gzip", "br"] as const) {
      const a = await compressFile(path, coding, want);
      const b = compressFileSync(path, coding, want);
      assert.deepEqual(a.version, want);
      assert.deepEqual(a.body, b.body, coding);
      assert.ok(a.body.length < original.length / 10);
      const back = coding === "br" ? brotliDecompressSync(a.body) : gunzipSync(a.body);
      assert.deepEqual(new Uint8Array(back), original);
    }
  });
});

Deno.test("compressFile(): another version than asked for is FileChanged, not read", async () => {
  await withFile(async (path, info) => {
    const stale = { ...version(info), size: info.size + 1 };
    await assert.rejects(compressFile(path, "gzip", stale), FileChanged);
    assert.throws(() => compressFileSync(path, "br", stale), FileChanged);
    await assert.rejects(compressFile(path + ".gone", "gzip", stale), Deno.errors.NotFound);
  });
});

Deno.test("compressible() takes text of 1 KiB to 8 MiB; chooseCoding() prefers brotli", () => {
  assert.ok(compressible("text/html; charset=utf-8", 1024));
  assert.ok(compressible("application/json", 5000));
  assert.ok(compressible("image/svg+xml", 5000));
  assert.ok(compressible("application/ld+json", 5000));
  assert.ok(!compressible("text/plain", 1023));
  assert.ok(!compressible("text/plain", 8 * 1024 * 1024 + 1));
  assert.ok(!compressible("image/png", 5000));
  assert.equal(chooseCoding("gzip, br"), "br");
  assert.equal(chooseCoding("gzip"), "gzip");
  assert.equal(chooseCoding("br;q=0, gzip"), "gzip");
  assert.equal(chooseCoding("identity"), null);
  assert.equal(chooseCoding(undefined), null);
});

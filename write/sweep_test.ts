import assert from "node:assert/strict";
import { TEMP_PREFIX } from "./atomic.ts";
import { sweepUploads } from "./sweep.ts";

Deno.test("sweepUploads looks only as deep as a glob can write: a temp-like name deeper than `/a/*.txt` reaches stays", async () => {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "ringhttpd_sweep_" }));
  try {
    await Deno.mkdir(`${root}/cache/sub`, { recursive: true });
    await Deno.mkdir(`${root}/deep/x/y`, { recursive: true });
    await Deno.writeTextFile(`${root}/cache/${TEMP_PREFIX}a`, "crash leftover");
    await Deno.writeTextFile(`${root}/cache/sub/${TEMP_PREFIX}keep`, "a user's file");
    await Deno.writeTextFile(`${root}/${TEMP_PREFIX}top`, "not under any upload folder");
    await Deno.writeTextFile(`${root}/deep/x/y/${TEMP_PREFIX}b`, "crash leftover");
    assert.equal(sweepUploads(root, ["/cache/*.txt", "/deep/**"]), 2);
    assert.equal(await Deno.readTextFile(`${root}/cache/sub/${TEMP_PREFIX}keep`), "a user's file");
    assert.equal(
      await Deno.readTextFile(`${root}/${TEMP_PREFIX}top`),
      "not under any upload folder",
    );
    await assert.rejects(Deno.stat(`${root}/cache/${TEMP_PREFIX}a`), Deno.errors.NotFound);
    // A glob naming one file at the top sweeps the top folder only, not the whole tree.
    await Deno.writeTextFile(`${root}/cache/${TEMP_PREFIX}c`, "not this one's");
    assert.equal(sweepUploads(root, ["/file.bin"]), 1);
    assert.equal(await Deno.readTextFile(`${root}/cache/${TEMP_PREFIX}c`), "not this one's");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

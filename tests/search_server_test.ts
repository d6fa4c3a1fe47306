/**
 * Search in the real server: the supervisor's index thread builds the
 * shared index (progress in the log), every HTTP worker answers from it,
 * and a rename on disk shows in the results once the watcher reports it.
 */
import assert from "node:assert/strict";
import { startServer } from "./_server.ts";
import type { Lines } from "./_harness.ts";

function logLine(s: { stdout: Lines; stderr: Lines }, re: RegExp): Promise<unknown> {
  const o = { timeoutMs: 60_000 };
  return Promise.any([s.stdout.waitFor(re, o), s.stderr.waitFor(re, o)]);
}

Deno.test("the server's search index: built at start, shared by 2 workers, follows a rename", async () => {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "ringhttpd-search-srv-" }));
  try {
    for (let d = 0; d < 20; d++) {
      await Deno.mkdir(`${root}/dir-${d}`);
      for (let f = 0; f < 50; f++) {
        await Deno.writeTextFile(`${root}/dir-${d}/file-${d}-${f}.txt`, "x");
      }
    }
    await Deno.writeTextFile(`${root}/dir-3/.secret-needle`, "x");
    await Deno.writeTextFile(`${root}/dir-7/Needle-One.TXT`, "x");
    await using server = await startServer({ root, flags: ["--workers", "2"] });
    await logLine(server, /search index ready: 1021 names/);
    const base = `http://${server.hostname}:${server.port}`;
    const names = async (q: string) => {
      const r = await fetch(`${base}/?q=${encodeURIComponent(q)}&format=json`);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("x-search-partial"), null, "from the index, not a walk");
      return (await r.json()).map((e: { name: string }) => e.name);
    };
    // Several requests: both workers answer from the one shared index.
    for (let i = 0; i < 6; i++) assert.deepEqual(await names("needle"), ["dir-7/Needle-One.TXT"]);
    assert.equal((await names("file-1?-4?.txt")).length, 100);
    await Deno.rename(`${root}/dir-7/Needle-One.TXT`, `${root}/dir-7/renamed-needle.txt`);
    const t0 = performance.now();
    for (;;) {
      const n = await names("needle");
      if (n.length === 1 && n[0] === "dir-7/renamed-needle.txt") break;
      assert.ok(performance.now() - t0 < 10_000, `rename not seen: ${n}`);
      await new Promise((r) => setTimeout(r, 10)); // polling the answer, not synchronising
    }
    console.log(`  rename visible in search after ${(performance.now() - t0).toFixed(0)} ms`);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

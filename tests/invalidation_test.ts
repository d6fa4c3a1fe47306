/**
 * Cross-worker cache invalidation end to end: the real cluster in a
 * subprocess (2 workers, ring mode), several keep-alive connections so that
 * every worker holds some and has the files cached, then changes on disk.
 * Every connection must see the change. The file cache re-checks each entry
 * with a stat once a second anyway, so a fresh answer only proves the
 * watcher when it comes well inside that second: the latency bound is
 * asserted only when the watcher runs (the metrics page counts the records
 * each worker applied), and it is generous for a loaded 2-core machine.
 */
import assert from "node:assert/strict";
import { type Got, KeepAlive, untilAll } from "../bench/invalidation.ts";
import { startCluster } from "./_harness.ts";

const dec = new TextDecoder();
const text = (g: Got) => dec.decode(g.body);
/** Below the 1 s stat window: only the watcher explains a fresh answer this soon. */
const WATCHED_MS = 900;

async function applied(c: KeepAlive): Promise<number[]> {
  const page = text(await c.get("/.m"));
  return [...page.matchAll(/^ringhttpd_invalidations_total\{worker="(\d+)"\} (\d+)$/gm)]
    .map((m) => Number(m[2]));
}

async function served(c: KeepAlive): Promise<number[]> {
  const page = text(await c.get("/.m"));
  return [...page.matchAll(/^ringhttpd_responses_total\{worker="(\d+)",code="2xx"\} (\d+)$/gm)]
    .map((m) => Number(m[2]));
}

Deno.test("a file modified, truncated, deleted or created, a directory renamed, a file under a symlinked directory modified: every worker shows it at once", async () => {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "ringhttpd_inval_e2e_" }));
  await Deno.writeTextFile(`${root}/a.txt`, "version-1");
  await Deno.mkdir(`${root}/list`);
  await Deno.writeTextFile(`${root}/list/one.txt`, "1");
  await Deno.mkdir(`${root}/d`);
  await Deno.writeTextFile(`${root}/d/c.txt`, "c-1");
  // A symlinked directory inside the root: cached under the target's real path.
  await Deno.mkdir(`${root}/target`);
  await Deno.writeTextFile(`${root}/target/t.txt`, "t-1");
  await Deno.symlink(`${root}/target`, `${root}/link`);
  try {
    {
      await using server = await startCluster({ root, workers: 2, metricsPath: "/.m" });
      const { port } = server;
      // Opened one after another and kept open: ring mode hands each new
      // connection to the worker with the fewest, so both workers hold two.
      const clients: KeepAlive[] = [];
      for (let i = 0; i < 4; i++) clients.push(await KeepAlive.open(port));
      try {
        // Warm every worker's cache.
        await untilAll(clients, "/a.txt", (g) => text(g) === "version-1");
        await untilAll(clients, "/list/", (g) => text(g).includes("one.txt"));
        await untilAll(clients, "/d/c.txt", (g) => text(g) === "c-1");
        await untilAll(clients, "/link/t.txt", (g) => text(g) === "t-1");
        const perWorker = await served(clients[0]);
        assert.equal(perWorker.length, 2);
        assert.ok(perWorker.every((n) => n >= 4), `both workers warmed: ${perWorker}`);
        const before = await applied(clients[0]);

        const latencies: Record<string, number> = {};
        const change = async (
          name: string,
          act: () => Promise<void>,
          path: string,
          ok: (g: Got) => boolean,
        ) => {
          const t0 = performance.now();
          await act();
          await untilAll(clients, path, ok, 15_000);
          latencies[name] = performance.now() - t0;
        };
        await change(
          "modify (same size)",
          () => Deno.writeTextFile(`${root}/a.txt`, "version-2"),
          "/a.txt",
          (g) => g.status === 200 && text(g) === "version-2",
        );
        await change(
          "truncate",
          () => Deno.truncate(`${root}/a.txt`, 3),
          "/a.txt",
          (g) => g.status === 200 && text(g) === "ver",
        );
        await change(
          "delete",
          () => Deno.remove(`${root}/a.txt`),
          "/a.txt",
          (g) => g.status === 404,
        );
        await change(
          "create (listing)",
          () => Deno.writeTextFile(`${root}/list/two.txt`, "2"),
          "/list/",
          (g) => g.status === 200 && text(g).includes("two.txt"),
        );
        await change(
          "rename directory",
          () => Deno.rename(`${root}/d`, `${root}/e`),
          "/d/c.txt",
          (g) => g.status === 404,
        );
        await untilAll(clients, "/e/c.txt", (g) => g.status === 200 && text(g) === "c-1");
        await change(
          "modify through a symlinked directory",
          () => Deno.writeTextFile(`${root}/target/t.txt`, "t-2"),
          "/link/t.txt",
          (g) => g.status === 200 && text(g) === "t-2",
        );

        const after = await applied(clients[0]);
        const watched = after.every((n, i) => n > before[i]);
        console.log(
          `invalidation latency (watcher ${watched ? "on" : "off"}): ` +
            Object.entries(latencies).map(([k, v]) => `${k} ${v.toFixed(1)} ms`).join(", "),
        );
        if (watched) {
          for (const [name, ms] of Object.entries(latencies)) {
            assert.ok(ms < WATCHED_MS, `${name}: ${ms.toFixed(0)} ms with the watcher on`);
          }
        }
      } finally {
        for (const c of clients) c.close();
      }
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("--cache-mb 0: no cache and no watcher, changes still show at once", async () => {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "ringhttpd_inval_off_" }));
  await Deno.writeTextFile(`${root}/a.txt`, "version-1");
  try {
    {
      await using server = await startCluster({
        root,
        workers: 2,
        cacheMaxBytes: 0,
        metricsPath: "/.m",
      });
      const { port } = server;
      const c = await KeepAlive.open(port);
      try {
        assert.equal(text(await c.get("/a.txt")), "version-1");
        await Deno.writeTextFile(`${root}/a.txt`, "version-2");
        assert.equal(text(await c.get("/a.txt")), "version-2");
        assert.deepEqual(await applied(c), [0, 0]);
      } finally {
        c.close();
      }
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
